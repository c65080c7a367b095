"""Imports every domain's models so that Alembic and `Base.metadata` see all tables."""

from __future__ import annotations

from gateway.audit.models import AuditEntryRow
from gateway.policy.models import PolicyVersionRow

__all__ = ["AuditEntryRow", "PolicyVersionRow"]
