"""Four eyes and purpose-bound reading: ApprovalService and PayloadService.

An action the policy marks four-eyes (`needs_second_approval`) waits for a request that
a DIFFERENT person approves; the engine itself refuses a self-approval
(`deny:four-eyes-same-person`) and an approver of the wrong role. An approval serves
one action (it is consumed) and expires (`APPROVAL_TTL`). Every request, approval,
refusal and read is one audit entry with the purpose and the rule that decided.

What an approval is FOR is a handler per policy action: `payload.read` (the approval
waits for the read that consumes it) and `case.share` (approving performs the share;
registered by `ShareService`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.cases.models import ApprovalRow, CaseRow, CaseSignalRow, ShareRow
from gateway.cases.service import (
    Clock,
    actor_key,
    audit,
    check_text,
    is_refusal,
    raise_if,
    refuse,
    utc,
    utc_now,
)
from gateway.crypto import jwe
from gateway.errors import (
    Conflict,
    FieldError,
    InternalError,
    InvalidInput,
    NotFound,
    ProblemError,
)
from gateway.keys import KeyPurpose, KeyStore
from gateway.keys.epochs import PayloadErased, open_payload
from gateway.keys.store import KeyStoreError
from gateway.policy.engine import Context, Decision, PolicyEngine, Resource
from gateway.signals.models import SignalRow
from gateway.signals.service import signal_subject_refs

APPROVAL_TTL = timedelta(hours=24)
PAYLOAD_READ = "payload.read"
CASE_SHARE = "case.share"


class ApprovalRequired(ProblemError):
    status = 403
    slug = "approval-required"
    title = "This action needs a second coordinator's approval first"


class ApprovalNotPending(Conflict):
    slug = "approval-not-pending"
    title = "The approval request is no longer pending"


def actor_fields(actor: Actor) -> dict[str, Any]:
    return {
        "type": actor.type,
        "id": actor.id,
        "organisation": actor.organisation,
        "organisationKind": actor.organisation_kind,
        "role": actor.role,
        "scopes": sorted(actor.scopes),
    }


def actor_from(data: dict[str, Any]) -> Actor:
    return Actor(
        type=data["type"],
        id=data["id"],
        organisation=data.get("organisation"),
        organisation_kind=data.get("organisationKind"),
        role=data.get("role"),
        scopes=frozenset(data.get("scopes") or ()),
    )


@dataclass(frozen=True)
class Approval:
    id: str
    kind: str
    target: str
    category: str | None
    purpose: str | None
    status: str
    requester: str
    approver: str | None
    reason: str | None
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, row: ApprovalRow) -> Approval:
        approver = actor_from(row.approver) if row.approver else None
        return cls(
            id=row.id,
            kind=row.kind,
            target=row.target,
            category=row.category,
            purpose=row.purpose,
            status=row.status,
            requester=row.requester_id,
            approver=actor_key(approver) if approver else None,
            reason=row.reason,
            created_at=utc(row.created_at),
            expires_at=utc(row.expires_at),
        )


@dataclass(frozen=True)
class ApprovalSubject:
    """What a request is about, for the person who decides: never a payload or a person.

    A read names its signal (organisation, reference) and a case linking it; a share names
    its case, its receivers and how many signals it carries."""

    case_id: str | None = None
    case_title: str | None = None
    signal_id: str | None = None
    organisation: str | None = None
    reference: str | None = None
    receivers: tuple[str, ...] = ()
    signal_count: int = 0


@dataclass(frozen=True)
class ApprovalItem:
    approval: Approval
    subject: ApprovalSubject


@dataclass(frozen=True)
class ApprovalBoard:
    """The approvals page: others' open requests (oldest first) and one's own (newest first)."""

    to_decide: tuple[ApprovalItem, ...]
    own: tuple[ApprovalItem, ...]


class ApprovalHandler(Protocol):
    """What one four-eyes action means: its decision, and what approving it does."""

    def decide(
        self,
        session: Session,
        requester: Actor,
        target: str,
        purpose: str | None,
        approver: Actor | None,
    ) -> tuple[Decision, Resource, str | None]:
        """The policy's decision (and the resource and category) for `requester`."""
        ...

    def approved(
        self, session: Session, row: ApprovalRow, approver: Actor, decision: Decision
    ) -> dict[str, Any]:
        """Act on an approval; returns extra audit detail."""
        ...

    def refused(self, session: Session, row: ApprovalRow) -> None: ...


@dataclass
class ApprovalService:
    engine: PolicyEngine
    clock: Clock = utc_now
    ttl: timedelta = APPROVAL_TTL
    handlers: dict[str, ApprovalHandler] = field(default_factory=dict)

    def _handler(self, kind: str) -> ApprovalHandler:
        handler = self.handlers.get(kind)
        if handler is None:
            raise InvalidInput(
                "Not an action that takes an approval.",
                errors=[FieldError("/kind", "Not an action that takes an approval")],
            )
        return handler

    def _row(self, session: Session, approval_id: str) -> ApprovalRow:
        # Locked: two coordinators approving at once must not both act on it.
        row = session.execute(
            select(ApprovalRow).where(ApprovalRow.id == approval_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise NotFound("No approval request with this id.")
        return row

    def open(
        self,
        session: Session,
        actor: Actor,
        kind: str,
        target: str,
        category: str | None,
        purpose: str | None,
    ) -> ApprovalRow:
        """Store a pending request (the caller audits it with its own decision)."""
        now = self.clock()
        row = ApprovalRow(
            id=str(uuid.uuid4()),
            kind=kind,
            target=target,
            category=category,
            purpose=purpose,
            status="pending",
            requester=actor_fields(actor),
            requester_id=actor_key(actor),
            created_at=now,
            expires_at=now + self.ttl,
        )
        session.add(row)
        session.flush()
        return row

    def request(
        self, session: Session, actor: Actor, kind: str, target: str, purpose: str | None
    ) -> Approval:
        """Ask a second person to approve `kind` on `target` for `purpose`.

        (A share asks for its own approval when the policy wants one: `ShareService.share`.)
        """
        if kind == CASE_SHARE:
            raise InvalidInput(
                "A share asks for its approval itself when it is made.",
                errors=[FieldError("/kind", "Share through ShareService.share")],
            )
        decision, resource, category = self._handler(kind).decide(
            session, actor, target, purpose, None
        )
        if is_refusal(decision):
            refuse(session, actor, resource, decision)
        if not decision.needs_second_approval:
            raise Conflict("The policy allows this without a second approval.")
        row = self.open(session, actor, kind, target, category, purpose)
        audit(
            session,
            actor,
            decision,
            resource,
            "approval.request",
            subjects=self._subjects(session, row),
            approval=row.id,
        )
        return Approval.of(row)

    def _pending(self, row: ApprovalRow) -> None:
        if row.status != "pending":
            raise ApprovalNotPending(f"The request is {row.status}.")
        if utc(row.expires_at) <= self.clock():
            raise ApprovalNotPending("The request has expired; ask again.")

    def _second_person(
        self, session: Session, actor: Actor, row: ApprovalRow
    ) -> tuple[Decision, Resource]:
        """The requester's action decided WITH `actor` as approver: the four-eyes check."""
        decision, resource, _ = self._handler(row.kind).decide(
            session, actor_from(row.requester), row.target, row.purpose, actor
        )
        if decision.effect != "allow" or decision.needs_second_approval:
            refuse(session, actor, resource, decision)
        return decision, resource

    def approve(self, session: Session, actor: Actor, approval_id: str) -> Approval:
        row = self._row(session, approval_id)
        self._pending(row)
        decision, resource = self._second_person(session, actor, row)
        now = self.clock()
        row.status = "approved"
        row.approver = actor_fields(actor)
        row.decided_at = now
        row.expires_at = now + self.ttl
        detail = self._handler(row.kind).approved(session, row, actor, decision)
        audit(
            session,
            actor,
            decision,
            resource,
            "approval.approve",
            subjects=self._subjects(session, row),
            approval=row.id,
            requester=row.requester_id,
            **detail,
        )
        return Approval.of(row)

    def refuse(self, session: Session, actor: Actor, approval_id: str, reason: str) -> Approval:
        raise_if(check_text("/reason", reason, limit=500))
        row = self._row(session, approval_id)
        self._pending(row)
        decision, resource = self._second_person(session, actor, row)
        row.status = "refused"
        row.approver = actor_fields(actor)
        row.decided_at = self.clock()
        row.reason = reason
        self._handler(row.kind).refused(session, row)
        audit(
            session,
            actor,
            decision,
            resource,
            "approval.refuse",
            subjects=self._subjects(session, row),
            approval=row.id,
            requester=row.requester_id,
            reason=reason,
        )
        return Approval.of(row)

    def pending(self, session: Session, actor: Actor, limit: int = 100) -> list[Approval]:
        """Open requests, oldest first (the approvals page); decided as `case.write`."""
        resource = Resource(type="approval")
        decision = self.engine.decide(actor, "case.write", resource)
        if decision.effect != "allow":
            refuse(session, actor, resource, decision)
        rows = session.execute(
            select(ApprovalRow)
            .where(ApprovalRow.status == "pending", ApprovalRow.expires_at > self.clock())
            .order_by(ApprovalRow.pk)
            .limit(max(1, min(limit, 500)))
        ).scalars()
        found = [Approval.of(r) for r in rows]
        audit(session, actor, decision, resource, "approval.list", approvals=[a.id for a in found])
        return found

    def board(
        self, session: Session, actor: Actor, *, target: str | None = None, limit: int = 100
    ) -> ApprovalBoard:
        """Open requests of OTHER people, and `actor`'s own requests in any state (the
        approvals page; with `target`, only those about it: the payload page). Decided as
        `case.write`; one audit entry naming the requests shown."""
        resource = Resource(type="approval", id=target)
        decision = self.engine.decide(actor, "case.write", resource)
        if decision.effect != "allow":
            refuse(session, actor, resource, decision)
        size = max(1, min(limit, 500))
        me = actor_key(actor)
        others = select(ApprovalRow).where(
            ApprovalRow.status == "pending",
            ApprovalRow.expires_at > self.clock(),
            ApprovalRow.requester_id != me,
        )
        mine = select(ApprovalRow).where(ApprovalRow.requester_id == me)
        if target is not None:
            others = others.where(ApprovalRow.target == target)
            mine = mine.where(ApprovalRow.target == target)
        to_decide = list(session.execute(others.order_by(ApprovalRow.pk).limit(size)).scalars())
        own = list(session.execute(mine.order_by(ApprovalRow.pk.desc()).limit(size)).scalars())
        audit(
            session,
            actor,
            decision,
            resource,
            "approval.list",
            approvals=[r.id for r in to_decide],
            own=[r.id for r in own],
        )
        return ApprovalBoard(
            tuple(self._item(session, r) for r in to_decide),
            tuple(self._item(session, r) for r in own),
        )

    def _item(self, session: Session, row: ApprovalRow) -> ApprovalItem:
        return ApprovalItem(Approval.of(row), self._subject(session, row))

    @staticmethod
    def _subject(session: Session, row: ApprovalRow) -> ApprovalSubject:
        if row.kind == PAYLOAD_READ:
            signal = session.execute(
                select(SignalRow).where(SignalRow.id == row.target)
            ).scalar_one_or_none()
            if signal is None:
                return ApprovalSubject(signal_id=row.target)
            case = session.execute(
                select(CaseRow)
                .join(CaseSignalRow, CaseSignalRow.case_pk == CaseRow.pk)
                .where(CaseSignalRow.signal_pk == signal.pk)
                .order_by(CaseRow.pk)
                .limit(1)
            ).scalar_one_or_none()
            return ApprovalSubject(
                case_id=case.id if case else None,
                case_title=case.title if case else None,
                signal_id=signal.id,
                organisation=signal.organisation,
                reference=signal.reference,
            )
        share = session.execute(
            select(ShareRow).where(ShareRow.id == row.target)
        ).scalar_one_or_none()
        if share is None:
            return ApprovalSubject()
        case = session.get(CaseRow, share.case_pk)
        return ApprovalSubject(
            case_id=case.id if case else None,
            case_title=case.title if case else None,
            receivers=tuple(share.organisations),
            signal_count=len(share.signal_ids),
        )

    def usable(
        self, session: Session, actor: Actor, kind: str, target: str, purpose: str | None
    ) -> ApprovalRow | None:
        """An approved, unused, unexpired approval of `actor`'s own request, if any."""
        rows = session.execute(
            select(ApprovalRow)
            .where(
                ApprovalRow.kind == kind,
                ApprovalRow.target == target,
                ApprovalRow.status == "approved",
                ApprovalRow.requester_id == actor_key(actor),
            )
            .order_by(ApprovalRow.pk)
            .with_for_update()  # one approval, one read, even for two reads at once
        ).scalars()
        now = self.clock()
        for row in rows:
            if row.purpose == purpose and utc(row.expires_at) > now:
                return row
        return None

    def _subjects(self, session: Session, row: ApprovalRow) -> Any:
        return signal_subject_refs(session, row.target) if row.kind == PAYLOAD_READ else ()


# -- reading a payload ---------------------------------------------------------------


@dataclass(frozen=True)
class PayloadRead:
    """A payload in clear, for the caller to show and forget (never cached)."""

    signal_id: str
    organisation: str
    category: str
    purpose: str
    content: bytes = field(repr=False)


def meldpunt_plaintext(keys: KeyStore, payload: str) -> bytes:
    """Decrypt the meldpunt copy of a stored JWE in memory (current or retired key),
    first unwrapping it from its epoch key (`gateway.keys.epochs`) when it has one."""
    try:
        payload = open_payload(keys, payload)
    except PayloadErased:
        raise InternalError("The epoch key of a stored payload is destroyed.") from None
    try:
        parsed = jwe.parse_jwe(json.loads(payload))
    except (ValueError, jwe.JweError):
        raise InternalError("A stored payload is not a JWE.") from None
    for recipient in parsed.recipients:
        try:
            record = keys.get(recipient.kid)
        except KeyStoreError:
            continue
        if record.purpose is not KeyPurpose.MELDPUNT_ENCRYPTION:
            continue
        try:
            return jwe.decrypt_for_recipient(parsed, keys.private_jwk(record.kid))
        except jwe.JweError:
            break
    raise InternalError("The meldpunt copy of a stored payload does not decrypt.")


def active_signal(session: Session, signal_id: str) -> SignalRow:
    row = session.execute(select(SignalRow).where(SignalRow.id == signal_id)).scalar_one_or_none()
    if row is None or row.status != "active" or row.payload is None:
        raise NotFound("No active signal with this id.")
    return row


def signal_resource(row: SignalRow) -> Resource:
    return Resource(type="signal", id=row.id, category=row.category, organisation=row.organisation)


@dataclass
class PayloadReadHandler:
    """`payload.read` approvals: approving only enables one later read."""

    engine: PolicyEngine

    def decide(
        self,
        session: Session,
        requester: Actor,
        target: str,
        purpose: str | None,
        approver: Actor | None,
    ) -> tuple[Decision, Resource, str | None]:
        row = active_signal(session, target)
        resource = signal_resource(row)
        context = Context(purpose=purpose, approver=approver)
        return (
            self.engine.decide(requester, PAYLOAD_READ, resource, context),
            resource,
            row.category,
        )

    def approved(
        self, session: Session, row: ApprovalRow, approver: Actor, decision: Decision
    ) -> dict[str, Any]:
        return {"expiresAt": utc(row.expires_at).isoformat()}

    def refused(self, session: Session, row: ApprovalRow) -> None:
        return None


@dataclass
class PayloadService:
    engine: PolicyEngine
    keys: KeyStore
    approvals: ApprovalService
    clock: Clock = utc_now

    def read(self, session: Session, actor: Actor, signal_id: str, purpose: str) -> PayloadRead:
        """The meldpunt copy in clear, for a purpose the policy lists for the category;
        four-eyes categories consume an approved request of this actor."""
        row = active_signal(session, signal_id)
        resource = signal_resource(row)
        approval = self.approvals.usable(session, actor, PAYLOAD_READ, signal_id, purpose)
        approver = actor_from(approval.approver) if approval and approval.approver else None
        decision = self.engine.decide(
            actor, PAYLOAD_READ, resource, Context(purpose=purpose, approver=approver)
        )
        if is_refusal(decision):
            refuse(session, actor, resource, decision)
        if decision.needs_second_approval:
            session.rollback()
            record_event(
                session,
                AuditEvent(
                    action=decision.action,
                    outcome="denied",
                    actor=actor,
                    resource_type=resource.type,
                    resource_id=resource.id,
                    detail={"reason": "needs an approved request of a second coordinator"},
                    **decision.audit_fields(),
                ),
            )
            session.commit()
            raise ApprovalRequired(
                f"{decision.reason}: request an approval first (rule {decision.rule})."
            )
        assert row.payload is not None
        content = meldpunt_plaintext(self.keys, row.payload)
        if approval is not None:
            approval.status = "used"
            approval.used_at = self.clock()
        audit(
            session,
            actor,
            decision,
            resource,
            "read",
            subjects=signal_subject_refs(session, signal_id),
            category=row.category,
            approval=approval.id if approval else None,
        )
        return PayloadRead(row.id, row.organisation, row.category, purpose, content)
