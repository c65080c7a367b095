"""DPoP (RFC 9449): proofs bind tokens at the token endpoint and are checked at the API.

Proofs are made with joserfc and with jwcrypto, ES256 and RS256 keys."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import TEST_ISSUER
from tests.oauth.support import PartnerClient, new_key, register_partner, thumbprint
from tests.oauth.test_attacks import assert_oauth_error
from tests.oauth.test_token_endpoint import part

TOKEN = "/oauth/token"
API = "/v1/directory"


@pytest.mark.parametrize("library", ["joserfc", "jwcrypto"])
@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_dpop_bound_token_works_with_fresh_proofs(
    client: FlaskClient, partner_client: PartnerClient, library: str, alg: str
) -> None:
    partner_client.dpop_jwk = new_key(alg)
    response = partner_client.request_token(client, dpop=True, library=library)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["token_type"] == "DPoP"
    public = {
        k: v for k, v in partner_client.dpop_jwk.items() if k in {"kty", "crv", "x", "y", "n", "e"}
    }
    assert part(body["access_token"], 1)["cnf"] == {"jkt": thumbprint(public)}
    for _ in range(2):
        proof = partner_client.dpop_proof(
            "GET", f"{TEST_ISSUER}{API}", access_token=body["access_token"], library=library
        )
        headers = {"Authorization": f"DPoP {body['access_token']}", "DPoP": proof}
        assert client.get(API, headers=headers).status_code == 200


def test_require_dpop_client_gets_no_token_without_proof(app: Flask, client: FlaskClient) -> None:
    partner = register_partner(app, "justice", require_dpop=True)
    assert_oauth_error(client.post(TOKEN, data=partner.form()), 400, "invalid_dpop_proof")
    assert partner.request_token(client, dpop=True).status_code == 200


def test_token_endpoint_refuses_replayed_proof(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    proof = partner_client.dpop_proof("POST", f"{TEST_ISSUER}{TOKEN}")
    first = client.post(TOKEN, data=partner_client.form(), headers={"DPoP": proof})
    assert first.status_code == 200
    again = client.post(TOKEN, data=partner_client.form(), headers={"DPoP": proof})
    assert_oauth_error(again, 400, "invalid_dpop_proof")


def test_token_endpoint_refuses_proof_for_another_uri(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    proof = partner_client.dpop_proof("POST", "https://elsewhere.example/oauth/token")
    response = client.post(TOKEN, data=partner_client.form(), headers={"DPoP": proof})
    assert_oauth_error(response, 400, "invalid_dpop_proof")


def test_token_endpoint_refuses_proof_with_private_key_in_header(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    from tests.oauth.support import sign

    private = partner_client.dpop_jwk
    header = {
        "typ": "dpop+jwt",
        "alg": "ES256",
        "jwk": {k: private[k] for k in ("kty", "crv", "x", "y", "d")},
    }
    proof = sign(
        header, {"jti": "x1", "htm": "POST", "htu": f"{TEST_ISSUER}{TOKEN}", "iat": 0}, private
    )
    response = client.post(TOKEN, data=partner_client.form(), headers={"DPoP": proof})
    assert_oauth_error(response, 400, "invalid_dpop_proof")


def test_proof_htu_ignores_query_and_default_port(
    client: FlaskClient, token_headers: object
) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)  # type: ignore[operator]
    proof = headers.partner.dpop_proof(
        "GET", f"{TEST_ISSUER}{API}?x=1#frag", access_token=headers.access_token
    )
    assert client.get(API, headers={**headers, "DPoP": proof}).status_code == 200


def test_bearer_token_with_dpop_scheme_is_refused(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = client.post(TOKEN, data=partner_client.form()).get_json()["access_token"]
    proof = partner_client.dpop_proof("GET", f"{TEST_ISSUER}{API}", access_token=token)
    response = client.get(API, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
