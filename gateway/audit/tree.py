"""The stored Merkle tree: roots and proofs from stored nodes, O(log n) reads each.

Every complete subtree is a row in `audit_tree_nodes`; a proof needs at most one
incomplete subtree (the right edge), itself made of O(log n) complete ones. We find the
node ids with a dry run of the pure RFC 9162 code, read them in one query, then build.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from gateway.audit import rfc9162
from gateway.audit.models import AuditCheckpointRow, AuditNodeRow
from gateway.audit.rfc9162 import NodeId, NodeSource

T = TypeVar("T")


class TreeCorrupt(RuntimeError):
    """A node the tree should hold is missing: the store was altered."""


def read_nodes(session: Session, ids: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """The stored hashes of `ids`, in one query (grouped by level, so that SQLite, which
    scans for a row-value IN, uses the primary key)."""
    by_level: dict[int, list[int]] = defaultdict(list)
    for level, idx in set(ids):
        by_level[level].append(idx)
    if not by_level:
        return {}
    node = AuditNodeRow
    rows = session.execute(
        select(node.level, node.idx, node.hash).where(
            or_(
                *(and_(node.level == level, node.idx.in_(idxs)) for level, idxs in by_level.items())
            )
        )
    )
    found: dict[NodeId, bytes] = {(level, idx): digest for level, idx, digest in rows}
    wanted = sum(len(v) for v in by_level.values())
    if len(found) != wanted:
        missing = {(lv, ix) for lv, ixs in by_level.items() for ix in ixs} - set(found)
        raise TreeCorrupt(f"{len(missing)} Merkle node(s) missing, e.g. {min(missing)}")
    return found


def _with_nodes(session: Session, build: Callable[[NodeSource], T]) -> T:
    nodes = read_nodes(session, rfc9162.needed_nodes(build))
    return build(lambda level, index: nodes[(level, index)])


def stored_root(session: Session, size: int) -> bytes:
    return _with_nodes(session, lambda node: rfc9162.tree_root(size, node))


def stored_inclusion_proof(session: Session, index: int, size: int) -> list[bytes]:
    return _with_nodes(session, lambda node: rfc9162.inclusion_proof(index, size, node))


def stored_consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    return _with_nodes(session, lambda node: rfc9162.consistency_proof(first, second, node))


def latest_checkpoint(session: Session) -> AuditCheckpointRow | None:
    return session.execute(
        select(AuditCheckpointRow).order_by(AuditCheckpointRow.id.desc()).limit(1)
    ).scalar_one_or_none()
