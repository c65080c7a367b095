"""Clock skew between a partner system and the gateway (issue 17, faults).

The documented leeway is `OAuthConfig.clock_skew` (60 s): an assertion's or a DPoP
proof's `iat` may be that far in the future. A client whose clock is off by up to the
leeway (here: leeway - 5 s, either way) is served; beyond it the gateway refuses with an
OAuth error whose description names the clock, so the partner knows what to fix.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.oauth.config import OAuthConfig
from tests.oauth.support import PartnerClient

LEEWAY = OAuthConfig().clock_skew
WITHIN = LEEWAY - 5
BEYOND = LEEWAY + 5
API = "/v1/directory"


def _token_response(
    client: FlaskClient, partner: PartnerClient, skew: int, lifetime: int = 120
) -> Any:
    """A token request from a partner whose clock is `skew` seconds off the gateway's."""
    assertion = partner.assertion(iat=int(time.time()) + skew, lifetime=lifetime)
    return client.post("/oauth/token", data=partner.form(assertion, scope="directory:read"))


@pytest.mark.parametrize(("skew", "lifetime"), [(WITHIN, 120), (-WITHIN, 120), (-120, 300)])
def test_assertion_within_leeway_is_accepted(
    client: FlaskClient, partner_client: PartnerClient, skew: int, lifetime: int
) -> None:
    """Behind: accepted while the assertion's own lifetime (at most 300 s) covers it."""
    response = _token_response(client, partner_client, skew, lifetime)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["access_token"]


@pytest.mark.parametrize("skew", [BEYOND, 120])
def test_assertion_from_a_clock_ahead_beyond_leeway_is_refused(
    client: FlaskClient, partner_client: PartnerClient, skew: int
) -> None:
    response = _token_response(client, partner_client, skew)
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "invalid_client"
    assert "clock" in body["error_description"]
    assert f"{LEEWAY} s in the future" in body["error_description"]


def test_assertion_from_a_clock_behind_past_its_lifetime_names_the_clock(
    client: FlaskClient, partner_client: PartnerClient
) -> None:
    """Behind by more than the assertion's lifetime: it has expired on arrival."""
    response = _token_response(client, partner_client, -(120 + 5))
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_client"
    assert "expired" in body["error_description"] and "clock" in body["error_description"]


def _dpop_call(client: FlaskClient, token_headers: Any, skew: int) -> Any:
    headers = token_headers(scopes="directory:read", dpop=True)
    proof = headers.partner.dpop_proof(
        "GET",
        f"{headers.partner.issuer}{API}",
        access_token=headers.access_token,
        iat=int(time.time()) + skew,
    )
    return client.get(API, headers={**headers, "DPoP": proof})


@pytest.mark.parametrize("skew", [WITHIN, -WITHIN, -120])
def test_dpop_proof_within_leeway_is_accepted(
    client: FlaskClient, token_headers: Any, skew: int
) -> None:
    response = _dpop_call(client, token_headers, skew)
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("skew", [BEYOND, 120])
def test_dpop_proof_from_a_clock_ahead_beyond_leeway_is_refused(
    client: FlaskClient, token_headers: Any, skew: int
) -> None:
    response = _dpop_call(client, token_headers, skew)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("DPoP ") and 'error="invalid_dpop_proof"' in challenge
    assert "clock" in challenge and "clock" in response.get_json()["detail"]


def test_dpop_proof_from_a_clock_behind_beyond_max_age_is_refused(
    client: FlaskClient, token_headers: Any
) -> None:
    max_age = OAuthConfig().dpop_max_age
    response = _dpop_call(client, token_headers, -(max_age + 5))
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="invalid_dpop_proof"' in challenge and "clock" in challenge


def test_gateway_clock_ahead_is_the_same_as_a_client_behind(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    """Skew the gateway's own clock (the service's injectable clock) instead."""
    app.extensions["ketenpoort"].oauth.clock = lambda: time.time() + WITHIN
    response = _token_response(client, partner_client, 0)
    assert response.status_code == 200, response.get_data(as_text=True)
    app.extensions["ketenpoort"].oauth.clock = lambda: time.time() - BEYOND
    response = _token_response(client, partner_client, 0)
    assert response.status_code == 400
    assert "clock" in response.get_json()["error_description"]
