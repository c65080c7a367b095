"""The audit entries of reads (GET requests): apart from the read, and summarised.

A read runs in a read transaction of its own (on SQLite it never takes the write lock,
so a partner polling its feed cannot slow another's submissions); its entry is written
here, in a short write transaction, before the response goes out. Identical reads —
same actor, action, resource, purpose, detail and subjects — within one minute are
counted in this process and written at counts 1, 10, 100, … (each entry carrying the
count so far, like refusals), so the first read always says who read what, and a
flood of polls costs the log a handful of entries. Counts between two written ones are
flushed as one entry when the key's minute is over and a later read arrives.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.audit.entries import AuditEvent
from gateway.audit.service import Receipt, write_entry
from gateway.db import Database

#: Counts at which an identical read is written again.
_MILESTONES = frozenset(10**k for k in range(10))


@dataclass
class _Seen:
    event: AuditEvent
    count: int
    written: int
    receipt: Receipt


def _key(event: AuditEvent) -> str:
    return json.dumps(
        [
            event.actor.as_audit(),
            event.action,
            event.outcome,
            event.resource_type,
            event.resource_id,
            event.purpose,
            event.detail,
            sorted(s.id for s in event.subjects),
        ],
        sort_keys=True,
        default=str,
    )


class ReadAudit:
    """Writes read entries in their own transaction; one per process (the container's)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._minute: int | None = None
        self._seen: dict[str, _Seen] = {}

    def record(self, event: AuditEvent, now: datetime) -> Receipt:
        minute = int(now.timestamp() // 60)
        key = _key(event)
        with self._lock:
            leftovers: list[_Seen] = []
            if minute != self._minute:
                leftovers = [s for s in self._seen.values() if s.count > s.written]
                self._seen.clear()
                self._minute = minute
            seen = self._seen.get(key)
            count = 1 if seen is None else seen.count + 1
            if seen is not None:
                seen.count = count
        for left in leftovers:  # the rest of last minute's repeats, in one entry each
            self._write(left.event, left.count, now)
        if seen is not None and count not in _MILESTONES:
            return seen.receipt
        receipt = self._write(event, count, now)
        with self._lock:
            if seen is None:
                self._seen[key] = _Seen(event, 1, 1, receipt)
            else:
                seen.written, seen.receipt = count, receipt
        return receipt

    def _write(self, event: AuditEvent, count: int, now: datetime) -> Receipt:
        if count > 1:
            event = replace(event, detail={**event.detail, "identicalReads": count})
        return write_entry(self.db, event, now)
