"""Serialising concurrent writers that could see the same person.

Two partners submitting the same person at the same moment must produce one match, so
each transaction that stores or removes pseudonyms first takes a transaction-level lock
per pseudonym; the second one then looks up after the first one committed and finds it.

- PostgreSQL: `pg_advisory_xact_lock` on a 64-bit hash, released at commit or rollback,
  per schema (`gateway.db.advisory_xact_lock`): instances, or tests, that share one
  database in different schemas never wait for each other.
- SQLite: the database write lock, taken at BEGIN IMMEDIATE (write sessions), already
  serialises every writer; these functions do nothing there.

Locks are always taken in one global order, so two transactions never wait on each
other in a cycle: idempotency key → pseudonyms (sorted) → the cluster lock. Everything
that changes a match or writes a notification holds the cluster lock; so notification
ids are handed out in commit order and the `after` cursor never skips one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy.orm import Session

from gateway.db import advisory_xact_lock, try_advisory_xact_lock

_CLUSTER_DOMAIN = b"ketenpoort/matching/clusters"


def _key(domain: bytes, *parts: bytes) -> int:
    digest = hashlib.sha256(domain + b"".join(len(p).to_bytes(4, "big") + p for p in parts))
    return int.from_bytes(digest.digest()[:8], "big", signed=True)


def pseudonym_lock_key(family: str, element: bytes) -> int:
    return _key(b"ketenpoort/pseudonym", family.encode(), element)


def idempotency_lock_key(organisation: str, idempotency_key: str) -> int:
    return _key(b"ketenpoort/idempotency", organisation.encode(), idempotency_key.encode())


def _uses_advisory_locks(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock(session: Session, keys: Iterable[int]) -> None:
    """Take the transaction-level locks `keys`, in ascending order (PostgreSQL only)."""
    if not _uses_advisory_locks(session):
        return
    for key in sorted(set(keys)):
        advisory_xact_lock(session, key)


def lock_pseudonyms(session: Session, pseudonyms: Iterable[tuple[str, bytes]]) -> None:
    lock(session, (pseudonym_lock_key(family, element) for family, element in pseudonyms))


def lock_clusters(session: Session) -> None:
    """The lock held by every change to a match and every notification written.

    The matching-outbox processor holds it for each row it processes, so matching runs
    one signal at a time across processes (`gateway.matching.processor`).
    """
    lock(session, [_key(_CLUSTER_DOMAIN)])


def try_lock_clusters(session: Session) -> bool:
    """`lock_clusters` without waiting: False when another transaction holds it."""
    return try_advisory_xact_lock(session, _key(_CLUSTER_DOMAIN))
