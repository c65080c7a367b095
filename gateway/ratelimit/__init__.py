"""Rate limits that cannot be turned against others (security findings 4 and 5).

- **Per client, after authentication**: a token bucket per registered client for every
  `/v1` request and one for the token endpoint (`KETENPOORT_RATE_LIMIT_PER_CLIENT`,
  `KETENPOORT_TOKEN_RATE_LIMIT_PER_CLIENT`). Only a request that proved it is the client
  spends the client's tokens, so nobody can exhaust another partner's budget.
- **Per address, for failures only** (`gateway.oauth.failures`): failed client
  authentication and invalid tokens are counted per client address; past the threshold
  further *failed* attempts from that address are answered 429. A request that
  authenticates is never refused for its address — it is judged by its client's bucket —
  so junk from the shared proxy address cannot lock a real partner out.
- The address is the socket peer, or `X-Forwarded-For` when the peer is a trusted proxy
  (`gateway.ratelimit.addresses`).

The buckets live in the database (`rate_buckets`), one UPSERT per request in a short
transaction of its own — for `/v1` the one that also reads the token's revocation and
client standing (`gateway.oauth.resource`) — committed before the request's work: a
request that later fails and rolls back has still spent its token.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from sqlalchemy.engine import Connection

from gateway.config import RateLimit
from gateway.db import Database
from gateway.ratelimit import buckets

PURGE_PROBABILITY = 1 / 64

#: Kinds of per-client buckets (also the `endpoint` label of the 429 counter).
V1 = "v1"
TOKEN = "token"  # noqa: S105 - a bucket kind


class RateLimited(Exception):
    """A request over its limit; callers answer 429 with `Retry-After: retry_after`."""

    def __init__(self, retry_after: int, kind: str, client: str) -> None:
        super().__init__(f"the rate limit of {kind} requests is reached")
        self.retry_after = retry_after
        self.kind = kind
        self.client = client


class ClientRateLimiter:
    """The per-client buckets of one app. `limits` may be changed at run time (tests)."""

    def __init__(
        self,
        db: Database,
        limits: dict[str, RateLimit],
        clock: Callable[[], float] = time.time,
        on_limited: Callable[[str, str], None] | None = None,
    ) -> None:
        self.db = db
        self.limits = limits
        self.clock = clock
        self.on_limited = on_limited

    def check(self, kind: str, client_id: str) -> None:
        """Spend one of `client_id`'s `kind` tokens, or raise `RateLimited`."""
        with self.db.write_connection() as connection:  # Core: no ORM session per request
            limited = self.spend(connection, kind, client_id)
        if limited is not None:
            raise self.refused(limited)

    def spend(self, connection: Connection, kind: str, client_id: str) -> RateLimited | None:
        """Spend one of `client_id`'s `kind` tokens in the caller's write transaction,
        which must commit also when refused. Returns None, or the `RateLimited` to pass
        to `refused` once that transaction has ended."""
        limit = self.limits[kind]
        now = self.clock()
        wait = buckets.take(connection, f"{kind}:{client_id}", limit, now)
        if random.random() < PURGE_PROBABILITY:  # noqa: S311 - housekeeping, not security
            buckets.purge_idle(connection, now)
        if wait <= 0:
            return None
        return RateLimited(buckets.retry_after_seconds(wait), kind, client_id)

    def refused(self, limited: RateLimited) -> RateLimited:
        """Report a refusal (`on_limited`: a metric and an audit entry of its own, so
        never inside the bucket's transaction) and return it, to raise."""
        if self.on_limited is not None:
            self.on_limited(limited.client, limited.kind)
        return limited
