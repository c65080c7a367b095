"""The audit log: every action and decision, in the same transaction as the action."""

from gateway.audit.entries import AuditEvent, Outcome, SubjectRef
from gateway.audit.service import Receipt, record_event

__all__ = ["AuditEvent", "Outcome", "Receipt", "SubjectRef", "record_event"]
