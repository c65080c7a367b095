"""RFC 9162 Merkle code: every known-answer vector, and round-trips over random trees."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import rfc9162
from gateway.audit.rfc9162 import (
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    needed_nodes,
    node_hash,
    root_of,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from tests.shared_folder import shared_path

VECTORS = shared_path("vectors", "merkle")  # ../shared beside the repository, or an error


def _b64(value: str) -> bytes:
    return base64.b64decode(value) if value else b""


def _vectors(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def test_all_vectors_are_found() -> None:
    assert len(_vectors("inclusion")) > 50 and len(_vectors("consistency")) > 50


@pytest.mark.parametrize("path", _vectors("inclusion"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b64(h) for h in v["proof"] or []]
    run = lambda: verify_inclusion(  # noqa: E731
        v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), proof, _b64(v["root"])
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


@pytest.mark.parametrize("path", _vectors("consistency"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b64(h) for h in v["proof"] or []]
    run = lambda: verify_consistency(  # noqa: E731
        v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"])
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH straight from the RFC's recursive definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def all_nodes(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    nodes: dict[tuple[int, int], bytes] = {}
    compact = CompactRange(on_node=lambda level, index, h: nodes.__setitem__((level, index), h))
    for leaf in leaves:
        compact.append(leaf)
    return nodes


def leaves_of(n: int) -> list[bytes]:
    return [leaf_hash(f"entry {i}".encode()) for i in range(n)]


def test_rfc_examples_and_empty_tree() -> None:
    assert tree_root(0, lambda level, index: b"") == rfc9162.EMPTY_ROOT
    assert root_of([]) == hashlib.sha256(b"").digest()
    # The first vector's single leaf: the root of a one-leaf tree is the leaf hash.
    assert root_of([leaf_hash(b"")]) == leaf_hash(b"")


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_inclusion_round_trip(size: int, data: st.DataObject) -> None:
    leaves = leaves_of(size)
    nodes = all_nodes(leaves)
    root = reference_root(leaves)
    assert tree_root(size, lambda lv, ix: nodes[(lv, ix)]) == root == root_of(leaves)
    for index in range(size):
        proof = inclusion_proof(index, size, lambda lv, ix: nodes[(lv, ix)])
        verify_inclusion(index, size, leaves[index], proof, root)
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, lambda lv, ix: nodes[(lv, ix)])
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = bytearray(proof[which])
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProofError):
            verify_inclusion(
                index, size, leaves[index], [*proof[:which], bytes(bad), *proof[which + 1 :]], root
            )
    bad_leaf = bytearray(leaves[index])
    bad_leaf[0] ^= 0x80
    with pytest.raises(ProofError):
        verify_inclusion(index, size, bytes(bad_leaf), proof, root)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_consistency_round_trip(second: int, data: st.DataObject) -> None:
    leaves = leaves_of(second)
    nodes = all_nodes(leaves)
    second_root = reference_root(leaves)
    for first in range(1, second + 1):
        proof = consistency_proof(first, second, lambda lv, ix: nodes[(lv, ix)])
        verify_consistency(first, second, proof, reference_root(leaves[:first]), second_root)
    first = data.draw(st.integers(1, second))
    proof = consistency_proof(first, second, lambda lv, ix: nodes[(lv, ix)])
    first_root = reference_root(leaves[:first])
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = bytearray(proof[which])
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProofError):
            verify_consistency(
                first,
                second,
                [*proof[:which], bytes(bad), *proof[which + 1 :]],
                first_root,
                second_root,
            )
    forked = reference_root([*leaves[: first - 1], leaf_hash(b"forked")])
    with pytest.raises(ProofError):
        verify_consistency(first, second, proof, forked, second_root)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=5000), st.data())
def test_proofs_read_few_nodes(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    first = data.draw(st.integers(1, size))
    bound = 2 * size.bit_length() + 2
    assert len(needed_nodes(lambda n: inclusion_proof(index, size, n))) <= bound
    assert len(needed_nodes(lambda n: consistency_proof(first, size, n))) <= 2 * bound
    assert len(needed_nodes(lambda n: tree_root(size, n))) <= size.bit_length()


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=40))
def test_compact_range_resumes_from_its_edge(start: int, more: int) -> None:
    leaves = leaves_of(start + more)
    nodes = all_nodes(leaves[:start])
    edge = [nodes[node] for node in rfc9162.right_edge(start)]
    resumed = CompactRange(start, edge)
    for leaf in leaves[start:]:
        resumed.append(leaf)
    assert resumed.root() == reference_root(leaves)
