"""The audit log: every action and decision, in the same transaction as the action.

The writer's names are loaded lazily, so that importing `gateway.audit.verify` (which
must stand apart from the writer) does not load the writer's models and services.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.audit.entries import AuditEvent, Outcome, SubjectRef
    from gateway.audit.service import Receipt, record_event

__all__ = ["AuditEvent", "Outcome", "Receipt", "SubjectRef", "record_event"]

_LAZY = {
    "AuditEvent": "gateway.audit.entries",
    "Outcome": "gateway.audit.entries",
    "SubjectRef": "gateway.audit.entries",
    "Receipt": "gateway.audit.service",
    "record_event": "gateway.audit.service",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gateway.audit' has no attribute {name!r}")
    return getattr(import_module(module), name)
