"""Audit rows: canonical entry bytes, written in the transaction of the action.

`seq` (the Merkle leaf index) is assigned later by the sequencer, in batches; until then
it is NULL and the entry already has its leaf hash, which is the partner's receipt.
The sequencer also stores every complete Merkle node (`AuditNodeRow`, so a proof costs
O(log n) reads) and one signed checkpoint per batch (`AuditCheckpointRow`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gateway.db import Base

_BIGINT_ID = BigInteger().with_variant(Integer, "sqlite")


class AuditEntryRow(Base):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(_BIGINT_ID, primary_key=True, autoincrement=True)
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True, nullable=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(128))
    actor_organisation: Mapped[str | None] = mapped_column(String(64))
    #: The deciding policy rule and the stated purpose, copied out of `data` so the
    #: privacy officer's filters use an index (NULL where the entry names none).
    policy_rule: Mapped[str | None] = mapped_column(String(128))
    purpose: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    subjects: Mapped[list[AuditSubjectRow]] = relationship(
        cascade="all, delete-orphan", lazy="raise"
    )

    __table_args__ = (
        Index(
            "ix_audit_entries_unsequenced",
            "id",
            postgresql_where=seq.is_(None),
            sqlite_where=seq.is_(None),
        ),
        Index("ix_audit_entries_actor_organisation", "actor_organisation"),
        Index("ix_audit_entries_action", "action"),
        Index("ix_audit_entries_actor_id", "actor_id"),
        Index("ix_audit_entries_created_at", "created_at"),
        Index("ix_audit_entries_policy_rule", "policy_rule"),
        Index("ix_audit_entries_purpose", "purpose"),
    )


class AuditSubjectRow(Base):
    """A subject reference of an entry, so the privacy officer can search by it."""

    __tablename__ = "audit_subjects"

    entry_id: Mapped[int] = mapped_column(
        _BIGINT_ID, ForeignKey("audit_entries.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[str] = mapped_column(String(128), primary_key=True)

    __table_args__ = (Index("ix_audit_subjects_subject_id", "subject_id"),)


class AuditNodeRow(Base):
    """A complete Merkle subtree: 2**level leaves from leaf `idx * 2**level` (level 0 = leaves)."""

    __tablename__ = "audit_tree_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpointRow(Base):
    """A signed checkpoint (C2SP signed note), one per sequenced batch; never updated."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(_BIGINT_ID, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_audit_checkpoints_size", "size"),)


class AuditVerificationRow(Base):
    """One run of the verifier started from the privacy officer's page; the finished
    record is signed (a signed note of `record`) with the checkpoint key."""

    __tablename__ = "audit_verification_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: running, ok, failed (the log is wrong) or error (the run itself broke off)
    status: Mapped[str] = mapped_column(String(16))
    started_by: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Entries verified so far (progress) and, when finished, the tree size verified.
    entries: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    tree_size: Mapped[int | None] = mapped_column(BigInteger)
    root_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    first_bad_index: Mapped[int | None] = mapped_column(BigInteger)
    problem: Mapped[str | None] = mapped_column(Text)
    #: The size of an uploaded (witnessed) checkpoint that was checked too, if any.
    external_size: Mapped[int | None] = mapped_column(BigInteger)
    #: The signed note over the finished record (see `gateway.audit.runs`).
    signed_record: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_audit_verification_runs_started_at", "started_at"),)


class AuditSubjectFilterRow(Base):
    """The privacy officer's subject filter on `/audit`: the person's subject references
    (pseudonyms, never identifiers), kept server-side for one web session and gone with it."""

    __tablename__ = "audit_subject_filters"

    session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("web_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    #: Space-separated subject references.
    subjects: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
