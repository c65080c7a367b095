"""Audit rows: canonical entry bytes, written in the transaction of the action.

`seq` (the Merkle leaf index) is assigned later by the sequencer, in batches; until then
it is NULL and the entry already has its leaf hash, which is the partner's receipt.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class AuditEntryRow(Base):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True, nullable=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(128))
    actor_organisation: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_audit_entries_unsequenced", "id", postgresql_where=seq.is_(None)),
        Index("ix_audit_entries_actor_organisation", "actor_organisation"),
        Index("ix_audit_entries_action", "action"),
    )
