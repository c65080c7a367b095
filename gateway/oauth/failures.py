"""Bounded audit of refused OAuth requests and API 401/403s, and the per-address
count of failed authentications.

Every refusal counts, but an unauthenticated flood must not fill the audit log (which
is append-only and never pruned). So refusals are counted per key — (registered client
id the request claimed, or "anonymous"; client address; error code) — in fixed windows
(one minute by default), and an audit entry is written only when that key's count in
the window reaches 1, 10, 100, 1000, … carrying the count so far. On top of that at
most `refusal_entries_per_window` entries are written per window in all; the entry
after the last one says that further refusals in the window were only counted.

Each refusal is recorded in its own short transaction: the request's own work failed,
and its rollback must not take the evidence with it.

Per address, only *failures to authenticate* count (a bad or missing client assertion
at the token endpoints, a missing or invalid access token at `/v1`), in the same
transaction. Past `failures_per_address` in a window, further failures from that
address are answered 429 instead of their error, and junk that cannot authenticate at
all (no client assertion) is answered 429 before any work. A request that does
authenticate is never refused for its address: it is judged by its client's token
bucket (`gateway.ratelimit`). So anonymous junk from the proxy address every partner
shares can slow only other junk, never lock a real client out (security finding 4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.db import Database
from gateway.logs import get_logger
from gateway.oauth import store
from gateway.oauth.config import OAuthConfig

log = get_logger(__name__)

ANONYMOUS = Actor(type="anonymous", id="anonymous")


def is_milestone(count: int) -> bool:
    """1, 10, 100, 1000, …"""
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


class RefusalAudit:
    def __init__(self, db: Database, config: OAuthConfig, clock: Callable[[], int]) -> None:
        self.db = db
        self.config = config
        self.clock = clock

    def _window(self) -> tuple[int, int]:
        """(start of the current window, seconds until it ends)."""
        now = self.clock()
        size = self.config.rate_window
        window = now - now % size
        return window, max(1, window + size - now)

    def address_blocked(self, address: str) -> int | None:
        """Seconds to wait when `address` is past its failure threshold, else None."""
        window, retry_after = self._window()
        with self.db.transaction(write=False) as session:
            failures = store.current_count(session, f"fail:{address}", window)
        return retry_after if failures >= self.config.failures_per_address else None

    def record(
        self,
        *,
        endpoint: str,
        error: str,
        description: str | None,
        claimed_client: str | None,
        address: str,
        actor: Actor | None = None,
        failed_authentication: bool = False,
    ) -> int | None:
        """Record a refusal. For a failed authentication, also count it against the
        address and return the seconds to wait when the address is now past its
        threshold (the caller answers 429 instead); otherwise None."""
        window, retry_after = self._window()
        claimed = claimed_client or "anonymous"
        key = hashlib.sha256(f"{claimed}\x00{address}\x00{error}".encode()).hexdigest()[:40]
        log.info("oauth refusal", error=error, endpoint=endpoint, claimed_client=claimed)
        with self.db.transaction() as session:
            failures = (
                store.increment(session, f"fail:{address}", window) if failed_authentication else 0
            )
            self._audit(
                session,
                window=window,
                key=key,
                endpoint=endpoint,
                error=error,
                description=description,
                claimed=claimed,
                address=address,
                actor=actor,
            )
        return retry_after if failures > self.config.failures_per_address else None

    def _audit(
        self,
        session: Session,
        *,
        window: int,
        key: str,
        endpoint: str,
        error: str,
        description: str | None,
        claimed: str,
        address: str,
        actor: Actor | None,
    ) -> None:
        size = self.config.rate_window
        count = store.increment(session, f"refuse:{key}", window)
        if not is_milestone(count):
            return
        written = store.increment(session, "refuse-entries", window)
        cap = self.config.refusal_entries_per_window
        if written > cap + 1:
            return
        window_start = datetime.fromtimestamp(window, UTC).isoformat().replace("+00:00", "Z")
        if written == cap + 1:
            detail: dict[str, object] = {
                "suppressed": True,
                "windowStart": window_start,
                "windowSeconds": size,
                "note": "further refusals in this window are counted, not logged",
            }
        else:
            detail = {
                "endpoint": endpoint,
                "error": error,
                "claimedClient": claimed,
                "clientAddress": address,
                "windowStart": window_start,
                "windowSeconds": size,
                "countInWindow": count,
            }
            if description:
                detail["description"] = description
        record_event(
            session,
            AuditEvent(
                action="token.refuse",
                outcome="denied",
                actor=actor or ANONYMOUS,
                resource_type="oauth-endpoint",
                resource_id=endpoint,
                detail=detail,
            ),
        )
