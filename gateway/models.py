"""Imports every domain's models so that Alembic and `Base.metadata` see all tables."""

from __future__ import annotations

from gateway.audit.models import AuditCheckpointRow, AuditEntryRow, AuditNodeRow, AuditSubjectRow
from gateway.matching.models import MatchMemberRow, MatchRow, NotificationRow
from gateway.oauth.models import RateCounter, RevokedToken, SeenJti
from gateway.partners.models import OAuthClient, Organisation
from gateway.policy.models import PolicyVersionRow
from gateway.signals.models import SignalPseudonymRow, SignalRow
from gateway.users.models import UserRow, WebSessionRow

__all__ = [
    "AuditCheckpointRow",
    "AuditEntryRow",
    "AuditNodeRow",
    "AuditSubjectRow",
    "MatchMemberRow",
    "MatchRow",
    "NotificationRow",
    "OAuthClient",
    "Organisation",
    "PolicyVersionRow",
    "RateCounter",
    "RevokedToken",
    "SeenJti",
    "SignalPseudonymRow",
    "SignalRow",
    "UserRow",
    "WebSessionRow",
]
