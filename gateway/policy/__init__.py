"""The data-sharing agreement as data: load, validate, decide (fail closed), audit.

Domain services take the engine (`PolicyEngine`) explicitly and audit with
`gateway.policy.audited`; views that ask the app's active policy use
`gateway.policy.service` (`authorize`, `decide_and_record`, `policy_engine`), which
looks it up in the app's container. Other packages use:
- `AuditEvent(..., **decision.audit_fields())` in the action's own audit entry;
- `policy_engine().tells_hit(kind)` / `.reveals_organisations(kind)` for matches;
- `policy_engine().category(name)` for retention, recipients and linkage keys.

The names load lazily, so that the `ketenpoort` command tree does not import the engine
and the loader to build its `--help`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway._lazy import lazy_exports

if TYPE_CHECKING:
    from gateway.policy.active import PolicyService, start_policy
    from gateway.policy.audited import policy_denied
    from gateway.policy.engine import Context, Decision, Obligation, PolicyEngine, Resource
    from gateway.policy.loader import LoadedPolicy, PolicyError, load_policy, parse_policy

__all__ = [
    "Context",
    "Decision",
    "LoadedPolicy",
    "Obligation",
    "PolicyEngine",
    "PolicyError",
    "PolicyService",
    "Resource",
    "load_policy",
    "parse_policy",
    "policy_denied",
    "start_policy",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "gateway.policy.active": (
            "PolicyService",
            "start_policy",
        ),
        "gateway.policy.audited": ("policy_denied",),
        "gateway.policy.engine": (
            "Context",
            "Decision",
            "Obligation",
            "PolicyEngine",
            "Resource",
        ),
        "gateway.policy.loader": (
            "LoadedPolicy",
            "PolicyError",
            "load_policy",
            "parse_policy",
        ),
    },
)
