"""RFC 9162 §2.1 Merkle tree hashing, proofs and their verification; pure, no I/O.

Shared by the writer (which computes proofs from stored nodes) and the verifier (which
recomputes everything from entry bytes), and nothing else is shared between them.

Node ids are `(level, index)`: the complete subtree of 2**level leaves starting at
leaf `index * 2**level`. Proof construction asks a `NodeSource` only for such complete
subtrees, so a store that keeps every complete node answers with O(log n) reads; use
`needed_nodes` first to fetch them in one query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
#: MTH({}) = SHA-256() (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]
#: Returns the hash of the complete subtree `(level, index)`.
NodeSource = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof does not verify, or its inputs are malformed."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _lsb(value: int) -> bool:
    return bool(value & 1)


# --- building roots and proofs -------------------------------------------------------


def range_root(lo: int, hi: int, node: NodeSource) -> bytes:
    """MTH(D[lo:hi]) for a range that occurs in the RFC's recursion from a root."""
    n = hi - lo
    if n <= 0:
        raise ValueError("empty range")
    if n & (n - 1) == 0 and lo % n == 0:
        return node(n.bit_length() - 1, lo // n)
    k = _split(n)
    return node_hash(range_root(lo, lo + k, node), range_root(lo + k, hi, node))


def tree_root(size: int, node: NodeSource) -> bytes:
    return EMPTY_ROOT if size == 0 else range_root(0, size, node)


def inclusion_proof(index: int, size: int, node: NodeSource) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise ValueError("index must be in [0, size)")
    path: list[bytes] = []

    def walk(m: int, lo: int, hi: int) -> None:
        n = hi - lo
        if n == 1:
            return
        k = _split(n)
        if m < k:
            walk(m, lo, lo + k)
            path.append(range_root(lo + k, hi, node))
        else:
            walk(m - k, lo + k, hi)
            path.append(range_root(lo, lo + k, node))

    walk(index, 0, size)
    return path


def consistency_proof(first: int, second: int, node: NodeSource) -> list[bytes]:
    """PROOF(first, D[0:second]) (RFC 9162 §2.1.4.1); empty when first == second."""
    if not 0 < first <= second:
        raise ValueError("need 0 < first <= second")
    if first == second:
        return []
    proof: list[bytes] = []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> None:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(range_root(lo, hi, node))
            return
        k = _split(n)
        if m <= k:
            subproof(m, lo, lo + k, complete)
            proof.append(range_root(lo + k, hi, node))
        else:
            subproof(m - k, lo + k, hi, False)
            proof.append(range_root(lo, lo + k, node))

    subproof(first, 0, second, True)
    return proof


def needed_nodes(build: Callable[[NodeSource], object]) -> set[NodeId]:
    """The complete-subtree ids `build` will ask for, found by a dry run."""
    wanted: set[NodeId] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(HASH_SIZE)

    build(record)
    return wanted


# --- appending: the right edge of a tree ---------------------------------------------


def right_edge(size: int) -> list[NodeId]:
    """The complete subtrees along the right edge of a tree of `size`, left to right."""
    edge: list[NodeId] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            edge.append((level, start >> level))
            start += 1 << level
    return edge


class CompactRange:
    """The right edge of a growing tree: append leaves, read the root at any size.

    Reports every complete node it makes through `on_node`, so the writer can store them.
    """

    __slots__ = ("_on_node", "_stack", "size")

    def __init__(
        self,
        size: int = 0,
        edge: Sequence[bytes] = (),
        on_node: Callable[[int, int, bytes], None] | None = None,
    ) -> None:
        levels = [level for level, _ in right_edge(size)]
        if len(levels) != len(edge):
            raise ValueError("edge does not match size")
        self.size = size
        self._stack: list[tuple[int, bytes]] = list(zip(levels, edge, strict=True))
        self._on_node = on_node

    def append(self, leaf: bytes) -> None:
        index = self.size
        level, digest = 0, leaf
        if self._on_node is not None:
            self._on_node(0, index, digest)
        stack = self._stack
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            digest = node_hash(left, digest)
            level += 1
            index >>= 1
            if self._on_node is not None:
                self._on_node(level, index, digest)
        stack.append((level, digest))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest

    def edge(self) -> list[bytes]:
        return [digest for _, digest in self._stack]


def root_of(leaves: Iterable[bytes]) -> bytes:
    """MTH of leaf hashes, in one pass with O(log n) memory."""
    compact = CompactRange()
    for leaf in leaves:
        compact.append(leaf)
    return compact.root()


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -----------------------------------


def _check_hashes(proof: Sequence[bytes]) -> None:
    if any(len(h) != HASH_SIZE for h in proof):
        raise ProofError("proof hashes must be 32 bytes")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    if size <= 0 or not 0 <= index < size:
        raise ProofError("index out of range for tree size")
    if len(leaf) != HASH_SIZE:
        raise ProofError("leaf hash must be 32 bytes")
    _check_hashes(proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("proof is too long")
        if _lsb(fn) or fn == sn:
            r = node_hash(p, r)
            if not _lsb(fn):
                while not _lsb(fn) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise `ProofError` unless `leaf` is at `index` in the tree of `size` with `root`."""
    if len(root) != HASH_SIZE:
        raise ProofError("root must be 32 bytes")
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> None:
    """Raise `ProofError` unless the tree (second, second_root) extends (first, first_root)."""
    if first < 0 or second < first:
        raise ProofError("need 0 <= first <= second")
    if first == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if first == second:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if first_root != second_root:
            raise ProofError("roots of equal sizes differ")
        return
    if not proof:
        raise ProofError("empty proof")
    _check_hashes(proof)
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while _lsb(fn):
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is too long")
        if _lsb(fn) or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not _lsb(fn):
                while not _lsb(fn) and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is too short")
    if fr != first_root:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("consistency proof does not lead to the second root")
