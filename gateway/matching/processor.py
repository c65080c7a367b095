"""The outbox processor: matching, notifications and the gateway's matching entry, after
the request that stored (or withdrew, or expired) a signal committed.

Each outbox row is done in one transaction that holds the cluster lock (on PostgreSQL a
transaction-scoped advisory lock; on SQLite BEGIN IMMEDIATE): the row is claimed
(`FOR UPDATE SKIP LOCKED`), the work is done — the candidate lookup, the cluster
update, the notifications and the gateway's `matching.update` audit entry, written once
per row, for a hit and a miss alike — and the row is deleted, all in that transaction.
A crash before the commit leaves the row to be done again; a row can never be done
twice, because doing it deletes it. Processors in several processes are safe: the
cluster lock runs them one row at a time, which is also what lets a signal see exactly
the signals processed before it (see `gateway.matching.outbox`).

`process_outbox` drains synchronously (tests, the CLI, the demo, and the read paths
that must show a match right after a submission); `gateway.matching.jobs` runs it as a
background job of every gateway (its jobs process under `ketenpoort serve`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from sqlalchemy import Row, Table, bindparam, delete, exists, func, select, update
from sqlalchemy.orm import Session

from gateway.audit.entries import SubjectRef
from gateway.db import Database
from gateway.logs import get_logger
from gateway.matching.models import MatchingOutboxRow
from gateway.matching.outbox import stored_subjects
from gateway.matching.service import (
    FACT_COLUMNS,
    HitPolicy,
    HitRule,
    MatchChange,
    MatchOutcome,
    match_new_signal,
    no_hits,
    on_signal_removed,
    record_matching,
    signal_facts,
    stored_sharing,
    utc,
)
from gateway.ops.metrics import Backlog
from gateway.policy.engine import PolicyEngine
from gateway.signals.locks import lock_clusters, try_lock_clusters
from gateway.signals.models import PseudonymRotationRow, SignalRow
from gateway.signals.service import subject_refs

log = get_logger(__name__)

#: A row that failed this often is skipped (and logged) until an operator looks at it.
MAX_ATTEMPTS = 5

_OUTBOX = cast(Table, MatchingOutboxRow.__table__)
_SIGNALS = cast(Table, SignalRow.__table__)
_ROTATIONS = cast(Table, PseudonymRotationRow.__table__)
_DELETE = delete(_OUTBOX).where(_OUTBOX.c.id == bindparam("row_id"))
#: A claimed row: `_CLAIM`'s columns.
_Claimed = Row[*tuple[Any, ...]]
_ANY_PENDING = select(_OUTBOX.c.id).where(_OUTBOX.c.attempts < MAX_ATTEMPTS).limit(1)
#: A pseudonym key rotation is started and not finished: its stored pseudonyms are then
#: under two keys, so matching waits for it (`gateway.lifecycle.pseudonym_rotation`).
#: The rotation holds the cluster lock for each batch, so this read under that lock
#: sees a consistent state.
_ROTATION_UNDER_WAY = exists().where(_ROTATIONS.c.finished_at.is_(None))
_LATER = _OUTBOX.alias("later")
#: Claim the oldest pending row (none while a rotation is under way), with what the
#: work needs of its signal (`FACT_COLUMNS` first) and whether another row is pending
#: after it: one statement.
_CLAIM = (
    select(
        *FACT_COLUMNS,
        _OUTBOX.c.id.label("outbox_id"),
        _OUTBOX.c.event,
        _OUTBOX.c.created_at,
        _OUTBOX.c.subjects,
        exists().where(_LATER.c.id > _OUTBOX.c.id, _LATER.c.attempts < MAX_ATTEMPTS).label("more"),
    )
    .join(_OUTBOX, _OUTBOX.c.signal_pk == _SIGNALS.c.pk)
    .where(_OUTBOX.c.attempts < MAX_ATTEMPTS, ~_ROTATION_UNDER_WAY)
    .order_by(_OUTBOX.c.id)
    .limit(1)
    .with_for_update(of=_OUTBOX, skip_locked=True)
)


@dataclass(frozen=True)
class Processed:
    """What the processor did for one outbox row (for tests, the demo and logs)."""

    event: str
    signal_id: str
    #: For "created": the matches the signal created, grew or merged.
    changes: list[MatchChange] = field(default_factory=list)
    #: For "created": the earliest active signal of the same organisation and person.
    repeat_of: str | None = None
    #: The ids of the matches the signal joined ("created") or was in (a removal).
    match_ids: tuple[str, ...] = ()


def hit_policy_of(engine: PolicyEngine) -> HitPolicy:
    """The policy's rule for what partners of each kind learn of a match."""

    def hit_policy(kind: str) -> HitRule:
        return HitRule(
            notify=engine.tells_hit(kind), reveal_organisations=engine.reveals_organisations(kind)
        )

    return hit_policy


def has_pending(db: Database) -> bool:
    """A cheap read: is there work? (So an idle processor never takes a write lock.)"""
    with db.read_connection() as connection:
        return connection.execute(_ANY_PENDING).first() is not None


def _removal_subjects(session: Session, signal_pk: int) -> tuple[SubjectRef, ...]:
    """A signal withdrawn before its matching ran: its removal row names its subjects."""
    text = session.execute(
        select(_OUTBOX.c.subjects).where(
            _OUTBOX.c.signal_pk == signal_pk, _OUTBOX.c.event != "created"
        )
    ).scalar_one_or_none()
    return stored_subjects(text)


def _created(session: Session, row: _Claimed, hit_policy: HitPolicy) -> Processed:
    signal = signal_facts(row)
    # The signal's pseudonyms and the stored ones equal to them, in one statement.
    pseudonyms, sharing = stored_sharing(session, signal.pk)
    if signal.status == "active" and pseudonyms:
        outcome = match_new_signal(
            session, signal, pseudonyms, utc(row.created_at), hit_policy, sharing=sharing
        )
        subjects = subject_refs(pseudonyms)
    else:  # withdrawn or expired before its turn: it matches nothing any more
        outcome = MatchOutcome([], None)
        subjects = _removal_subjects(session, signal.pk)
    match_ids = tuple(sorted({c.match.id for c in outcome.changes}))
    detail: dict[str, Any] = {"event": "created", "matches": list(match_ids)}
    if outcome.repeat_of:
        detail["repeatOf"] = outcome.repeat_of
    record_matching(session, signal.id, subjects, detail)
    if outcome.repeat_of:
        # Last, so the lock on the partner's own signal row is held for an instant only.
        session.execute(
            update(_SIGNALS).where(_SIGNALS.c.pk == signal.pk).values(repeat_of=outcome.repeat_of)
        )
    return Processed("created", signal.id, outcome.changes, outcome.repeat_of, match_ids)


def _removed(session: Session, row: _Claimed, hit_policy: HitPolicy) -> Processed:
    signal = signal_facts(row)
    type_: Literal["signal.withdrawn", "signal.expired"] = (
        "signal.withdrawn" if row.event == "withdrawn" else "signal.expired"
    )
    match_ids = tuple(on_signal_removed(session, signal, type_, utc(row.created_at), hit_policy))
    record_matching(
        session,
        signal.id,
        stored_subjects(row.subjects),
        {"event": row.event, "changed": True, "matches": list(match_ids)},
    )
    return Processed(row.event, signal.id, match_ids=match_ids)


def _note_failure(db: Database, row_id: int) -> None:
    try:
        with db.transaction() as session:
            session.execute(
                update(MatchingOutboxRow)
                .where(MatchingOutboxRow.id == row_id)
                .values(attempts=MatchingOutboxRow.attempts + 1)
            )
    except Exception:  # the database may be what failed; the row is simply tried again
        log.exception("matching outbox: could not record a failed attempt", row=row_id)


class _Busy(Exception):
    """Another process holds the cluster lock (only when not waiting for it)."""


def process_next(
    db: Database, hit_policy: HitPolicy = no_hits, *, wait: bool = True
) -> Processed | None:
    """Claim, do and delete the oldest pending row in one transaction; None when idle
    (or while a pseudonym key rotation runs: its rows then wait).

    `wait=False`: give up at once (None) when another process is processing.
    Raises what the work raised, after counting the failed attempt.
    """
    return _process_one(db, hit_policy, wait)[0]


def _process_one(db: Database, hit_policy: HitPolicy, wait: bool) -> tuple[Processed | None, bool]:
    """`process_next`, and whether the claim saw another row pending after this one (so
    a drain needs no `has_pending` read between rows)."""
    row_id: int | None = None
    with db.session(write=True) as session:
        try:
            if wait:
                lock_clusters(session)
            elif not try_lock_clusters(session):
                raise _Busy
            row = session.execute(_CLAIM).first()
            if row is None:  # idle, or a pseudonym key rotation runs: its rows then wait
                session.rollback()
                return None, False
            row_id = row.outbox_id
            done = (_created if row.event == "created" else _removed)(session, row, hit_policy)
            session.execute(_DELETE, {"row_id": row_id})
            session.commit()
            return done, bool(row.more)
        except _Busy:
            session.rollback()
            return None, False
        except Exception:
            session.rollback()
            if row_id is not None:
                _note_failure(db, row_id)
            raise


def process_outbox(
    db: Database,
    hit_policy: HitPolicy = no_hits,
    *,
    limit: int | None = None,
    wait: bool = True,
) -> list[Processed]:
    """Process pending rows until none is left (or `limit`); returns what was done.

    A row whose work fails is logged, counted and left for a later run (this run stops
    there; after `MAX_ATTEMPTS` failures the row is skipped). `wait=False` (the
    background job) stops when another process is processing. A `has_pending` read
    starts the drain; each claim then says whether a later row follows, and when none
    does, `has_pending` is read once more: an earlier id can commit after a later one
    (PostgreSQL's ids do not follow commit order), and the claim looks past its own row.
    """
    done: list[Processed] = []
    more = has_pending(db)
    while more and (limit is None or len(done) < limit):
        try:
            result, more = _process_one(db, hit_policy, wait)
        except Exception:
            log.exception("matching outbox: a row failed; it will be tried again")
            break
        if result is None:
            break
        done.append(result)
        more = more or has_pending(db)
    return done


_BACKLOG = select(
    func.count().filter(_OUTBOX.c.attempts < MAX_ATTEMPTS),
    func.min(_OUTBOX.c.created_at).filter(_OUTBOX.c.attempts < MAX_ATTEMPTS),
    func.count().filter(_OUTBOX.c.attempts >= MAX_ATTEMPTS),
)


def outbox_backlog(db: Database) -> Backlog:
    """Rows waiting (with the oldest one's moment), and rows given up on: for `/metrics`."""
    with db.read_connection() as connection:
        waiting, oldest, given_up = connection.execute(_BACKLOG).one()
    return Backlog(waiting=waiting, oldest=oldest, given_up=given_up)


def pending_counts(db: Database) -> Mapping[str, int]:
    """Rows waiting, and rows given up on (for operators and tests)."""
    found = outbox_backlog(db)
    return {"pending": found.waiting, "failed": found.given_up}
