"""The token endpoint issues RFC 9068 tokens with the profile's claims, for assertions
made by two JOSE implementations and all three algorithms; metadata and JWKS are right."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from flask import Flask
from flask.testing import FlaskClient
from jwcrypto import jwk as jwc_jwk
from jwcrypto import jwt as jwc_jwt
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.services import close_app
from tests.conftest import TEST_ISSUER
from tests.oauth.support import PartnerClient, register_partner

TOKEN = "/oauth/token"


def part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return data


def audit_actions(app: Flask) -> list[dict[str, Any]]:
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        rows = session.scalars(select(AuditEntryRow).order_by(AuditEntryRow.id)).all()
        return [json.loads(r.data) for r in rows]


@pytest.mark.parametrize("library", ["joserfc", "jwcrypto"])
@pytest.mark.parametrize("alg", ["ES256", "PS256", "RS256"])
def test_token_for_every_algorithm_and_library(
    app: Flask, client: FlaskClient, alg: str, library: str
) -> None:
    partner = register_partner(app, "care", alg=alg)
    response = client.post(TOKEN, data=partner.form(partner.assertion(library=library)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["API-Version"]


def test_access_token_claims_follow_the_profile(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    response = client.post(TOKEN, data=partner_client.form(scope="signals:write directory:read"))
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}  # no refresh
    assert body["token_type"] == "Bearer" and body["expires_in"] <= 600
    header, claims = part(body["access_token"], 0), part(body["access_token"], 1)
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"]
    assert claims["iss"] == claims["aud"] == TEST_ISSUER
    assert claims["sub"] == claims["client_id"] == claims["azp"] == partner_client.client_id
    assert claims["org"] == "police"
    assert claims["scope"] == "signals:write directory:read"
    assert 0 < claims["exp"] - claims["iat"] <= 600
    jti_bytes = base64.urlsafe_b64decode(claims["jti"] + "=" * (-len(claims["jti"]) % 4))
    assert len(jti_bytes) * 8 >= 128
    assert "cnf" not in claims


def test_token_verifies_with_the_published_jwks_in_jwcrypto(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = client.post(TOKEN, data=partner_client.form()).get_json()["access_token"]
    jwks = client.get("/oauth/jwks").get_json()
    assert jwks["keys"] and all("d" not in k for k in jwks["keys"])
    keyset = jwc_jwk.JWKSet.from_json(json.dumps(jwks))
    verified = jwc_jwt.JWT(jwt=token, key=keyset, algs=["ES256"], expected_type="JWS")
    assert json.loads(verified.claims)["client_id"] == partner_client.client_id


def test_no_scope_requested_grants_all_allowed(client: FlaskClient, app: Flask) -> None:
    partner = register_partner(app, "municipality", "signals:write directory:read")
    body = client.post(TOKEN, data=partner.form()).get_json()
    assert body["scope"] == "signals:write directory:read"


def test_meldpunt_client_gets_meldpunt_scopes(client: FlaskClient, app: Flask) -> None:
    partner = register_partner(app, "meldpunt", "cases:write audit:read")
    body = client.post(TOKEN, data=partner.form(scope="cases:write audit:read")).get_json()
    assert body["scope"] == "cases:write audit:read"


def test_assertion_aud_may_be_the_token_endpoint(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    assertion = partner_client.assertion(aud=f"{TEST_ISSUER}/oauth/token")
    assert client.post(TOKEN, data=partner_client.form(assertion)).status_code == 200


def test_issuance_is_audited(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = client.post(TOKEN, data=partner_client.form()).get_json()["access_token"]
    issued = [e for e in audit_actions(app) if e["action"] == "token.issue"]
    assert len(issued) == 1
    assert issued[0]["actor"]["id"] == partner_client.client_id
    assert issued[0]["resource"]["id"] == part(token, 1)["jti"]
    assert token not in json.dumps(issued[0])


def test_wrong_content_type_is_an_oauth_error(client: FlaskClient) -> None:
    response = client.post(TOKEN, data="{}", content_type="application/json")
    assert response.status_code == 415
    assert response.get_json()["error"] == "invalid_request"


def test_get_on_token_endpoint_is_405(client: FlaskClient) -> None:
    assert client.get(TOKEN).status_code == 405


def test_metadata_is_valid_rfc8414(client: FlaskClient) -> None:
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    metadata = response.get_json()
    AuthorizationServerMetadata(metadata).validate()
    assert metadata["issuer"] == TEST_ISSUER
    assert metadata["token_endpoint"] == f"{TEST_ISSUER}/oauth/token"
    assert metadata["introspection_endpoint"] == f"{TEST_ISSUER}/oauth/introspect"
    assert metadata["revocation_endpoint"] == f"{TEST_ISSUER}/oauth/revoke"
    assert metadata["jwks_uri"] == f"{TEST_ISSUER}/oauth/jwks"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert metadata["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    for key in (
        "token_endpoint_auth_signing_alg_values_supported",
        "dpop_signing_alg_values_supported",
    ):
        assert set(metadata[key]) == {"ES256", "PS256", "RS256"}
    assert response.headers["API-Version"] and response.headers["X-Content-Type-Options"]


def test_metadata_of_an_https_issuer_is_valid(settings: Any, initialised: Any) -> None:
    from dataclasses import replace

    from gateway.app import create_app

    app = create_app(settings=replace(settings, issuer="https://ketenpoort.example.nl"))
    try:
        metadata = app.test_client().get("/.well-known/oauth-authorization-server").get_json()
        AuthorizationServerMetadata(metadata).validate()
        assert metadata["token_endpoint"] == "https://ketenpoort.example.nl/oauth/token"
    finally:
        close_app(app)


def test_oauth_endpoints_are_not_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/v1/openapi.json").get_json()["paths"]
    assert "/directory" in paths and not any("oauth" in p for p in paths)
