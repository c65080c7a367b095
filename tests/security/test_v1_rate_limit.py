"""Weakness 5 of the outside attack: no rate limit on `/v1`.

A read flood from one partner slowed another's submissions 10 to 15 times. Now every
authenticated request spends a token from its own client's bucket (in the database, so
every worker shares it): the flooding client gets 429 with `Retry-After`, the others go
on, and `/metrics` counts the 429s per client.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.config import ConfigError, RateLimit, Settings, load_settings
from gateway.db import Database
from gateway.ratelimit import buckets
from gateway.services import close_app
from tests.oauth.support import register_partner

BURST = 5


@pytest.fixture
def limited_app(settings: Settings, initialised: dict[str, Any]) -> Iterator[Flask]:
    """Five requests per client, then one a minute: the test never waits for a refill."""
    app = create_app(
        settings=replace(
            settings,
            rate_limit_per_client=RateLimit.parse(f"1/m burst {BURST}"),
            token_rate_limit_per_client=RateLimit.parse("1/m burst 3"),
        )
    )
    yield app
    close_app(app)


def bearer(app: Flask, client: FlaskClient, org: str) -> tuple[str, dict[str, str]]:
    partner = register_partner(app, org)
    response = partner.request_token(client)
    assert response.status_code == 200, response.get_data(as_text=True)
    return partner.client_id, {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def limited_count(client: FlaskClient, client_id: str, endpoint: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    pattern = (
        r'^ketenpoort_rate_limited_requests_total\{client="'
        + re.escape(client_id)
        + r'",endpoint="'
        + endpoint
        + r'"\} (\S+)$'
    )
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_flooding_client_is_limited_and_another_is_not(limited_app: Flask) -> None:
    client = limited_app.test_client()
    police_id, police = bearer(limited_app, client, "police")
    care_id, care = bearer(limited_app, client, "care")
    assert [client.get("/v1/directory", headers=police).status_code for _ in range(BURST)] == [
        200
    ] * BURST
    for _ in range(3):
        flood = client.get("/v1/directory", headers=police)
        assert flood.status_code == 429
        assert flood.mimetype == "application/problem+json"
        problem = flood.get_json()
        assert problem["type"].endswith("/problems/too-many-requests")
        assert problem["status"] == 429
        assert 1 <= int(flood.headers["Retry-After"]) <= 60
        assert flood.headers["API-Version"]
    # every kind of request spends the same bucket
    assert client.get("/v1/signals", headers=police).status_code == 429
    # the other partner is not affected by the flood
    assert [client.get("/v1/directory", headers=care).status_code for _ in range(BURST)] == [
        200
    ] * BURST
    assert limited_count(client, police_id, "v1") == 4
    assert limited_count(client, care_id, "v1") == 0


def test_the_token_endpoint_has_a_bucket_per_client(limited_app: Flask) -> None:
    client = limited_app.test_client()
    police = register_partner(limited_app, "police")
    care = register_partner(limited_app, "care")
    assert [police.request_token(client).status_code for _ in range(3)] == [200] * 3
    refused = police.request_token(client)
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "temporarily_unavailable"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert care.request_token(client).status_code == 200
    assert limited_count(client, police.client_id, "token") == 1
    assert limited_count(client, care.client_id, "token") == 0


def test_the_bucket_is_shared_by_every_worker(limited_app: Flask, settings: Settings) -> None:
    """Two apps on one database stand for two gunicorn workers (or two hosts)."""
    other = create_app(
        settings=replace(settings, rate_limit_per_client=RateLimit.parse(f"1/m burst {BURST}"))
    )
    try:
        first, second = limited_app.test_client(), other.test_client()
        _, police = bearer(limited_app, first, "police")
        statuses = [
            (first if n % 2 else second).get("/v1/directory", headers=police).status_code
            for n in range(BURST + 2)
        ]
        assert statuses == [200] * BURST + [429, 429]
    finally:
        close_app(other)


def test_the_bucket_refills_at_its_rate(limited_app: Flask) -> None:
    service = limited_app.extensions["ketenpoort"].oauth
    client = limited_app.test_client()
    _, police = bearer(limited_app, client, "police")
    now = [service.clock()]
    service.clock = lambda: now[0]
    # the access token must stay valid: stay within its lifetime
    for _ in range(BURST):
        assert client.get("/v1/directory", headers=police).status_code == 200
    refused = client.get("/v1/directory", headers=police)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) == 60
    now[0] += 30
    assert int(client.get("/v1/directory", headers=police).headers["Retry-After"]) == 30
    now[0] += 30
    assert client.get("/v1/directory", headers=police).status_code == 200
    assert client.get("/v1/directory", headers=police).status_code == 429


def test_take_refills_and_never_exceeds_the_burst(database_url: str) -> None:
    """The bucket statement on its own, on each database."""
    from gateway.ratelimit.models import RateBucket

    db = Database(database_url)
    try:
        RateBucket.__table__.create(db.engine)  # type: ignore[attr-defined]
        limit = RateLimit(rate=2.0, burst=3)

        def take(now: float) -> float:
            with db.transaction() as session:
                return buckets.take(session, "v1:c", limit, now)

        assert [take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
        assert take(100.0) == pytest.approx(0.5)
        assert take(100.25) == pytest.approx(0.25)  # a refused request spends nothing
        assert take(100.5) == 0.0
        assert take(1000.0) == 0.0  # a long pause refills to the burst, never beyond
        assert [take(1000.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(0.5)]
        assert take(900.0) == pytest.approx(0.5)  # a clock behind never refills
    finally:
        db.dispose()


def test_rate_limit_settings() -> None:
    settings = load_settings(
        {
            "KETENPOORT_RATE_LIMIT_PER_CLIENT": "20/s burst 40",
            "KETENPOORT_TOKEN_RATE_LIMIT_PER_CLIENT": "120/m",
            "KETENPOORT_FAILURES_PER_ADDRESS": "30",
        }
    )
    assert settings.rate_limit_per_client == RateLimit(rate=20.0, burst=40)
    assert settings.token_rate_limit_per_client == RateLimit(rate=2.0, burst=120)
    assert settings.failures_per_address == 30
    for bad in ("", "20", "0/s", "20/d", "20/s burst 0", "-1/s", "1e9/s", "20/s burst"):
        if not bad:
            continue
        with pytest.raises(ConfigError, match="KETENPOORT_RATE_LIMIT_PER_CLIENT"):
            load_settings({"KETENPOORT_RATE_LIMIT_PER_CLIENT": bad})
    with pytest.raises(ConfigError, match="KETENPOORT_FAILURES_PER_ADDRESS"):
        load_settings({"KETENPOORT_FAILURES_PER_ADDRESS": "0"})


@given(
    count=st.integers(min_value=1, max_value=10**6),
    unit=st.sampled_from(["s", "m", "h"]),
    burst=st.none() | st.integers(min_value=1, max_value=10**6),
)
def test_rate_limit_parse_round_trips(count: int, unit: str, burst: int | None) -> None:
    text = f"{count}/{unit}" + (f" burst {burst}" if burst is not None else "")
    parsed = RateLimit.parse(text)
    assert parsed.rate == pytest.approx(count / {"s": 1, "m": 60, "h": 3600}[unit])
    assert parsed.burst == (burst if burst is not None else count)
    again = RateLimit.parse(str(parsed))
    assert again.burst == parsed.burst
    assert again.rate == pytest.approx(parsed.rate, rel=1e-6)


@given(st.text(max_size=40))
def test_rate_limit_parse_never_fails_otherwise_than_value_error(text: str) -> None:
    try:
        parsed = RateLimit.parse(text)
    except ValueError:
        return
    assert parsed.rate > 0 and parsed.burst >= 1


def test_a_refused_token_spends_nothing_of_its_clients_bucket(limited_app: Flask) -> None:
    """The bucket is taken in the transaction that reads the token's revocation and
    client standing: a refused token rolls it back, a valid one commits it."""
    client = limited_app.test_client()
    partner = register_partner(limited_app, "police")

    def token() -> str:
        response = partner.request_token(client)
        assert response.status_code == 200, response.get_data(as_text=True)
        return str(response.get_json()["access_token"])

    revoked = token()
    form = partner.form()
    del form["grant_type"]
    assert client.post("/oauth/revoke", data={**form, "token": revoked}).status_code == 200
    for _ in range(BURST + 2):
        response = client.get("/v1/directory", headers={"Authorization": f"Bearer {revoked}"})
        assert response.status_code == 401
    fresh = {"Authorization": f"Bearer {token()}"}
    statuses = [client.get("/v1/directory", headers=fresh).status_code for _ in range(BURST + 1)]
    assert statuses == [200] * BURST + [429]
