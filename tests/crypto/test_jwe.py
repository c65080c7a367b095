"""JWE JSON Serialization: interoperability with jwcrypto, tamper detection, the profile."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk

from gateway.crypto import generate_p256_jwk, jwe
from tests.strategies import mutate as shared_mutate

SECRET = b'{"note": "signal text the gateway must never keep"}'


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Key:
    """One recipient key as jwcrypto sees it and as plain JWK dicts."""

    def __init__(self, key: jwcrypto_jwk.JWK) -> None:
        self.jwcrypto = key
        self.private: dict[str, Any] = json.loads(key.export_private())
        self.public: dict[str, Any] = json.loads(key.export_public())
        self.kid: str = self.private["kid"]


@pytest.fixture(scope="module")
def ec_key() -> Key:
    return Key(jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256", kid="ec-1", use="enc"))


@pytest.fixture(scope="module")
def ec_key_2() -> Key:
    return Key(jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256", kid="ec-2"))


@pytest.fixture(scope="module")
def rsa_key() -> Key:
    return Key(jwcrypto_jwk.JWK.generate(kty="RSA", size=2048, kid="rsa-1", use="enc"))


@pytest.fixture(scope="module")
def rsa_1024() -> Key:
    return Key(jwcrypto_jwk.JWK.generate(kty="RSA", size=1024, kid="rsa-weak"))


def jwcrypto_general(
    protected: str, recipients: list[tuple[Key, str]], **kw: Any
) -> dict[str, Any]:
    token = jwcrypto_jwe.JWE(SECRET, protected=protected, **kw)
    for key, header in recipients:
        token.add_recipient(key.jwcrypto, header=header)
    return json.loads(token.serialize())


def jwcrypto_decrypt(data: dict[str, Any], key: Key) -> bytes:
    token = jwcrypto_jwe.JWE()
    token.deserialize(json.dumps(data), key=key.jwcrypto)
    return bytes(token.payload)


# ------------------------------------------------------------------ known answers


def test_concat_kdf_matches_rfc7518_appendix_c() -> None:
    """RFC 7518 Appendix C: ECDH-ES between Alice's ephemeral key and Bob's, apu/apv set."""

    def scalar(text: str) -> ec.EllipticCurvePrivateKey:
        return ec.derive_private_key(int.from_bytes(unb64(text), "big"), ec.SECP256R1())

    alice = scalar("0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo")
    bob = scalar("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw")
    z = alice.exchange(ec.ECDH(), bob.public_key())
    assert list(z[:4]) == [158, 86, 217, 29]
    derived = jwe.concat_kdf(z, "A128GCM", b"Alice", b"Bob", 128)
    assert b64(derived) == "VqqN6vgjbSBcIijNcacQGg"


# ------------------------------------------------------- jwcrypto -> us (decrypt)


def test_jwcrypto_general_with_other_header_whitespace_and_order(ec_key: Key, rsa_key: Key) -> None:
    # Spaces, and "enc" after another member: joserfc <= 1.8 rebuilds this header
    # as {"cty":...,"enc":...} without spaces and so fails the tag check.
    protected = '{ "enc" : "A256GCM",\n  "cty":"application/json" }'
    data = jwcrypto_general(
        protected,
        [
            (ec_key, '{"kid": "ec-1", "alg": "ECDH-ES+A256KW"}'),
            (rsa_key, '{"alg":"RSA-OAEP-256","kid":"rsa-1"}'),
        ],
    )
    assert unb64(data["protected"]).decode() == protected
    assert jwe.decrypt_for_recipient(data, ec_key.private) == SECRET
    assert jwe.decrypt_for_recipient(data, rsa_key.private) == SECRET


def test_jwcrypto_flattened_with_everything_in_the_protected_header(ec_key: Key) -> None:
    token = jwcrypto_jwe.JWE(
        SECRET, protected='{"alg": "ECDH-ES+A256KW", "kid": "ec-1",   "enc": "A256GCM"}'
    )
    token.add_recipient(ec_key.jwcrypto)
    data = json.loads(token.serialize())
    assert "recipients" not in data
    parsed = jwe.parse_jwe(data)
    assert parsed.flattened and parsed.recipients[0].kid == "ec-1"
    assert jwe.decrypt_for_recipient(parsed, ec_key.private) == SECRET


def test_jwcrypto_with_additional_authenticated_data(ec_key: Key, ec_key_2: Key) -> None:
    data = jwcrypto_general(
        '{"enc":"A256GCM"}',
        [
            (ec_key, '{"alg":"ECDH-ES+A256KW","kid":"ec-1"}'),
            (ec_key_2, '{"alg":"ECDH-ES+A256KW","kid":"ec-2"}'),
        ],
        aad=b"signal BVH-2026-00123",
    )
    assert "aad" in data
    assert jwe.decrypt_for_recipient(data, ec_key_2.private) == SECRET
    data["aad"] = b64(b"signal BVH-2026-00124")
    with pytest.raises(jwe.JweDecryptionError):
        jwe.decrypt_for_recipient(data, ec_key.private)


def test_tag_covers_the_protected_segment_as_sent_even_if_not_canonical(rsa_key: Key) -> None:
    """Spare bits set in the last base64url character: same header bytes, other string.

    The sender authenticated the string it sent; a decoder that re-encodes the header
    (jwcrypto does) computes other associated data and fails the tag.
    """
    canonical = b64(b'{"enc":"A256GCM"}')
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    segment = canonical[:-1] + alphabet[alphabet.index(canonical[-1]) | 0b11]
    assert segment != canonical and unb64(segment) == unb64(canonical)
    cek, iv = os.urandom(32), os.urandom(12)
    public = rsa_key.jwcrypto.get_op_key("wrapKey")
    encrypted_key = public.encrypt(
        cek, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    )
    sealed = AESGCM(cek).encrypt(iv, SECRET, segment.encode())
    data = {
        "protected": segment,
        "header": {"alg": "RSA-OAEP-256", "kid": rsa_key.kid},
        "encrypted_key": b64(encrypted_key),
        "iv": b64(iv),
        "ciphertext": b64(sealed[:-16]),
        "tag": b64(sealed[-16:]),
    }
    assert jwe.decrypt_for_recipient(data, rsa_key.private) == SECRET
    with pytest.raises(Exception):  # noqa: B017 - jwcrypto's own error type
        jwcrypto_decrypt(data, rsa_key)


def test_ec_key_in_the_key_store_format_decrypts() -> None:
    private, public = generate_p256_jwk(use="enc", alg="ECDH-ES+A256KW")
    data = jwe.encrypt_for_recipients(SECRET, [public])
    assert jwe.decrypt_for_recipient(data, private) == SECRET


# ----------------------------------------------------------- us -> jwcrypto (encrypt)


def test_our_general_jwe_opens_in_jwcrypto(ec_key: Key, rsa_key: Key) -> None:
    data = jwe.encrypt_for_recipients(SECRET, [ec_key.public, rsa_key.public])
    assert [r["header"]["alg"] for r in data["recipients"]] == ["ECDH-ES+A256KW", "RSA-OAEP-256"]
    assert json.loads(unb64(data["protected"])) == {"enc": "A256GCM"}
    assert jwcrypto_decrypt(data, ec_key) == SECRET
    assert jwcrypto_decrypt(data, rsa_key) == SECRET
    assert jwe.decrypt_for_recipient(data, ec_key.private) == SECRET
    assert jwe.decrypt_for_recipient(data, rsa_key.private) == SECRET


def test_our_flattened_jwe_with_aad_opens_in_jwcrypto(rsa_key: Key) -> None:
    data = jwe.encrypt_for_recipients(SECRET, [rsa_key.public], aad=b"ctx", flattened=True)
    assert "recipients" not in data and data["header"]["kid"] == "rsa-1"
    assert jwcrypto_decrypt(data, rsa_key) == SECRET
    assert jwe.decrypt_for_recipient(data, rsa_key.private) == SECRET


def test_rsa_private_key_without_crt_members_decrypts(rsa_key: Key) -> None:
    data = jwe.encrypt_for_recipients(SECRET, [rsa_key.public])
    bare = {k: rsa_key.private[k] for k in ("kty", "kid", "n", "e", "d")}
    assert jwe.decrypt_for_recipient(data, bare) == SECRET


@pytest.mark.parametrize(
    ("keys", "flattened"),
    [([], False), (["a", "b"], True)],
)
def test_builder_refuses_a_wrong_recipient_count(
    ec_key: Key, ec_key_2: Key, keys: list[str], flattened: bool
) -> None:
    jwks = [ec_key.public, ec_key_2.public][: len(keys)]
    with pytest.raises(jwe.JweKeyError):
        jwe.encrypt_for_recipients(SECRET, jwks, flattened=flattened)


def test_builder_refuses_weak_or_unusable_keys(ec_key: Key, rsa_1024: Key) -> None:
    with pytest.raises(jwe.JweKeyError, match="2048"):
        jwe.encrypt_for_recipients(SECRET, [rsa_1024.public])
    without_kid = {k: v for k, v in ec_key.public.items() if k != "kid"}
    with pytest.raises(jwe.JweKeyError, match="kid"):
        jwe.encrypt_for_recipients(SECRET, [without_kid])
    with pytest.raises(jwe.JweKeyError, match="encryption key"):
        jwe.encrypt_for_recipients(SECRET, [{**ec_key.public, "use": "sig"}])
    p384 = json.loads(jwcrypto_jwk.JWK.generate(kty="EC", crv="P-384", kid="x").export_public())
    with pytest.raises(jwe.JweKeyError, match="P-256"):
        jwe.encrypt_for_recipients(SECRET, [p384])
    with pytest.raises(jwe.JweKeyError):
        jwe.encrypt_for_recipients(SECRET, [{"kty": "oct", "k": "AAAA", "kid": "s"}])


# ------------------------------------------------------------------ decrypt failures


@pytest.fixture(scope="module")
def sealed(ec_key: Key, rsa_key: Key) -> dict[str, Any]:
    return jwe.encrypt_for_recipients(SECRET, [ec_key.public, rsa_key.public])


def _flip(text: str, index: int = 0) -> str:
    raw = bytearray(unb64(text))
    raw[index] ^= 0x01
    return b64(bytes(raw))


TAMPERS = {
    "ciphertext": lambda d: {**d, "ciphertext": _flip(d["ciphertext"])},
    "tag": lambda d: {**d, "tag": _flip(d["tag"], 15)},
    "iv": lambda d: {**d, "iv": _flip(d["iv"])},
    # The same header written differently is a different header for the tag.
    "protected": lambda d: {**d, "protected": b64(b'{"enc": "A256GCM"}')},
    "aad added": lambda d: {**d, "aad": b64(b"extra")},
    "encrypted_key": lambda d: {
        **d,
        "recipients": [
            {**r, "encrypted_key": _flip(r["encrypted_key"], 3)} for r in d["recipients"]
        ],
    },
    "swapped epk": lambda d: {
        **d,
        "recipients": [
            {
                **r,
                "header": {
                    **r["header"],
                    "epk": json.loads(
                        jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256").export_public()
                    ),
                },
            }
            if r["header"]["alg"] == "ECDH-ES+A256KW"
            else r
            for r in d["recipients"]
        ],
    },
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
@pytest.mark.parametrize("which", ["ec", "rsa"])
def test_any_alteration_is_one_opaque_error(
    sealed: dict[str, Any], ec_key: Key, rsa_key: Key, tamper: str, which: str
) -> None:
    key = ec_key if which == "ec" else rsa_key
    altered = TAMPERS[tamper](sealed)
    if tamper == "swapped epk" and which == "rsa":
        # Only the EC copy depends on its epk; the RSA copy still opens.
        assert jwe.decrypt_for_recipient(altered, key.private) == SECRET
        return
    with pytest.raises(jwe.JweDecryptionError) as caught:
        jwe.decrypt_for_recipient(altered, key.private)
    assert str(caught.value) == "the JWE cannot be decrypted with this key"
    # No chained cause that could tell one failure from another in a trace.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_key_that_is_not_a_recipient_cannot_decrypt(
    sealed: dict[str, Any], ec_key_2: Key
) -> None:
    with pytest.raises(jwe.JweDecryptionError):
        jwe.decrypt_for_recipient(sealed, ec_key_2.private)
    # Another key under a recipient's kid fails the same way.
    with pytest.raises(jwe.JweDecryptionError):
        jwe.decrypt_for_recipient(sealed, {**ec_key_2.private, "kid": "ec-1"})


def test_weak_rsa_private_key_is_refused(rsa_1024: Key) -> None:
    data = jwcrypto_general(
        '{"enc":"A256GCM"}', [(rsa_1024, '{"alg":"RSA-OAEP-256","kid":"rsa-weak"}')]
    )
    with pytest.raises(jwe.JweDecryptionError):
        jwe.decrypt_for_recipient(data, rsa_1024.private)
    assert "2048" in str(jwe.recipient_key_problem("RSA-OAEP-256", rsa_1024.public))


# ------------------------------------------------------------------ the profile


def _issues(data: object) -> tuple[type[jwe.JweError], list[tuple[str, str]]]:
    with pytest.raises((jwe.MalformedJwe, jwe.UnsupportedJweAlgorithm)) as caught:
        jwe.parse_jwe(data)
    error = caught.value
    assert isinstance(error, jwe.MalformedJwe | jwe.UnsupportedJweAlgorithm)
    return type(error), [(i.pointer, i.detail) for i in error.issues]


def _with_protected(data: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    return {**data, "protected": b64(json.dumps(header).encode())}


def _with_recipient_header(data: dict[str, Any], index: int, **header: Any) -> dict[str, Any]:
    recipients = [dict(r) for r in data["recipients"]]
    recipients[index]["header"] = {**recipients[index]["header"], **header}
    return {**data, "recipients": recipients}


@pytest.mark.parametrize(
    ("alter", "pointer"),
    [
        (lambda d: _with_protected(d, {"enc": "A128GCM"}), "/protected"),
        (lambda d: _with_protected(d, {"enc": "A256CBC-HS512"}), "/protected"),
        (lambda d: _with_recipient_header(d, 1, alg="RSA1_5"), "/recipients/1/header/alg"),
        (lambda d: _with_recipient_header(d, 0, alg="dir"), "/recipients/0/header/alg"),
        (lambda d: _with_recipient_header(d, 0, alg="ECDH-ES"), "/recipients/0/header/alg"),
        (lambda d: _with_recipient_header(d, 1, alg="RSA-OAEP"), "/recipients/1/header/alg"),
        (lambda d: {**d, "unprotected": {"zip": "DEF"}}, "/unprotected/zip"),
    ],
)
def test_algorithms_outside_the_profile(sealed: dict[str, Any], alter: Any, pointer: str) -> None:
    kind, issues = _issues(alter(sealed))
    assert kind is jwe.UnsupportedJweAlgorithm
    assert pointer in [p for p, _ in issues]


def _without(data: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != name}


@pytest.mark.parametrize(
    ("alter", "pointer"),
    [
        (lambda d: ["not", "an", "object"], ""),
        (lambda d: _without(d, "iv"), "/iv"),
        (lambda d: _without(d, "tag"), "/tag"),
        (lambda d: _without(d, "ciphertext"), "/ciphertext"),
        (lambda d: {**d, "iv": d["iv"] + "=="}, "/iv"),  # padding is not base64url
        (lambda d: {**d, "ciphertext": "a+b/"}, "/ciphertext"),
        (lambda d: {**d, "iv": b64(b"\0" * 16)}, "/iv"),
        (lambda d: {**d, "tag": b64(b"\0" * 12)}, "/tag"),
        (lambda d: {**d, "protected": b64(b"not json")}, "/protected"),
        (lambda d: {**d, "protected": b64(b'{"enc":"A256GCM","enc":"A256GCM"}')}, "/protected"),
        (lambda d: {**d, "protected": b64(b'["enc"]')}, "/protected"),
        (lambda d: {**d, "protected": 7}, "/protected"),
        (lambda d: {**d, "recipients": []}, "/recipients"),
        (lambda d: {**d, "recipients": [1]}, "/recipients/0"),
        (lambda d: {**d, "header": {"alg": "RSA-OAEP-256"}}, "/header"),
        (lambda d: {**d, "unprotected": "x"}, "/unprotected"),
        (lambda d: {**d, "unprotected": {"enc": "A256GCM"}}, "/unprotected/enc"),
        (lambda d: _with_recipient_header(d, 1, kid=None), "/recipients/1/header/kid"),
        (lambda d: _with_recipient_header(d, 1, kid="ec-1"), "/recipients/1/header/kid"),
        (lambda d: _with_recipient_header(d, 0, crit=["exp"]), "/recipients/0/header/crit"),
        (lambda d: _with_recipient_header(d, 0, epk=None), "/recipients/0/header/epk"),
        (
            lambda d: _with_recipient_header(
                d, 0, epk={"kty": "EC", "crv": "P-256", "x": b64(b"\1" * 32), "y": b64(b"\2" * 32)}
            ),
            "/recipients/0/header/epk",
        ),
        (lambda d: _with_recipient_header(d, 0, apu=5), "/recipients/0/header/apu"),
        (
            lambda d: {
                **d,
                "recipients": [{**d["recipients"][0], "encrypted_key": b64(b"k" * 24)}],
            },
            "/recipients/0/encrypted_key",
        ),
        (
            lambda d: {**d, "recipients": [_without(d["recipients"][1], "encrypted_key")]},
            "/recipients/0/encrypted_key",
        ),
    ],
)
def test_malformed_serializations(sealed: dict[str, Any], alter: Any, pointer: str) -> None:
    kind, issues = _issues(alter(sealed))
    assert kind is jwe.MalformedJwe
    assert pointer in [p for p, _ in issues], issues


def test_every_structural_problem_is_listed(sealed: dict[str, Any]) -> None:
    data = {**_without(sealed, "iv"), "tag": "!", "unprotected": []}
    _, issues = _issues(data)
    assert {"/iv", "/tag", "/unprotected"} <= {p for p, _ in issues}


# ------------------------------------------------------------------ properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
member_names = st.sampled_from(
    [
        "protected",
        "unprotected",
        "header",
        "recipients",
        "encrypted_key",
        "iv",
        "ciphertext",
        "tag",
        "aad",
        "alg",
        "enc",
        "kid",
        "epk",
        "zip",
        "crit",
    ]
)
b64_texts = st.binary(max_size=48).map(b64)
jose_like = st.recursive(
    json_values
    | b64_texts
    | st.sampled_from(["A256GCM", "ECDH-ES+A256KW", "RSA-OAEP-256", "EC", "P-256"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(member_names, inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(jose_like)
def test_parser_raises_only_its_own_errors(data: object) -> None:
    try:
        jwe.parse_jwe(data)
    except (jwe.MalformedJwe, jwe.UnsupportedJweAlgorithm) as exc:
        assert exc.issues
        assert all(i.pointer == "" or i.pointer.startswith("/") for i in exc.issues)


def mutate(data: st.DataObject, document: Any) -> Any:
    return shared_mutate(data, document, jose_like, member_names)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_decrypting_a_mutated_jwe_raises_only_jwe_errors(
    sealed: dict[str, Any], ec_key: Key, rsa_key: Key, data: st.DataObject
) -> None:
    altered = mutate(data, sealed)
    for key in (ec_key, rsa_key):
        # Either the message as sent, or one of our errors: never other bytes.
        with contextlib.suppress(jwe.JweError):
            assert jwe.decrypt_for_recipient(altered, key.private) == SECRET
