"""Request and response bodies of the cases and shares API (lower camelCase on the wire)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from gateway.api.models import ApiModel


class CaseCreate(ApiModel):
    title: str = Field(description="1-200 characters; no personal data.")
    signal_ids: list[str] | None = Field(
        default=None, description="The signals to link (give this or matchId)."
    )
    match_id: str | None = Field(
        default=None, description="Make the case from this match's active signals."
    )


class CaseSignalOut(ApiModel):
    id: str
    organisation: str
    category: str
    reference: str


class CaseOut(ApiModel):
    id: str
    title: str
    status: str = Field(description="open, in-progress or closed.")
    outcome: str | None = Field(default=None, description="Set when closed.")
    assignee: str | None = Field(default=None, description="A coordinator's username.")
    match_id: str | None = None
    signals: list[CaseSignalOut]
    created_at: datetime
    updated_at: datetime


class CasePage(ApiModel):
    items: list[CaseOut]
    next: str | None = Field(description="Cursor of the next page; null on the last page.")


class CaseUpdateIn(ApiModel):
    status: Literal["open", "in-progress", "closed"] | None = None
    outcome: str | None = Field(default=None, description="Required when closing.")
    assignee: str | None = Field(default=None, description="A coordinator's username.")


class LinkIn(ApiModel):
    signal_id: str
    reason: str = Field(description="Why the signal belongs to the case (audited).")


class UnlinkIn(ApiModel):
    reason: str = Field(description="Why the signal is taken out of the case (audited).")


class NoteIn(ApiModel):
    text: str = Field(description="Stored encrypted (AES-256-GCM); never logged or audited.")


class NoteOut(ApiModel):
    id: str
    author: str
    created_at: datetime
    text: str


class NoteList(ApiModel):
    items: list[NoteOut]


class ShareCreate(ApiModel):
    organisations: list[str] = Field(description="Receiving organisation ids.")
    signal_ids: list[str] = Field(description="Signals of this case to share.")
    purpose: str = Field(description="A purpose of the policy.")


class ShareOut(ApiModel):
    id: str
    case_id: str
    status: str = Field(description="shared, or pending (waiting for a second approval).")
    organisations: list[str]
    signal_ids: list[str]
    purpose: str
    approval_id: str | None = Field(
        default=None, description="The approval request a second coordinator must approve."
    )
    created_at: datetime


class SharedSignalOut(ApiModel):
    id: str
    category: str
    payload: dict[str, Any] = Field(description="JWE (JSON Serialization) for your keys.")


class ReceivedShareOut(ApiModel):
    id: str
    case_id: str
    signals: list[SharedSignalOut]
    purpose: str
    created_at: datetime


class SharePage(ApiModel):
    items: list[ReceivedShareOut]
    next: str | None = Field(description="Cursor of the next page; null on the last page.")
