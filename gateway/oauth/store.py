"""Database-backed shared state: jti replay cache, revocation denylist, counters.

Each operation is one short statement using INSERT … ON CONFLICT, so concurrent gateway
processes on one database agree without locks held across requests: of two requests
presenting the same `jti`, exactly one inserts the row.
"""

from __future__ import annotations

import hashlib
import random

from sqlalchemy import bindparam, delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from gateway.oauth.models import RateCounter, RevokedToken, SeenJti
from gateway.partners.models import OAuthClient, Organisation
from gateway.partners.registry import ClientStanding, standing_of

#: Keep counters this long (seconds) before purging them.
COUNTER_RETENTION = 3600
PURGE_PROBABILITY = 1 / 32


def _insert(  # type: ignore[no-untyped-def]
    session: Session | Connection, table: type[SeenJti] | type[RateCounter] | type[RevokedToken]
):
    bind = session if isinstance(session, Connection) else session.get_bind()
    dialect = bind.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table)


def jti_digest(purpose: str, issuer: str, jti: str) -> bytes:
    return hashlib.sha256(f"{purpose}\x00{issuer}\x00{jti}".encode()).digest()


def consume_jti(session: Session | Connection, digest: bytes, *, expires_at: int, now: int) -> bool:
    """Record a jti; False when it was seen before and has not yet expired (a replay)."""
    stmt = _insert(session, SeenJti).values(digest=digest, expires_at=expires_at)
    stmt = stmt.on_conflict_do_update(
        index_elements=[SeenJti.digest],
        set_={"expires_at": expires_at},
        where=SeenJti.expires_at < now,
    ).returning(SeenJti.digest)
    # A row comes back only when inserted (or an expired entry was renewed): portable,
    # unlike rowcount, which the ORM path does not report on every driver.
    fresh = session.execute(stmt).first() is not None
    maybe_purge(session, now)
    return fresh


def increment(session: Session, bucket: str, window: int) -> int:
    """Add one to a fixed-window counter and return the new count."""
    stmt = _insert(session, RateCounter).values(bucket=bucket, window=window, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[RateCounter.bucket, RateCounter.window],
        set_={"count": RateCounter.count + 1},
    ).returning(RateCounter.count)
    count: int = session.execute(stmt).scalar_one()
    return count


def current_count(session: Session, bucket: str, window: int) -> int:
    """A fixed-window counter's value, without changing it."""
    found = session.execute(
        select(RateCounter.count).where(RateCounter.bucket == bucket, RateCounter.window == window)
    ).scalar_one_or_none()
    return int(found or 0)


def revoke(session: Session, *, jti: str, client_id: str, expires_at: int, now: int) -> None:
    stmt = _insert(session, RevokedToken).values(
        jti=jti, client_id=client_id, revoked_at=now, expires_at=expires_at
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=[RevokedToken.jti]))


def is_revoked(session: Session | Connection, jti: str) -> bool:
    found = session.execute(select(RevokedToken.jti).where(RevokedToken.jti == jti)).first()
    return found is not None


#: Whether the token is revoked, and its client's standing: one indexed statement, built
#: once (the resource server runs it on every request).
_TOKEN_STANDING = (
    select(
        exists().where(RevokedToken.jti == bindparam("jti")).label("revoked"),
        OAuthClient.status,
        Organisation.id,
        Organisation.kind,
        Organisation.status.label("organisation_status"),
    )
    .select_from(OAuthClient)
    .join(Organisation, Organisation.id == OAuthClient.organisation_id)
    .where(OAuthClient.client_id == bindparam("client_id"))
)


def token_standing(
    connection: Session | Connection, jti: str, client_id: str
) -> tuple[bool, ClientStanding | None]:
    """Whether the token `jti` is revoked, and its client's standing (None if unknown),
    in one statement (the denylist, the client's and its organisation's rows), read on
    every request so that a revocation or a disabled client stops the next request in
    every process."""
    row = connection.execute(_TOKEN_STANDING, {"jti": jti, "client_id": client_id}).first()
    if row is None:  # an unknown client: rare, a refusal either way
        return is_revoked(connection, jti), None
    revoked, client_status, organisation, kind, organisation_status = row
    return bool(revoked), standing_of(client_status, organisation, kind, organisation_status)


def maybe_purge(session: Session | Connection, now: int, *, always: bool = False) -> None:
    """Now and then, drop expired replay entries, denylist rows and old counters."""
    if not always and random.random() >= PURGE_PROBABILITY:  # noqa: S311 - not security
        return
    session.execute(delete(SeenJti).where(SeenJti.expires_at < now))
    session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
    session.execute(delete(RateCounter).where(RateCounter.window < now - COUNTER_RETENTION))
