"""The data-sharing agreement as data: load, validate, decide (fail closed), audit.

Other packages use:
- `decide_and_record(session, actor, action, resource, context)` or, in a view,
  `authorize(session, actor, action, resource, context)` (raises `PolicyDenied`);
- `AuditEvent(..., **decision.audit_fields())` in the action's own audit entry;
- `policy_engine().tells_hit(kind)` / `.reveals_organisations(kind)` for matches;
- `policy_engine().category(name)` for retention, recipients and linkage keys.
"""

from gateway.policy.active import PolicyService, start_policy
from gateway.policy.engine import Context, Decision, Obligation, PolicyEngine, Resource
from gateway.policy.loader import LoadedPolicy, PolicyError, load_policy, parse_policy
from gateway.policy.service import (
    authorize,
    decide,
    decide_and_record,
    policy_denied,
    policy_engine,
    policy_service,
)

__all__ = [
    "Context",
    "Decision",
    "LoadedPolicy",
    "Obligation",
    "PolicyEngine",
    "PolicyError",
    "PolicyService",
    "Resource",
    "authorize",
    "decide",
    "decide_and_record",
    "load_policy",
    "parse_policy",
    "policy_denied",
    "policy_engine",
    "policy_service",
    "start_policy",
]
