"""The JOSE primitives: key checks, algorithm allow-lists, parsers that fail closed."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.crypto.jose import (
    JoseError,
    check_public_jwk,
    key_use,
    thumbprint,
    unverified_header,
    verify_jws,
)
from gateway.oauth.rfc9449 import normalise_uri
from tests.oauth.support import new_key, public_of, sign


def test_thumbprint_matches_rfc7638_example() -> None:
    # RFC 7638 §3.1
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
        "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
        "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_key_use_from_use_or_alg() -> None:
    assert key_use({"use": "enc"}) == "enc"
    assert key_use({"alg": "RS256"}) == "sig"
    assert key_use({"alg": "RSA-OAEP-256"}) == "enc"
    assert key_use({"kty": "EC"}) is None


def test_ec_key_off_p256_is_refused() -> None:
    from joserfc.jwk import ECKey

    key = {**ECKey.generate_key("P-384").as_dict(private=False), "kid": "p384"}
    with pytest.raises(JoseError, match="P-256"):
        check_public_jwk(key)


def test_alg_that_does_not_fit_the_key_is_refused() -> None:
    key = {**public_of(new_key("ES256")), "alg": "RS256"}
    with pytest.raises(JoseError, match="does not fit"):
        check_public_jwk(key)


def test_verify_refuses_algorithm_outside_the_allow_list() -> None:
    private = new_key("PS256")
    token = sign({"alg": "PS256", "kid": private["kid"]}, {"a": 1}, private)
    assert verify_jws(token, [public_of(private)], ["PS256"])[1] == {"a": 1}
    with pytest.raises(JoseError):
        verify_jws(token, [public_of(private)], ["ES256"])


def test_verify_refuses_crit_headers() -> None:
    import base64
    import json

    private = new_key("ES256")
    token = sign({"alg": "ES256", "kid": private["kid"]}, {}, private)
    header = {"alg": "ES256", "kid": private["kid"], "crit": ["exp"], "exp": 1}
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    with pytest.raises(JoseError, match="critical"):
        verify_jws(".".join([encoded, *token.split(".")[1:]]), [public_of(private)], ["ES256"])


@given(st.text(max_size=300))
def test_header_parser_fails_only_with_jose_error(text: str) -> None:
    with contextlib.suppress(JoseError):
        unverified_header(text)


@given(
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", max_size=40),
        min_size=3,
        max_size=3,
    )
)
def test_header_parser_on_jws_shaped_input(parts: list[str]) -> None:
    try:
        header = unverified_header(".".join(parts))
    except JoseError:
        return
    assert isinstance(header, dict)


@given(st.sampled_from(["", "?a=1", "#f", "?a=1#f"]))
def test_htu_normalisation_ignores_query_and_fragment(suffix: str) -> None:
    assert normalise_uri(f"HTTPS://Example.NL:443/v1/x{suffix}") == "https://example.nl/v1/x"


def test_htu_normalisation_keeps_non_default_port_and_path() -> None:
    assert normalise_uri("http://127.0.0.1:8080/oauth/token") == "http://127.0.0.1:8080/oauth/token"
    assert normalise_uri("http://127.0.0.1:8080/oauth/token") != normalise_uri(
        "http://127.0.0.1:8081/oauth/token"
    )
