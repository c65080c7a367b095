"""The helpers the other packages call to ask the active policy (inside an app context).

The active policy itself (`PolicyService`) is built by `gateway.app.create_app` and held
in the app's services container (`services().policy`); see `gateway.policy.active`.

How the other packages audit decisions — one simple rule:
- **allow**: the action's own audit entry carries the decision, via
  `AuditEvent(..., **decision.audit_fields())` (rule, digest, purpose, processing activity);
- **deny**: the denial is an entry of its own, with the attempted action and outcome
  `"denied"`. `decide_and_record(session, …)` adds it to the caller's session (the caller
  commits); `authorize(…)` in a view rolls back whatever the request did, commits the
  denial and raises `PolicyDenied` (403 `policy-denied`).
- **needs approval** (four eyes) is not an allow: it is refused like a deny until the
  decision is taken again with the second person's approval (`Context.approver`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, Receipt, record_event
from gateway.policy.active import PolicyService
from gateway.policy.audited import denial_event, policy_denied
from gateway.policy.engine import Context, Decision, PolicyEngine, Resource
from gateway.services import services


# -- helpers for the other packages (inside an app context) ------------------------------
def policy_service() -> PolicyService:
    return services().policy


def policy_engine() -> PolicyEngine:
    return policy_service().engine


def decide(
    actor: Actor, action: str, resource: Resource, context: Context | None = None
) -> Decision:
    """The active policy's decision; records nothing (see `decide_and_record`)."""
    return policy_service().engine.decide(actor, action, resource, context)


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
