"""`matchKeys.keyId`: elements evaluated under an earlier pseudonym key are moved to the
current one; an unknown or malformed keyId is refused; none means the current key."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.crypto import oprf
from gateway.errors import InvalidInput
from gateway.keys import KeyPurpose, KeyStore
from gateway.keys.store import MasterKey
from gateway.pseudonyms import Pseudonymiser
from gateway.pseudonyms.blind_input import OprfKeyChanged, check_match_keys, move_to_current
from gateway.pseudonyms.matchkeys import MULTI_VALUED

SUBJECT = {"bsn": "123456782", "familyName": "Jansen", "dateOfBirth": "2010-05-06"}


def blind_pseudonyms(
    match_keys: object,
    current: Pseudonymiser,
    previous: Callable[[str], Pseudonymiser | None],
) -> dict[str, frozenset[bytes]]:
    """As a blind submission is read: checked, then moved to the current key."""
    found, key_id = check_match_keys(match_keys)
    return move_to_current(found, key_id, current, previous)


def _match_keys(key: Pseudonymiser, **extra: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for family, elements in key.linkage_pseudonyms(SUBJECT).items():
        encoded = sorted(base64.urlsafe_b64encode(e).rstrip(b"=").decode() for e in elements)
        found[family] = encoded if family in MULTI_VALUED else encoded[0]
    return {**found, **extra}


def test_elements_under_an_earlier_key_are_moved_to_the_current_one() -> None:
    old = Pseudonymiser(oprf.random_scalar(), kid="old")
    new = Pseudonymiser(oprf.random_scalar(), kid="new")
    submitted = _match_keys(old, keyId="old")
    moved = blind_pseudonyms(submitted, new, {"old": old}.get)
    assert moved == new.linkage_pseudonyms(SUBJECT)
    assert blind_pseudonyms(_match_keys(new, keyId="new"), new, {}.get) == moved
    assert blind_pseudonyms(_match_keys(new), new, {}.get) == moved  # no keyId: current


def test_an_unknown_or_malformed_key_id_is_refused() -> None:
    new = Pseudonymiser(oprf.random_scalar(), kid="new")
    with pytest.raises(OprfKeyChanged) as caught:
        blind_pseudonyms(_match_keys(new, keyId="gone"), new, {}.get)
    assert caught.value.slug == "oprf-key-changed" and caught.value.status == 409
    for bad in ("", "x" * 129, 7):
        with pytest.raises(InvalidInput) as invalid:
            blind_pseudonyms({**_match_keys(new), "keyId": bad}, new, {}.get)
        assert [e.pointer for e in invalid.value.errors] == ["/matchKeys/keyId"]


def test_only_the_key_just_replaced_is_served(tmp_path: Path) -> None:
    """A blind partner that fetched the key just before a rotation is served under it
    (evaluations and matchKeys); a key two rotations old is not."""
    keys = KeyStore(tmp_path / "keys", MasterKey(secrets.token_bytes(32), False))
    first, second, third = (keys.create(KeyPurpose.PSEUDONYM) for _ in range(3))
    current = Pseudonymiser.from_key_store(keys)
    assert current.kid == third.kid
    previous = Pseudonymiser.previous(keys, second.kid, current)
    assert previous is not None and previous.kid == second.kid
    assert Pseudonymiser.previous(keys, first.kid, current) is None
    assert Pseudonymiser.previous(keys, "made-up", current) is None
    moved = blind_pseudonyms(
        _match_keys(previous, keyId=second.kid),
        current,
        lambda kid: Pseudonymiser.previous(keys, kid, current),
    )
    assert moved == current.linkage_pseudonyms(SUBJECT)
