"""The token buckets of the per-client rate limits, shared by every gateway process."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import Base


class RateBucket(Base):
    """One client's bucket for one kind of request (`v1:<client>`, `token:<client>`).

    `tokens` is the content after the last request, `updated_at` that request's time
    (epoch seconds, fractional), `granted` whether it was let through: the one UPSERT
    that refills and takes a token returns these, so no read-then-write race exists.
    """

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    granted: Mapped[bool] = mapped_column(Boolean)
