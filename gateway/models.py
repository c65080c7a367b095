"""Imports every domain's models so that Alembic and `Base.metadata` see all tables."""

from __future__ import annotations

from gateway.audit.models import AuditCheckpointRow, AuditEntryRow, AuditNodeRow, AuditSubjectRow

__all__ = ["AuditCheckpointRow", "AuditEntryRow", "AuditNodeRow", "AuditSubjectRow"]
