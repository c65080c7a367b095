"""Audit entries that take their action from the decision, so the two cannot differ.

A domain service asks the policy once (`PolicyEngine.decide`) and hands the `Decision`
here: `record_decision` writes the success entry of an allowed action, `refuse` the
entry of a refused one. Neither takes an action name: `Decision.action` is the one
value, so an entry can never name another action than the one the policy decided on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NoReturn

from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, Receipt, record_event
from gateway.errors import PolicyDenied, ProblemError
from gateway.policy.engine import Decision, Resource


def record_decision(
    session: Session,
    actor: Actor,
    decision: Decision,
    resource: Resource,
    **fields: Any,
) -> Receipt:
    """The entry of an allowed action, in the caller's transaction (the caller commits)."""
    if not decision.allowed:
        raise ValueError("record_decision takes allowed decisions; use refuse()")
    return record_event(
        session,
        AuditEvent(
            action=decision.action,
            outcome="success",
            actor=actor,
            resource_type=resource.type,
            resource_id=resource.id,
            **fields,
            **decision.audit_fields(),
        ),
    )


def refuse(
    session: Session,
    actor: Actor,
    decision: Decision,
    resource: Resource,
    error: ProblemError | None = None,
    detail: dict[str, Any] | None = None,
) -> NoReturn:
    """Record a refusal durably, then raise `error` (default: 403 naming the rule).

    Whatever the caller's transaction did so far is rolled back; the refusal's entry is
    committed on its own, so a refused request leaves exactly that entry behind. Used
    for policy denials and for "no such resource of yours" (404), which must leave the
    same entry whether the resource is another organisation's or does not exist.
    """
    event = denial_event(actor, resource, decision)
    if decision.allowed:  # refused for another reason than the policy (e.g. not found)
        event = AuditEvent(
            action=decision.action,
            outcome="denied",
            actor=actor,
            resource_type=resource.type,
            resource_id=resource.id,
            detail={"reason": "no such resource of this organisation"},
            policy_digest=decision.digest,
        )
    if detail:
        event = replace(event, detail={**event.detail, **detail})
    session.rollback()
    record_event(session, event)
    session.commit()
    raise error if error is not None else policy_denied(decision)


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


def policy_denied(decision: Decision) -> PolicyDenied:
    """The 403 problem for a deny: names the rule and the reason, never personal data."""
    if decision.needs_approval:
        return PolicyDenied(
            f"This needs a second person's approval first (rule {decision.rule}): "
            f"{decision.reason}.",
            rule=decision.rule,
        )
    return PolicyDenied(f"{decision.reason} (rule {decision.rule}).", rule=decision.rule)
