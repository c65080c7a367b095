"""Audit entries of rate-limit hits (429), bounded so that a flood cannot write the log.

Per client and endpoint kind, the hits of one minute are counted in this process and an
entry `request.rate-limited` is written at the 1st, 10th, 100th, … hit, carrying how
many hits it stands for since the previous one (`detail.count`). So the first hit of a
minute always shows, a flood costs a handful of entries, and the privacy officer's
chart of hits per client (`/figures`) adds the counts up. /metrics counts every hit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from gateway.actors import Actor
from gateway.audit.entries import AuditEvent
from gateway.audit.service import write_entry
from gateway.db import Database
from gateway.logs import get_logger

log = get_logger(__name__)

ACTION = "request.rate-limited"
_MILESTONES = frozenset(10**k for k in range(10))


class RateLimitAudit:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._lock = threading.Lock()
        self._minute: int | None = None
        #: (client, kind) -> (hits this minute, hits already written)
        self._seen: dict[tuple[str, str], tuple[int, int]] = {}

    def record(self, client: str, kind: str) -> None:
        """Count one hit; write an entry when the count reaches a milestone."""
        minute = int(self.clock() // 60)
        with self._lock:
            if minute != self._minute:
                self._minute, self._seen = minute, {}
            count, written = self._seen.get((client, kind), (0, 0))
            count += 1
            due = count in _MILESTONES
            self._seen[(client, kind)] = (count, count if due else written)
        if not due:
            return
        actor = Actor(type="anonymous" if client == "anonymous" else "client", id=client)
        event = AuditEvent(
            action=ACTION,
            outcome="denied",
            actor=actor,
            resource_type="rate-limit",
            resource_id=kind,
            detail={"endpoint": kind, "count": count - written},
        )
        try:
            write_entry(self.db, event, datetime.now(UTC))
        except Exception as exc:  # the 429 still goes out; the log line says what was lost
            log.error("rate-limit hit not audited", error=type(exc).__name__)
