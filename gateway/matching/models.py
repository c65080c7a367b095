"""Matches (clusters of signals about one person) and notifications.

A match is a cluster: signals of different organisations linked by shared pseudonyms.
It grows when another partner signals the same person and absorbs other matches when a
new signal links them (the absorbed match keeps its row, with `merged_into` set, so
earlier notifications still resolve). Each member records the linkage keys by which it
joined. Notifications have a monotonic integer id: the `after` cursor of the API.

The outbox holds what matching still has to do for a signal: a row is written in the
transaction that stores (or withdraws, or expires) the signal and deleted in the
transaction that did the matching work, so no request waits for it (see
`gateway.matching.outbox`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base

#: Role feeds live in their own namespace: "role:<name>". No organisation id can hold
#: ":" (the registry's id pattern), so no organisation can read a role's feed.
ROLE_FEED_PREFIX = "role:"
COORDINATOR = f"{ROLE_FEED_PREFIX}coordinator"
NOTIFICATION_TYPES = ("match", "match.updated", "signal.withdrawn", "signal.expired")
#: What an outbox row asks for: match a new signal, or tell of one that left.
OUTBOX_EVENTS = ("created", "withdrawn", "expired")
#: A match's tier (`gateway.matching.scoring`): the weakest tier of its members.
TIERS = ("strong", "possible")
#: A match's stored review state. "linked" is not stored: it is derived from case links.
MATCH_STATES = ("new", "under-review", "confirmed", "dismissed")
#: Why a coordinator dismissed a match: codes, never free text (no identifier can enter).
DISMISSAL_REASONS = ("different-persons", "family-member", "data-error", "not-relevant")


class MatchRow(Base):
    __tablename__ = "matches"

    pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    merged_into: Mapped[str | None] = mapped_column(String(36))
    #: "strong" or "possible": the weakest tier of the members.
    tier: Mapped[str] = mapped_column(String(16), server_default="strong", default="strong")
    #: One of `MATCH_STATES`; set by the coordinator's review (`MatchService`).
    state: Mapped[str] = mapped_column(String(16), server_default="new", default="new")
    #: For "dismissed": one of `DISMISSAL_REASONS`.
    state_reason: Mapped[str | None] = mapped_column(String(32))
    state_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(f"state IN {MATCH_STATES!r}", name="state"),
        CheckConstraint(f"tier IN {TIERS!r}", name="tier"),
    )


class MatchMemberRow(Base):
    """A signal in a match, with the linkage keys (comma-separated) that tied it in."""

    __tablename__ = "match_members"

    match_pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("matches.pk", ondelete="CASCADE"),
        primary_key=True,
    )
    signal_pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("signals.pk", ondelete="CASCADE"),
        primary_key=True,
    )
    linkage_keys: Mapped[str] = mapped_column(String(128))
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The best tier by which this signal is tied to another member.
    tier: Mapped[str] = mapped_column(String(16), server_default="strong", default="strong")

    __table_args__ = (Index("ix_match_members_signal_pk", "signal_pk"),)


class NotificationRow(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    #: An organisation id, or a role feed: "role:coordinator" (the meldpunt's coordinators).
    recipient: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    signal_id: Mapped[str | None] = mapped_column(String(36))
    match_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: JSON object text with type-specific details (never an identifier or pseudonym).
    extra: Mapped[str] = mapped_column(Text, default="{}")

    __table_args__ = (Index("ix_notifications_recipient_id", "recipient", "id"),)


class MatchingOutboxRow(Base):
    """Matching work still to do for one signal (one row per signal and event)."""

    __tablename__ = "matching_outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    signal_pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("signals.pk", ondelete="CASCADE"),
    )
    #: One of `OUTBOX_EVENTS`.
    event: Mapped[str] = mapped_column(String(16))
    #: The moment of the request: matching is decided as of then, whenever it runs.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: For a removal: the audit subject references of the pseudonyms the request
    #: deleted (JSON list), for the gateway's `matching.update` entry; gone with the row.
    subjects: Mapped[str | None] = mapped_column(Text)
    #: Failed attempts; a row that keeps failing is left for an operator (see logs).
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (UniqueConstraint("signal_pk", "event"),)
