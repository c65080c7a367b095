"""Every policy version that was ever active, retrievable by its digest.

An audit entry names a policy by digest; this table keeps the canonical document behind
each digest, so a privacy officer can read the exact agreement that decided, years later.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class PolicyVersionRow(Base):
    __tablename__ = "policy_versions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256, hex
    policy_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)  # RFC 8785 canonical JSON
    first_activated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    activated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_policy_versions_activated_at", "activated_at"),)
