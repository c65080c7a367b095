"""Imports every domain's models so that Alembic and `Base.metadata` see all tables."""

from __future__ import annotations

from gateway.audit.models import AuditEntryRow

__all__ = ["AuditEntryRow"]
