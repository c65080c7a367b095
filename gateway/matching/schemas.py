"""Response bodies and queries of `/v1/notifications` and `/v1/matches` (lower camelCase)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gateway.api.models import ApiModel


class MatchQuery(ApiModel):
    cursor: str | None = Field(default=None, description="Opaque cursor from `next`.")
    limit: int = Field(default=50, ge=1, le=500, description="Page size, 1-500.")


class NotificationQuery(ApiModel):
    after: str | None = Field(default=None, description="Opaque cursor from `next`.")
    limit: int = Field(default=50, ge=1, le=500, description="Page size, 1-500.")


class NotificationOut(ApiModel):
    id: str
    type: str = Field(description="match, match.updated, signal.withdrawn, signal.expired, …")
    signal_id: str | None = None
    match_id: str | None = None
    created_at: datetime
    organisations: list[str] | None = Field(
        default=None, description="Other organisations, only where the policy reveals them."
    )
    change: str | None = None


class NotificationPage(ApiModel):
    items: list[NotificationOut]
    next: str | None = Field(
        description="Give as `after` to get what came later; always present, so a poll resumes."
    )


class MatchSignalOut(ApiModel):
    id: str
    organisation: str
    category: str
    reference: str
    status: str


class MatchOut(ApiModel):
    id: str
    signals: list[MatchSignalOut]
    linkage_keys: list[str] = Field(description="The match-key families that agreed.")
    created_at: datetime
    updated_at: datetime


class MatchPage(ApiModel):
    items: list[MatchOut]
    next: str | None = Field(description="Cursor of the next page; null on the last page.")
