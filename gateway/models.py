"""Imports every domain's models so that Alembic and `Base.metadata` see all tables."""

from __future__ import annotations

from gateway.audit.models import AuditEntryRow
from gateway.oauth.models import RateCounter, RevokedToken, SeenJti
from gateway.partners.models import OAuthClient, Organisation

__all__ = [
    "AuditEntryRow",
    "OAuthClient",
    "Organisation",
    "RateCounter",
    "RevokedToken",
    "SeenJti",
]
