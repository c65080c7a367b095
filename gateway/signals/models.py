"""Signal rows: what a partner reported, with pseudonyms instead of identifiers.

`signals.pk` is an internal integer key (ordered: it drives cursor paging and keeps the
pseudonym index narrow); `signals.id` is the random UUID the API shows. Pseudonyms live
in their own table, indexed on (family, element) so that match lookup is one index seek
per pseudonym whatever the number of stored signals; they are deleted the moment a
signal is withdrawn or expires, so it can never match again. The payload (the JWE as
received, wrapped under its erasure month's epoch key) is set to NULL at the same
moment; at the end of the retention the row itself is erased (`gateway.lifecycle`).
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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base

SIGNAL_STATUSES = ("active", "withdrawn", "expired")


class SignalRow(Base):
    __tablename__ = "signals"

    pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(36), unique=True)
    organisation: Mapped[str] = mapped_column(String(64))
    organisation_kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: The families this signal was submitted with ("bsn,name_dob"); kept after the
    #: pseudonyms themselves are deleted, so the API can still show `linkageKeys`.
    linkage_keys: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The JWE in JSON serialization, as received; NULL once withdrawn or expired.
    payload: Mapped[str | None] = mapped_column(Text)
    #: The epoch key (`gateway.keys.epochs`) the payload is wrapped under; NULL for a
    #: payload stored before epochs (plain JWE text) or once the payload is gone.
    payload_epoch: Mapped[str | None] = mapped_column(String(64))
    #: An earlier active signal of the same organisation about the same person.
    repeat_of: Mapped[str | None] = mapped_column(String(36))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    #: The first response (JSON text), replayed for a retry with the same key and body.
    stored_response: Mapped[str | None] = mapped_column(Text)
    #: The user (a professional, by name) who filed it through the web intake; NULL for
    #: a partner system's signal.
    submitted_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("organisation", "idempotency_key"),
        CheckConstraint(f"status IN {SIGNAL_STATUSES!r}", name="status"),
        Index("ix_signals_organisation_pk", "organisation", "pk"),
        Index("ix_signals_status_expires_at", "status", "expires_at"),
        Index("ix_signals_payload_epoch", "payload_epoch"),
    )


class SignalPseudonymRow(Base):
    """One pseudonym (a 32-byte ristretto255 element) of one signal."""

    __tablename__ = "signal_pseudonyms"

    signal_pk: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("signals.pk", ondelete="CASCADE"),
        primary_key=True,
    )
    family: Mapped[str] = mapped_column(String(32), primary_key=True)
    element: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(128))

    __table_args__ = (
        # The match lookup: (family, element) → signal_pk, answered from the index alone.
        Index("ix_signal_pseudonyms_lookup", "family", "element", "signal_pk"),
        # The rows a pseudonym key rotation still has to move.
        Index("ix_signal_pseudonyms_key_id", "key_id"),
    )


class PseudonymRotationRow(Base):
    """One pseudonym key rotation (`ketenpoort keys rotate pseudonym`).

    While a row has no `finished_at` the stored pseudonyms are under two keys, so the
    matching processor waits (signals are still accepted); see
    `gateway.lifecycle.pseudonym_rotation`.
    """

    __tablename__ = "pseudonym_rotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    to_kid: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    moved: Mapped[int] = mapped_column(Integer, default=0)
