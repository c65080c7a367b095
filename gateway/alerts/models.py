"""Raised alerts: one row per alert, kept like the audit entry that records it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


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

    __table_args__ = (
        Index("ix_alerts_rule_actor_raised", "rule_id", "actor_id", "raised_at"),
        Index("ix_alerts_raised_at", "raised_at"),
    )
