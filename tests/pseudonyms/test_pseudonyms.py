"""Pseudonyms: determinism, the key store, rotation by k'·k⁻¹, blind evaluation, and
our own known-answer vectors (so a change that alters stored pseudonyms is caught)."""

from __future__ import annotations

import json
import secrets
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.crypto import generate_ristretto255_scalar, oprf
from gateway.keys import KeyPurpose, KeyStore, KeyStoreError, MasterKey
from gateway.pseudonyms import PSEUDONYM_BYTES, InvalidSubject, Pseudonymiser, derive_match_keys

VECTORS = Path(__file__).parent / "vectors" / "pseudonyms-v1.json"
TODAY = date(2025, 6, 1)
ANNA = {"bsn": "123456782", "familyName": "van der Berg", "dateOfBirth": "2008-02-29"}
# Same person as another partner wrote her down.
ANNA_ELSEWHERE = {"bsn": "1234 56 782", "familyName": "Berg, van den", "dateOfBirth": "2008-02-29"}
PIET = {"bsn": "111222333", "familyName": "Jansen", "dateOfBirth": "1990-05-17"}


def fresh() -> Pseudonymiser:
    return Pseudonymiser(generate_ristretto255_scalar(), kid=secrets.token_hex(4))


def test_equal_subjects_give_equal_pseudonyms() -> None:
    p = fresh()
    anna = p.pseudonyms(ANNA, today=TODAY)
    assert set(anna) == {"bsn", "name_dob"}
    assert all(len(v) == PSEUDONYM_BYTES for v in anna.values())
    assert anna == p.pseudonyms(ANNA_ELSEWHERE, today=TODAY)
    assert anna["bsn"] != anna["name_dob"]  # families are domain-separated
    piet = p.pseudonyms(PIET, today=TODAY)
    assert not set(anna.values()) & set(piet.values())


def test_different_keys_give_unrelated_pseudonyms() -> None:
    assert fresh().pseudonyms(ANNA, today=TODAY)["bsn"] != fresh().pseudonyms(ANNA)["bsn"]


def test_invalid_subject_is_refused() -> None:
    with pytest.raises(InvalidSubject):
        fresh().pseudonyms({"bsn": "123456789"})


@pytest.mark.parametrize(
    "scalar",
    [
        bytes(32),  # zero
        oprf.GROUP_ORDER.to_bytes(32, "little"),  # not reduced
        b"\xff" * 32,
        bytes(31) + b"\x01" + b"\x00",  # 33 bytes
        b"\x01" * 16,
    ],
)
def test_a_bad_key_is_refused(scalar: bytes) -> None:
    with pytest.raises(ValueError, match="pseudonym key"):
        Pseudonymiser(scalar)


def test_repr_never_shows_the_key() -> None:
    scalar = generate_ristretto255_scalar()
    p = Pseudonymiser(scalar, kid="k1")
    rotation = p.rotation_to(fresh())
    for text in (repr(p), str(p), repr(rotation)):
        assert scalar.hex() not in text and "k1" in repr(p)
    assert "_factor" not in repr(rotation)


def test_loads_the_active_key_from_the_key_store(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys", MasterKey(secrets.token_bytes(32), False))
    first = keys.create(KeyPurpose.PSEUDONYM)
    p = Pseudonymiser.from_key_store(keys)
    assert p.kid == first.kid
    assert p.pseudonym("x") == Pseudonymiser(keys.secret_scalar(first.kid)).pseudonym("x")

    second = keys.create(KeyPurpose.PSEUDONYM)
    keys.retire(first.kid)
    assert Pseudonymiser.from_key_store(keys).kid == second.kid
    assert Pseudonymiser.from_key_store(keys, first.kid).pseudonym("x") == p.pseudonym("x")

    signing = keys.create(KeyPurpose.TOKEN_SIGNING)
    with pytest.raises(KeyStoreError, match="not a pseudonym key"):
        Pseudonymiser.from_key_store(keys, signing.kid)


def test_rotation_keeps_matching_and_retires_the_old_key() -> None:
    old, new = fresh(), fresh()
    # What the database holds under the old key: Anna as two partners reported her.
    stored = [old.pseudonyms(s, today=TODAY) for s in (ANNA, ANNA_ELSEWHERE, PIET)]

    rotation = old.rotation_to(new)
    assert (rotation.from_kid, rotation.to_kid) == (old.kid, new.kid)
    rotated = [{f: rotation.apply(p) for f, p in row.items()} for row in stored]

    # A signal arriving after the rotation is pseudonymised under the new key only,
    # and still finds the rotated rows of the same person, on every key family...
    anna_now = new.pseudonyms(ANNA, today=TODAY)
    assert rotated[0] == anna_now and rotated[1] == anna_now
    assert not set(rotated[2].values()) & set(anna_now.values())
    # ...while pseudonyms made with the old key no longer match anything stored.
    rotated_values = {p for row in rotated for p in row.values()}
    assert not set(old.pseudonyms(ANNA, today=TODAY).values()) & rotated_values
    assert not set(old.pseudonyms(PIET, today=TODAY).values()) & rotated_values

    # The bulk form and the one-off form agree, and rotating back restores the rows.
    assert rotation.apply_all(stored[0].values()) == list(rotated[0].values())
    assert oprf.rotate(stored[0]["bsn"], old._scalar, new._scalar) == anna_now["bsn"]
    back = new.rotation_to(old)
    assert {f: back.apply(p) for f, p in rotated[0].items()} == stored[0]


def test_blind_evaluation_yields_the_stored_pseudonym() -> None:
    """A partner that blinds its match key gets exactly the pseudonym we store."""
    p = fresh()
    key = "ketenpoort:v1:bsn:123456782"
    blind, blinded = oprf.blind(key.encode())  # partner side, random blind
    evaluated = p.blind_evaluate(blinded)  # gateway side: never sees the key
    unblinded = oprf.scalar_mult(oprf.scalar_invert(blind), evaluated)
    assert unblinded == p.pseudonym(key)


@pytest.mark.parametrize(
    "element",
    [
        bytes(32),  # identity
        b"\xff" * 32,  # not a canonical encoding
        b"\x01" + bytes(31),  # odd: not a valid ristretto255 encoding
        bytes(31),  # short
    ],
)
def test_blind_evaluate_refuses_bad_elements(element: bytes) -> None:
    with pytest.raises(oprf.OprfError):
        fresh().blind_evaluate(element)


def test_rotation_refuses_bad_elements() -> None:
    with pytest.raises(oprf.OprfError):
        fresh().rotation_to(fresh()).apply(b"\xff" * 32)


def test_expand_message_xmd_limits() -> None:
    with pytest.raises(oprf.OprfError):
        oprf.expand_message_xmd(b"", b"x" * 256, 64)
    with pytest.raises(oprf.OprfError):
        oprf.expand_message_xmd(b"", b"dst", 64 * 256)
    assert len(oprf.expand_message_xmd(b"abc", b"dst", 200)) == 200


def _vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


def test_known_answer_vectors() -> None:
    vectors = _vectors()
    today = date.fromisoformat(vectors["today"])
    key, rotated_key = vectors["key"], vectors["rotatedKey"]
    # The vector keys are themselves RFC 9497 DeriveKeyPair outputs.
    for k in (key, rotated_key):
        seed, info = bytes.fromhex(k["derivedFrom"]["seed"]), k["derivedFrom"]["info"].encode()
        assert oprf.derive_key_pair(seed, info)[0].hex() == k["scalar"]
    old = Pseudonymiser(bytes.fromhex(key["scalar"]), kid=key["kid"])
    new = Pseudonymiser(bytes.fromhex(rotated_key["scalar"]), kid=rotated_key["kid"])
    rotation = old.rotation_to(new)
    assert len(vectors["cases"]) >= 8
    for case in vectors["cases"]:
        assert derive_match_keys(case["subject"], today=today) == case["matchKeys"]
        got = old.pseudonyms(case["subject"], today=today)
        assert {f: p.hex() for f, p in got.items()} == case["pseudonyms"]
        assert {f: rotation.apply(p).hex() for f, p in got.items()} == case["rotated"]
        assert {f: p.hex() for f, p in new.pseudonyms(case["subject"], today=today).items()} == (
            case["rotated"]
        )
