"""A token bucket as one SQL statement, so that workers and processes share it.

`take` refills the bucket by the time since its last request (at `rate` per second, up
to `burst`) and takes one token if there is one — in a single INSERT … ON CONFLICT DO
UPDATE … RETURNING. On PostgreSQL the conflicting row is locked for that statement; on
SQLite the statement runs under the write lock its transaction took at BEGIN. Either
way two concurrent requests see each other's effect: no read-modify-write race.
"""

from __future__ import annotations

import math

from sqlalchemy import delete, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from gateway.config import RateLimit
from gateway.ratelimit.models import RateBucket

#: A bucket untouched this long (seconds) is full again anyway: its row can go.
IDLE_SECONDS = 3600


_TABLE = RateBucket.__tablename__
_ELAPSED = f"CASE WHEN {_TABLE}.updated_at < :now THEN :now - {_TABLE}.updated_at ELSE 0.0 END"
_FILLED = f"{_TABLE}.tokens + ({_ELAPSED}) * :rate"
#: LEAST(filled, burst), written portably (SQLite's min() and PostgreSQL's LEAST differ).
_REFILLED = f"(CASE WHEN {_FILLED} > :burst THEN :burst ELSE {_FILLED} END)"
#: The same text on SQLite and PostgreSQL, prepared once: building and compiling the
#: statement on every request cost more than running it.
_TAKE = text(  # constants only: every value is a bind parameter
    f"INSERT INTO {_TABLE} (key, tokens, updated_at, granted) "  # noqa: S608
    "VALUES (:key, :burst - 1.0, :now, true) "
    "ON CONFLICT (key) DO UPDATE SET "
    f"tokens = CASE WHEN {_REFILLED} >= 1.0 THEN {_REFILLED} - 1.0 ELSE {_REFILLED} END, "
    # Time never runs backwards for a bucket, even across hosts with skewed clocks.
    f"updated_at = CASE WHEN {_TABLE}.updated_at < :now THEN :now ELSE {_TABLE}.updated_at END, "
    f"granted = ({_REFILLED} >= 1.0) "
    "RETURNING tokens, granted"
)


def take(session: Session | Connection, key: str, limit: RateLimit, now: float) -> float:
    """Take a token from `key`'s bucket: 0.0 if granted, else seconds until one refills."""
    params = {"key": key, "now": float(now), "rate": float(limit.rate), "burst": float(limit.burst)}
    tokens, granted = session.execute(_TAKE, params).one()
    if granted:
        return 0.0
    return max(0.001, (1.0 - float(tokens)) / limit.rate)


def retry_after_seconds(wait: float) -> int:
    """The `Retry-After` value for a wait: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


def purge_idle(session: Session | Connection, now: float) -> None:
    session.execute(delete(RateBucket).where(RateBucket.updated_at < now - IDLE_SECONDS))
