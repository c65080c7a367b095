"""`matchKeys` as a blind partner submits them: validated pseudonyms by family.

A blind partner sends the unblinded OPRF evaluations of its match keys (see
`gateway.oprf`). The gateway never sees a match key, so it can only check that what it
receives is well-formed: known families, valid non-identity ristretto255 encodings,
bounded counts. An element the partner made up matches nothing (finding a collision
means knowing `k`). Errors never quote a submitted value.

`matchKeys.keyId` names the OPRF key the elements were evaluated under (`GET
/v1/oprf/key`). A pseudonym rotation may start between a partner's evaluation and its
submission: elements under a previous key the key store still holds are moved to the
current key here (multiplied by `k'·k⁻¹`, as the rotation moves stored rows), so the
signal is neither refused nor stored under the wrong key; an unknown `keyId` is a 409
`oprf-key-changed` (evaluate again). Without `keyId` (clients from before it existed)
the elements are taken to be under the current key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping

from gateway.crypto import oprf
from gateway.errors import Conflict, FieldError, InvalidInput
from gateway.pseudonyms.matchkeys import LINKAGE_FAMILIES, MULTI_VALUED
from gateway.pseudonyms.service import Pseudonymiser

#: The member of `matchKeys` naming the OPRF key (not a key family).
KEY_ID = "keyId"
MAX_KEY_ID = 128

#: Most elements a multi-valued family may carry in `matchKeys`.
MAX_PER_FAMILY = 40

MSG_ELEMENT = "must be a base64url-encoded ristretto255 element (32 bytes, not the identity)"
MSG_FAMILY = "is not a key family of this gateway"
MSG_ONE = "must be one element (a string) for this family"
MSG_MANY = "must be an element, or a list of 1 to 40 elements"
MSG_EMPTY = "must name at least one key family"
MSG_NOT_OBJECT = "must be an object"


class OprfKeyChanged(Conflict):
    """The client blinded (or evaluated its matchKeys) for a key the gateway does not
    hold as a pseudonym key: evaluate again under the current one."""

    slug = "oprf-key-changed"
    title = "The pseudonym key has changed"


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


def pseudonyms_from_match_keys(
    match_keys: object, *, pointer: str = "/matchKeys"
) -> dict[str, frozenset[bytes]]:
    """Validate a submission's `matchKeys` and return its pseudonyms by family.

    `{family: element}` for any family (DESIGN.md's form), or `{family: [element, …]}`
    for one that may hold several (`matchkeys.MULTI_VALUED`: deletion neighbours, name
    parts, ...); a `keyId` member is not an element (`check_match_keys` reads it). Every
    invalid entry is reported at once (400 `invalid-input`), never quoting a value.
    """
    if not isinstance(match_keys, Mapping):
        raise InvalidInput("matchKeys is invalid.", errors=[FieldError(pointer, MSG_NOT_OBJECT)])
    match_keys = {f: v for f, v in match_keys.items() if f != KEY_ID}  # see check_match_keys
    if not match_keys:
        raise InvalidInput("matchKeys is invalid.", errors=[FieldError(pointer, MSG_EMPTY)])
    errors: list[FieldError] = []
    found: dict[str, frozenset[bytes]] = {}
    for family, value in match_keys.items():
        if family not in LINKAGE_FAMILIES:  # the object's pointer: never echo the name
            errors.append(FieldError(pointer, MSG_FAMILY))
            continue
        where = f"{pointer}/{family}"
        if isinstance(value, str):  # one element: any family (a list only where it may hold more)
            items = [(where, value)]
        elif (
            family in MULTI_VALUED and isinstance(value, list) and 1 <= len(value) <= MAX_PER_FAMILY
        ):
            items = [(f"{where}/{i}", v) for i, v in enumerate(value)]
        else:
            errors.append(FieldError(where, MSG_MANY if family in MULTI_VALUED else MSG_ONE))
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


def check_match_keys(
    match_keys: object, *, pointer: str = "/matchKeys"
) -> tuple[dict[str, frozenset[bytes]], str | None]:
    """A blind submission's `matchKeys` checked (`pseudonyms_from_match_keys`, and the
    form of its `keyId`), every error in one 400: the elements by family and the
    `keyId` (None: the current key). Cheap; nothing is unsealed or multiplied."""
    errors: list[FieldError] = []
    key_id: str | None = None
    if isinstance(match_keys, Mapping) and KEY_ID in match_keys:
        named = match_keys[KEY_ID]
        if isinstance(named, str) and 1 <= len(named) <= MAX_KEY_ID:
            key_id = named
        else:
            errors.append(
                FieldError(f"{pointer}/{KEY_ID}", "must be the keyId of GET /v1/oprf/key")
            )
    found: dict[str, frozenset[bytes]] = {}
    try:
        found = pseudonyms_from_match_keys(match_keys, pointer=pointer)
    except InvalidInput as exc:
        errors.extend(exc.errors)
    if errors:
        raise InvalidInput("matchKeys is invalid.", errors=errors)
    return found, key_id


def move_to_current(
    found: Mapping[str, frozenset[bytes]],
    key_id: str | None,
    current: Pseudonymiser,
    previous: Callable[[str], Pseudonymiser | None],
) -> dict[str, frozenset[bytes]]:
    """Checked elements under the `current` key: moved from the key `key_id` names when
    that is an earlier pseudonym key (`previous(kid)`, None when unknown: a 409)."""
    if key_id is None or key_id == current.kid:
        return dict(found)
    earlier = previous(key_id)
    if earlier is None:
        raise OprfKeyChanged(
            "The matchKeys were evaluated under a key this gateway does not hold. Fetch "
            "GET /v1/oprf/key again and evaluate them under the current key."
        )
    rotation = earlier.rotation_to(current)
    return {family: frozenset(rotation.apply_all(values)) for family, values in found.items()}
