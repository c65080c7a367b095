"""User rows: a password hash (argon2id) and the TOTP secret sealed under the master key;
web sessions kept server-side so that signing out or a time-out ends them for good."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(200))
    #: The one-time password must be replaced at the first sign-in.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    #: JSON: the TOTP secret sealed with AES-256-GCM under the master key.
    totp_secret_sealed: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: A professional's partner organisation (NULL: the meldpunt's own staff).
    organisation: Mapped[str | None] = mapped_column(String(64), ForeignKey("organisations.id"))
    #: Its kind, copied at registration (an organisation's kind never changes).
    organisation_kind: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: Failed sign-ins since the last success or lockout.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Lockouts so far: the next one lasts twice as long (1, 2, 4… minutes).
    lockouts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The last TOTP time step accepted: a code is never accepted twice.
    last_totp_step: Mapped[int | None] = mapped_column(BigInteger)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSessionRow(Base):
    """A signed-in browser; the cookie holds a random token, the row only its SHA-256."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
