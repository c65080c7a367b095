"""The active policy inside the app, and the helpers the other packages call.

`init_app(app)` loads the file named by `KETENPOORT_POLICY` (a broken file stops the
start with `PolicyError`), registers the service as `services().extra["policy"]`,
records a `policy.activated` audit entry when the digest differs from the last active
one (keeping the document in `policy_versions`), and registers a readiness check.

How the other packages audit decisions — one simple rule:
- **allow**: the action's own audit entry carries the decision, via
  `AuditEvent(..., **decision.audit_fields())` (rule, digest, purpose, processing activity);
- **deny**: the denial is an entry of its own, with the attempted action and outcome
  `"denied"`. `decide_and_record(session, …)` adds it to the caller's session (the caller
  commits); `authorize(…)` in a view rolls back whatever the request did, commits the
  denial and raises `PolicyDenied` (403 `policy-denied`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.actors import SYSTEM, Actor
from gateway.audit import AuditEvent, Receipt, record_event
from gateway.db import Database
from gateway.errors import PolicyDenied
from gateway.logs import get_logger
from gateway.ops.views import READINESS_CHECKS
from gateway.policy.engine import Context, Decision, PolicyEngine, Resource
from gateway.policy.loader import LoadedPolicy, load_policy
from gateway.policy.models import PolicyVersionRow
from gateway.services import EXTENSION, Services, services

log = get_logger(__name__)

POLICY_SERVICE = "policy"
#: pg_advisory_xact_lock key serialising activations across gateway processes ("KPpolicy").
_ACTIVATION_LOCK = 0x4B50706F6C696379


@dataclass
class PolicyService:
    loaded: LoadedPolicy
    engine: PolicyEngine = field(init=False)
    activated: bool = False

    def __post_init__(self) -> None:
        self.engine = PolicyEngine(self.loaded)

    @property
    def digest(self) -> str:
        return self.loaded.digest

    def summary(self) -> dict[str, Any]:
        """The body of `GET /v1/policy`."""
        p = self.loaded.policy
        return {
            "id": p.id,
            "version": p.version,
            "digest": self.loaded.digest,
            "categories": {
                name: {
                    "retentionDays": c.retention_days,
                    "requiredRecipients": list(c.required_recipients),
                    "processingActivity": c.processing_activity,
                }
                for name, c in p.categories.items()
            },
        }

    def activate(self, db: Database, *, now: datetime | None = None) -> bool:
        """Record this policy as active if it is not already; True when it was recorded."""
        recorded = activate(db, self.loaded, now=now)
        self.activated = True
        return recorded

    def check_ready(self, db: Database) -> None:
        if not self.activated:
            try:
                self.activate(db)
            except SQLAlchemyError as exc:
                raise RuntimeError(f"activation not recorded ({type(exc).__name__})") from None


def activate(db: Database, loaded: LoadedPolicy, *, now: datetime | None = None) -> bool:
    """Store the version and audit `policy.activated` when the digest differs from the last
    active one. Safe when several gateway processes start at once."""
    now = now or datetime.now(UTC)
    with db.transaction() as session:  # SQLite: BEGIN IMMEDIATE serialises
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ACTIVATION_LOCK})
        last = session.execute(
            select(PolicyVersionRow.digest).order_by(PolicyVersionRow.activated_at.desc()).limit(1)
        ).scalar_one_or_none()
        if last == loaded.digest:
            return False
        row = session.get(PolicyVersionRow, loaded.digest)
        if row is None:
            session.add(
                PolicyVersionRow(
                    digest=loaded.digest,
                    policy_id=loaded.policy.id,
                    version=loaded.policy.version,
                    document=loaded.canonical.decode("utf-8"),
                    first_activated_at=now,
                    activated_at=now,
                )
            )
        else:
            row.activated_at = now
        record_event(
            session,
            AuditEvent(
                action="policy.activated",
                outcome="success",
                actor=SYSTEM,
                resource_type="policy",
                resource_id=loaded.policy.id,
                policy_digest=loaded.digest,
                detail={
                    "id": loaded.policy.id,
                    "version": loaded.policy.version,
                    "previousDigest": last,
                },
            ),
            now=now,
        )
    log.info(
        "policy.activated",
        policy=loaded.policy.id,
        version=loaded.policy.version,
        digest=loaded.digest,
    )
    return True


def version_by_digest(session: Session, digest: str) -> PolicyVersionRow | None:
    """A policy version that was once active, by its digest (as named in audit entries)."""
    return session.get(PolicyVersionRow, digest)


def list_versions(session: Session) -> list[PolicyVersionRow]:
    return list(
        session.execute(
            select(PolicyVersionRow).order_by(PolicyVersionRow.activated_at.desc())
        ).scalars()
    )


def init_app(app: Flask) -> None:
    """Load, register and activate the policy; raise `PolicyError` when the file is broken."""
    svc: Services = app.extensions[EXTENSION]
    service = PolicyService(load_policy(Path(svc.settings.policy)))
    svc.extra[POLICY_SERVICE] = service
    try:
        service.activate(svc.db)
    except SQLAlchemyError as exc:
        # The database may not be initialised yet; readiness retries and reports it.
        log.warning("policy.activation_deferred", error=type(exc).__name__)
    app.extensions.setdefault(READINESS_CHECKS, {})["policy"] = lambda: service.check_ready(svc.db)

    from gateway.policy.views import bp

    app.register_blueprint(bp)


# -- helpers for the other packages (inside an app context) ------------------------------
def policy_service() -> PolicyService:
    found: PolicyService = services().extra[POLICY_SERVICE]
    return found


def policy_engine() -> PolicyEngine:
    return policy_service().engine


def decide(
    actor: Actor, action: str, resource: Resource, context: Context | None = None
) -> Decision:
    """The active policy's decision; records nothing (see `decide_and_record`)."""
    return policy_service().engine.decide(actor, action, resource, context)


def denial_event(actor: Actor, resource: Resource, decision: Decision) -> AuditEvent:
    """The audit entry of a denied action: the action itself, outcome `denied`."""
    detail: dict[str, Any] = {"reason": decision.reason}
    if resource.category is not None and decision.processing_activity is not None:
        detail["category"] = resource.category  # a category the policy knows
    return AuditEvent(
        action=decision.action if decision.rule != "deny:unknown-action" else "policy.deny",
        outcome="denied",
        actor=actor,
        resource_type=resource.type,
        resource_id=resource.id,
        detail=detail,
        **decision.audit_fields(),
    )


def decide_and_record(
    session: Session,
    actor: Actor,
    action: str,
    resource: Resource,
    context: Context | None = None,
) -> Decision:
    """Decide; on deny add the denial's audit entry to `session` (the caller commits it).

    On allow nothing is recorded here: the caller's own entry for the action carries
    `**decision.audit_fields()`.
    """
    decision = decide(actor, action, resource, context)
    if not decision.allowed:
        record_event(session, denial_event(actor, resource, decision))
    return decision


def authorize(
    session: Session,
    actor: Actor,
    action: str,
    resource: Resource,
    context: Context | None = None,
) -> Decision:
    """For views: return the allow, or record the denial durably and raise `PolicyDenied`.

    Call it before changing anything: on deny the request's session is rolled back, the
    denial alone is committed, and the 403 names the rule.
    """
    decision = decide(actor, action, resource, context)
    if decision.allowed:
        return decision
    session.rollback()
    record_event(session, denial_event(actor, resource, decision))
    session.commit()
    raise policy_denied(decision)


def record_allowed(
    session: Session,
    actor: Actor,
    decision: Decision,
    action: str,
    resource_type: str,
    **fields: Any,
) -> Receipt:
    """The entry of an allowed action, carrying the rule and digest that allowed it."""
    return record_event(
        session,
        AuditEvent(
            action=action,
            outcome="success",
            actor=actor,
            resource_type=resource_type,
            **fields,
            **decision.audit_fields(),
        ),
    )


def policy_denied(decision: Decision) -> PolicyDenied:
    """The 403 problem for a deny: names the rule and the reason, never personal data."""
    return PolicyDenied(f"{decision.reason} (rule {decision.rule}).")
