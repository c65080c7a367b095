"""The envelope check: what a partner must send, and one problem type per failure."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk

from gateway.crypto import generate_p256_jwk, jwe
from gateway.errors import InternalError, InvalidInput, all_problem_types
from gateway.signals.envelope import (
    ENVELOPE_ERRORS,
    EnvelopeInfo,
    EnvelopeTooLarge,
    MalformedEnvelope,
    MissingRecipient,
    UndecryptableEnvelope,
    UnknownRecipientKey,
    UnsupportedAlgorithm,
    check_envelope,
)
from tests.strategies import mutate as shared_mutate

SECRET = b'{"summary": "what the police officer saw", "bsn": "123456782"}'
ISSUER = "https://gateway.example"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Party:
    def __init__(self, org: str, key: jwcrypto_jwk.JWK) -> None:
        self.org = org
        self.jwcrypto = key
        self.private: dict[str, Any] = json.loads(key.export_private())
        self.public: dict[str, Any] = json.loads(key.export_public())
        self.kid: str = self.public["kid"]


@pytest.fixture(scope="module")
def meldpunt() -> Party:
    # The key store's own format (joserfc-made, kid = thumbprint, use/alg set).
    private, _public = generate_p256_jwk(use="enc", alg="ECDH-ES+A256KW")
    return Party("meldpunt", jwcrypto_jwk.JWK(**private))


@pytest.fixture(scope="module")
def police() -> Party:
    return Party("politie", jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256", kid="pol-1"))


@pytest.fixture(scope="module")
def care() -> Party:
    key = jwcrypto_jwk.JWK.generate(kty="RSA", size=2048, kid="zorg-1", use="enc")
    return Party("zorg", key)


@pytest.fixture(scope="module")
def school() -> Party:
    return Party("school", jwcrypto_jwk.JWK.generate(kty="RSA", size=1024, kid="school-weak"))


@pytest.fixture(scope="module")
def directory(
    meldpunt: Party, police: Party, care: Party, school: Party
) -> dict[str, tuple[str, dict[str, Any]]]:
    return {p.kid: (p.org, p.public) for p in (meldpunt, police, care, school)}


@pytest.fixture(scope="module")
def sealed(meldpunt: Party, police: Party, care: Party) -> dict[str, Any]:
    return jwe.encrypt_for_recipients(SECRET, [meldpunt.public, police.public, care.public])


def check(
    payload: object,
    directory: dict[str, tuple[str, dict[str, Any]]],
    meldpunt: Party,
    required: set[str] | None = None,
    **kw: Any,
) -> EnvelopeInfo:
    return check_envelope(
        payload,
        category_recipients=required if required is not None else {"meldpunt", "politie"},
        directory=directory,
        meldpunt_private_jwk=meldpunt.private,
        **kw,
    )


def refused(
    error: type[Exception], payload: object, directory: Any, meldpunt: Party, **kw: Any
) -> list[tuple[str, str]]:
    with pytest.raises(ENVELOPE_ERRORS) as caught:
        check(payload, directory, meldpunt, **kw)
    assert type(caught.value) is error, caught.value.errors  # type: ignore[attr-defined]
    body = caught.value.body(ISSUER, "req-1")  # type: ignore[attr-defined]
    assert body["status"] == 400
    assert body["type"] == f"{ISSUER}/problems/{error.slug}"  # type: ignore[attr-defined]
    assert body["errors"], "every refusal names where"
    text = json.dumps(body)
    assert "123456782" not in text and "police officer" not in text
    return [(e["pointer"], e["detail"]) for e in body["errors"]]


# ------------------------------------------------------------------------ accepted


def test_our_builder_three_recipients(
    sealed: dict[str, Any], directory: Any, meldpunt: Party, police: Party, care: Party
) -> None:
    info = check(sealed, directory, meldpunt)
    assert info.recipients == ("meldpunt", "politie", "zorg")
    assert info.kids == (meldpunt.kid, police.kid, care.kid)
    assert info.size == len(json.dumps(sealed, separators=(",", ":")).encode())
    assert "123456782" not in repr(info)


def test_jwcrypto_general_with_its_own_header_formatting(
    directory: Any, meldpunt: Party, police: Party, care: Party
) -> None:
    protected = '{ "cty": "application/json",  "enc" : "A256GCM" }'
    token = jwcrypto_jwe.JWE(SECRET, protected=protected)
    token.add_recipient(
        police.jwcrypto, header=json.dumps({"kid": police.kid, "alg": "ECDH-ES+A256KW"})
    )
    token.add_recipient(
        meldpunt.jwcrypto, header=json.dumps({"alg": "ECDH-ES+A256KW", "kid": meldpunt.kid})
    )
    token.add_recipient(care.jwcrypto, header='{"alg":"RSA-OAEP-256","kid":"zorg-1"}')
    payload = json.loads(token.serialize())
    assert unb64(payload["protected"]).decode() == protected
    info = check(payload, directory, meldpunt, required={"meldpunt", "politie", "zorg"})
    assert info.recipients == ("meldpunt", "politie", "zorg")


def test_flattened_with_one_recipient(directory: Any, meldpunt: Party) -> None:
    token = jwcrypto_jwe.JWE(
        SECRET,
        protected=json.dumps({"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": meldpunt.kid}),
    )
    token.add_recipient(meldpunt.jwcrypto)
    payload = json.loads(token.serialize())
    assert "recipients" not in payload
    info = check(payload, directory, meldpunt, required={"meldpunt"})
    assert info == EnvelopeInfo(("meldpunt",), (meldpunt.kid,), info.size)
    ours = jwe.encrypt_for_recipients(SECRET, [meldpunt.public], flattened=True)
    assert check(ours, directory, meldpunt, required=set()).recipients == ("meldpunt",)


def test_rsa_oaep_256_recipient_with_2048_bits(
    directory: Any, meldpunt: Party, care: Party
) -> None:
    payload = jwe.encrypt_for_recipients(SECRET, [care.public, meldpunt.public])
    assert payload["recipients"][0]["header"]["alg"] == "RSA-OAEP-256"
    assert check(payload, directory, meldpunt, required={"zorg"}).recipients == (
        "meldpunt",
        "zorg",
    )


def test_every_failure_has_its_own_documented_type() -> None:
    slugs = [error.slug for error in ENVELOPE_ERRORS]
    assert slugs == [
        "malformed-envelope",
        "envelope-too-large",
        "unsupported-algorithm",
        "unknown-recipient-key",
        "missing-recipient",
        "recipient-not-allowed",
        "undecryptable-envelope",
    ]
    documented = all_problem_types()
    assert all(documented[slug].status == 400 for slug in slugs)


# ------------------------------------------------------------------------ refused


def test_too_large(directory: Any, meldpunt: Party, police: Party) -> None:
    big = jwe.encrypt_for_recipients(b"x" * 49_200, [meldpunt.public, police.public])
    assert len(json.dumps(big, separators=(",", ":"))) > 64 * 1024
    errors = refused(EnvelopeTooLarge, big, directory, meldpunt)
    assert errors == [("/payload", "must be at most 65536 bytes as compact JSON")]
    just_fits = jwe.encrypt_for_recipients(b"x" * 48_000, [meldpunt.public, police.public])
    assert check(just_fits, directory, meldpunt).size <= 64 * 1024


def test_size_limit_is_a_parameter(sealed: dict[str, Any], directory: Any, meldpunt: Party) -> None:
    refused(EnvelopeTooLarge, sealed, directory, meldpunt, max_bytes=1000)


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        ("eyJhbGciOi...", "/payload"),
        ([], "/payload"),
        ({"ciphertext": "abc", "tag": "abc"}, "/payload/iv"),
        ({"protected": "!!", "iv": "", "ciphertext": "", "tag": ""}, "/payload/protected"),
    ],
)
def test_malformed(directory: Any, meldpunt: Party, payload: object, pointer: str) -> None:
    errors = refused(MalformedEnvelope, payload, directory, meldpunt)
    assert pointer in [p for p, _ in errors]


def test_malformed_points_into_the_recipient(
    sealed: dict[str, Any], directory: Any, meldpunt: Party
) -> None:
    payload = json.loads(json.dumps(sealed))
    del payload["recipients"][1]["header"]["kid"]
    payload["recipients"][2]["encrypted_key"] = "not base64!"
    errors = refused(MalformedEnvelope, payload, directory, meldpunt)
    assert [p for p, _ in errors] == [
        "/payload/recipients/2/encrypted_key",
        "/payload/recipients/1/header/kid",
    ]


def test_nan_is_not_json(directory: Any, meldpunt: Party) -> None:
    refused(MalformedEnvelope, {"iv": float("nan")}, directory, meldpunt)


def _recipient_header(payload: dict[str, Any], index: int, **header: Any) -> dict[str, Any]:
    payload = json.loads(json.dumps(payload))
    payload["recipients"][index]["header"].update(header)
    return payload


@pytest.mark.parametrize(
    ("alter", "pointer"),
    [
        (
            lambda d: {**d, "protected": b64(b'{"enc":"A128GCM"}')},
            "/payload/protected",
        ),
        (lambda d: _recipient_header(d, 2, alg="RSA1_5"), "/payload/recipients/2/header/alg"),
        (lambda d: _recipient_header(d, 1, alg="dir"), "/payload/recipients/1/header/alg"),
    ],
)
def test_unsupported_algorithm(
    sealed: dict[str, Any], directory: Any, meldpunt: Party, alter: Any, pointer: str
) -> None:
    errors = refused(UnsupportedAlgorithm, alter(sealed), directory, meldpunt)
    assert pointer in [p for p, _ in errors]


def test_a_1024_bit_rsa_recipient_is_refused(
    directory: Any, meldpunt: Party, school: Party
) -> None:
    token = jwcrypto_jwe.JWE(SECRET, protected='{"enc":"A256GCM"}')
    token.add_recipient(
        meldpunt.jwcrypto, header=json.dumps({"alg": "ECDH-ES+A256KW", "kid": meldpunt.kid})
    )
    token.add_recipient(school.jwcrypto, header='{"alg":"RSA-OAEP-256","kid":"school-weak"}')
    errors = refused(
        UnsupportedAlgorithm, json.loads(token.serialize()), directory, meldpunt, required=set()
    )
    assert errors == [("/payload/recipients/1/header/alg", "RSA keys must have at least 2048 bits")]


def test_alg_that_does_not_fit_the_directory_key(
    sealed: dict[str, Any], directory: Any, meldpunt: Party
) -> None:
    # The care organisation's kid names an RSA key; ECDH-ES+A256KW cannot use it.
    payload = json.loads(json.dumps(sealed))
    payload["recipients"][2] = {
        **payload["recipients"][1],
        "header": {**payload["recipients"][1]["header"], "kid": "zorg-1"},
    }
    errors = refused(UnsupportedAlgorithm, payload, directory, meldpunt)
    assert errors[0][0] == "/payload/recipients/2/header/alg"


def test_unknown_recipient_key(sealed: dict[str, Any], directory: Any, meldpunt: Party) -> None:
    payload = _recipient_header(sealed, 1, kid="pol-retired")
    errors = refused(UnknownRecipientKey, payload, directory, meldpunt)
    assert errors == [
        ("/payload/recipients/1/header/kid", "is not a current encryption key in the directory")
    ]


def test_missing_recipient(directory: Any, meldpunt: Party, care: Party) -> None:
    payload = jwe.encrypt_for_recipients(SECRET, [meldpunt.public, care.public])
    errors = refused(
        MissingRecipient, payload, directory, meldpunt, required={"meldpunt", "politie", "school"}
    )
    assert errors == [
        ("/payload/recipients", "organisation 'politie' is a required recipient for this category"),
        ("/payload/recipients", "organisation 'school' is a required recipient for this category"),
    ]


def test_meldpunt_is_required_even_if_the_policy_forgets_it(
    directory: Any, meldpunt: Party, police: Party
) -> None:
    payload = jwe.encrypt_for_recipients(SECRET, [police.public])
    errors = refused(MissingRecipient, payload, directory, meldpunt, required={"politie"})
    assert "'meldpunt'" in errors[0][1]


def _flip(text: str, index: int = 0) -> str:
    raw = bytearray(unb64(text))
    raw[index] ^= 0x80
    return b64(bytes(raw))


@pytest.mark.parametrize(
    "alter",
    [
        lambda d: {**d, "ciphertext": _flip(d["ciphertext"], 5)},
        lambda d: {**d, "tag": _flip(d["tag"])},
        # A valid header, written differently: a different header for the tag.
        lambda d: {**d, "protected": b64(b'{ "enc": "A256GCM" }')},
        lambda d: {**d, "iv": _flip(d["iv"])},
    ],
    ids=["ciphertext", "tag", "protected", "iv"],
)
def test_tampered_envelope_is_undecryptable(
    sealed: dict[str, Any], directory: Any, meldpunt: Party, alter: Any
) -> None:
    errors = refused(UndecryptableEnvelope, alter(sealed), directory, meldpunt)
    assert errors == [("/payload/recipients/0", "does not decrypt")]


def test_meldpunt_copy_from_another_message(
    sealed: dict[str, Any], directory: Any, meldpunt: Party, police: Party
) -> None:
    # Correct for the police, but the meldpunt's wrapped key belongs to another JWE.
    other = jwe.encrypt_for_recipients(b"other", [meldpunt.public])
    payload = json.loads(json.dumps(sealed))
    payload["recipients"][0] = other["recipients"][0]
    assert jwe.decrypt_for_recipient(payload, police.private) == SECRET
    refused(UndecryptableEnvelope, payload, directory, meldpunt)


def test_meldpunt_copy_for_another_current_meldpunt_key(
    directory: Any, meldpunt: Party, police: Party
) -> None:
    second = Party("meldpunt", jwcrypto_jwk.JWK.generate(kty="EC", crv="P-256", kid="mp-2"))
    with_second = {**directory, second.kid: (second.org, second.public)}
    payload = jwe.encrypt_for_recipients(SECRET, [second.public, police.public])
    errors = refused(UndecryptableEnvelope, payload, with_second, meldpunt)
    assert errors[0][0] == "/payload/recipients"


def test_flattened_pointers(directory: Any, meldpunt: Party, police: Party) -> None:
    payload = jwe.encrypt_for_recipients(SECRET, [police.public], flattened=True)
    errors = refused(MissingRecipient, payload, directory, meldpunt, required=set())
    assert errors[0][0] == "/payload"
    payload["header"]["kid"] = "nobody"
    errors = refused(UnknownRecipientKey, payload, directory, meldpunt)
    assert errors[0][0] == "/payload/header/kid"


def test_meldpunt_key_missing_from_the_directory_is_our_fault(
    sealed: dict[str, Any], directory: Any, meldpunt: Party
) -> None:
    without = {k: v for k, v in directory.items() if v[0] != "meldpunt"}
    payload = jwe.encrypt_for_recipients(SECRET, [without["pol-1"][1]])
    with pytest.raises(InternalError):
        check(payload, without, meldpunt, required={"politie"})


# ------------------------------------------------------------------------ property

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "protected",
                    "recipients",
                    "header",
                    "encrypted_key",
                    "iv",
                    "ciphertext",
                    "tag",
                    "aad",
                    "unprotected",
                    "alg",
                    "kid",
                    "enc",
                    "epk",
                    "x",
                    "y",
                    "kty",
                    "crv",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(payload=json_values)
def test_check_raises_only_envelope_errors(
    directory: Any, meldpunt: Party, payload: object
) -> None:
    try:
        check(payload, directory, meldpunt)
    except InvalidInput as exc:  # one envelope type, or invalid-input for several
        assert exc.status == 400 and exc.errors
        assert isinstance(exc, ENVELOPE_ERRORS) or type(exc) is InvalidInput
        assert all(e.pointer.startswith("/payload") for e in exc.errors)


nasty_values = (
    json_values
    | st.binary(max_size=48).map(b64)
    | st.sampled_from(["A256GCM", "A128GCM", "ECDH-ES+A256KW", "RSA-OAEP-256", "RSA1_5", "dir", ""])
)
member_names = st.sampled_from(["zip", "crit", "aad", "epk", "kid", "alg", "enc", "apu", "d"])


def mutate(data: st.DataObject, document: Any) -> Any:
    return shared_mutate(data, document, nasty_values, member_names)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_check_of_a_mutated_envelope_raises_only_envelope_errors(
    sealed: dict[str, Any], directory: Any, meldpunt: Party, data: st.DataObject
) -> None:
    payload = mutate(data, sealed)
    try:
        check(payload, directory, meldpunt)
    except InvalidInput as exc:  # one envelope type, or invalid-input for several
        assert exc.status == 400 and exc.errors
        assert isinstance(exc, ENVELOPE_ERRORS) or type(exc) is InvalidInput
        assert all(e.pointer.startswith("/payload") for e in exc.errors)


def test_faults_of_several_kinds_are_listed_together(
    sealed: dict[str, Any], directory: Any, meldpunt: Party
) -> None:
    """Everything short of decryption is checked at once: a broken iv and an unknown
    key are one 400 (`invalid-input`: two kinds), not two round trips."""
    payload = _recipient_header(sealed, 1, kid="pol-retired")
    payload["iv"] = b64(b"short")
    with pytest.raises(InvalidInput) as caught:
        check(payload, directory, meldpunt)
    assert type(caught.value) is InvalidInput
    assert [(e.pointer, e.detail) for e in caught.value.errors] == [
        ("/payload/iv", "must be 12 bytes for A256GCM"),
        ("/payload/recipients/1/header/kid", "is not a current encryption key in the directory"),
    ]


def test_weak_and_broken_recipients_are_listed_together(
    sealed: dict[str, Any], directory: Any, meldpunt: Party
) -> None:
    payload = _recipient_header(sealed, 1, alg="RSA-OAEP-256")  # for the police's EC key
    payload["recipients"][1]["header"].pop("epk", None)
    payload["recipients"][2]["encrypted_key"] = b64(b"\x01" * 10)  # not 256 bytes
    with pytest.raises(InvalidInput) as caught:
        check(payload, directory, meldpunt)
    pointers = [e.pointer for e in caught.value.errors]
    assert "/payload/recipients/1/header/alg" in pointers
    assert "/payload/recipients/2/encrypted_key" in pointers
