"""A token bucket as one SQL statement, so that workers and processes share it.

`take` refills the bucket by the time since its last request (at `rate` per second, up
to `burst`) and takes one token if there is one — in a single INSERT … ON CONFLICT DO
UPDATE … RETURNING. On PostgreSQL the conflicting row is locked for that statement; on
SQLite the statement runs under the write lock its transaction took at BEGIN. Either
way two concurrent requests see each other's effect: no read-modify-write race.
"""

from __future__ import annotations

import math

from sqlalchemy import case, delete, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from gateway.config import RateLimit
from gateway.ratelimit.models import RateBucket

#: A bucket untouched this long (seconds) is full again anyway: its row can go.
IDLE_SECONDS = 3600


def _least(a: ColumnElement[float], b: float) -> ColumnElement[float]:
    """LEAST(a, b) portably (SQLite's min(a, b) and PostgreSQL's LEAST differ)."""
    return case((a > b, literal(b)), else_=a)


def take(session: Session, key: str, limit: RateLimit, now: float) -> float:
    """Take a token from `key`'s bucket: 0.0 if granted, else seconds until one refills."""
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    stmt = insert(RateBucket).values(
        key=key, tokens=float(limit.burst - 1), updated_at=now, granted=True
    )
    # Time never runs backwards for a bucket, even across hosts with skewed clocks.
    elapsed = case((RateBucket.updated_at < now, literal(now) - RateBucket.updated_at), else_=0.0)
    refilled = _least(RateBucket.tokens + elapsed * limit.rate, float(limit.burst))
    stmt = stmt.on_conflict_do_update(
        index_elements=[RateBucket.key],
        set_={
            "tokens": case((refilled >= 1.0, refilled - 1.0), else_=refilled),
            "updated_at": case(
                (RateBucket.updated_at < now, literal(now)), else_=RateBucket.updated_at
            ),
            "granted": refilled >= 1.0,
        },
    ).returning(RateBucket.tokens, RateBucket.granted)
    tokens, granted = session.execute(stmt).one()
    if granted:
        return 0.0
    return max(0.001, (1.0 - float(tokens)) / limit.rate)


def retry_after_seconds(wait: float) -> int:
    """The `Retry-After` value for a wait: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


def purge_idle(session: Session, now: float) -> None:
    session.execute(delete(RateBucket).where(RateBucket.updated_at < now - IDLE_SECONDS))
