"""User rows: a password hash (argon2id) and the TOTP secret sealed under the master key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, String, Text
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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
