"""Response bodies and queries of `/v1/notifications` and `/v1/matches` (lower camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

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
    signal_id: str | None = Field(
        default=None, description="The signal it is about; for a share the first of `signalIds`."
    )
    match_id: str | None = None
    created_at: datetime
    organisations: list[str] | None = Field(
        default=None, description="Other organisations, only where the policy reveals them."
    )
    change: str | None = None
    share_id: str | None = Field(
        default=None, description="A share: its id, as in `GET /v1/shares`."
    )
    signal_ids: list[str] | None = Field(
        default=None, description="A share: the signals shared with this organisation."
    )


class NotificationPage(ApiModel):
    items: list[NotificationOut]
    next: str | None = Field(
        description="Give as `after` to get what came later; always present, so a poll resumes."
    )


Tier = Literal["strong", "possible"]
State = Literal["new", "under-review", "confirmed", "linked", "dismissed"]
ReviewState = Literal["new", "under-review", "confirmed", "dismissed"]
DismissalReason = Literal["different-persons", "family-member", "data-error", "not-relevant"]


class MatchSignalOut(ApiModel):
    id: str
    organisation: str
    category: str
    reference: str
    status: str
    tier: Tier = Field(description="The best tier by which this signal is tied in.")


class MatchOut(ApiModel):
    id: str
    signals: list[MatchSignalOut]
    linkage_keys: list[str] = Field(description="The match-key families that agreed.")
    tier: Tier = Field(
        description="`strong` when every signal is tied in strongly, else `possible`."
    )
    state: State = Field(
        description=(
            "The coordinator's review: new, under-review, confirmed or dismissed; `linked` "
            "once a case was made from the match or holds one of its signals."
        )
    )
    state_reason: DismissalReason | None = Field(
        default=None, description="Why the match was dismissed (a code, never free text)."
    )
    created_at: datetime
    updated_at: datetime


class MatchReviewIn(ApiModel):
    state: ReviewState = Field(
        description=(
            "under-review, confirmed, dismissed (with `reason`), or new (reopen). A "
            "dismissed match no longer grows and its signals are never matched together again."
        )
    )
    reason: DismissalReason | None = Field(
        default=None, description="Required for `dismissed`, refused otherwise."
    )


class MatchPage(ApiModel):
    items: list[MatchOut]
    next: str | None = Field(description="Cursor of the next page; null on the last page.")
