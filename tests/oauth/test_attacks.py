"""The negative suite: one test per attack, each asserting the exact status and error code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.keys import KeyPurpose
from gateway.partners.registry import disable_organisation
from tests.oauth.support import ADMIN, PartnerClient, b64url, new_key, sign

TOKEN = "/oauth/token"
API = "/v1/directory"


def assert_oauth_error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    assert body["error"] == error
    assert "access_token" not in body
    return body


def assert_challenge(response: Any, status: int, error: str, scheme: str = "Bearer") -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(scheme + " "), challenge
    assert f'error="{error}"' in challenge, challenge


def forge(app: Flask, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """An access token signed with the gateway's REAL signing key, claims as given."""
    keys = app.extensions["ketenpoort"].keys
    record = keys.active(KeyPurpose.TOKEN_SIGNING)
    head = header if header is not None else {"typ": "at+jwt", "alg": "ES256", "kid": record.kid}
    return sign(head, claims, keys.private_jwk(record.kid))


def good_claims(partner: PartnerClient, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": partner.issuer,
        "aud": partner.issuer,
        "sub": partner.client_id,
        "client_id": partner.client_id,
        "azp": partner.client_id,
        "org": partner.organisation,
        "scope": "directory:read",
        "iat": now,
        "exp": now + 300,
        "jti": b64url(hashlib.sha256(str(time.time_ns()).encode()).digest()),
    }
    claims.update(changes)
    return claims


# -- the token endpoint --------------------------------------------------------------


def test_forged_token_with_correct_claims_is_the_control(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    """The forging helper makes valid tokens: each attack below changes one thing."""
    token = forge(app, good_claims(partner_client))
    assert client.get(API, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_replayed_assertion(client: FlaskClient, partner_client: PartnerClient) -> None:
    assertion = partner_client.assertion()
    assert client.post(TOKEN, data=partner_client.form(assertion)).status_code == 200
    assert_oauth_error(
        client.post(TOKEN, data=partner_client.form(assertion)), 400, "invalid_client"
    )


def test_expired_assertion(client: FlaskClient, partner_client: PartnerClient) -> None:
    assertion = partner_client.assertion(iat=int(time.time()) - 120, lifetime=60)
    assert_oauth_error(
        client.post(TOKEN, data=partner_client.form(assertion)), 400, "invalid_client"
    )


def test_assertion_valid_longer_than_300_seconds(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    assertion = partner_client.assertion(lifetime=301)
    body = assert_oauth_error(
        client.post(TOKEN, data=partner_client.form(assertion)), 400, "invalid_client"
    )
    assert "300" in body["error_description"]


def test_assertion_valid_for_a_year(client: FlaskClient, partner_client: PartnerClient) -> None:
    assertion = partner_client.assertion(lifetime=365 * 86400)
    assert_oauth_error(
        client.post(TOKEN, data=partner_client.form(assertion)), 400, "invalid_client"
    )


def test_assertion_aud_array(client: FlaskClient, partner_client: PartnerClient) -> None:
    aud = [partner_client.issuer, "https://other.example"]
    assertion = partner_client.assertion(aud=aud)
    assert_oauth_error(
        client.post(TOKEN, data=partner_client.form(assertion)), 400, "invalid_client"
    )


def test_assertion_wrong_aud(client: FlaskClient, partner_client: PartnerClient) -> None:
    assertion = partner_client.assertion(aud="https://evil.example/oauth/token")
    assert_oauth_error(
        client.post(TOKEN, data=partner_client.form(assertion)), 400, "invalid_client"
    )


def test_assertion_alg_none(client: FlaskClient, partner_client: PartnerClient) -> None:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = {
        "iss": partner_client.client_id,
        "sub": partner_client.client_id,
        "aud": partner_client.issuer,
        "iat": now,
        "exp": now + 60,
        "jti": "none-attack",
    }
    assertion = f"{header}.{b64url(json.dumps(claims).encode())}."
    assert_oauth_error(
        client.post(TOKEN, data=partner_client.form(assertion)), 400, "invalid_client"
    )


def test_assertion_hs256_keyed_with_the_public_key(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    public = {k: v for k, v in partner_client.private_jwk.items() if k != "d"}
    secret = json.dumps(public, sort_keys=True).encode()
    header = b64url(json.dumps({"alg": "HS256", "kid": public["kid"]}).encode())
    now = int(time.time())
    claims = {
        "iss": partner_client.client_id,
        "sub": partner_client.client_id,
        "aud": partner_client.issuer,
        "iat": now,
        "exp": now + 60,
        "jti": "hmac-attack",
    }
    signing_input = f"{header}.{b64url(json.dumps(claims).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assertion = f"{signing_input}.{b64url(mac)}"
    assert_oauth_error(
        client.post(TOKEN, data=partner_client.form(assertion)), 400, "invalid_client"
    )


def test_assertion_signed_by_an_unregistered_key(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    stranger = {**new_key("ES256"), "kid": partner_client.private_jwk["kid"]}
    assertion = partner_client.assertion(key=stranger)
    assert_oauth_error(
        client.post(TOKEN, data=partner_client.form(assertion)), 400, "invalid_client"
    )


def test_client_secret_basic_attempt(client: FlaskClient, partner_client: PartnerClient) -> None:
    basic = base64.b64encode(f"{partner_client.client_id}:secret".encode()).decode()
    response = client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_client_secret_post_attempt(client: FlaskClient, partner_client: PartnerClient) -> None:
    response = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": partner_client.client_id,
            "client_secret": "guess",
        },
    )
    assert_oauth_error(response, 400, "invalid_client")


def test_disabled_client(app: Flask, client: FlaskClient, partner_client: PartnerClient) -> None:
    with app.extensions["ketenpoort"].db.transaction() as session:
        disable_organisation(session, partner_client.organisation, actor=ADMIN)
    response = client.post(TOKEN, data=partner_client.form())
    assert_oauth_error(response, 400, "invalid_client")


def test_unknown_client(client: FlaskClient, partner_client: PartnerClient) -> None:
    partner_client.client_id = "police-000000000000"
    assert_oauth_error(client.post(TOKEN, data=partner_client.form()), 400, "invalid_client")


def test_scope_escalation(client: FlaskClient, partner_client: PartnerClient) -> None:
    only_foreign = client.post(TOKEN, data=partner_client.form(scope="cases:write audit:read"))
    assert_oauth_error(only_foreign, 400, "invalid_scope")
    unknown = client.post(TOKEN, data=partner_client.form(scope="admin"))
    assert_oauth_error(unknown, 400, "invalid_scope")
    mixed = client.post(TOKEN, data=partner_client.form(scope="directory:read cases:write"))
    assert mixed.status_code == 200
    assert mixed.get_json()["scope"] == "directory:read"


def test_unsupported_grant_type(client: FlaskClient, partner_client: PartnerClient) -> None:
    response = client.post(TOKEN, data=partner_client.form(grant_type="password"))
    assert_oauth_error(response, 400, "unsupported_grant_type")


def test_assertion_in_the_query_string(client: FlaskClient, partner_client: PartnerClient) -> None:
    response = client.post(TOKEN, query_string=partner_client.form(), data={"x": "1"})
    assert_oauth_error(response, 400, "invalid_request")


# -- the resource side --------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_access_token_without_typ(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    kid = app.extensions["ketenpoort"].keys.active(KeyPurpose.TOKEN_SIGNING).kid
    token = forge(app, good_claims(partner_client), {"alg": "ES256", "kid": kid})
    assert_challenge(client.get(API, headers=bearer(token)), 401, "invalid_token")


def test_access_token_with_typ_jwt(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    kid = app.extensions["ketenpoort"].keys.active(KeyPurpose.TOKEN_SIGNING).kid
    token = forge(app, good_claims(partner_client), {"typ": "JWT", "alg": "ES256", "kid": kid})
    assert_challenge(client.get(API, headers=bearer(token)), 401, "invalid_token")


def test_access_token_wrong_iss(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = forge(app, good_claims(partner_client, iss="https://other-issuer.example"))
    assert_challenge(client.get(API, headers=bearer(token)), 401, "invalid_token")


def test_access_token_wrong_aud(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = forge(app, good_claims(partner_client, aud="https://other-api.example"))
    assert_challenge(client.get(API, headers=bearer(token)), 401, "invalid_token")


def test_access_token_expired(app: Flask, client: FlaskClient, token_headers: Any) -> None:
    headers = token_headers(scopes="directory:read")
    service = app.extensions["ketenpoort"].oauth
    service.clock = lambda: time.time() + 601
    assert_challenge(client.get(API, headers=headers), 401, "invalid_token")


def test_access_token_signed_by_another_key(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    kid = app.extensions["ketenpoort"].keys.active(KeyPurpose.TOKEN_SIGNING).kid
    other = {**new_key("ES256"), "kid": kid}
    token = sign({"typ": "at+jwt", "alg": "ES256", "kid": kid}, good_claims(partner_client), other)
    assert_challenge(client.get(API, headers=bearer(token)), 401, "invalid_token")


def test_access_token_revoked(client: FlaskClient, partner_client: PartnerClient) -> None:
    token = client.post(TOKEN, data=partner_client.form()).get_json()["access_token"]
    assert client.get(API, headers=bearer(token)).status_code == 200
    revoked = client.post("/oauth/revoke", data={**_auth(partner_client), "token": token})
    assert revoked.status_code == 200
    assert_challenge(client.get(API, headers=bearer(token)), 401, "invalid_token")


def test_access_token_in_query_string(client: FlaskClient, token_headers: Any) -> None:
    token = token_headers(scopes="directory:read")["Authorization"].split()[1]
    response = client.get(API, query_string={"access_token": token})
    assert_challenge(response, 401, "invalid_request")


def test_access_token_in_form_body(app: Flask, client: FlaskClient, token_headers: Any) -> None:
    token = token_headers(scopes="directory:read")["Authorization"].split()[1]
    response = client.get(API, data={"access_token": token})
    assert_challenge(response, 401, "invalid_request")


def test_no_token_at_all(client: FlaskClient) -> None:
    response = client.get(API)
    assert response.status_code == 401
    assert "error=" not in response.headers["WWW-Authenticate"]
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert "DPoP" in response.headers["WWW-Authenticate"]


def test_insufficient_scope(client: FlaskClient, token_headers: Any) -> None:
    headers = token_headers(scopes="signals:write")
    response = client.get(API, headers=headers)
    assert_challenge(response, 403, "insufficient_scope")
    assert 'scope="directory:read"' in response.headers["WWW-Authenticate"]


def test_dpop_bound_token_used_as_bearer(client: FlaskClient, token_headers: Any) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)
    response = client.get(API, headers=bearer(headers.access_token))
    assert_challenge(response, 401, "invalid_token", scheme="DPoP")


def test_dpop_bound_token_without_proof(client: FlaskClient, token_headers: Any) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)
    assert_challenge(client.get(API, headers=dict(headers)), 401, "invalid_dpop_proof", "DPoP")


def test_dpop_proof_replayed(client: FlaskClient, token_headers: Any) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)
    once = headers.for_request("GET", API)
    assert client.get(API, headers=once).status_code == 200
    assert_challenge(client.get(API, headers=once), 401, "invalid_dpop_proof", scheme="DPoP")


def test_dpop_proof_wrong_htu(client: FlaskClient, token_headers: Any) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)
    proof = headers.partner.dpop_proof(
        "GET", f"{headers.partner.issuer}/v1/signals", access_token=headers.access_token
    )
    response = client.get(API, headers={**headers, "DPoP": proof})
    assert_challenge(response, 401, "invalid_dpop_proof", scheme="DPoP")


def test_dpop_proof_wrong_htm(client: FlaskClient, token_headers: Any) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)
    proof = headers.partner.dpop_proof(
        "POST", f"{headers.partner.issuer}{API}", access_token=headers.access_token
    )
    response = client.get(API, headers={**headers, "DPoP": proof})
    assert_challenge(response, 401, "invalid_dpop_proof", scheme="DPoP")


def test_dpop_proof_for_another_key(client: FlaskClient, token_headers: Any) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)
    proof = headers.partner.dpop_proof(
        "GET",
        f"{headers.partner.issuer}{API}",
        access_token=headers.access_token,
        key=new_key("ES256"),
    )
    response = client.get(API, headers={**headers, "DPoP": proof})
    assert_challenge(response, 401, "invalid_dpop_proof", scheme="DPoP")


def test_dpop_proof_for_another_token(client: FlaskClient, token_headers: Any) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)
    proof = headers.partner.dpop_proof(
        "GET", f"{headers.partner.issuer}{API}", access_token="some-other-token"
    )
    response = client.get(API, headers={**headers, "DPoP": proof})
    assert_challenge(response, 401, "invalid_dpop_proof", scheme="DPoP")


def test_dpop_proof_too_old(client: FlaskClient, token_headers: Any) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)
    proof = headers.partner.dpop_proof(
        "GET",
        f"{headers.partner.issuer}{API}",
        access_token=headers.access_token,
        iat=int(time.time()) - 600,
    )
    response = client.get(API, headers={**headers, "DPoP": proof})
    assert_challenge(response, 401, "invalid_dpop_proof", scheme="DPoP")


@pytest.mark.parametrize("typ", ["JWT", "at+jwt"])
def test_dpop_proof_wrong_typ(client: FlaskClient, token_headers: Any, typ: str) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)
    proof = headers.partner.dpop_proof(
        "GET", f"{headers.partner.issuer}{API}", access_token=headers.access_token, typ=typ
    )
    response = client.get(API, headers={**headers, "DPoP": proof})
    assert_challenge(response, 401, "invalid_dpop_proof", scheme="DPoP")


def test_disabled_client_token_stops_working(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    headers = token_headers("education", scopes="directory:read")
    assert client.get(API, headers=headers).status_code == 200
    with app.extensions["ketenpoort"].db.transaction() as session:
        disable_organisation(session, "education", actor=ADMIN)
    assert_challenge(client.get(API, headers=headers), 401, "invalid_token")


def _auth(partner: PartnerClient) -> dict[str, str]:
    form = partner.form()
    del form["grant_type"]
    return form
