"""CaseService: cases made from a match or chosen signals, linked and unlinked signals,
status, assignment and encrypted notes.

Every call takes the actor, asks the policy once (`case.write`), does the work and adds
ONE audit entry whose action is the decided action (`decision.action`), in the caller's
session; the caller commits. A denial is recorded and committed on its own and raised
as `PolicyDenied` (403 naming the rule), as `gateway.policy.service.authorize` does.
Nothing here needs HTTP: the API views and the web pages call the same methods.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.api.paging import Page, clamp_limit, decode_cursor, encode_cursor
from gateway.audit import AuditEvent, Receipt, SubjectRef, record_event
from gateway.cases.models import CASE_STATUSES, CaseNoteRow, CaseRow, CaseSignalRow
from gateway.errors import FieldError, InputErrors, InternalError, InvalidInput, NotFound
from gateway.keys import KeyStore
from gateway.logs import looks_like_identifier
from gateway.matching.service import get_match
from gateway.policy.audited import denial_event, policy_denied
from gateway.policy.engine import Context, Decision, PolicyEngine, Resource
from gateway.signals.models import SignalRow
from gateway.signals.service import signal_subject_refs
from gateway.users.models import UserRow

CaseStatus = Literal["open", "in-progress", "closed"]
CASE_WRITE = "case.write"
NOTE_KEY_LABEL = "case-notes-v1"
NOTE_KEY_ID = f"hkdf:{NOTE_KEY_LABEL}"
MAX_NOTE_CHARS = 10_000
MAX_SIGNALS = 200

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they were stored in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- shared by the services of this package ------------------------------------------


def refuse(session: Session, actor: Actor, resource: Resource, decision: Decision) -> NoReturn:
    """Record a denial durably (alone: the session is rolled back first) and raise 403."""
    session.rollback()
    record_event(session, denial_event(actor, resource, decision))
    session.commit()
    raise policy_denied(decision)


def is_refusal(decision: Decision) -> bool:
    """A denial proper. A decision that only waits for a second approval is not one,
    whether the engine marks it `allow` with the obligation or not allowed until approved."""
    return decision.effect != "allow" and not decision.needs_second_approval


def audit(
    session: Session,
    actor: Actor,
    decision: Decision,
    resource: Resource,
    step: str,
    *,
    subjects: Iterable[SubjectRef] = (),
    **detail: Any,
) -> Receipt:
    """The one entry of an allowed call: its action IS the decided action."""
    return record_event(
        session,
        AuditEvent(
            action=decision.action,
            outcome="success",
            actor=actor,
            resource_type=resource.type,
            resource_id=resource.id,
            subjects=tuple(dict.fromkeys(subjects)),
            detail={"step": step, **{k: v for k, v in detail.items() if v is not None}},
            **decision.audit_fields(),
        ),
    )


def check_text(pointer: str, value: str, *, limit: int) -> list[FieldError]:
    """Free text a coordinator types that is stored or audited: bounded, no identifier shape."""
    if not 1 <= len(value) <= limit or value != value.strip():
        return [FieldError(pointer, f"Must be 1 to {limit} characters without edge spaces")]
    if not all(c.isprintable() for c in value):
        return [FieldError(pointer, "Must be printable characters")]
    if looks_like_identifier(value):
        return [FieldError(pointer, "Looks like personal data (a BSN or a date); leave it out")]
    return []


def _summary(errors: Sequence[FieldError]) -> str:
    return f"The request has {len(errors)} invalid value(s); see errors."


def raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidInput(_summary(errors), errors=errors)


def _add(found: InputErrors, errors: Sequence[FieldError]) -> None:
    if errors:
        found.add(InvalidInput(_summary(errors), errors=list(errors)))


def actor_key(actor: Actor) -> str:
    return f"{actor.type}:{actor.id}"


def subjects_of(session: Session, signal_ids: Iterable[str]) -> list[SubjectRef]:
    found: list[SubjectRef] = []
    for signal_id in signal_ids:
        found.extend(signal_subject_refs(session, signal_id))
    return found


# -- typed inputs and outputs ----------------------------------------------------------


@dataclass(frozen=True)
class CaseSignal:
    id: str
    organisation: str
    category: str
    reference: str
    status: str
    #: When the partner submitted it, and when it expires (its category's retention).
    created_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    status: str
    outcome: str | None
    assignee: str | None
    match_id: str | None
    signals: tuple[CaseSignal, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({s.category for s in self.signals}))


@dataclass(frozen=True)
class CaseRef:
    """A case as a signal's page names it: a link and a title."""

    id: str
    title: str
    status: str


@dataclass(frozen=True)
class NewCase:
    """A case from a match (`match_id`) or from chosen signals (`signal_ids`): one of them."""

    title: str
    signal_ids: tuple[str, ...] = ()
    match_id: str | None = None
    #: What the request's schema already refused (`read_body`): answered with the
    #: service's own errors in one 400; a value refused there is not checked again.
    refused: tuple[FieldError, ...] = ()


@dataclass(frozen=True)
class CaseUpdate:
    """What to change; None leaves a field as it is. Closing needs an outcome."""

    status: CaseStatus | None = None
    outcome: str | None = None
    assignee: str | None = None


@dataclass(frozen=True)
class Note:
    id: str
    author: str
    created_at: datetime
    text: str = field(repr=False)


# -- notes: AES-256-GCM under a key derived from the key store --------------------------


class NoteCipher:
    """Seals note text; the AAD binds a ciphertext to its case and note id."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys
        self._key: bytes | None = None

    def _aead(self) -> AESGCM:
        if self._key is None:
            self._key = self._keys.derive_secret(NOTE_KEY_LABEL)
        return AESGCM(self._key)

    @staticmethod
    def _aad(case_id: str, note_id: str) -> bytes:
        return f"ketenpoort-case-note:{case_id}:{note_id}".encode()

    def seal(self, case_id: str, note_id: str, text: str) -> tuple[bytes, bytes]:
        nonce = os.urandom(12)
        return nonce, self._aead().encrypt(nonce, text.encode("utf-8"), self._aad(case_id, note_id))

    def open(self, case_id: str, row: CaseNoteRow) -> str:
        if row.key_id != NOTE_KEY_ID:
            raise InternalError("A case note is sealed under a key this gateway lacks.")
        try:
            plain = self._aead().decrypt(row.nonce, row.ciphertext, self._aad(case_id, row.id))
        except InvalidTag:
            raise InternalError("A case note does not decrypt.") from None
        return plain.decode("utf-8")


# -- the service ------------------------------------------------------------------------


@dataclass
class CaseService:
    engine: PolicyEngine
    keys: KeyStore
    clock: Clock = utc_now
    notes_cipher: NoteCipher = field(init=False)

    def __post_init__(self) -> None:
        self.notes_cipher = NoteCipher(self.keys)

    # decisions
    def _decide(
        self, session: Session, actor: Actor, resource: Resource, context: Context | None = None
    ) -> Decision:
        decision = self.engine.decide(actor, CASE_WRITE, resource, context)
        if decision.effect != "allow" or decision.needs_second_approval:
            refuse(session, actor, resource, decision)
        return decision

    @staticmethod
    def _resource(case_id: str | None = None) -> Resource:
        return Resource(type="case", id=case_id)

    # reading
    def _row(self, session: Session, case_id: str) -> CaseRow:
        row = session.execute(select(CaseRow).where(CaseRow.id == case_id)).scalar_one_or_none()
        if row is None:
            raise NotFound("No case with this id.")
        return row

    def _signals(self, session: Session, case_pks: Sequence[int]) -> dict[int, list[CaseSignal]]:
        found: dict[int, list[CaseSignal]] = {pk: [] for pk in case_pks}
        if not case_pks:
            return found
        rows = session.execute(
            select(CaseSignalRow.case_pk, SignalRow)
            .join(SignalRow, SignalRow.pk == CaseSignalRow.signal_pk)
            .where(CaseSignalRow.case_pk.in_(case_pks))
            .order_by(CaseSignalRow.case_pk, SignalRow.pk)
        ).all()
        for case_pk, s in rows:
            found[case_pk].append(
                CaseSignal(
                    s.id,
                    s.organisation,
                    s.category,
                    s.reference,
                    s.status,
                    utc(s.created_at),
                    utc(s.expires_at),
                )
            )
        return found

    def _view(self, session: Session, row: CaseRow) -> Case:
        return self._views(session, [row])[0]

    def _views(self, session: Session, rows: Sequence[CaseRow]) -> list[Case]:
        signals = self._signals(session, [r.pk for r in rows])
        return [
            Case(
                id=r.id,
                title=r.title,
                status=r.status,
                outcome=r.outcome,
                assignee=r.assignee,
                match_id=r.match_id,
                signals=tuple(signals[r.pk]),
                created_at=utc(r.created_at),
                updated_at=utc(r.updated_at),
            )
            for r in rows
        ]

    def _active_signals(
        self, session: Session, signal_ids: Sequence[str], pointer: str
    ) -> tuple[list[SignalRow], list[FieldError]]:
        """The active signals `signal_ids` name, and an error for each that names none."""
        rows = {
            r.id: r
            for r in session.execute(
                select(SignalRow).where(SignalRow.id.in_(signal_ids))
            ).scalars()
        }
        errors = [
            FieldError(f"{pointer}/{i}", "Not an active signal")
            for i, sid in enumerate(signal_ids)
            if sid not in rows or rows[sid].status != "active"
        ]
        return [rows[sid] for sid in signal_ids if sid in rows], errors

    # -- calls ---------------------------------------------------------------------------
    def create(self, session: Session, actor: Actor, new: NewCase) -> Case:
        """A case from a match or from chosen signals; status open.

        Every input error is answered in one 400. The signals are looked up only for a
        caller the policy lets create cases (decided in memory first when other errors
        were found): a refused caller learns nothing of which signals exist.
        """
        found = InputErrors()
        if new.refused:
            found.add(InvalidInput(_summary(new.refused), errors=new.refused))
        if not found.refused("/title"):
            _add(found, check_text("/title", new.title, limit=200))
        chosen = not found.refused("/signalIds")
        if (
            not found.refused("/matchId")
            and chosen
            and (new.match_id is None) == (not new.signal_ids)
        ):
            _add(found, [FieldError("", "Give either matchId or signalIds")])
        if len(new.signal_ids) > MAX_SIGNALS or len(set(new.signal_ids)) != len(new.signal_ids):
            _add(found, [FieldError("/signalIds", f"At most {MAX_SIGNALS} distinct ids")])
            chosen = False
        signal_ids = list(new.signal_ids)
        match_id: str | None = None
        pointer = "/signalIds"
        if new.match_id is not None and not found.refused("/matchId"):
            match = get_match(session, new.match_id)
            if match is None:
                _add(found, [FieldError("/matchId", "Not a match")])
                chosen = False
            else:
                signal_ids = [s.id for s in match.signals if s.status == "active"]
                match_id = match.id
                pointer = "/matchId"
        case_id = str(uuid.uuid4())
        resource = self._resource(case_id)
        if found:
            decision = self.engine.decide(actor, CASE_WRITE, resource)
            may = decision.effect == "allow" and not decision.needs_second_approval
            if chosen and signal_ids and may:
                _add(found, self._active_signals(session, signal_ids, pointer)[1])
            found.raise_if_any()
        decision = self._decide(session, actor, resource)
        signals, errors = self._active_signals(session, signal_ids, pointer)
        raise_if(errors)
        now = self.clock()
        row = CaseRow(
            id=case_id,
            title=new.title,
            status="open",
            match_id=match_id,
            created_by=actor_key(actor),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        for s in signals:
            session.add(CaseSignalRow(case_pk=row.pk, signal_pk=s.pk, linked_at=now))
        audit(
            session,
            actor,
            decision,
            resource,
            "create",
            subjects=subjects_of(session, signal_ids),
            matchId=row.match_id,
            signals=signal_ids,
        )
        return self._view(session, row)

    def get(self, session: Session, actor: Actor, case_id: str) -> Case:
        resource = self._resource(case_id)
        decision = self._decide(session, actor, resource)
        case = self._view(session, self._row(session, case_id))
        audit(session, actor, decision, resource, "read")
        return case

    def list(
        self, session: Session, actor: Actor, cursor: str | None = None, limit: int | None = None
    ) -> Page[Case]:
        after = decode_cursor(cursor)
        size = clamp_limit(limit)
        resource = self._resource()
        decision = self._decide(session, actor, resource)
        rows = list(
            session.execute(
                select(CaseRow).where(CaseRow.pk > after).order_by(CaseRow.pk).limit(size + 1)
            ).scalars()
        )
        more = len(rows) > size
        rows = rows[:size]
        audit(session, actor, decision, resource, "list", cases=[r.id for r in rows])
        return Page(self._views(session, rows), encode_cursor(rows[-1].pk) if more else None)

    def holding(
        self, session: Session, actor: Actor, signal_ids: Sequence[str]
    ) -> dict[str, tuple[CaseRef, ...]]:
        """For each of `signal_ids`, the cases that hold it (oldest first); audited as a
        list of those cases."""
        resource = self._resource()
        decision = self._decide(session, actor, resource)
        found: dict[str, list[CaseRef]] = {sid: [] for sid in signal_ids}
        rows = (
            session.execute(
                select(SignalRow.id, CaseRow)
                .join(CaseSignalRow, CaseSignalRow.signal_pk == SignalRow.pk)
                .join(CaseRow, CaseRow.pk == CaseSignalRow.case_pk)
                .where(SignalRow.id.in_(list(signal_ids)))
                .order_by(CaseRow.pk)
            ).all()
            if signal_ids
            else []
        )
        for signal_id, case in rows:
            found[signal_id].append(CaseRef(case.id, case.title, case.status))
        cases = list(dict.fromkeys(ref.id for refs in found.values() for ref in refs))
        audit(session, actor, decision, resource, "list", cases=cases)
        return {sid: tuple(refs) for sid, refs in found.items()}

    def _change(
        self, session: Session, actor: Actor, case_id: str, reason: str
    ) -> tuple[Resource, Decision, CaseRow]:
        """What every change with a reason starts with: the reason checked, the one policy
        decision, the case row (a 404 when there is none)."""
        raise_if(check_text("/reason", reason, limit=500))
        resource = self._resource(case_id)
        decision = self._decide(session, actor, resource)
        return resource, decision, self._row(session, case_id)

    def link_match(
        self, session: Session, actor: Actor, case_id: str, match_id: str, reason: str
    ) -> tuple[Case, tuple[str, ...]]:
        """Link the match's active signals that the case does not hold yet (a signal that
        joined the match after the case was made), with a reason: one audit entry naming
        them. Returns the case and the ids linked; none to link is invalid input."""
        resource, decision, row = self._change(session, actor, case_id, reason)
        match = get_match(session, match_id)
        if match is None:
            raise InvalidInput(
                "No match with this id.", errors=[FieldError("/matchId", "Not a match")]
            )
        held = {s.id for s in self._signals(session, [row.pk])[row.pk]}
        if not held & {s.id for s in match.signals}:
            raise InvalidInput(
                "The case holds no signal of this match; make a case from the match instead.",
                errors=[FieldError("/matchId", "No signal of this match is in the case")],
            )
        missing = [s.id for s in match.signals if s.status == "active" and s.id not in held]
        if not missing:
            raise InvalidInput(
                "The case already holds every active signal of this match.",
                errors=[FieldError("/signalIds", "No active signal of the match to add")],
            )
        now = self.clock()
        signals, errors = self._active_signals(session, missing, "/signalIds")
        raise_if(errors)
        for signal in signals:
            session.add(CaseSignalRow(case_pk=row.pk, signal_pk=signal.pk, linked_at=now))
        row.updated_at = now
        audit(
            session,
            actor,
            decision,
            resource,
            "link",
            subjects=subjects_of(session, missing),
            matchId=match.id,
            signals=missing,
            reason=reason,
        )
        session.flush()
        return self._view(session, row), tuple(missing)

    def link(
        self, session: Session, actor: Actor, case_id: str, signal_id: str, reason: str
    ) -> Case:
        """Link an active signal into the case, with a reason (audited)."""
        resource, decision, row = self._change(session, actor, case_id, reason)
        found, errors = self._active_signals(session, [signal_id], "/signalIds")
        raise_if(errors)
        (signal,) = found
        if session.get(CaseSignalRow, (row.pk, signal.pk)) is None:
            session.add(CaseSignalRow(case_pk=row.pk, signal_pk=signal.pk, linked_at=self.clock()))
        row.updated_at = self.clock()
        audit(
            session,
            actor,
            decision,
            resource,
            "link",
            subjects=signal_subject_refs(session, signal_id),
            signal=signal_id,
            reason=reason,
        )
        return self._view(session, row)

    def unlink(
        self, session: Session, actor: Actor, case_id: str, signal_id: str, reason: str
    ) -> Case:
        resource, decision, row = self._change(session, actor, case_id, reason)
        link = session.execute(
            select(CaseSignalRow)
            .join(SignalRow, SignalRow.pk == CaseSignalRow.signal_pk)
            .where(CaseSignalRow.case_pk == row.pk, SignalRow.id == signal_id)
        ).scalar_one_or_none()
        if link is None:
            raise NotFound("This signal is not linked to this case.")
        session.delete(link)
        row.updated_at = self.clock()
        audit(
            session,
            actor,
            decision,
            resource,
            "unlink",
            subjects=signal_subject_refs(session, signal_id),
            signal=signal_id,
            reason=reason,
        )
        session.flush()
        return self._view(session, row)

    def update(self, session: Session, actor: Actor, case_id: str, change: CaseUpdate) -> Case:
        """Status (closing needs an outcome) and assignment to a coordinator by username."""
        errors: list[FieldError] = []
        if change.status is not None and change.status not in CASE_STATUSES:
            errors.append(FieldError("/status", "Must be open, in-progress or closed"))
        if change.outcome is not None:
            errors += check_text("/outcome", change.outcome, limit=500)
            if change.status != "closed":
                errors.append(FieldError("/outcome", "Only with status closed"))
        if change.status == "closed" and change.outcome is None:
            errors.append(FieldError("/outcome", "Closing a case needs an outcome"))
        if change.status is None and change.assignee is None:
            errors.append(FieldError("", "Give status or assignee"))
        if change.assignee is not None and not self._is_coordinator(session, change.assignee):
            errors.append(FieldError("/assignee", "Not an active coordinator's username"))
        raise_if(errors)
        resource = self._resource(case_id)
        decision = self._decide(session, actor, resource)
        row = self._row(session, case_id)
        before = {"status": row.status, "assignee": row.assignee}
        if change.status is not None:
            row.status = change.status
            row.outcome = change.outcome if change.status == "closed" else None
        if change.assignee is not None:
            row.assignee = change.assignee
        row.updated_at = self.clock()
        audit(
            session,
            actor,
            decision,
            resource,
            "update",
            before=before,
            status=change.status,
            outcome=change.outcome,
            assignee=change.assignee,
        )
        return self._view(session, row)

    @staticmethod
    def _is_coordinator(session: Session, username: str) -> bool:
        user = session.execute(select(UserRow).where(UserRow.name == username)).scalar_one_or_none()
        return user is not None and user.role == "coordinator" and user.status == "active"

    def add_note(self, session: Session, actor: Actor, case_id: str, text: str) -> Note:
        """A note sealed with AES-256-GCM; its text is in no row, log line or audit entry."""
        if not 1 <= len(text) <= MAX_NOTE_CHARS or not text.strip():
            raise_if([FieldError("/text", f"Must be 1 to {MAX_NOTE_CHARS} characters")])
        resource = self._resource(case_id)
        decision = self._decide(session, actor, resource)
        row = self._row(session, case_id)
        note_id = str(uuid.uuid4())
        nonce, ciphertext = self.notes_cipher.seal(row.id, note_id, text)
        now = self.clock()
        session.add(
            CaseNoteRow(
                id=note_id,
                case_pk=row.pk,
                author=actor_key(actor),
                created_at=now,
                key_id=NOTE_KEY_ID,
                nonce=nonce,
                ciphertext=ciphertext,
            )
        )
        row.updated_at = now
        audit(session, actor, decision, resource, "note.add", note=note_id, chars=len(text))
        return Note(note_id, actor_key(actor), now, text)

    def notes(self, session: Session, actor: Actor, case_id: str) -> tuple[Note, ...]:
        resource = self._resource(case_id)
        decision = self._decide(session, actor, resource)
        row = self._row(session, case_id)
        rows = session.execute(
            select(CaseNoteRow).where(CaseNoteRow.case_pk == row.pk).order_by(CaseNoteRow.pk)
        ).scalars()
        notes = tuple(
            Note(n.id, n.author, utc(n.created_at), self.notes_cipher.open(row.id, n)) for n in rows
        )
        audit(session, actor, decision, resource, "note.read", notes=[n.id for n in notes])
        return notes
