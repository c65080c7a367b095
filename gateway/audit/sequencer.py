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
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from gateway.audit import rfc9162
from gateway.audit.models import AuditCheckpointRow, AuditEntryRow, AuditNodeRow
from gateway.audit.note import Checkpoint, VerifierKey, origin_for, sign_note
from gateway.audit.tree import read_nodes
from gateway.crypto import ed25519
from gateway.db import Database, try_advisory_xact_lock
from gateway.jobs import BackgroundJob
from gateway.keys import KeyPurpose, KeyStore, KeyStoreError
from gateway.ops.metrics import Backlog

#: Entries per batch (and so per checkpoint): large enough that a backlog is absorbed
#: at thousands per second, small enough that a batch holds SQLite's write lock briefly.
MAX_BATCH = 1024
BATCH_INTERVAL = 0.25  # seconds
#: Advisory lock id of the audit sequencer ("ketenpoort audit" folded into 63 bits).
ADVISORY_LOCK_ID = 0x6B65_7465_6E61_7564


_ENTRIES = cast(Table, AuditEntryRow.__table__)
_NODES = cast(Table, AuditNodeRow.__table__)
_CHECKPOINTS = cast(Table, AuditCheckpointRow.__table__)
#: (levels, idxs, hashes) of new Merkle nodes, as columns.
_Nodes = tuple[list[int], list[int], list[bytes]]
_PG_ASSIGN = text(
    "UPDATE audit_entries AS e SET seq = :start + v.n - 1 "
    "FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS v(id, n) WHERE e.id = v.id"
)
_PG_NODES = text(
    "INSERT INTO audit_tree_nodes (level, idx, hash) SELECT * FROM unnest("
    "CAST(:levels AS smallint[]), CAST(:idxs AS bigint[]), CAST(:hashes AS bytea[]))"
)
_SQLITE_ASSIGN = "UPDATE audit_entries SET seq = ? WHERE id = ?"
_SQLITE_NODES = "INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (?, ?, ?)"


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
            select(_ENTRIES.c.id).where(_ENTRIES.c.seq.is_(None)).limit(1)
        ).first()
        session.rollback()
    return found is not None


class SequencerState:
    """What one sequencer remembers between its batches: the tree's right edge after the
    last batch it signed, keyed by that checkpoint's size and root.

    The next batch then need not read the edge back; when another process has sequenced
    in between, the latest checkpoint differs and the edge is read from the store.
    """

    __slots__ = ("edge", "root", "size")

    def __init__(self) -> None:
        self.size = -1
        self.root = b""
        self.edge: list[bytes] = []

    def edge_for(self, size: int, root: bytes | None) -> list[bytes] | None:
        return list(self.edge) if size == self.size and root == self.root else None

    def remember(self, compact: rfc9162.CompactRange, root: bytes) -> None:
        self.size, self.root, self.edge = compact.size, root, compact.edge()


def _tree_state(session: Session) -> tuple[int | None, int, bytes | None, str | None]:
    """(the highest index given, the latest checkpoint's size, root and key id), in one
    query."""
    latest = select(_CHECKPOINTS.c.size, _CHECKPOINTS.c.root_hash).order_by(
        _CHECKPOINTS.c.id.desc()
    )
    top, size, root, kid = session.execute(
        select(
            select(func.max(_ENTRIES.c.seq)).scalar_subquery(),
            latest.with_only_columns(_CHECKPOINTS.c.size).limit(1).scalar_subquery(),
            latest.with_only_columns(_CHECKPOINTS.c.root_hash).limit(1).scalar_subquery(),
            latest.with_only_columns(_CHECKPOINTS.c.key_id).limit(1).scalar_subquery(),
        )
    ).one()
    return top, (size or 0), (bytes(root) if root is not None else None), kid


def _store(session: Session, ids: list[int], start: int, nodes: _Nodes) -> None:
    """Give `ids` the indices start, start + 1, ... and store the new Merkle nodes.

    PostgreSQL: one statement each (arrays unnested server-side), not a statement per
    row; SQLite, in-process: the driver's executemany with plain tuples (SQLAlchemy's
    per-row parameter handling cost more than SQLite's own work).
    """
    levels, idxs, hashes = nodes
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_ASSIGN, {"ids": ids, "start": start})
        session.execute(_PG_NODES, {"levels": levels, "idxs": idxs, "hashes": hashes})
        return
    connection = session.connection()
    connection.exec_driver_sql(
        _SQLITE_ASSIGN, [(start + n, row_id) for n, row_id in enumerate(ids)]
    )
    connection.exec_driver_sql(_SQLITE_NODES, list(zip(levels, idxs, hashes, strict=True)))


def sequence_batch(
    db: Database,
    signer: CheckpointSigner,
    *,
    max_batch: int = MAX_BATCH,
    now: datetime | None = None,
    state: SequencerState | None = None,
) -> Batch | None:
    """Sequence up to `max_batch` pending entries and sign a checkpoint; None if idle.

    `state` (kept by a sequencer across its batches) saves reading the tree's edge back.
    """
    if db.is_sqlite and not has_pending(db):
        return None  # idle: do not take SQLite's write lock for nothing
    with db.session(write=True) as session:
        if not try_advisory_xact_lock(session, ADVISORY_LOCK_ID):  # per schema
            session.rollback()
            return None
        rows = session.execute(
            select(_ENTRIES.c.id, _ENTRIES.c.leaf_hash, _ENTRIES.c.data)
            .where(_ENTRIES.c.seq.is_(None))
            .order_by(_ENTRIES.c.id)
            .limit(max_batch)
        ).all()
        if not rows:
            session.rollback()
            return None
        top, size, latest_root, latest_kid = _tree_state(session)
        signer = signer.current()  # under the lock: a rotation anywhere is followed
        if (top + 1 if top is not None else 0) != size:
            raise SequencerError(
                f"entries end at index {top} but the last checkpoint has size {size}"
            )
        known = state.edge_for(size, latest_root) if state is not None else None
        if known is None:
            edge_ids = rfc9162.right_edge(size)
            stored = read_nodes(session, edge_ids)
            known = [stored[node] for node in edge_ids]
        levels: list[int] = []
        idxs: list[int] = []
        hashes: list[bytes] = []

        def on_node(level: int, idx: int, digest: bytes) -> None:
            levels.append(level)
            idxs.append(idx)
            hashes.append(digest)

        compact = rfc9162.CompactRange(size, known, on_node=on_node)
        if latest_root is not None and compact.root() != latest_root:
            raise SequencerError(f"stored tree of size {size} does not match its checkpoint")
        ids: list[int] = []
        for row_id, stored_leaf, data in rows:
            leaf = rfc9162.leaf_hash(data)
            if leaf != stored_leaf:
                raise SequencerError(f"audit row {row_id}: leaf hash does not match its bytes")
            ids.append(row_id)
            compact.append(leaf)
        _store(session, ids, size, (levels, idxs, hashes))
        root = compact.root()
        session.execute(
            insert(_CHECKPOINTS),
            {
                "size": compact.size,
                "root_hash": root,
                "note": signer.sign(compact.size, root, previous_kid=latest_kid),
                "key_id": signer.kid,
                "created_at": now or datetime.now(UTC),
            },
        )
        session.commit()
    if state is not None:
        state.remember(compact, root)
    db.checkpoint_wal()  # SQLite: here, not in some writer's commit under the write lock
    return Batch(len(rows), compact.size, root)


def pause_after(
    count: int, *, max_batch: int = MAX_BATCH, interval: float = BATCH_INTERVAL
) -> float:
    """The wait before the next batch after one of `count` entries: the interval less the
    share of a full batch that this one filled (a full batch: none at all). A quiet log
    still gets at most one checkpoint per interval; a steady stream is sequenced sooner
    the faster it runs (at 4,000 entries/s in batches of ~500 every ~0.13 s) instead of
    waiting the whole interval and then falling behind."""
    return interval * max(0.0, 1.0 - count / max_batch)


def sequence_pending(
    db: Database,
    signer: CheckpointSigner,
    *,
    max_batch: int = MAX_BATCH,
    max_batches: int | None = None,
) -> int:
    """Sequence until nothing is pending (or `max_batches`); returns how many entries."""
    total = batches = 0
    state = SequencerState()
    while max_batches is None or batches < max_batches:
        batch = sequence_batch(db, signer, max_batch=max_batch, state=state)
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
        self._state = SequencerState()
        self._last = 0  # entries in the last batch

    def step(self) -> bool:
        # the signer follows the key store at each signing (`CheckpointSigner.current`);
        # reloading it here too only keeps it from lagging far behind
        if self._signer is None or time.monotonic() - self._loaded > 60:
            self._signer, self._loaded = self._signer_factory(), time.monotonic()
        batch = sequence_batch(self._db, self._signer, max_batch=self._max_batch, state=self._state)
        self._last = batch.count if batch is not None else 0
        return self._last >= self._max_batch

    def pause(self) -> float:
        return pause_after(self._last, max_batch=self._max_batch, interval=self._interval)


_UNSEQUENCED = select(func.count(), func.min(AuditEntryRow.created_at)).where(
    AuditEntryRow.seq.is_(None)
)


def sequencing_backlog(db: Database) -> Backlog:
    """Committed entries without an index yet (not provable), and the oldest one's
    moment: for `/metrics`."""
    with db.read_connection() as connection:
        waiting, oldest = connection.execute(_UNSEQUENCED).one()
    return Backlog(waiting=waiting, oldest=oldest)
