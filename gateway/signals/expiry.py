"""Retention: signals past their category's retention period expire.

A signal stops matching at `expiresAt` (the match lookup checks the time); expiry makes
it final — payload and pseudonyms are deleted and each expiry is an audit entry by the
system; the coordinator (and the owner) are told by the matching-outbox processor. A
background thread does this every minute in every gateway process (safe: each expiry
locks the signal rows it changes and re-checks the status); `ketenpoort signals
expire` does it on demand.
"""

from __future__ import annotations

from datetime import datetime

from gateway.actors import SYSTEM
from gateway.audit import AuditEvent, record_event
from gateway.db import Database
from gateway.jobs import BackgroundJob
from gateway.logs import get_logger
from gateway.policy.engine import PolicyEngine
from gateway.signals.service import expire_due

log = get_logger(__name__)

INTERVAL_SECONDS = 60.0
BATCH = 500


def expire_signals(db: Database, engine: PolicyEngine, now: datetime | None = None) -> int:
    """Expire every signal past its retention, in batches; returns how many expired."""
    total = 0
    while True:
        with db.transaction() as session:
            removals = expire_due(session, now, limit=BATCH)
            for removal in removals:
                category = engine.category(removal.signal.category)
                record_event(
                    session,
                    AuditEvent(
                        action="signal.expire",
                        outcome="success",
                        actor=SYSTEM,
                        resource_type="signal",
                        resource_id=removal.signal.id,
                        subjects=removal.subjects,
                        processing_activity=str(category.processing_activity) if category else None,
                        policy_digest=engine.digest,
                    ),
                )
        if not removals:
            return total
        total += len(removals)


class ExpiryJob(BackgroundJob):
    """Runs `expire_signals` every minute."""

    name = "signal-expiry"

    def __init__(self, db: Database, engine: PolicyEngine, interval: float = INTERVAL_SECONDS):
        super().__init__(interval)
        self._db = db
        self._engine = engine

    def step(self) -> bool:
        expired = expire_signals(self._db, self._engine)
        if expired:
            log.info("signals expired", count=expired)
        return False
