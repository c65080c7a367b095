"""Cases, their linked signals and notes, four-eyes approvals, and shares with partners.

Nothing here holds an identifier of a person: a case links signals (which hold only
pseudonyms), a note is stored only as AES-256-GCM ciphertext, and a shared payload is
a JWE for the receiving organisation's keys, as opaque to the gateway's database as
the partner's original.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base

CASE_STATUSES = ("open", "in-progress", "closed")
APPROVAL_STATUSES = ("pending", "approved", "refused", "used")
SHARE_STATUSES = ("pending", "shared", "refused")

_PK = BigInteger().with_variant(Integer, "sqlite")


class CaseRow(Base):
    __tablename__ = "cases"

    pk: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")
    outcome: Mapped[str | None] = mapped_column(String(500))
    #: The username of the coordinator the case is assigned to.
    assignee: Mapped[str | None] = mapped_column(String(64))
    #: The match the case was made from, if any.
    match_id: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint(f"status IN {CASE_STATUSES!r}", name="status"),)


class CaseSignalRow(Base):
    """A signal linked into a case (the reason for linking lives in the audit entry)."""

    __tablename__ = "case_signals"

    case_pk: Mapped[int] = mapped_column(
        _PK, ForeignKey("cases.pk", ondelete="CASCADE"), primary_key=True
    )
    signal_pk: Mapped[int] = mapped_column(
        _PK, ForeignKey("signals.pk", ondelete="CASCADE"), primary_key=True
    )
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_case_signals_signal_pk", "signal_pk"),)


class CaseErasureRow(Base):
    """A tombstone: a signal linked into this case was erased at the end of its retention.

    Says only that one was, of which category, linked and erased when; the signal's id
    and everything about it are gone with it (the audit log keeps the erasure entry).
    """

    __tablename__ = "case_erasures"

    pk: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    case_pk: Mapped[int] = mapped_column(_PK, ForeignKey("cases.pk", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_case_erasures_case_pk", "case_pk", "pk"),)


class CaseNoteRow(Base):
    """A coordinator's note: only the AES-256-GCM ciphertext rests here."""

    __tablename__ = "case_notes"

    pk: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    case_pk: Mapped[int] = mapped_column(_PK, ForeignKey("cases.pk", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Which derived key sealed it (so the key can change without losing old notes).
    key_id: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_case_notes_case_pk", "case_pk", "pk"),)


class ApprovalRow(Base):
    """A request for a second person's approval (four eyes), and what became of it."""

    __tablename__ = "approval_requests"

    pk: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    #: The policy action that needs the approval: payload.read or case.share.
    kind: Mapped[str] = mapped_column(String(32))
    #: What it is about: a signal id (payload.read) or a share id (case.share).
    target: Mapped[str] = mapped_column(String(36))
    category: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: The actors as `Actor` fields (type, id, organisation, organisation_kind, role, scopes).
    requester: Mapped[dict[str, Any]] = mapped_column(JSON)
    requester_id: Mapped[str] = mapped_column(String(128))
    approver: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"status IN {APPROVAL_STATUSES!r}", name="status"),
        Index("ix_approval_requests_target", "kind", "target"),
        Index("ix_approval_requests_status_pk", "status", "pk"),
    )


class ShareRow(Base):
    """A share of a case's signals with partner organisations, for a purpose."""

    __tablename__ = "shares"

    pk: Mapped[int] = mapped_column(_PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    case_pk: Mapped[int] = mapped_column(_PK, ForeignKey("cases.pk", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    organisations: Mapped[list[str]] = mapped_column(JSON)
    signal_ids: Mapped[list[str]] = mapped_column(JSON)
    requested_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    shared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"status IN {SHARE_STATUSES!r}", name="status"),
        Index("ix_shares_case_pk", "case_pk"),
    )


class SharePayloadRow(Base):
    """One signal's payload re-encrypted for one receiving organisation's current keys."""

    __tablename__ = "share_payloads"

    share_pk: Mapped[int] = mapped_column(
        _PK, ForeignKey("shares.pk", ondelete="CASCADE"), primary_key=True
    )
    organisation: Mapped[str] = mapped_column(String(64), primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    category: Mapped[str] = mapped_column(String(64))
    #: The JWE (JSON Serialization) for the organisation's keys at the time of sharing.
    payload: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_share_payloads_organisation", "organisation", "share_pk"),)
