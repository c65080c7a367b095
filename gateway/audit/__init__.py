"""The audit log: every action and decision, in the same transaction as the action.

The writer's names are loaded lazily, so that importing `gateway.audit.verify` (which
must stand apart from the writer) does not load the writer's models and services.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway._lazy import lazy_exports

if TYPE_CHECKING:
    from gateway.audit.entries import AuditEvent, Outcome, SubjectRef
    from gateway.audit.service import Receipt, record_event

__all__ = ["AuditEvent", "Outcome", "Receipt", "SubjectRef", "record_event"]

__getattr__ = lazy_exports(
    __name__,
    {
        "gateway.audit.entries": (
            "AuditEvent",
            "Outcome",
            "SubjectRef",
        ),
        "gateway.audit.service": (
            "Receipt",
            "record_event",
        ),
    },
)
