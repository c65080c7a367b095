"""The sequencer: contiguous indices for committed entries, in batches, each batch
ending in a signed checkpoint — all in one transaction.

One sequencer at a time: on PostgreSQL a transaction-scoped advisory lock (a second
process simply skips its turn); on SQLite BEGIN IMMEDIATE, which serialises writers.
Entries are taken in the order of their row id among those committed and visible, so
an index once given never changes; there are no gaps because indices come only from
here, counting on from the last checkpoint.

Every gateway process runs one in a background thread (`start_background`); tests and
the CLI call `sequence_pending` directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from gateway.audit import rfc9162
from gateway.audit.models import AuditCheckpointRow, AuditEntryRow, AuditNodeRow
from gateway.audit.note import Checkpoint, VerifierKey, origin_for, sign_note
from gateway.audit.tree import latest_checkpoint, read_nodes
from gateway.crypto import ed25519
from gateway.db import Database, try_advisory_xact_lock
from gateway.jobs import BackgroundJob
from gateway.keys import KeyPurpose, KeyStore, KeyStoreError

MAX_BATCH = 256
BATCH_INTERVAL = 0.25  # seconds
#: Advisory lock id of the audit sequencer ("ketenpoort audit" folded into 63 bits).
ADVISORY_LOCK_ID = 0x6B65_7465_6E61_7564


class SequencerError(RuntimeError):
    """The log's stored state is inconsistent; the sequencer refuses to extend it."""


@dataclass(frozen=True)
class CheckpointSigner:
    """Signs checkpoints for one origin with the key store's Ed25519 checkpoint key.

    With the key store at hand (`keys`), the sequencer signs with whatever key is active
    when it signs (`current()`, under the sequencer lock, so a rotation in any process is
    followed at once), and the first checkpoint under a new key is co-signed by the key
    of the checkpoint before it: the rotation chain a witness follows."""

    origin: str
    kid: str
    private_jwk: dict[str, Any] = field(repr=False)
    keys: KeyStore | None = field(default=None, repr=False, compare=False)

    @property
    def verifier_key(self) -> VerifierKey:
        return VerifierKey(self.origin, ed25519.public_key_bytes(self.private_jwk))

    def current(self) -> CheckpointSigner:
        """This signer, or one for the key store's active key if that changed since."""
        if self.keys is None:
            return self
        record = self.keys.active(KeyPurpose.AUDIT_CHECKPOINT)
        if record.kid == self.kid:
            return self
        return CheckpointSigner(
            self.origin, record.kid, self.keys.private_jwk(record.kid), self.keys
        )

    def sign(self, size: int, root: bytes, *, previous_kid: str | None = None) -> str:
        """The signed checkpoint; co-signed by `previous_kid` (the key of the checkpoint
        before it) when that is another checkpoint key this store holds."""
        more = []
        if previous_kid and previous_kid != self.kid and self.keys is not None:
            try:
                if self.keys.get(previous_kid).purpose is KeyPurpose.AUDIT_CHECKPOINT:
                    more.append(self.keys.private_jwk(previous_kid))
            except KeyStoreError:
                pass  # not in this store (e.g. a restored log under other keys): sign alone
        text = Checkpoint(self.origin, size, root).text()
        return sign_note(text, self.origin, self.private_jwk, *more)


def signer_from(keys: KeyStore, issuer: str) -> CheckpointSigner:
    record = keys.active(KeyPurpose.AUDIT_CHECKPOINT)
    return CheckpointSigner(origin_for(issuer), record.kid, keys.private_jwk(record.kid), keys)


def verifier_keys(keys: KeyStore, issuer: str) -> list[VerifierKey]:
    """Every checkpoint key the store holds, active and retired (old checkpoints stay valid)."""
    origin = origin_for(issuer)
    return [
        VerifierKey(origin, ed25519.public_key_bytes(r.public_jwk))
        for r in keys.records(KeyPurpose.AUDIT_CHECKPOINT)
        if r.public_jwk is not None
    ]


@dataclass(frozen=True)
class Batch:
    count: int
    size: int
    root: bytes


def has_pending(db: Database) -> bool:
    with db.session() as session:
        found = session.execute(
            select(AuditEntryRow.id).where(AuditEntryRow.seq.is_(None)).limit(1)
        ).first()
        session.rollback()
    return found is not None


def sequence_batch(
    db: Database,
    signer: CheckpointSigner,
    *,
    max_batch: int = MAX_BATCH,
    now: datetime | None = None,
) -> Batch | None:
    """Sequence up to `max_batch` pending entries and sign a checkpoint; None if idle."""
    if not has_pending(db):
        return None
    with db.session(write=True) as session:
        if not try_advisory_xact_lock(session, ADVISORY_LOCK_ID):  # per schema
            session.rollback()
            return None
        rows = session.execute(
            select(AuditEntryRow.id, AuditEntryRow.leaf_hash, AuditEntryRow.data)
            .where(AuditEntryRow.seq.is_(None))
            .order_by(AuditEntryRow.id)
            .limit(max_batch)
        ).all()
        if not rows:
            session.rollback()
            return None
        latest = latest_checkpoint(session)
        signer = signer.current()  # under the lock: a rotation anywhere is followed
        size = latest.size if latest is not None else 0
        top = session.execute(select(func.max(AuditEntryRow.seq))).scalar_one()
        if (top + 1 if top is not None else 0) != size:
            raise SequencerError(
                f"entries end at index {top} but the last checkpoint has size {size}"
            )
        edge_ids = rfc9162.right_edge(size)
        stored = read_nodes(session, edge_ids)
        nodes: list[dict[str, Any]] = []
        compact = rfc9162.CompactRange(
            size,
            [stored[node] for node in edge_ids],
            on_node=lambda level, idx, digest: nodes.append(
                {"level": level, "idx": idx, "hash": digest}
            ),
        )
        if latest is not None and compact.root() != latest.root_hash:
            raise SequencerError(f"stored tree of size {size} does not match its checkpoint")
        assignments = []
        for row_id, stored_leaf, data in rows:
            leaf = rfc9162.leaf_hash(data)
            if leaf != stored_leaf:
                raise SequencerError(f"audit row {row_id}: leaf hash does not match its bytes")
            assignments.append({"id": row_id, "seq": compact.size})
            compact.append(leaf)
        session.execute(update(AuditEntryRow), assignments)
        session.execute(insert(AuditNodeRow), nodes)
        root = compact.root()
        session.add(
            AuditCheckpointRow(
                size=compact.size,
                root_hash=root,
                note=signer.sign(
                    compact.size, root, previous_kid=latest.key_id if latest else None
                ),
                key_id=signer.kid,
                created_at=now or datetime.now(UTC),
            )
        )
        session.commit()
    return Batch(len(rows), compact.size, root)


def sequence_pending(
    db: Database,
    signer: CheckpointSigner,
    *,
    max_batch: int = MAX_BATCH,
    max_batches: int | None = None,
) -> int:
    """Sequence until nothing is pending (or `max_batches`); returns how many entries."""
    total = batches = 0
    while max_batches is None or batches < max_batches:
        batch = sequence_batch(db, signer, max_batch=max_batch)
        if batch is None:
            break
        total += batch.count
        batches += 1
    return total


class BackgroundSequencer(BackgroundJob):
    """Sequences every `interval` seconds (sooner when busy); the signer is reloaded each
    minute; each signing checks the key store's active key anyway (`CheckpointSigner.current`)."""

    name = "audit-sequencer"

    def __init__(
        self,
        db: Database,
        signer_factory: Callable[[], CheckpointSigner],
        *,
        interval: float = BATCH_INTERVAL,
        max_batch: int = MAX_BATCH,
    ) -> None:
        super().__init__(interval)
        self._db = db
        self._signer_factory = signer_factory
        self._max_batch = max_batch
        self._signer: CheckpointSigner | None = None
        self._loaded = 0.0

    def step(self) -> bool:
        # the signer follows the key store at each signing (`CheckpointSigner.current`);
        # reloading it here too only keeps it from lagging far behind
        if self._signer is None or time.monotonic() - self._loaded > 60:
            self._signer, self._loaded = self._signer_factory(), time.monotonic()
        batch = sequence_batch(self._db, self._signer, max_batch=self._max_batch)
        return batch is not None and batch.count >= self._max_batch
