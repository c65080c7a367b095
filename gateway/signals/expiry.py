"""Retention: signals past their category's retention period expire.

A signal stops matching at `expiresAt` (the match lookup checks the time); expiry makes
it final — payload and pseudonyms are deleted and each expiry is an audit entry by the
system; the coordinator (and the owner) are told by the matching-outbox processor. The
retention run (`gateway.lifecycle.retention`: a background job every minute in every
gateway process, and `ketenpoort retention run`) does this first and then erases what
expired; safe in several processes (each expiry locks the signal rows it changes and
re-checks the status). `ketenpoort signals expire` only expires.
"""

from __future__ import annotations

from datetime import datetime

from gateway.actors import SYSTEM
from gateway.audit import AuditEvent, record_event
from gateway.db import Database
from gateway.policy.engine import PolicyEngine
from gateway.signals.service import expire_due

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
