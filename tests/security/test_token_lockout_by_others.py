"""Weakness 4 of the outside attack: anyone could lock everyone out of tokens.

The per-address limit counted anonymous junk before client authentication and keyed on
the socket address — behind the TLS proxy, one address for every partner. Now only
failures count per address, a request that authenticates is judged by its client's
bucket alone, and `X-Forwarded-For` is believed only from a configured trusted proxy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.app import create_app
from gateway.audit.models import AuditEntryRow
from gateway.config import ConfigError, Settings, load_settings, parse_trusted_proxies
from gateway.services import close_app
from tests.oauth.support import PartnerClient, new_key, register_partner
from tests.oauth.test_attacks import assert_oauth_error

TOKEN = "/oauth/token"
PROXY = "10.9.0.1"
THRESHOLD = 5


@pytest.fixture
def proxied_app(settings: Settings, initialised: dict[str, Any]) -> Iterator[Flask]:
    """A gateway behind a TLS proxy at 10.9.0.1 (trusted), five failures per address."""
    app = create_app(
        settings=replace(
            settings,
            trusted_proxies=parse_trusted_proxies(f"{PROXY}, 10.8.0.0/24"),
            failures_per_address=THRESHOLD,
        )
    )
    yield app
    close_app(app)


@pytest.fixture
def strict_app(settings: Settings, initialised: dict[str, Any]) -> Iterator[Flask]:
    """A gateway with no trusted proxy, five failures per address."""
    app = create_app(settings=replace(settings, failures_per_address=THRESHOLD))
    yield app
    close_app(app)


def junk(client: FlaskClient, remote: str, forwarded: str | None = None) -> Any:
    """An anonymous token request that cannot authenticate."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        environ_base={"REMOTE_ADDR": remote},
        headers=headers,
    )


def refused_addresses(app: Flask) -> list[str]:
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        rows = session.scalars(
            select(AuditEntryRow.data).where(AuditEntryRow.action == "token.refuse")
        ).all()
    return [json.loads(r)["detail"].get("clientAddress") for r in rows]


def test_junk_from_the_shared_proxy_address_does_not_stop_a_real_client(
    strict_app: Flask,
) -> None:
    """Every partner reaches the gateway from the proxy's address; an attacker floods
    it with junk. The attacker is slowed; the real client still gets its tokens and
    its /v1 answers, every time."""
    client = strict_app.test_client()
    partner = register_partner(strict_app, "police")
    statuses = [junk(client, PROXY).status_code for _ in range(3 * THRESHOLD)]
    assert statuses[:THRESHOLD] == [400] * THRESHOLD
    assert set(statuses[THRESHOLD:]) == {429}
    for _ in range(3):
        response = client.post(TOKEN, data=partner.form(), environ_base={"REMOTE_ADDR": PROXY})
        assert response.status_code == 200, response.get_data(as_text=True)
        token = response.get_json()["access_token"]
        answer = client.get(
            "/v1/directory",
            headers={"Authorization": f"Bearer {token}"},
            environ_base={"REMOTE_ADDR": PROXY},
        )
        assert answer.status_code == 200
    # ...and junk between its requests is still refused.
    assert junk(client, PROXY).status_code == 429


def test_invalid_tokens_at_v1_do_not_block_valid_ones(strict_app: Flask) -> None:
    client = strict_app.test_client()
    partner = register_partner(strict_app, "police")
    token = client.post(TOKEN, data=partner.form()).get_json()["access_token"]
    for _ in range(THRESHOLD):
        response = client.get("/v1/directory", headers={"Authorization": "Bearer junk"})
        assert response.status_code == 401
    limited = client.get("/v1/directory", headers={"Authorization": "Bearer junk"})
    assert limited.status_code == 429
    assert limited.mimetype == "application/problem+json"
    assert limited.get_json()["type"].endswith("/problems/too-many-requests")
    assert int(limited.headers["Retry-After"]) >= 1
    assert client.get("/v1/directory").status_code == 429  # no token at all: a failure too
    ok = client.get("/v1/directory", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200


def test_failures_from_one_address_are_limited(strict_app: Flask) -> None:
    client = strict_app.test_client()
    partner = register_partner(strict_app, "police")
    impostor = PartnerClient(
        partner.client_id, partner.organisation, new_key(), partner.issuer
    )  # names the real client, signs with a key of its own
    for _ in range(THRESHOLD):
        assert_oauth_error(
            client.post(TOKEN, data=impostor.form(), environ_base={"REMOTE_ADDR": "10.0.0.66"}),
            400,
            "invalid_client",
        )
    for attempt in (impostor.form(), {"grant_type": "client_credentials"}):
        response = client.post(TOKEN, data=attempt, environ_base={"REMOTE_ADDR": "10.0.0.66"})
        assert_oauth_error(response, 429, "temporarily_unavailable")
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    # the impostor named the real client: the real client is not affected...
    assert client.post(TOKEN, data=partner.form()).status_code == 200
    # ...nor is another address.
    assert_oauth_error(junk(client, "10.0.0.67"), 400, "invalid_client")


def test_forwarded_for_is_ignored_from_an_untrusted_peer(strict_app: Flask) -> None:
    """A caller rotating `X-Forwarded-For` still counts as its own socket address."""
    client = strict_app.test_client()
    statuses = [
        junk(client, "10.0.0.66", forwarded=f"198.51.100.{n}").status_code
        for n in range(THRESHOLD + 3)
    ]
    assert statuses[:THRESHOLD] == [400] * THRESHOLD
    assert set(statuses[THRESHOLD:]) == {429}
    assert set(refused_addresses(strict_app)) == {"10.0.0.66"}


def test_forwarded_for_is_honoured_from_a_trusted_proxy(proxied_app: Flask) -> None:
    client = proxied_app.test_client()
    partner = register_partner(proxied_app, "police")
    statuses = [
        junk(client, PROXY, forwarded="198.51.100.7").status_code for _ in range(THRESHOLD + 2)
    ]
    assert statuses[:THRESHOLD] == [400] * THRESHOLD
    assert set(statuses[THRESHOLD:]) == {429}
    # another caller behind the same proxy (and one behind a trusted network) is not
    # limited by the first one's failures
    assert_oauth_error(junk(client, PROXY, forwarded="198.51.100.8"), 400, "invalid_client")
    assert_oauth_error(junk(client, "10.8.0.20", forwarded="198.51.100.9"), 400, "invalid_client")
    # and the real client behind the proxy is served
    response = client.post(
        TOKEN,
        data=partner.form(),
        environ_base={"REMOTE_ADDR": PROXY},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert response.status_code == 200
    # the proxy appends the caller's address to whatever the caller sent: only the last
    # hop (the one the trusted proxy added) is believed
    assert_oauth_error(
        junk(client, PROXY, forwarded="198.51.100.8, 198.51.100.7"), 429, "temporarily_unavailable"
    )
    assert set(refused_addresses(proxied_app)) >= {"198.51.100.7", "198.51.100.8"}
    assert PROXY not in refused_addresses(proxied_app)


def test_trusted_proxies_setting_is_validated() -> None:
    settings = load_settings(
        {"KETENPOORT_TRUSTED_PROXIES": "10.9.0.1, 192.168.0.0/16,2001:db8::/32"}
    )
    assert [str(n) for n in settings.trusted_proxies] == [
        "10.9.0.1/32",
        "192.168.0.0/16",
        "2001:db8::/32",
    ]
    assert load_settings({}).trusted_proxies == ()
    with pytest.raises(ConfigError, match="KETENPOORT_TRUSTED_PROXIES"):
        load_settings({"KETENPOORT_TRUSTED_PROXIES": "10.9.0.1, proxy.example"})
