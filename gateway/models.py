"""Imports every domain's models so that Alembic and `Base.metadata` see all tables."""

from __future__ import annotations

from gateway.alerts.models import AlertRow
from gateway.audit.models import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditNodeRow,
    AuditSubjectFilterRow,
    AuditSubjectRow,
    AuditVerificationRow,
)
from gateway.cases.models import (
    ApprovalRow,
    CaseErasureRow,
    CaseNoteRow,
    CaseRow,
    CaseSignalRow,
    SharePayloadRow,
    ShareRow,
)
from gateway.matching.models import (
    MatchingOutboxRow,
    MatchMemberRow,
    MatchRow,
    NotificationRow,
)
from gateway.oauth.models import RateCounter, RevokedToken, SeenJti
from gateway.partners.models import OAuthClient, Organisation
from gateway.policy.models import PolicyVersionRow
from gateway.ratelimit.models import RateBucket
from gateway.signals.models import PseudonymRotationRow, SignalPseudonymRow, SignalRow
from gateway.users.models import UserRow, WebSessionRow

__all__ = [
    "AlertRow",
    "ApprovalRow",
    "AuditCheckpointRow",
    "AuditEntryRow",
    "AuditNodeRow",
    "AuditSubjectFilterRow",
    "AuditSubjectRow",
    "AuditVerificationRow",
    "CaseErasureRow",
    "CaseNoteRow",
    "CaseRow",
    "CaseSignalRow",
    "MatchMemberRow",
    "MatchRow",
    "MatchingOutboxRow",
    "NotificationRow",
    "OAuthClient",
    "Organisation",
    "PolicyVersionRow",
    "PseudonymRotationRow",
    "RateBucket",
    "RateCounter",
    "RevokedToken",
    "SeenJti",
    "SharePayloadRow",
    "ShareRow",
    "SignalPseudonymRow",
    "SignalRow",
    "UserRow",
    "WebSessionRow",
]
