"""Blind evaluation; no Flask here.

A blind partner derives its match keys, blinds each (`oprf.blind`, OPRF-mode
HashToGroup: see `gateway.crypto.oprf` "VOPRF mode"), asks the gateway to evaluate the
blinded elements, checks the proof against the published key, unblinds, and submits
the elements as `matchKeys` by family; `gateway.pseudonyms.blind_input` checks those
(re-exported here).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.pseudonyms import Pseudonymiser
from gateway.pseudonyms.blind_input import (
    MAX_PER_FAMILY,
    MSG_ELEMENT,
    MSG_EMPTY,
    MSG_FAMILY,
    MSG_MANY,
    MSG_NOT_OBJECT,
    MSG_ONE,
    OprfKeyChanged,
    decode_element,
    pseudonyms_from_match_keys,
)

__all__ = [
    "MAX_ELEMENTS",
    "MAX_PER_FAMILY",
    "MODE",
    "MSG_ELEMENT",
    "MSG_EMPTY",
    "MSG_FAMILY",
    "MSG_MANY",
    "MSG_NOT_OBJECT",
    "MSG_ONE",
    "SUITE",
    "Evaluation",
    "OprfKeyChanged",
    "PublicKey",
    "decode_element",
    "encode",
    "evaluate",
    "pseudonyms_from_match_keys",
    "public_key",
]

SUITE = "ristretto255-SHA512"
MODE = "voprf"
#: Most blinded elements per evaluation request: every family of one signal (the
#: deletion-neighbour families bound themselves at 17 keys each) with room to spare.
MAX_ELEMENTS = 64


def encode(element: bytes) -> str:
    return base64.urlsafe_b64encode(element).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    public_key: bytes


def public_key(pseudonymiser: Pseudonymiser) -> PublicKey:
    return PublicKey(pseudonymiser.kid or "", pseudonymiser.public_key)


@dataclass(frozen=True)
class Evaluation:
    key_id: str
    evaluated: list[bytes]
    proof: bytes


def evaluate(
    pseudonymiser: Pseudonymiser,
    key_id: str,
    blinded: Sequence[bytes],
    previous: Callable[[str], Pseudonymiser | None] = lambda _kid: None,
) -> Evaluation:
    """Evaluate under the key `key_id` names with one batched proof: the active key, or
    (`previous`) the one it just replaced, whose results a submission moves to the
    active key; 409 for any other key."""
    key = pseudonymiser if key_id == (pseudonymiser.kid or "") else previous(key_id)
    if key is None:
        raise OprfKeyChanged("Fetch GET /v1/oprf/key again and blind for the current key.")
    evaluated, proof = key.blind_evaluate_batch(list(blinded))
    return Evaluation(key_id, evaluated, proof)
