"""Storing, reading, withdrawing and expiring signals; matching follows the commit.

Inputs are plain data: the HTTP layer has already checked the token, the policy, the
envelope and derived the pseudonyms. Every function takes the caller's `Session` and
never commits: the view commits the signal, its pseudonyms, its matching-outbox row and
its audit entry together. Matching itself (the cluster update, notifications and the
gateway's `matching.update` entry) runs after that commit, in
`gateway.matching.processor`, so a request does the same work for a hit and a miss.
Write callers must open the session with `write=True` (on SQLite that takes the write
lock at BEGIN).

Nothing here writes audit entries; results carry what the entry needs (ids and
pseudonymised subject references).
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple, cast

from sqlalchemy import Row, Table, and_, insert, or_, select, text, update
from sqlalchemy.orm import Session

from gateway.api.paging import CursorCodec, Page, clamp_limit
from gateway.audit.entries import SubjectRef
from gateway.matching.outbox import enqueue, enqueue_row
from gateway.matching.service import utc
from gateway.pseudonyms.detector import recordable_uuid
from gateway.pseudonyms.matchkeys import (
    FAMILY_BSN,
    FAMILY_GIVEN_DOB,
    FAMILY_NAME_DOB,
    FAMILY_NAMES,
    LINKAGE_FAMILIES,
)
from gateway.pseudonyms.service import by_family
from gateway.signals.errors import IdempotencyKeyReused
from gateway.signals.locks import idempotency_lock_key, lock
from gateway.signals.models import SignalPseudonymRow, SignalRow

#: The linkage-key families this version derives (see DESIGN.md, "Pseudonyms").
FAMILIES = frozenset(LINKAGE_FAMILIES)
ELEMENT_SIZE = 32
_SIGNALS = cast(Table, SignalRow.__table__)
SUBJECT_REF_TYPE = "ketenpoort-pseudonym"
#: The families whose elements name a signal's subject in audit entries.
REFERENCE_FAMILIES = (FAMILY_BSN, FAMILY_NAME_DOB)
#: What a signal with neither is referred to by: the families whose elements are the
#: names as written (no deletion neighbours, parts or partial dates, which others share).
FALLBACK_REFERENCE_FAMILIES = (FAMILY_GIVEN_DOB, FAMILY_NAMES)


@dataclass(frozen=True)
class NewSignal:
    """A signal to store, as the HTTP layer hands it over (no raw identifier in it)."""

    organisation: str
    organisation_kind: str
    reference: str
    category: str
    #: family ("bsn", "name_dob", "del_dob", …) → the 32-byte ristretto255 element, or
    #: the elements of a multi-valued family (deletion neighbours, name parts).
    pseudonyms: Mapping[str, bytes | Collection[bytes]]
    #: The key-store id of the pseudonym key the elements were derived under.
    pseudonym_key_id: str
    #: The JWE (JSON serialization) as received, as JSON text.
    payload: str
    retention_days: int
    idempotency_key: str | None = None
    #: A digest of the request body (e.g. SHA-256), compared on an idempotent retry.
    request_hash: bytes | None = None
    #: The user who filed it through the web intake (None for a partner system).
    submitted_by: str | None = None

    def check(self) -> None:
        """Programming errors, not client errors: the view validates input first."""
        if not self.pseudonyms:
            raise ValueError("a signal needs at least one pseudonym")
        for family, elements in by_family(self.pseudonyms).items():
            if family not in FAMILIES:
                raise ValueError(f"unknown linkage-key family {family!r}")
            if not elements or any(len(e) != ELEMENT_SIZE for e in elements):
                raise ValueError(f"a {family} pseudonym must be {ELEMENT_SIZE} bytes")
        if self.retention_days < 1:
            raise ValueError("retention must be at least one day")
        if self.idempotency_key is not None and self.request_hash is None:
            raise ValueError("an idempotency key needs the request hash")


@dataclass(frozen=True)
class Signal:
    """A stored signal as the API shows it to its own organisation."""

    id: str
    organisation: str
    organisation_kind: str
    reference: str
    category: str
    status: str
    created_at: datetime
    expires_at: datetime
    withdrawn_at: datetime | None
    linkage_keys: tuple[str, ...]
    #: The earliest active signal of the same organisation about the same person.
    repeat_of: str | None
    #: The first response (JSON text) the view stored with `remember_response`.
    stored_response: str | None = field(default=None, repr=False)
    #: The user who filed it through the web intake (None for a partner system).
    submitted_by: str | None = None


class Created(NamedTuple):
    signal: Signal
    #: False on an idempotent replay: nothing was stored, answer `signal.stored_response`.
    created: bool


@dataclass(frozen=True)
class Removal:
    """A withdrawal or expiry: what the audit entry needs."""

    signal: Signal
    #: False when the signal was already withdrawn or expired (nothing changed).
    changed: bool
    #: Subject references of the pseudonyms just deleted (empty when unchanged).
    subjects: tuple[SubjectRef, ...]


def pseudonym_ref(element: bytes) -> str:
    """The privacy officer's handle on a pseudonym: base64url of the group element."""
    return base64.urlsafe_b64encode(element).rstrip(b"=").decode("ascii")


def subject_refs(
    pseudonyms: Mapping[str, bytes | Collection[bytes]] | Iterable[bytes],
) -> tuple[SubjectRef, ...]:
    """Audit subject references for pseudonyms; never an identifier, only the element.

    From a mapping by family, only the exact families (`bsn`, `name_dob`) when the
    signal has one: the subject search finds entries by exactly those, and a typo
    family's element may be shared with someone else. A signal without either (no
    family name, no date of birth) is referred to by `FALLBACK_REFERENCE_FAMILIES`.
    """
    if isinstance(pseudonyms, Mapping):
        families = by_family(pseudonyms)
        chosen = [f for f in REFERENCE_FAMILIES if f in families] or [
            f for f in FALLBACK_REFERENCE_FAMILIES if f in families
        ]
        elements: Iterable[bytes] = (e for f in chosen for e in families[f])
    else:
        elements = pseudonyms
    refs = sorted({pseudonym_ref(bytes(e)) for e in elements})
    return tuple(SubjectRef(ref, SUBJECT_REF_TYPE) for ref in refs)


def _view(row: SignalRow | Row[Any]) -> Signal:
    """The API's view of a stored signal (an ORM row or a Core row of `signals`)."""
    return Signal(
        id=row.id,
        organisation=row.organisation,
        organisation_kind=row.organisation_kind,
        reference=row.reference,
        category=row.category,
        status=row.status,
        created_at=utc(row.created_at),
        expires_at=utc(row.expires_at),
        withdrawn_at=utc(row.withdrawn_at) if row.withdrawn_at else None,
        linkage_keys=tuple(k for k in row.linkage_keys.split(",") if k),
        repeat_of=row.repeat_of,
        stored_response=row.stored_response,
        submitted_by=row.submitted_by,
    )


def _now(now: datetime | None) -> datetime:
    return utc(now) if now is not None else datetime.now(UTC)


def create_signal(
    session: Session,
    new: NewSignal,
    *,
    now: datetime | None = None,
    seal: Callable[[str, datetime], tuple[str, str]] | None = None,
) -> Created:
    """Store `new` and leave its matching to the outbox, in the caller's transaction.

    Nothing here depends on whether the person was reported before: no lookup of other
    signals, no lock another person's signal could hold (see `gateway.matching.outbox`).

    A retry with the same idempotency key and request hash returns the first signal
    (with its stored response) and changes nothing; the same key with another hash
    raises `IdempotencyKeyReused` (422).

    `seal(payload, expires_at)` wraps the payload at rest (`gateway.keys.epochs`):
    it returns the stored text and the epoch key id.
    """
    new.check()
    moment = _now(now)
    if new.idempotency_key is not None:
        lock(session, [idempotency_lock_key(new.organisation, new.idempotency_key)])
        # Core, not the ORM: on the hot path of every partner-client submission.
        earlier = session.execute(
            select(_SIGNALS).where(
                _SIGNALS.c.organisation == new.organisation,
                _SIGNALS.c.idempotency_key == new.idempotency_key,
            )
        ).first()
        if earlier is not None:
            assert new.request_hash is not None  # checked above
            if earlier.request_hash is None or not hmac.compare_digest(
                earlier.request_hash, new.request_hash
            ):
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was used before with another request body."
                )
            return Created(_view(earlier), False)

    pseudonyms = by_family(new.pseudonyms)
    expires_at = moment + timedelta(days=new.retention_days)
    stored, epoch = seal(new.payload, expires_at) if seal is not None else (new.payload, None)
    signal_id = recordable_uuid()
    values = {
        "id": signal_id,
        "organisation": new.organisation,
        "organisation_kind": new.organisation_kind,
        "reference": new.reference,
        "category": new.category,
        "status": "active",
        "linkage_keys": ",".join(sorted(pseudonyms)),
        "created_at": moment,
        "expires_at": expires_at,
        "payload": stored,
        "payload_epoch": epoch,
        "idempotency_key": new.idempotency_key,
        "request_hash": new.request_hash,
        "submitted_by": new.submitted_by,
    }
    rows = [(f, e) for f, elements in sorted(pseudonyms.items()) for e in sorted(elements)]
    # Core statements (the ORM unit of work cost more than the inserts themselves):
    # the signal, its pseudonyms, the outbox row.
    # Pending ORM changes of the caller are flushed first, as an ORM add would.
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        _create_pg(session, values, new.pseudonym_key_id, rows, moment)
    else:
        signal_pk = session.execute(insert(_SIGNALS).returning(_SIGNALS.c.pk), values).scalar_one()
        _insert_pseudonyms(session, signal_pk, new.pseudonym_key_id, rows)
        enqueue_row(session, signal_pk, "created", moment)
    signal = Signal(
        id=signal_id,
        organisation=new.organisation,
        organisation_kind=new.organisation_kind,
        reference=new.reference,
        category=new.category,
        status="active",
        created_at=moment,
        expires_at=utc(expires_at),
        withdrawn_at=None,
        linkage_keys=tuple(sorted(pseudonyms)),
        repeat_of=None,
        submitted_by=new.submitted_by,
    )
    return Created(signal, True)


_SIGNAL_COLUMNS = (
    "id",
    "organisation",
    "organisation_kind",
    "reference",
    "category",
    "status",
    "linkage_keys",
    "created_at",
    "expires_at",
    "payload",
    "payload_epoch",
    "idempotency_key",
    "request_hash",
    "submitted_by",
)
#: PostgreSQL: the signal, its pseudonyms (arrays, unnested) and its matching-outbox row
#: in ONE statement (one round trip instead of three), whose text is the same whatever
#: the subject. The pseudonyms' and the outbox row's foreign keys are checked at the
#: end of the statement, when the signal's row is there.
_CREATE_PG = text(
    "WITH new_signal AS ("  # noqa: S608 - constants only: every value is a bind parameter
    f"INSERT INTO signals ({', '.join(_SIGNAL_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _SIGNAL_COLUMNS)}) RETURNING pk), "
    "new_pseudonyms AS ("
    "INSERT INTO signal_pseudonyms (signal_pk, family, element, key_id) "
    "SELECT new_signal.pk, t.family, t.element, :key_id FROM new_signal, "
    "unnest(CAST(:families AS text[]), CAST(:elements AS bytea[])) AS t(family, element)), "
    "new_outbox AS ("
    "INSERT INTO matching_outbox (signal_pk, event, created_at, attempts) "
    "SELECT new_signal.pk, 'created', CAST(:outbox_at AS timestamptz), 0 FROM new_signal) "
    "SELECT pk FROM new_signal"
)


def _create_pg(
    session: Session,
    values: Mapping[str, object],
    key_id: str,
    rows: list[tuple[str, bytes]],
    moment: datetime,
) -> int:
    """The signal, its pseudonyms and its outbox row on PostgreSQL: one round trip."""
    params = {
        **values,
        "key_id": key_id,
        "families": [family for family, _ in rows],
        "elements": [element for _, element in rows],
        "outbox_at": moment,
    }
    signal_pk: int = session.execute(_CREATE_PG, params).scalar_one()
    return signal_pk


_INSERT_PSEUDONYMS_SQLITE = (
    "INSERT INTO signal_pseudonyms (signal_pk, family, element, key_id) VALUES (?, ?, ?, ?)"
)


def _insert_pseudonyms(
    session: Session, signal_pk: int, key_id: str, rows: list[tuple[str, bytes]]
) -> None:
    """SQLite: one executemany of the driver over plain tuples (sqlite3 steps one
    prepared statement, in process; SQLAlchemy's per-row parameter handling cost more
    than the inserts)."""
    session.connection().exec_driver_sql(
        _INSERT_PSEUDONYMS_SQLITE,
        [(signal_pk, family, element, key_id) for family, element in rows],
    )


def remember_response(session: Session, signal_id: str, response: str) -> None:
    """Keep the first response (JSON text) so an idempotent retry gets it back verbatim."""
    session.execute(
        update(_SIGNALS)
        .where(
            _SIGNALS.c.id == signal_id,
            _SIGNALS.c.idempotency_key.is_not(None),
            _SIGNALS.c.stored_response.is_(None),
        )
        .values(stored_response=response)
    )


def _own(
    session: Session, organisation: str, signal_id: str, *, for_update: bool = False
) -> SignalRow | None:
    query = select(SignalRow).where(
        SignalRow.id == signal_id, SignalRow.organisation == organisation
    )
    if for_update:
        # FOR NO KEY UPDATE on PostgreSQL: a concurrent withdrawal or expiry waits, while
        # the processor's foreign-key checks (KEY SHARE) on this row never make us wait.
        query = query.with_for_update(key_share=True)
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def get_signal(session: Session, organisation: str, signal_id: str) -> Signal | None:
    """The organisation's own signal; another organisation's id gives None (a 404)."""
    row = _own(session, organisation, signal_id)
    return _view(row) if row is not None else None


def list_signals(
    session: Session,
    organisation: str,
    cursor: str | None,
    limit: int | None,
    cursors: CursorCodec,
    *,
    submitter: str | None = None,
) -> Page[Signal]:
    """The organisation's own signals, oldest first, keyset-paged by an opaque cursor;
    with `submitter`, only those that user filed (a professional's own)."""
    after = cursors.decode(cursor)
    size = clamp_limit(limit)
    query = select(SignalRow).where(SignalRow.organisation == organisation, SignalRow.pk > after)
    if submitter is not None:
        query = query.where(SignalRow.submitted_by == submitter)
    rows = list(session.execute(query.order_by(SignalRow.pk).limit(size + 1)).scalars())
    more = len(rows) > size
    rows = rows[:size]
    return Page([_view(r) for r in rows], cursors.encode(rows[-1].pk) if more else None)


def _pseudonym_rows(session: Session, signal_pk: int) -> list[SignalPseudonymRow]:
    return list(
        session.execute(
            select(SignalPseudonymRow).where(SignalPseudonymRow.signal_pk == signal_pk)
        ).scalars()
    )


def _remove(
    session: Session,
    row: SignalRow,
    status: Literal["withdrawn", "expired"],
    now: datetime,
) -> Removal:
    """Forget the pseudonyms and payload of `row` now; its row and audit trail stay.

    Who must hear of it (the coordinator, partners in its matches) is the outbox's work.
    """
    pseudonyms = _pseudonym_rows(session, row.pk)
    held: dict[str, set[bytes]] = {}
    for pseudonym in pseudonyms:
        held.setdefault(pseudonym.family, set()).add(bytes(pseudonym.element))
    subjects = subject_refs(held)
    for pseudonym in pseudonyms:
        session.delete(pseudonym)
    row.status = status
    row.payload = None
    row.payload_epoch = None
    if status == "withdrawn":
        row.withdrawn_at = now
    enqueue(session, row.pk, status, now, subjects)
    session.flush()
    return Removal(_view(row), True, subjects)


def withdraw_signal(
    session: Session,
    organisation: str,
    signal_id: str,
    now: datetime | None = None,
) -> Removal | None:
    """Withdraw the organisation's own signal: payload and pseudonyms go at once.

    None when the id is not one of the organisation's signals (a 404). Withdrawing an
    already withdrawn or expired signal changes nothing (`changed` is False).
    """
    moment = _now(now)
    row = _own(session, organisation, signal_id, for_update=True)
    if row is None:
        return None
    if row.status != "active":
        return Removal(_view(row), False, ())
    return _remove(session, row, "withdrawn", moment)


def expire_due(
    session: Session,
    now: datetime | None = None,
    *,
    limit: int = 1000,
) -> list[Removal]:
    """Mark up to `limit` signals past their retention as expired, forgetting their data.

    Expired signals stop matching at `expiresAt` even before this runs (the lookup
    checks the time); this makes it final. Run it periodically until it returns [].
    """
    moment = _now(now)
    due = [
        pk
        for pk in session.execute(
            select(SignalRow.pk)
            .where(SignalRow.status == "active", SignalRow.expires_at <= moment)
            .order_by(SignalRow.expires_at, SignalRow.pk)
            .limit(limit)
        ).scalars()
    ]
    if not due:
        return []
    # Locked and re-checked: a concurrent expiry (another process) or withdrawal of the
    # same signal has it already, or waits and then finds it no longer active.
    rows = session.execute(
        select(SignalRow)
        .where(SignalRow.pk.in_(due), SignalRow.status == "active")
        .order_by(SignalRow.pk)
        .with_for_update(key_share=True, skip_locked=True)
        .execution_options(populate_existing=True)
    ).scalars()
    return [_remove(session, row, "expired", moment) for row in list(rows)]


def signals_by_pseudonyms(
    session: Session, pseudonyms: Iterable[tuple[str, bytes]]
) -> list[Signal]:
    """Every signal (any organisation) still holding one of these pseudonyms.

    For the privacy officer's subject search. Withdrawn and expired signals hold no
    pseudonyms any more; their audit entries carry the subject references instead.
    """
    wanted = [(family, bytes(element)) for family, element in pseudonyms]
    if not wanted:
        return []
    condition = or_(
        *(
            and_(SignalPseudonymRow.family == family, SignalPseudonymRow.element == element)
            for family, element in sorted(set(wanted))
        )
    )
    pks = select(SignalPseudonymRow.signal_pk).where(condition)
    rows = session.execute(
        select(SignalRow).where(SignalRow.pk.in_(pks)).order_by(SignalRow.pk)
    ).scalars()
    return [_view(row) for row in rows]


def signal_subject_refs(session: Session, signal_id: str) -> tuple[SubjectRef, ...]:
    """Subject references of a stored signal's pseudonyms (for read audit entries)."""
    held: dict[str, set[bytes]] = {}
    for family, element in session.execute(
        select(SignalPseudonymRow.family, SignalPseudonymRow.element)
        .join(SignalRow, SignalRow.pk == SignalPseudonymRow.signal_pk)
        .where(SignalRow.id == signal_id)
    ):
        held.setdefault(family, set()).add(bytes(element))
    return subject_refs(held)


def get_payload(session: Session, signal_id: str) -> str | None:
    """The stored JWE of an active signal (for the meldpunt's case work), else None."""
    return session.execute(
        select(SignalRow.payload).where(SignalRow.id == signal_id, SignalRow.status == "active")
    ).scalar_one_or_none()
