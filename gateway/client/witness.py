"""The partner as a witness of the audit log.

A partner keeps the receipts of its own writes and the last checkpoint it saw. Each
`verify()` proves, with the log's public key alone, that every receipt is in the log
(RFC 9162 inclusion) and that the log only grew since the last look (consistency).
A meldpunt that rewrote or forked its log would have to fool every partner at once.
Only the pure hashing and note rules are shared with the gateway's writer.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from gateway.audit.note import Checkpoint as SignedCheckpoint
from gateway.audit.note import (
    KeyLink,
    NoteError,
    VerifierKey,
    follow_key_chain,
    open_checkpoint,
)
from gateway.audit.rfc9162 import ProofError, verify_consistency, verify_inclusion
from gateway.client.errors import WitnessError
from gateway.client.state import Checkpoint, ClientState


@dataclass(frozen=True)
class WitnessReport:
    checkpoint_size: int
    checkpoint_verified: bool
    consistent_with_previous: bool | None  # None on the first look
    receipts_verified: int
    receipts_pending: int

    def as_json(self) -> dict[str, Any]:
        return {
            "checkpointSize": self.checkpoint_size,
            "checkpointVerified": self.checkpoint_verified,
            "consistentWithPrevious": self.consistent_with_previous,
            "receiptsVerified": self.receipts_verified,
            "receiptsPending": self.receipts_pending,
        }


def open_signed_checkpoint(note: str, key_text: str) -> SignedCheckpoint:
    try:
        return open_checkpoint(note, [VerifierKey.parse(key_text)])
    except NoteError as exc:
        raise WitnessError(f"the checkpoint's signature does not verify: {exc}") from exc


def rotation_path(pinned: str, body: dict[str, Any]) -> list[KeyLink]:
    """The links of `GET /v1/audit/key-chain` a witness that pinned `pinned` may follow
    (each first checkpoint co-signed by the key in force); `WitnessError` when none."""
    try:
        trusted = VerifierKey.parse(pinned)
        links = [
            KeyLink(VerifierKey.parse(item["key"]), item.get("checkpoint"))
            for item in body.get("keys", [])
        ]
    except (NoteError, KeyError, TypeError) as exc:
        raise WitnessError(f"the gateway's key chain is malformed: {exc}") from exc
    path = follow_key_chain(trusted, links, origin=trusted.name)
    if not path:
        raise WitnessError(
            "the log's checkpoint is signed by a key this partner does not know, and no "
            "checkpoint co-signed by the pinned key hands over to it: refusing (an unknown "
            f"key; pinned {pinned.strip()})"
        )
    return path


def check_growth(state: ClientState, new: SignedCheckpoint, proof: list[str] | None) -> bool | None:
    """Raise `WitnessError` unless `new` extends the checkpoint kept in `state`."""
    old = state.checkpoint
    if old is None:
        return None
    old_root = base64.b64decode(old.root)
    if new.size < old.size:
        raise WitnessError(f"the log shrank from {old.size} to {new.size} entries")
    if new.size == old.size:
        if new.root != old_root:
            raise WitnessError(f"two different logs of {new.size} entries: the log forked")
        return True
    try:
        verify_consistency(
            old.size, new.size, [base64.b64decode(h) for h in proof or []], old_root, new.root
        )
    except (ProofError, ValueError) as exc:
        raise WitnessError(
            f"the log of {new.size} entries does not extend the one of {old.size} "
            f"this partner saw before: {exc}"
        ) from exc
    return True


def check_inclusion(leaf_b64: str, checkpoint: SignedCheckpoint, proof: dict[str, Any]) -> int:
    try:
        verify_inclusion(
            int(proof["index"]),
            checkpoint.size,
            base64.b64decode(leaf_b64),
            [base64.b64decode(h) for h in proof["hashes"]],
            checkpoint.root,
        )
    except (ProofError, ValueError, KeyError) as exc:
        raise WitnessError(f"receipt {leaf_b64} is not in the signed log: {exc}") from exc
    return int(proof["index"])


def keep(state: ClientState, note: str, checkpoint: SignedCheckpoint) -> None:
    state.checkpoint = Checkpoint(
        origin=checkpoint.origin,
        size=checkpoint.size,
        root=base64.b64encode(checkpoint.root).decode(),
        note=note,
    )
