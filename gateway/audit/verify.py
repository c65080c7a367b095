"""The audit-log verifier: shares nothing with the writer but the hashing rules.

It reads the log either from the database rows (plain SQL, not the writer's models) or
from a gateway's API, and with the checkpoint public key alone it
- recomputes every leaf from the entry's stored bytes (and compares it with the leaf
  hash recorded for the entry and, from the database, the stored tree's leaf),
- checks that indices run 0, 1, 2, … without gaps or repeats,
- checks every checkpoint's Ed25519 signature, that checkpoints never shrink, and that
  the root of each recomputed prefix equals the root its checkpoint signed — every
  checkpoint is the root of a prefix of the same leaf sequence, which is exactly
  consistency between consecutive checkpoints (RFC 9162 §2.1.4) shown directly,
- and names the first index where the log is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gateway.audit import rfc9162
from gateway.audit.note import (
    Checkpoint,
    KeyLink,
    NoteError,
    VerifierKey,
    checkpoint_signers,
    follow_key_chain,
    open_checkpoint,
)

Progress = Callable[[int], None]


class LogEntry(NamedTuple):
    """One entry as the verifier reads it. `verify_log` unpacks it as a plain tuple, so a
    source may yield the database driver's rows `(seq, data, recorded, tree_leaf)` as
    they come, without an object per row."""

    seq: int
    data: bytes
    #: The leaf hash recorded with the entry (the partner's receipt), if known.
    recorded_leaf: bytes | None = None
    #: The leaf as stored in the Merkle tree (database only), if known.
    tree_leaf: bytes | None = None


@dataclass(frozen=True)
class Finding:
    index: int
    problem: str


@dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0
    size: int = 0
    root: bytes = rfc9162.EMPTY_ROOT
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_bad(self) -> Finding | None:
        return min(self.findings, key=lambda f: f.index) if self.findings else None

    def as_json(self) -> dict[str, Any]:
        first = self.first_bad
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "treeSize": self.size,
            "rootHash": base64.b64encode(self.root).decode(),
            "firstBadIndex": first.index if first else None,
            "problem": first.problem if first else None,
            "seconds": round(self.seconds, 3),
            "entriesPerSecond": round(self.entries / self.seconds) if self.seconds else None,
        }


def verify_log(
    entries: Iterable[LogEntry],
    checkpoint_notes: Sequence[str],
    keys: Sequence[VerifierKey],
    *,
    origin: str | None = None,
    witnessed: Sequence[str] = (),
    progress: Progress | None = None,
    trusted: VerifierKey | None = None,
) -> Report:
    """Verify a log; `checkpoint_notes` in the order they were issued, `witnessed` any
    checkpoints held elsewhere (by a partner, an earlier run) in no particular order.

    The issued checkpoints must follow the key chain (`KeyChain`): from `trusted` (or
    the key of the first checkpoint) a new key counts only from a checkpoint that the
    key before it co-signed."""
    started = time.perf_counter()
    report = Report()
    by_size: dict[int, list[tuple[str, Checkpoint]]] = {}
    previous = 0
    issued: list[Checkpoint] = []
    chain = KeyChain(keys, trusted)
    for number, note in enumerate(checkpoint_notes, start=1):
        try:
            checkpoint, signers = checkpoint_signers(note, keys, origin=origin)
            chain.follow(signers)
        except NoteError as exc:
            report.findings.append(Finding(previous, f"checkpoint #{number}: {exc}"))
            continue
        if checkpoint.size < previous:
            report.findings.append(
                Finding(
                    checkpoint.size,
                    f"checkpoint #{number} has size {checkpoint.size}, smaller than the "
                    f"size {previous} signed before it: the log was truncated",
                )
            )
        previous = max(previous, checkpoint.size)
        issued.append(checkpoint)
        by_size.setdefault(checkpoint.size, []).append((f"checkpoint #{number}", checkpoint))
    for number, note in enumerate(witnessed, start=1):
        try:
            checkpoint = open_checkpoint(note, keys, origin=origin)
        except NoteError as exc:
            report.findings.append(Finding(0, f"witnessed checkpoint #{number}: {exc}"))
            continue
        by_size.setdefault(checkpoint.size, []).append(
            (f"witnessed checkpoint #{number}", checkpoint)
        )
    report.checkpoints = len(issued)

    # The leaves are folded into the right edge inline (what `CompactRange.append`
    # does, without a call per entry): this loop is the verifier's whole cost.
    stack: list[bytes] = []
    index = 0  # the size so far
    verified = 0  # the largest size whose root matched a checkpoint

    def root_now() -> bytes:
        return rfc9162.CompactRange(index, stack).root() if index else rfc9162.EMPTY_ROOT

    def check_roots_at(size: int) -> None:
        nonlocal verified
        root = root_now()
        matched = True
        for label, checkpoint in by_size.get(size, ()):
            if checkpoint.root != root:
                matched = False
                report.findings.append(
                    Finding(
                        verified,
                        f"{label} (size {size}) signed another root than the entries give: "
                        f"an entry at index {verified}..{size - 1} was changed, removed, "
                        "reordered or forked",
                    )
                )
        if matched and size in by_size:
            verified = size

    check_roots_at(0)
    sha256 = hashlib.sha256
    for seq, data, recorded, tree_leaf in entries:
        if seq != index:
            problem = (
                f"index {index} is missing (next is {seq})"
                if seq > index
                else f"index {seq} appears again after {index - 1}"
            )
            report.findings.append(Finding(min(index, seq), problem))
            break
        leaf = sha256(b"\x00" + data).digest()
        if recorded is not None and recorded != leaf:
            report.findings.append(
                Finding(index, f"entry {index}: its bytes do not match its recorded leaf hash")
            )
            break
        if tree_leaf is not None and tree_leaf != leaf:
            report.findings.append(
                Finding(index, f"entry {index}: not the leaf the Merkle tree holds at {index}")
            )
            break
        merges, digest = index, leaf
        while merges & 1:
            digest = sha256(b"\x01" + stack.pop() + digest).digest()
            merges >>= 1
        stack.append(digest)
        index += 1
        if index in by_size:
            check_roots_at(index)
        if progress is not None and not index & 4095:
            progress(index)
    report.entries = index
    report.size = index
    report.root = root_now()
    if progress is not None:
        progress(index)

    longest = max(by_size, default=0)
    if longest > index and not any(f.index < index for f in report.findings):
        report.findings.append(
            Finding(
                index,
                f"a checkpoint signs {longest} entries but the log has {index}: "
                f"index {index} onwards was removed",
            )
        )
    if issued and index > issued[-1].size and not report.findings:
        report.findings.append(
            Finding(
                issued[-1].size,
                f"entries from index {issued[-1].size} on are not covered by any checkpoint",
            )
        )
    report.seconds = time.perf_counter() - started
    return report


class KeyChain:
    """The checkpoint key chain, followed through checkpoints in the order they were
    issued: the key in force signs each one; a new key takes over only at a checkpoint
    the key in force co-signed (`gateway.audit.sequencer.CheckpointSigner`), after which
    only the new key counts. A checkpoint without the key in force is a `NoteError`."""

    def __init__(self, keys: Sequence[VerifierKey], trusted: VerifierKey | None = None) -> None:
        self._order = {key: position for position, key in enumerate(keys)}
        self.current = trusted

    def follow(self, signers: Sequence[VerifierKey]) -> None:
        newest = max(signers, key=lambda k: self._order.get(k, -1))
        if self.current is None:
            self.current = newest
            return
        if self.current not in signers:
            found, self.current = self.current, newest
            raise NoteError(
                f"signed by key {newest.key_hash.hex()} but not by {found.key_hash.hex()}, "
                "the key in force before it: a key change not co-signed by the old key "
                "breaks the key chain"
            )
        others = [k for k in signers if k != self.current]
        if others:
            self.current = max(others, key=lambda k: self._order.get(k, -1))


# --- sources ---------------------------------------------------------------------------


Fetch = Callable[[str, dict[str, str]], Any]


@dataclass(frozen=True)
class GatewaySource:
    """A gateway's API: `fetch(path, params)` returns text for text/plain, else JSON."""

    fetch: Fetch
    page: int = 1000

    def key(self) -> VerifierKey:
        return VerifierKey.parse(str(self.fetch("/v1/audit/key", {})))

    def checkpoint(self) -> str:
        return str(self.fetch("/v1/audit/checkpoint", {}))

    def key_chain(self) -> list[KeyLink]:
        body = self.fetch("/v1/audit/key-chain", {})
        return [
            KeyLink(VerifierKey.parse(item["key"]), item.get("checkpoint"))
            for item in body.get("keys", [])
        ]

    def entries(self, size: int) -> Iterator[LogEntry]:
        start = 0
        while start < size:
            limit = min(self.page, size - start)
            body = self.fetch("/v1/audit/entries", {"start": str(start), "limit": str(limit)})
            items = body.get("entries", [])
            if not items:
                return
            for item in items:
                if item["index"] >= size:
                    return
                yield LogEntry(
                    int(item["index"]),
                    base64.b64decode(item["data"]),
                    base64.b64decode(item["leafHash"]),
                )
            start = int(items[-1]["index"]) + 1


def requests_fetch(base_url: str, token: str | None, *, timeout: float = 30.0) -> Fetch:
    import requests

    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"

    def fetch(path: str, params: dict[str, str]) -> Any:
        response = session.get(base_url.rstrip("/") + path, params=params, timeout=timeout)
        if response.status_code != 200:
            raise VerificationUnavailable(
                f"GET {path}: HTTP {response.status_code} {response.text[:200]}"
            )
        if response.headers.get("Content-Type", "").startswith("text/plain"):
            return response.text
        return response.json()

    return fetch


class VerificationUnavailable(RuntimeError):
    """The log could not be read (network, authorisation); nothing was verified."""


def verify_gateway(
    source: GatewaySource,
    *,
    key: VerifierKey | None = None,
    witnessed: Sequence[str] = (),
    progress: Progress | None = None,
) -> Report:
    """Verify a gateway's log up to its current checkpoint (needs `audit:read`).

    With `key` (a key pinned earlier) and a gateway that signs with another key now, the
    key chain is followed from `key` (`follow_key_chain`): a key the pinned one never
    co-signed over to is refused."""
    current = source.key()
    trusted = key or current
    note = source.checkpoint()
    chain: list[KeyLink] = []
    if trusted != current:
        chain = follow_key_chain(trusted, source.key_chain(), origin=trusted.name)
        reached = chain[-1].key if chain else trusted
        if reached != current:
            report = Report()
            report.findings.append(
                Finding(
                    0,
                    f"the log is signed with key {current.text()}, which the trusted key "
                    f"{trusted.text()} never co-signed over to: an unknown key",
                )
            )
            return report
    keys = [trusted, *(link.key for link in chain)]
    try:
        size = open_checkpoint(note, keys[-1:]).size
    except NoteError as exc:
        report = Report()
        report.findings.append(Finding(0, f"current checkpoint: {exc}"))
        return report
    notes = [link.note for link in chain if link.note is not None]
    return verify_log(
        source.entries(size),
        [*notes, note],
        keys,
        origin=trusted.name,
        witnessed=witnessed,
        progress=progress,
        trusted=trusted,
    )
