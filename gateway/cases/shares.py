"""ShareService: a case's signals re-encrypted for partner organisations, as the policy allows.

The policy question for a share is one: may this actor share these signals (their
categories) with these receivers (their kinds) for this purpose? The engine answers
`case.share` per category; the categories' `optional_recipient_kinds` name which
kinds may receive what. The answer is one `Decision`: the first denial (naming its
rule), else the allow — carrying `needs_second_approval` when any category is
four-eyes, in which case the share waits for a second coordinator (202).

On sharing, each payload's meldpunt copy is decrypted in memory and encrypted again
(JWE, A256GCM) for each receiver's CURRENT encryption keys in the directory, one JWE
per receiver and signal, so a receiver learns nothing of who else received it. Each
receiver gets a `share` notification; the policy's `notify` obligations are notified too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.api.paging import CURSOR_SECRET_LABEL, CursorCodec, Page, clamp_limit
from gateway.cases.approvals import (
    CASE_SHARE,
    ApprovalNotPending,
    ApprovalService,
    meldpunt_plaintext,
)
from gateway.cases.models import ApprovalRow, CaseRow, CaseSignalRow, SharePayloadRow, ShareRow
from gateway.cases.service import (
    Clock,
    actor_key,
    audit,
    is_refusal,
    raise_if,
    refuse,
    subjects_of,
    utc,
    utc_now,
)
from gateway.crypto import jwe
from gateway.errors import FieldError, NotFound, PolicyDenied
from gateway.keys import KeyStore
from gateway.matching.models import NotificationRow
from gateway.partners.models import Organisation
from gateway.policy.engine import NOTIFY, Context, Decision, PolicyEngine, Resource
from gateway.signals.models import SignalRow

SHARE_NOTIFICATION = "share"
RECIPIENT_DENY_RULE = "deny:recipient-kind-not-allowed"
MAX_RECEIVERS = 20
MAX_SHARED_SIGNALS = 50


@dataclass(frozen=True)
class Share:
    id: str
    case_id: str
    organisations: tuple[str, ...]
    signal_ids: tuple[str, ...]
    purpose: str
    status: str
    created_at: datetime
    shared_at: datetime | None


@dataclass(frozen=True)
class ShareOutcome:
    """`shared` (201) or `pending` (202, waiting for `approval_id` to be approved)."""

    status: Literal["shared", "pending"]
    share: Share
    approval_id: str | None = None


@dataclass(frozen=True)
class ReceivedSignal:
    id: str
    category: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ReceivedShare:
    id: str
    case_id: str
    signals: tuple[ReceivedSignal, ...]
    purpose: str
    created_at: datetime


def _view(row: ShareRow, case_id: str) -> Share:
    return Share(
        id=row.id,
        case_id=case_id,
        organisations=tuple(row.organisations),
        signal_ids=tuple(row.signal_ids),
        purpose=row.purpose,
        status=row.status,
        created_at=utc(row.created_at),
        shared_at=utc(row.shared_at) if row.shared_at else None,
    )


@dataclass(frozen=True)
class RecipientClash:
    """Which signal may not go to which organisation under the recipient rule: the
    signal's reference and category, the organisation's id, name and kind (nothing that
    identifies the person)."""

    signal_reference: str
    category: str
    organisation: str
    organisation_name: str
    organisation_kind: str


class RecipientRefused(PolicyDenied):
    """The recipient rule's refusal (the same 403 problem), naming the clash for pages."""

    def __init__(self, detail: str, *, rule: str | None, clash: RecipientClash) -> None:
        super().__init__(detail, rule=rule)
        self.clash = clash


@dataclass
class ShareService:
    engine: PolicyEngine
    keys: KeyStore
    approvals: ApprovalService
    clock: Clock = utc_now

    def __post_init__(self) -> None:
        self.approvals.handlers[CASE_SHARE] = self  # approving a share performs it
        # A partner's paging cursors, opaque (`gateway.api.paging.CursorCodec`).
        self._cursors = CursorCodec(self.keys.derive_secret(CURSOR_SECRET_LABEL), "shares")

    # -- the one decision ------------------------------------------------------------
    def decide_share(
        self,
        actor: Actor,
        case_id: str,
        signals: Sequence[SignalRow],
        receivers: Sequence[Organisation],
        purpose: str,
        approver: Actor | None = None,
    ) -> Decision:
        categories = sorted({s.category for s in signals})
        allowed: list[Decision] = []
        for name in categories:
            decision = self.engine.decide(
                actor,
                CASE_SHARE,
                Resource(type="case", id=case_id, category=name),
                Context(purpose=purpose, approver=approver),
            )
            if is_refusal(decision):
                return decision
            category = self.engine.category(name)
            assert category is not None  # the engine denies unknown categories
            refused = self._refused_receivers(name, receivers)
            if refused:
                org = refused[0]
                return Decision(
                    "deny",
                    RECIPIENT_DENY_RULE,
                    self.engine.digest,
                    f"organisations of kind {org.kind!r} may not receive category "
                    f"{name!r} (categories.{name}.optional_recipient_kinds)",
                    CASE_SHARE,
                    purpose=purpose,
                    processing_activity=category.processing_activity,
                )
            allowed.append(decision)
        four_eyes = [d for d in allowed if d.needs_second_approval]
        return (four_eyes or allowed)[0]

    def receiving_kinds(self, categories: Sequence[str]) -> dict[str, frozenset[str]]:
        """For each category, the kinds of organisation the policy lets receive it in a
        share (`optional_recipient_kinds`), so a page can say who may receive what."""
        found: dict[str, frozenset[str]] = {}
        for name in categories:
            category = self.engine.category(name)
            found[name] = frozenset(category.optional_recipient_kinds) if category else frozenset()
        return found

    def _refused_receivers(
        self, category: str, receivers: Sequence[Organisation]
    ) -> list[Organisation]:
        kinds = self.receiving_kinds([category])[category]
        return [org for org in receivers if org.kind not in kinds]

    def _clash(
        self, signals: Sequence[SignalRow], receivers: Sequence[Organisation]
    ) -> RecipientClash | None:
        """The first (category, organisation) pair the recipient rule refuses, in
        `decide_share`'s order, with the first chosen signal of that category."""
        for name in sorted({s.category for s in signals}):
            for org in self._refused_receivers(name, receivers):
                signal = next(s for s in signals if s.category == name)
                return RecipientClash(signal.reference, name, org.id, org.name, org.kind)
        return None

    # -- loading and checking ------------------------------------------------------------
    def _case(self, session: Session, case_id: str) -> CaseRow:
        row = session.execute(select(CaseRow).where(CaseRow.id == case_id)).scalar_one_or_none()
        if row is None:
            raise NotFound("No case with this id.")
        return row

    def _signals(
        self, session: Session, case: CaseRow, signal_ids: Sequence[str]
    ) -> tuple[list[SignalRow], list[FieldError]]:
        rows = {
            s.id: s
            for s in session.execute(
                select(SignalRow)
                .join(CaseSignalRow, CaseSignalRow.signal_pk == SignalRow.pk)
                .where(CaseSignalRow.case_pk == case.pk, SignalRow.id.in_(signal_ids))
            ).scalars()
        }
        errors = [
            FieldError(f"/signalIds/{i}", "Not an active signal of this case")
            for i, sid in enumerate(signal_ids)
            if sid not in rows or rows[sid].status != "active" or rows[sid].payload is None
        ]
        return [rows[sid] for sid in signal_ids if sid in rows], errors

    def _receivers(
        self, session: Session, organisations: Sequence[str]
    ) -> tuple[list[Organisation], list[FieldError]]:
        rows = {
            o.id: o
            for o in session.execute(
                select(Organisation).where(Organisation.id.in_(organisations))
            ).scalars()
        }
        errors = []
        for i, org_id in enumerate(organisations):
            org = rows.get(org_id)
            if org is None or org.status != "active":
                errors.append(FieldError(f"/organisations/{i}", "Not an active organisation"))
            elif not _encryption_keys(org):
                errors.append(FieldError(f"/organisations/{i}", "Has no encryption key"))
        return [rows[o] for o in organisations if o in rows], errors

    def _still_valid(
        self, session: Session, case: CaseRow, row: ShareRow
    ) -> tuple[list[SignalRow], list[Organisation]]:
        """A pending share's signals and receivers, every one that is gone in one 400."""
        signals, errors = self._signals(session, case, row.signal_ids)
        receivers, more = self._receivers(session, row.organisations)
        raise_if(errors + more)
        return signals, receivers

    @staticmethod
    def _check_input(
        organisations: Sequence[str], signal_ids: Sequence[str], purpose: str
    ) -> list[FieldError]:
        errors = []
        if not 1 <= len(organisations) <= MAX_RECEIVERS or len(set(organisations)) != len(
            organisations
        ):
            errors.append(FieldError("/organisations", f"1 to {MAX_RECEIVERS} distinct ids"))
        if not 1 <= len(signal_ids) <= MAX_SHARED_SIGNALS or len(set(signal_ids)) != len(
            signal_ids
        ):
            errors.append(FieldError("/signalIds", f"1 to {MAX_SHARED_SIGNALS} distinct ids"))
        if not purpose:
            errors.append(FieldError("/purpose", "Is required"))
        return errors

    # -- calls ---------------------------------------------------------------------------
    def share(
        self,
        session: Session,
        actor: Actor,
        case_id: str,
        organisations: Sequence[str],
        signal_ids: Sequence[str],
        purpose: str,
    ) -> ShareOutcome:
        """Share signals of a case with organisations (or ask a second coordinator to).

        Every input error is answered in one 400: the lists' form and the purpose, then
        each signal (of this case) and each receiver, as far as the list they are in has
        a checkable form (a list of the wrong size or with duplicates is not looked up)
        and the case exists (the signals are the case's: an unknown case is a 404 when
        nothing else is wrong).
        """
        errors = self._check_input(organisations, signal_ids, purpose)
        refused = {e.pointer for e in errors}
        case = session.execute(select(CaseRow).where(CaseRow.id == case_id)).scalar_one_or_none()
        signals: list[SignalRow] = []
        receivers: list[Organisation] = []
        if case is not None and "/signalIds" not in refused:
            signals, found = self._signals(session, case, signal_ids)
            errors += found
        if "/organisations" not in refused:
            receivers, found = self._receivers(session, organisations)
            errors += found
        raise_if(errors)
        if case is None:
            raise NotFound("No case with this id.")
        resource = Resource(type="case", id=case.id)
        decision = self.decide_share(actor, case.id, signals, receivers, purpose)
        if is_refusal(decision):
            clash = (
                self._clash(signals, receivers) if decision.rule == RECIPIENT_DENY_RULE else None
            )
            try:
                refuse(session, actor, resource, decision)
            except PolicyDenied as denied:
                if clash is None:
                    raise
                raise RecipientRefused(denied.detail, rule=denied.rule, clash=clash) from None
        row = ShareRow(
            id=str(uuid.uuid4()),
            case_pk=case.pk,
            purpose=purpose,
            status="pending",
            organisations=list(organisations),
            signal_ids=list(signal_ids),
            requested_by=actor_key(actor),
            created_at=self.clock(),
        )
        session.add(row)
        session.flush()
        subjects = subjects_of(session, signal_ids)
        detail: dict[str, Any] = {
            "share": row.id,
            "organisations": list(organisations),
            "signals": list(signal_ids),
        }
        if decision.needs_second_approval:
            approval = self.approvals.open(session, actor, CASE_SHARE, row.id, None, purpose)
            audit(
                session,
                actor,
                decision,
                resource,
                "share.request",
                subjects=subjects,
                approval=approval.id,
                **detail,
            )
            return ShareOutcome("pending", _view(row, case.id), approval.id)
        self._perform(session, row, signals, receivers, decision, row.created_at)
        audit(session, actor, decision, resource, "share", subjects=subjects, **detail)
        return ShareOutcome("shared", _view(row, case.id))

    def _perform(
        self,
        session: Session,
        row: ShareRow,
        signals: Sequence[SignalRow],
        receivers: Sequence[Organisation],
        decision: Decision,
        now: datetime,
    ) -> None:
        """Re-encrypt for each receiver's current keys, store, notify; shared at `now`
        (a direct share at the moment it was made, as its 201 says)."""
        for signal in signals:
            assert signal.payload is not None
            plaintext = meldpunt_plaintext(self.keys, signal.payload)
            for org in receivers:
                keys = _encryption_keys(org)
                envelope = jwe.encrypt_for_recipients(plaintext, keys, flattened=len(keys) == 1)
                session.add(
                    SharePayloadRow(
                        share_pk=row.pk,
                        organisation=org.id,
                        signal_id=signal.id,
                        category=signal.category,
                        payload=json.dumps(envelope, separators=(",", ":")),
                    )
                )
            del plaintext
        shared = [signal.id for signal in signals]
        extra = json.dumps({"shareId": row.id, "signalIds": shared})
        notify = [org.id for org in receivers]
        notify += [o.target for o in decision.obligations if o.kind == NOTIFY]
        for recipient in dict.fromkeys(notify):
            session.add(
                NotificationRow(
                    recipient=recipient,
                    type=SHARE_NOTIFICATION,
                    signal_id=shared[0] if shared else None,
                    created_at=now,
                    extra=extra,
                )
            )
        row.status = "shared"
        row.shared_at = now

    def of_case(self, session: Session, actor: Actor, case_id: str) -> list[Share]:
        """A case's shares, any status (the case page); decided as `case.write`."""
        resource = Resource(type="case", id=case_id)
        decision = self.engine.decide(actor, "case.write", resource)
        if decision.effect != "allow":
            refuse(session, actor, resource, decision)
        case = self._case(session, case_id)
        rows = session.execute(
            select(ShareRow).where(ShareRow.case_pk == case.pk).order_by(ShareRow.pk)
        ).scalars()
        found = [_view(r, case.id) for r in rows]
        audit(session, actor, decision, resource, "share.list", shares=[s.id for s in found])
        return found

    # -- the approval handler for case.share ---------------------------------------------
    def _pending_share(self, session: Session, share_id: str) -> tuple[ShareRow, CaseRow]:
        row = session.execute(select(ShareRow).where(ShareRow.id == share_id)).scalar_one_or_none()
        if row is None:
            raise NotFound("No share with this id.")
        if row.status != "pending":
            raise ApprovalNotPending(f"The share is already {row.status}.")
        case = session.get(CaseRow, row.case_pk)
        assert case is not None
        return row, case

    def decide(
        self,
        session: Session,
        requester: Actor,
        target: str,
        purpose: str | None,
        approver: Actor | None,
    ) -> tuple[Decision, Resource, str | None]:
        row, case = self._pending_share(session, target)
        signals, receivers = self._still_valid(session, case, row)
        decision = self.decide_share(requester, case.id, signals, receivers, row.purpose, approver)
        return decision, Resource(type="case", id=case.id), None

    def approved(
        self, session: Session, approval: ApprovalRow, approver: Actor, decision: Decision
    ) -> dict[str, Any]:
        row, case = self._pending_share(session, approval.target)
        signals, receivers = self._still_valid(session, case, row)
        now = self.clock()
        self._perform(session, row, signals, receivers, decision, now)
        approval.status = "used"
        approval.used_at = now
        return {"share": row.id, "organisations": row.organisations, "signals": row.signal_ids}

    def refused(self, session: Session, approval: ApprovalRow) -> None:
        row, _ = self._pending_share(session, approval.target)
        row.status = "refused"

    # -- what a partner receives -----------------------------------------------------------
    def check_cursor(self, cursor: str) -> None:
        """A `cursor` of this list, or `InvalidCursor` (checked with the rest of the query)."""
        self._cursors.decode(cursor)

    def received(
        self, session: Session, actor: Actor, cursor: str | None = None, limit: int | None = None
    ) -> Page[ReceivedShare]:
        """Shares for the actor's organisation, each payload a JWE for its keys.

        Decided as `notification.read` of the organisation's own resources: a share is
        a notification with content (the contract: "a share is also a notification").
        """
        after = self._cursors.decode(cursor)
        size = clamp_limit(limit)
        organisation = actor.organisation
        if organisation is None:  # only organisations receive shares
            raise NotFound("No shares for this caller.")
        resource = Resource(type="share", organisation=organisation)
        decision = self.engine.decide(actor, "notification.read", resource)
        if decision.effect != "allow":
            refuse(session, actor, resource, decision)
        pks = list(
            session.execute(
                select(SharePayloadRow.share_pk)
                .where(
                    SharePayloadRow.organisation == organisation, SharePayloadRow.share_pk > after
                )
                .group_by(SharePayloadRow.share_pk)
                .order_by(SharePayloadRow.share_pk)
                .limit(size + 1)
            ).scalars()
        )
        more = len(pks) > size
        pks = pks[:size]
        items = self._received(session, organisation, pks)
        audit(session, actor, decision, resource, "list", shares=[s.id for s in items])
        return Page(items, self._cursors.encode(pks[-1]) if more else None)

    @staticmethod
    def _received(session: Session, organisation: str, pks: Sequence[int]) -> list[ReceivedShare]:
        if not pks:
            return []
        shares = session.execute(
            select(ShareRow, CaseRow.id)
            .join(CaseRow, CaseRow.pk == ShareRow.case_pk)
            .where(ShareRow.pk.in_(pks))
            .order_by(ShareRow.pk)
        ).all()
        payloads: dict[int, list[ReceivedSignal]] = {pk: [] for pk in pks}
        for p in session.execute(
            select(SharePayloadRow).where(
                SharePayloadRow.organisation == organisation, SharePayloadRow.share_pk.in_(pks)
            )
        ).scalars():
            payloads[p.share_pk].append(
                ReceivedSignal(p.signal_id, p.category, json.loads(p.payload))
            )
        return [
            ReceivedShare(
                id=share.id,
                case_id=case_id,
                signals=tuple(
                    sorted(payloads[share.pk], key=lambda s: share.signal_ids.index(s.id))
                ),
                purpose=share.purpose,
                created_at=utc(share.shared_at or share.created_at),
            )
            for share, case_id in shares
        ]


def _encryption_keys(org: Organisation) -> list[dict[str, Any]]:
    """The organisation's current encryption keys (as the directory lists them)."""
    return [
        k
        for k in (org.encryption_jwks or {}).get("keys", [])
        if isinstance(k, dict) and k.get("kid") and k.get("use", "enc") == "enc"
    ]
