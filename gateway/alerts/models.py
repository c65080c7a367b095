"""Raised alerts: one row per alert, kept like the audit entry that records it.

An alert is open until a privacy officer marks it handled: then `handled_at`,
`handled_by` (the officer's user name) and `note` (what was done or concluded) are set,
all three together, once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base

#: The longest note an officer may give when marking an alert handled.
NOTE_MAX_LENGTH = 500
#: Handled means all three of when, by whom and the note; open means none of them.
HANDLED_TOGETHER = (
    "(handled_at IS NULL AND handled_by IS NULL AND note IS NULL)"
    " OR (handled_at IS NOT NULL AND handled_by IS NOT NULL AND note IS NOT NULL)"
)


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    #: Who showed the pattern: a user name, a client id, or an organisation id.
    actor_id: Mapped[str] = mapped_column(String(128))
    count: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The privacy officer's user name.
    handled_by: Mapped[str | None] = mapped_column(String(128))
    #: What was done or concluded, in the officer's words (never in the audit log).
    note: Mapped[str | None] = mapped_column(String(NOTE_MAX_LENGTH))

    __table_args__ = (
        Index("ix_alerts_rule_actor_raised", "rule_id", "actor_id", "raised_at"),
        Index("ix_alerts_raised_at", "raised_at"),
        CheckConstraint(HANDLED_TOGETHER, name="handled"),
    )
