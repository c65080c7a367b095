"""`SubjectReportService`: everything about one person, ready to hand out (AVG art. 15).

The identifiers go to the subject search (pseudonymised there, forgotten when the call
ends); the report groups what it found — signals held, and the audit entries of
signals, matches, cases, shares, payload reads and other accesses — with dates,
organisations, purposes and the legal bases the policy names for each category. An item
the policy restricts (a category's `disclosure`) is kept and marked for the privacy
officer's review, never silently dropped. The report itself is an audit entry
(`subject.report`) naming the officer, the purpose and the format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.audit.entries import SubjectRef
from gateway.partners.models import Organisation
from gateway.policy.engine import PolicyEngine, Resource
from gateway.policy.schema import Category, Policy
from gateway.signals.searches import FoundEntry, SubjectSearchService
from gateway.signals.service import SUBJECT_REF_TYPE

#: Why the officer makes the report (the audit entry's purpose).
REPORT_PURPOSES = ("access-request", "rectification-request", "supervision")
Format = Literal["html", "pdf"]
Kind = Literal["signal", "match", "case", "share", "payload-read", "other"]
#: The report's sections, in this order.
KINDS: tuple[Kind, ...] = ("signal", "match", "case", "share", "payload-read", "other")


def kind_of(entry: Mapping[str, Any]) -> Kind:
    action = str(entry.get("action", ""))
    step = str((entry.get("detail") or {}).get("step", ""))
    if action == "payload.read":
        return "payload-read"
    if action == "case.share" or step.startswith("share"):
        return "share"
    if action.startswith("signal."):
        return "signal"
    if action.startswith(("match", "matching.")):
        return "match"
    if action.startswith(("case.", "approval.")):
        return "case"
    return "other"


@dataclass(frozen=True)
class Review:
    """Why an item may not be handed out without the officer's decision."""

    category: str
    ground: str


@dataclass(frozen=True)
class HeldSignal:
    id: str
    organisation: str
    organisation_kind: str
    reference: str
    category: str
    status: str
    created_at: datetime
    expires_at: datetime
    legal_bases: tuple[str, ...]
    review: Review | None


@dataclass(frozen=True)
class ReportItem:
    index: int
    time: datetime
    kind: Kind
    action: str
    outcome: str
    actor: str
    actor_role: str | None
    organisation: str | None
    recipients: tuple[str, ...]
    resource: str | None
    category: str | None
    purpose: str | None
    purpose_text: str | None
    rule: str | None
    processing_activity: str | None
    legal_bases: tuple[str, ...]
    review: Review | None


@dataclass(frozen=True)
class CategoryBasis:
    name: str
    description: str
    purpose: str
    retention_days: int
    legal_bases: tuple[tuple[str, str], ...]
    disclosure: str | None


@dataclass(frozen=True)
class SubjectReport:
    generated_at: datetime
    officer: str
    purpose: str
    format: Format
    policy_id: str
    policy_version: str
    policy_digest: str
    controller: str
    subject_references: int
    signals: tuple[HeldSignal, ...]
    sections: tuple[tuple[Kind, tuple[ReportItem, ...]], ...]
    categories: tuple[CategoryBasis, ...]
    organisations: Mapping[str, str] = field(default_factory=dict)

    @property
    def items(self) -> tuple[ReportItem, ...]:
        return tuple(item for _, items in self.sections for item in items)

    @property
    def review_count(self) -> int:
        return sum(1 for s in self.signals if s.review) + sum(1 for i in self.items if i.review)


class UnknownPurpose(ValueError):
    """The report's purpose is not one of `REPORT_PURPOSES`."""


@dataclass(frozen=True)
class _SignalFacts:
    organisation: str | None
    kind: str | None
    category: str | None


@dataclass
class SubjectReportService:
    engine: PolicyEngine
    search: SubjectSearchService
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def build(
        self,
        open_session: Callable[[], Session],
        actor: Actor,
        subject: Mapping[str, Any],
        *,
        purpose: str,
        format: Format = "html",
    ) -> SubjectReport:
        """Search (audited as `subject.search`), assemble, and record `subject.report`
        in the session `open_session` gives (the caller commits). Raises
        `InvalidSubject` for bad identifiers and `PolicyDenied` when the actor may not."""
        if purpose not in REPORT_PURPOSES:
            raise UnknownPurpose(purpose)
        found = self.search.search(open_session, actor, subject)
        session = open_session()
        policy = self.engine.loaded.policy
        orgs = {
            row.id: (row.name, row.kind) for row in session.execute(select(Organisation)).scalars()
        }
        facts = _signal_facts(found.signals, found.audit_entries, orgs)
        signals = tuple(
            HeldSignal(
                id=s.id,
                organisation=s.organisation,
                organisation_kind=s.organisation_kind,
                reference=s.reference,
                category=s.category,
                status=s.status,
                created_at=s.created_at,
                expires_at=s.expires_at,
                legal_bases=_bases(policy, s.category),
                review=_review(policy, s.category, s.organisation_kind),
            )
            for s in found.signals
        )
        items = [_item(policy, e, facts, orgs) for e in found.audit_entries]
        sections = tuple(
            (kind, tuple(i for i in items if i.kind == kind))
            for kind in KINDS
            if any(i.kind == kind for i in items)
        )
        concerned = {s.category for s in signals} | {i.category for i in items if i.category}
        now = self.clock()
        report = SubjectReport(
            generated_at=now,
            officer=actor.id,
            purpose=purpose,
            format=format,
            policy_id=policy.id,
            policy_version=policy.version,
            policy_digest=self.engine.loaded.digest,
            controller=policy.controller.name,
            subject_references=len(found.subject_references),
            signals=signals,
            sections=sections,
            categories=tuple(
                _category(name, c) for name, c in policy.categories.items() if name in concerned
            ),
            organisations={org: name for org, (name, _) in orgs.items()},
        )
        decision = self.engine.decide(actor, "subject.search", Resource(type="subject"))
        record_event(
            session,
            AuditEvent(
                action="subject.report",
                outcome="success",
                actor=actor,
                resource_type="subject",
                subjects=tuple(SubjectRef(r, SUBJECT_REF_TYPE) for r in found.subject_references),
                detail={
                    "format": format,
                    "signals": len(signals),
                    "auditEntries": len(items),
                    "forReview": report.review_count,
                },
                **{**decision.audit_fields(), "purpose": purpose},
            ),
            now=now,
        )
        return report


def _bases(policy: Policy, category: str | None) -> tuple[str, ...]:
    found = policy.categories.get(category or "")
    return tuple(b.ref for b in found.legal_basis) if found else ()


def _review(policy: Policy, category: str | None, submitter_kind: str | None) -> Review | None:
    found = policy.categories.get(category or "")
    if found is None or found.disclosure is None:
        return None
    d = found.disclosure
    if d.review or (submitter_kind is not None and submitter_kind in d.review_submitters):
        return Review(category or "", d.ground)
    return None


def _category(name: str, c: Category) -> CategoryBasis:
    return CategoryBasis(
        name=name,
        description=c.description,
        purpose=c.purpose,
        retention_days=c.retention_days,
        legal_bases=tuple((b.ref, b.note) for b in c.legal_basis),
        disclosure=c.disclosure.ground if c.disclosure else None,
    )


def _signal_facts(
    signals: Iterable[Any], entries: Iterable[FoundEntry], orgs: Mapping[str, tuple[str, str]]
) -> dict[str, _SignalFacts]:
    """Per signal id: who submitted it and its category (from the signal, or its
    `signal.create` entry when it is withdrawn or erased)."""
    facts: dict[str, _SignalFacts] = {}
    for e in entries:
        entry = e.entry
        resource = entry.get("resource") or {}
        if entry.get("action") == "signal.create" and resource.get("id"):
            org = (entry.get("actor") or {}).get("organisation")
            kind = orgs.get(org, (None, None))[1] if org else None
            category = (entry.get("detail") or {}).get("category")
            facts[str(resource["id"])] = _SignalFacts(org, kind, category)
    for s in signals:
        facts[s.id] = _SignalFacts(s.organisation, s.organisation_kind, s.category)
    return facts


def _strings(value: object) -> list[str]:
    """A detail field that is a list of ids (elsewhere the same key may hold a count)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _item(
    policy: Policy,
    found: FoundEntry,
    facts: Mapping[str, _SignalFacts],
    orgs: Mapping[str, tuple[str, str]],
) -> ReportItem:
    entry = found.entry
    actor = entry.get("actor") or {}
    detail = entry.get("detail") or {}
    resource = entry.get("resource") or {}
    signal_ids = (
        [str(resource["id"])] if resource.get("type") == "signal" and resource.get("id") else []
    )
    signal_ids += [str(s) for s in _strings(detail.get("signals"))]
    concerned = [facts[s] for s in signal_ids if s in facts]
    category = detail.get("category") if isinstance(detail.get("category"), str) else None
    if category is None and concerned:
        category = next((f.category for f in concerned if f.category), None)
    review = next(
        (r for f in concerned if (r := _review(policy, f.category or category, f.kind))), None
    )
    if review is None and category is not None:
        review = _review(policy, category, None)
    purpose = entry.get("purpose")
    recipients = _strings(detail.get("organisations"))
    ldv = entry.get("ldv") or {}
    policy_block = entry.get("policy") or {}
    org = actor.get("organisation")
    return ReportItem(
        index=found.index,
        time=datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00")),
        kind=kind_of(entry),
        action=str(entry.get("action", "")),
        outcome=str(entry.get("outcome", "")),
        actor=str(actor.get("id", "")),
        actor_role=actor.get("role"),
        organisation=orgs.get(org, (org, ""))[0] if org else None,
        recipients=tuple(orgs.get(r, (r, ""))[0] for r in recipients if isinstance(r, str)),
        resource=f"{resource.get('type')} {resource.get('id') or ''}".strip() if resource else None,
        category=category,
        purpose=purpose,
        purpose_text=policy.purposes.allowed.get(purpose) if purpose else None,
        rule=policy_block.get("rule"),
        processing_activity=ldv.get("dpl.core.processing_activity_id"),
        legal_bases=_bases(policy, category),
        review=review,
    )
