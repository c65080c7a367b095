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
from functools import partial

from gateway.errors import FieldError, InputErrors, InvalidInput
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
    "MSG_KEY_ID",
    "MSG_MANY",
    "MSG_NOT_OBJECT",
    "MSG_ONE",
    "SUITE",
    "Evaluation",
    "OprfKeyChanged",
    "PublicKey",
    "check_evaluation",
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


MSG_KEY_ID = "is not the current key or the one it replaced; fetch GET /v1/oprf/key again"


def check_evaluation(
    key_id: object,
    values: object,
    serves: Callable[[str], bool],
    refused: Sequence[FieldError] = (),
) -> list[bytes]:
    """The blinded elements of an evaluation request, decoded; every error in one 400
    (with what the schema already `refused`, whose values are not checked again).

    A `keyId` this gateway does not serve is a 409 `oprf-key-changed` on its own (the
    input was right when it was sent; `evaluate` answers it). Found alongside invalid
    input it is listed in the 400 as well (`serves`: a lookup, nothing unsealed), so one
    round trip fixes both.
    """
    found = InputErrors()
    if refused:
        found.add(InvalidInput("The request is invalid; see errors.", errors=refused))
    blinded: list[bytes] = []
    if isinstance(values, list) and not found.refused("/blindedElements"):
        for i, value in enumerate(values):
            element = found.capture(partial(decode_element, value, f"/blindedElements/{i}"))
            if element is not None:
                blinded.append(element)
    if found and isinstance(key_id, str) and not found.refused("/keyId") and not serves(key_id):
        found.add(
            InvalidInput("The keyId is not served.", errors=[FieldError("/keyId", MSG_KEY_ID)])
        )
    found.raise_if_any()
    return blinded


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
