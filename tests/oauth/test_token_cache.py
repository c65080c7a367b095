"""The per-process verified-token cache: a cached token skips the signature check only;
revocation, a disabled client and `exp` still refuse it, at once and at every process
(two apps on one database stand for two)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from gateway import ratelimit
from gateway.app import create_app
from gateway.config import Settings
from gateway.oauth.resource import GatewayTokenValidator, VerifiedTokens
from gateway.oauth.rfc9068 import AccessToken
from gateway.partners.registry import disable_organisation
from gateway.services import close_app
from tests.oauth.support import ADMIN, PartnerClient
from tests.oauth.test_attacks import assert_challenge
from tests.oauth.test_introspection_revocation import API, auth, get_token


def _validator(app: Flask) -> GatewayTokenValidator:
    validator = app.extensions["ketenpoort"].token_validator
    assert isinstance(validator, GatewayTokenValidator)
    return validator


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_verified_token_is_cached_and_served_again(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = get_token(client, partner_client)
    assert client.get(API, headers=_bearer(token)).status_code == 200
    assert _validator(app).verified.get(token, int(time.time())) is not None
    assert client.get(API, headers=_bearer(token)).status_code == 200


def test_a_revoked_token_is_refused_even_when_cached(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = get_token(client, partner_client)
    assert client.get(API, headers=_bearer(token)).status_code == 200
    assert _validator(app).verified.get(token, int(time.time())) is not None
    assert client.post("/oauth/revoke", data=auth(partner_client, token=token)).status_code == 200
    response = client.get(API, headers=_bearer(token))
    assert_challenge(response, 401, "invalid_token")
    assert "revoked" in response.headers["WWW-Authenticate"]


def test_a_disabled_client_is_refused_even_when_its_token_is_cached(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = get_token(client, partner_client)
    assert client.get(API, headers=_bearer(token)).status_code == 200
    with app.extensions["ketenpoort"].db.transaction() as session:
        disable_organisation(session, partner_client.organisation, actor=ADMIN)
    assert_challenge(client.get(API, headers=_bearer(token)), 401, "invalid_token")


def test_a_cached_token_expires_with_its_exp(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    token = get_token(client, partner_client)
    assert client.get(API, headers=_bearer(token)).status_code == 200
    app.extensions["ketenpoort"].oauth.clock = lambda: time.time() + 3600
    response = client.get(API, headers=_bearer(token))
    assert_challenge(response, 401, "invalid_token")
    assert "expired" in response.headers["WWW-Authenticate"]
    assert _validator(app).verified.get(token, int(time.time()) + 3600) is None


def _access(token: str, exp: int) -> AccessToken:
    claims: dict[str, Any] = {"exp": exp, "jti": token}
    return AccessToken(token, claims)


def test_the_cache_is_bounded_and_drops_expired_entries_first() -> None:
    cache = VerifiedTokens(limit=3)
    cache.put(_access("a", 100), now=50)
    cache.put(_access("b", 60), now=50)
    cache.put(_access("c", 100), now=50)
    cache.put(_access("d", 100), now=70)  # full: "b" has expired and goes
    assert cache.get("b", 70) is None and cache.get("a", 70) is not None
    cache.put(_access("e", 100), now=70)  # full, nothing expired: the oldest goes
    assert len(cache) == 3 and cache.get("a", 70) is None
    assert cache.get("e", 99) is not None and cache.get("e", 100) is None


def test_expired_entries_are_swept_without_waiting_for_the_limit() -> None:
    """A long-running worker sees a new token per client every lifetime: the dead ones
    must go, not pile up to `limit` (the soak's slow RSS growth)."""
    cache = VerifiedTokens(limit=10_000, sweep_seconds=60)
    for hour in range(24):  # a day of tokens: 5 clients, a new token each every 5 min
        for step in range(12):
            now = 1_000_000 + hour * 3600 + step * 300
            for client in range(5):
                cache.put(_access(f"{client}-{now}", now + 300), now=now)
        assert len(cache) <= 10  # this lifetime's tokens and, at most, the last ones
    assert cache.get(f"4-{now}", now + 1) is not None


def test_a_partner_disabled_at_one_instance_is_refused_at_the_other_at_once(
    app: Flask, settings: Settings, partner_client: PartnerClient
) -> None:
    """Nothing of the client's standing is cached: two apps on one database stand for
    two processes, and the next request at the other one is refused."""
    other = create_app(settings=settings)
    try:
        one, two = app.test_client(), other.test_client()
        token = get_token(one, partner_client)
        assert two.get(API, headers=_bearer(token)).status_code == 200
        assert _validator(other).verified.get(token, int(time.time())) is not None
        with app.extensions["ketenpoort"].db.transaction() as session:
            disable_organisation(session, partner_client.organisation, actor=ADMIN)
        response = two.get(API, headers=_bearer(token))
        assert_challenge(response, 401, "invalid_token")
        assert "disabled" in response.headers["WWW-Authenticate"]
    finally:
        close_app(other)


def test_a_dpop_token_revoked_at_one_instance_is_refused_at_the_other_at_once(
    app: Flask, settings: Settings, token_headers: Any
) -> None:
    other = create_app(settings=settings)
    try:
        headers = token_headers(scopes="directory:read", dpop=True)
        two = other.test_client()
        assert two.get(API, headers=headers.for_request("GET", API)).status_code == 200
        revoked = app.test_client().post(
            "/oauth/revoke", data=auth(headers.partner, token=headers.access_token)
        )
        assert revoked.status_code == 200
        response = two.get(API, headers=headers.for_request("GET", API))
        assert_challenge(response, 401, "invalid_token", scheme="DPoP")
        assert "revoked" in response.headers["WWW-Authenticate"]
    finally:
        close_app(other)


def test_the_token_check_is_one_transaction_of_two_statements(
    app: Flask,
    client: FlaskClient,
    partner_client: PartnerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Revocation and client standing in one statement, the bucket in the same (write)
    transaction: every /v1 request pays one transaction for its token, not three."""
    monkeypatch.setattr(ratelimit, "PURGE_PROBABILITY", 0.0)
    token = get_token(client, partner_client)
    assert client.get(API, headers=_bearer(token)).status_code == 200  # cached, warm
    engine = app.extensions["ketenpoort"].db.engine
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        if not text.startswith("BEGIN"):
            seen.append(text.split()[0])

    def began(_conn: Any) -> None:
        seen.append("begin")

    def committed(_conn: Any) -> None:
        seen.append("commit")

    with app.test_request_context(API, headers=_bearer(token)):
        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "begin", began)
        event.listen(engine, "commit", committed)
        try:
            actor = _validator(app).authenticate(("directory:read",))
        finally:
            event.remove(engine, "before_cursor_execute", statement)
            event.remove(engine, "begin", began)
            event.remove(engine, "commit", committed)
    assert actor.id == partner_client.client_id
    assert seen == ["begin", "SELECT", "INSERT", "commit"]
