"""Shared OAuth state that must hold across every gateway process: replay caches, the
revocation denylist and rate-limit counters. All live in the database, never in memory.

Times are epoch seconds (integers), which compare the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class SeenJti(Base):
    """A `jti` already used (client assertion or DPoP proof), kept until it expires."""

    __tablename__ = "oauth_seen_jti"

    #: SHA-256 over purpose, issuer (client id or key thumbprint) and jti.
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class RevokedToken(Base):
    """A revoked access token, by `jti`, refused until it would have expired anyway."""

    __tablename__ = "oauth_revoked_tokens"

    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(80))
    revoked_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class RateCounter(Base):
    """A fixed-window counter: rate limits and the bounding of refusal audit entries."""

    __tablename__ = "oauth_rate_counters"

    bucket: Mapped[str] = mapped_column(String(200), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch // size
    count: Mapped[int] = mapped_column(Integer)
