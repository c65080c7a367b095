"""Blind evaluation and the acceptance of unblinded match keys; no Flask here.

A blind partner derives its match keys, blinds each (`oprf.blind`, OPRF-mode
HashToGroup: see `gateway.crypto.oprf` "VOPRF mode"), asks the gateway to evaluate the
blinded elements, checks the proof against the published key, unblinds, and submits
the elements as `matchKeys` by family. The gateway never sees a match key, so it can
only check what it receives is well-formed: known families, valid non-identity
ristretto255 encodings, bounded counts. An element the partner made up matches
nothing (finding a collision means knowing `k`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.crypto import oprf
from gateway.errors import Conflict, FieldError, InvalidInput
from gateway.pseudonyms import Pseudonymiser
from gateway.pseudonyms.matchkeys import LINKAGE_FAMILIES, MULTI_VALUED

SUITE = "ristretto255-SHA512"
MODE = "voprf"
#: Most blinded elements per evaluation request: every family of one signal (the
#: deletion-neighbour families bound themselves at 17 keys each) with room to spare.
MAX_ELEMENTS = 64
#: Most elements a multi-valued family may carry in `matchKeys`.
MAX_PER_FAMILY = 40

MSG_ELEMENT = "must be a base64url-encoded ristretto255 element (32 bytes, not the identity)"
MSG_FAMILY = "is not a key family of this gateway"
MSG_ONE = "must be one element (a string) for this family"
MSG_MANY = "must be a list of 1 to 40 elements"
MSG_EMPTY = "must name at least one key family"
MSG_NOT_OBJECT = "must be an object"


class OprfKeyChanged(Conflict):
    """The client blinded for a key that is no longer the gateway's active one."""

    slug = "oprf-key-changed"
    title = "The pseudonym key has changed"


def encode(element: bytes) -> str:
    return base64.urlsafe_b64encode(element).rstrip(b"=").decode("ascii")


def decode_element(value: object, pointer: str) -> bytes:
    """A base64url (padding optional) ristretto255 element; a 400 naming `pointer`."""
    if isinstance(value, str) and len(value) <= 64:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        try:
            oprf.check_element(raw)
        except oprf.OprfError:
            pass
        else:
            return raw
    raise InvalidInput("An element is invalid.", errors=[FieldError(pointer, MSG_ELEMENT)])


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


def evaluate(pseudonymiser: Pseudonymiser, key_id: str, blinded: Sequence[bytes]) -> Evaluation:
    """Evaluate under the active key with one batched proof; 409 if `key_id` is stale."""
    if key_id != (pseudonymiser.kid or ""):
        raise OprfKeyChanged("Fetch GET /v1/oprf/key again and blind for the current key.")
    evaluated, proof = pseudonymiser.blind_evaluate_batch(list(blinded))
    return Evaluation(key_id, evaluated, proof)


def pseudonyms_from_match_keys(
    match_keys: object, *, pointer: str = "/matchKeys"
) -> dict[str, frozenset[bytes]]:
    """Validate a submission's `matchKeys` and return its pseudonyms by family.

    `{family: element}` for single-valued families, `{family: [element, …]}` for the
    multi-valued ones (`del_dob`, `part_dob`, `xname_dob`, `names_del`). Every
    invalid entry is reported at once (400 `invalid-input`), never quoting a value.
    """
    if not isinstance(match_keys, Mapping):
        raise InvalidInput("matchKeys is invalid.", errors=[FieldError(pointer, MSG_NOT_OBJECT)])
    if not match_keys:
        raise InvalidInput("matchKeys is invalid.", errors=[FieldError(pointer, MSG_EMPTY)])
    errors: list[FieldError] = []
    found: dict[str, frozenset[bytes]] = {}
    for family, value in match_keys.items():
        if family not in LINKAGE_FAMILIES:  # the object's pointer: never echo the name
            errors.append(FieldError(pointer, MSG_FAMILY))
            continue
        where = f"{pointer}/{family}"
        if family in MULTI_VALUED:
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_PER_FAMILY:
                errors.append(FieldError(where, MSG_MANY))
                continue
            items = [(f"{where}/{i}", v) for i, v in enumerate(value)]
        elif isinstance(value, str):
            items = [(where, value)]
        else:
            errors.append(FieldError(where, MSG_ONE))
            continue
        elements: set[bytes] = set()
        for item_pointer, item in items:
            try:
                elements.add(decode_element(item, item_pointer))
            except InvalidInput as exc:
                errors.extend(exc.errors)
        if elements:
            found[family] = frozenset(elements)
    if errors:
        raise InvalidInput("matchKeys is invalid.", errors=errors)
    return found
