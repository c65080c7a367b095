"""Introspection (RFC 7662) and revocation (RFC 7009) of JWT access tokens, and replay
and revocation holding across two app instances on one database."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from gateway.app import create_app
from gateway.config import Settings
from gateway.services import close_app
from tests.oauth.support import PartnerClient, register_partner
from tests.oauth.test_attacks import assert_challenge, assert_oauth_error

TOKEN = "/oauth/token"
API = "/v1/directory"


def auth(partner: PartnerClient, **extra: str) -> dict[str, str]:
    form = partner.form(**extra)
    del form["grant_type"]
    return form


def get_token(client: FlaskClient, partner: PartnerClient) -> str:
    token: str = client.post(TOKEN, data=partner.form()).get_json()["access_token"]
    return token


def test_introspection_of_an_active_token(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = get_token(client, partner_client)
    response = client.post("/oauth/introspect", data=auth(partner_client, token=token))
    assert response.status_code == 200
    body = response.get_json()
    assert body["active"] is True
    assert body["client_id"] == partner_client.client_id
    assert body["token_type"] == "Bearer" and body["org"] == "police"


def test_introspection_needs_client_authentication(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = get_token(client, partner_client)
    response = client.post("/oauth/introspect", data={"token": token})
    assert_oauth_error(response, 400, "invalid_client")


def test_introspection_inactive_for_expired_revoked_and_foreign(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    def active(token: str, skew: int = 0) -> bool:
        assertion = partner_client.assertion(iat=int(time.time()) + skew)
        form = {**auth(partner_client, token=token), "client_assertion": assertion}
        body = client.post("/oauth/introspect", data=form).get_json()
        return bool(body["active"])

    assert active("not-a-token") is False
    revoked = get_token(client, partner_client)
    client.post("/oauth/revoke", data=auth(partner_client, token=revoked))
    assert active(revoked) is False
    other_org = register_partner(app, "care")
    assert active(get_token(client, other_org)) is False  # another organisation's token
    expiring = get_token(client, partner_client)
    app.extensions["ketenpoort"].oauth.clock = lambda: time.time() + 601
    assert active(expiring, skew=601) is False


def test_revocation_of_unknown_token_is_200(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    response = client.post("/oauth/revoke", data=auth(partner_client, token="nonsense"))
    assert response.status_code == 200 and response.get_json() == {}


def test_revocation_ignores_token_type_hint(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = get_token(client, partner_client)
    response = client.post(
        "/oauth/revoke", data=auth(partner_client, token=token, token_type_hint="refresh_token")
    )
    assert response.status_code == 200
    assert_challenge(
        client.get(API, headers={"Authorization": f"Bearer {token}"}), 401, "invalid_token"
    )


def test_revoking_another_clients_token_is_refused(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    other = register_partner(app, "police")
    token = get_token(client, other)
    response = client.post("/oauth/revoke", data=auth(partner_client, token=token))
    assert_oauth_error(response, 400, "invalid_grant")
    assert client.get(API, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _second_instance(settings: Settings) -> Flask:
    return create_app(settings=settings)


def test_revocation_holds_across_two_instances(
    app: Flask, settings: Settings, partner_client: PartnerClient
) -> None:
    other = _second_instance(settings)
    try:
        one, two = app.test_client(), other.test_client()
        token = get_token(one, partner_client)
        headers = {"Authorization": f"Bearer {token}"}
        assert two.get(API, headers=headers).status_code == 200
        assert one.post("/oauth/revoke", data=auth(partner_client, token=token)).status_code == 200
        assert_challenge(two.get(API, headers=headers), 401, "invalid_token")
        body = two.post("/oauth/introspect", data=auth(partner_client, token=token)).get_json()
        assert body["active"] is False
    finally:
        close_app(other)


def test_assertion_replay_holds_across_two_instances(
    app: Flask, settings: Settings, partner_client: PartnerClient
) -> None:
    other = _second_instance(settings)
    try:
        assertion = partner_client.assertion()
        first = app.test_client().post(TOKEN, data=partner_client.form(assertion))
        assert first.status_code == 200
        second = other.test_client().post(TOKEN, data=partner_client.form(assertion))
        assert_oauth_error(second, 400, "invalid_client")
    finally:
        close_app(other)


def test_dpop_replay_holds_across_two_instances(
    app: Flask, settings: Settings, token_headers: Any
) -> None:
    other = _second_instance(settings)
    try:
        headers = token_headers(scopes="directory:read", dpop=True)
        once = headers.for_request("GET", API)
        assert app.test_client().get(API, headers=once).status_code == 200
        replay = other.test_client().get(API, headers=once)
        assert_challenge(replay, 401, "invalid_dpop_proof", scheme="DPoP")
    finally:
        close_app(other)


def test_introspection_and_revocation_are_audited(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    from tests.oauth.test_token_endpoint import audit_actions

    token = get_token(client, partner_client)
    client.post("/oauth/introspect", data=auth(partner_client, token=token))
    client.post("/oauth/revoke", data=auth(partner_client, token=token))
    actions = [e["action"] for e in audit_actions(app)]
    assert "token.introspect" in actions and "token.revoke" in actions
