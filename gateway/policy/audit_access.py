"""The policy's answer for the audit log's reads, in the form `gateway.audit` takes it.

`gateway.audit` cannot import the policy (the policy writes audit entries), so the
composition root hands `AuditService` this adapter. One decision per call: the actor
asks for `audit.read` or `audit.export` on its own organisation's part of the log; the
rule that allows says how much it sees — a rule limited to the actor's own
organisation (`own_organisation: true`) shows that organisation's entries, any other
allowing rule (the meldpunt's `audit:read` system, the privacy officer) the whole log.
The engine takes the first rule that allows, in file order; a policy that lists the
narrower rule first only ever shows less (fails closed).
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.actors import Actor
from gateway.audit.access import Grant
from gateway.policy.engine import PolicyEngine, Resource

AUDIT_LOG = "audit-log"


def audit_decider(engine: PolicyEngine) -> Callable[[Actor, str], Grant]:
    """`decide(actor, action)` for `AuditService`, over the active policy's engine."""

    def decide(actor: Actor, action: str) -> Grant:
        decision = engine.decide(
            actor, action, Resource(type=AUDIT_LOG, organisation=actor.organisation)
        )
        rule = next((r for r in engine.policy.rules if r.id == decision.rule), None)
        return Grant(
            allowed=decision.allowed,
            rule=decision.rule,
            reason=decision.reason,
            whole_log=decision.allowed and rule is not None and not rule.own_organisation,
            audit_fields=decision.audit_fields(),
        )

    return decide
