"""The partner client's transport against a live gateway: token renewal, retries after a
lost response, and 429s — the faults made real by a proxy between client and server."""

from __future__ import annotations

import base64
import json
import random
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from gateway.client import ApiError, PartnerClient
from gateway.client.auth import client_assertion
from gateway.client.client import ASSERTION_TYPE, RENEW_MARGIN_SECONDS
from gateway.demo.people import people
from tests.client.conftest import Enrolled, FakeClock, enrol, via
from tests.client.proxy import FaultyProxy
from tests.integration.live import LiveGateway

TOKEN = "/oauth/token"
SIGNALS = "/v1/signals"
DIRECTORY = "/v1/directory"


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _subject() -> dict[str, str]:
    return people(1, seed=random.randrange(2**32))[0].subject()


def _own_signals(client: PartnerClient, reference: str) -> list[dict[str, Any]]:
    return [s for s in client.signals() if s["reference"] == reference]


@pytest.fixture
def police(shared_gateway: LiveGateway, tmp_path: Path) -> Enrolled:
    return enrol(shared_gateway, "police", tmp_path)


def _client(
    police: Enrolled, proxy: FaultyProxy, sleep: Callable[[float], None], **options: Any
) -> PartnerClient:
    return police.client(http=via(proxy), sleep=sleep, **options)


# -- tokens ----------------------------------------------------------------------------


def test_token_is_renewed_when_the_clock_passes_its_lifetime(
    police: Enrolled, proxy: FaultyProxy, sleeps: list[float]
) -> None:
    clock = FakeClock()
    client = _client(police, proxy, sleeps.append, clock=clock)
    client.directory()
    first = client.access_token()
    claims = _claims(first)
    lifetime = claims["exp"] - claims["iat"]
    assert 0 < lifetime <= 600
    assert len(proxy.seen("POST", TOKEN)) == 1

    clock.advance(lifetime - RENEW_MARGIN_SECONDS - 5)  # still comfortably valid: cached
    client.directory()
    assert client.access_token() == first
    assert len(proxy.seen("POST", TOKEN)) == 1

    clock.advance(10)  # within the renewal margin: a new token before the old one expires
    client.directory()
    second = client.access_token()
    assert second != first
    assert len(proxy.seen("POST", TOKEN)) == 2
    assert _claims(second)["jti"] != claims["jti"]
    # the request after the renewal carried the new token
    assert proxy.seen("GET", DIRECTORY)[-1].header("Authorization") == f"DPoP {second}"

    clock.advance(lifetime + 1)  # long past expiry
    client.directory()
    assert len(proxy.seen("POST", TOKEN)) == 3
    assert sleeps == []  # no retries were needed


def _revoke(client: PartnerClient, token: str) -> None:
    """RFC 7009 revocation, the client authenticating with its own private_key_jwt."""
    key, jwk = client._signing_key, client._signing_jwk  # the test acts as the client
    response = requests.post(
        f"{client.issuer}/oauth/revoke",
        data={
            "token": token,
            "client_id": client.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(key, jwk, client.client_id, client.issuer),
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_a_token_the_server_refuses_is_renewed_once(
    police: Enrolled, proxy: FaultyProxy, sleeps: list[float]
) -> None:
    client = _client(police, proxy, sleeps.append)
    client.directory()
    revoked = client.access_token()
    _revoke(client, revoked)

    organisations = client.directory()  # 401 with the revoked token, renew, succeed
    assert any(o["id"] == police.org for o in organisations)
    renewed = client.access_token()
    assert renewed != revoked
    tokens = proxy.seen("POST", TOKEN)
    assert len(tokens) == 2
    assert [e.upstream_status for e in tokens] == [200, 200]
    calls = proxy.seen("GET", DIRECTORY)
    assert [e.upstream_status for e in calls] == [200, 401, 200]
    assert calls[1].header("Authorization") == f"DPoP {revoked}"
    assert calls[2].header("Authorization") == f"DPoP {renewed}"


def test_a_second_refusal_is_raised_not_renewed_again(
    police: Enrolled, proxy: FaultyProxy, sleeps: list[float]
) -> None:
    client = _client(police, proxy, sleeps.append)
    client.access_token()
    problem = b'{"type": "about:blank", "title": "Unauthorized", "status": 401}'
    for _ in range(2):
        proxy.fail(
            "GET", DIRECTORY, "answer", 401, {"Content-Type": "application/problem+json"}, problem
        )
    with pytest.raises(ApiError) as caught:
        client.directory()
    assert caught.value.status == 401
    assert len(proxy.seen("GET", DIRECTORY)) == 2
    assert len(proxy.seen("POST", TOKEN)) == 2  # the first token and one renewal


def test_a_lost_token_response_is_retried_with_a_fresh_assertion(
    police: Enrolled, proxy: FaultyProxy, sleeps: list[float]
) -> None:
    client = _client(police, proxy, sleeps.append)
    proxy.fail("POST", TOKEN, "drop")
    client.directory()
    tokens = proxy.seen("POST", TOKEN)
    assert [(e.upstream_status, e.answered) for e in tokens] == [(200, False), (200, True)]
    forms = [parse_qs(e.body.decode()) for e in tokens]
    assert forms[0]["client_assertion"] != forms[1]["client_assertion"]  # a jti is used once
    assert tokens[0].header("DPoP") != tokens[1].header("DPoP")
    assert len(sleeps) == 1


# -- submissions -----------------------------------------------------------------------


def test_retry_after_a_dropped_connection_creates_exactly_one_signal(
    police: Enrolled, proxy: FaultyProxy, sleeps: list[float], tmp_path: Path
) -> None:
    client = _client(police, proxy, sleeps.append, state_path=tmp_path / "state.json")
    client.access_token()
    proxy.fail("POST", SIGNALS, "drop")

    created = client.submit_signal("BVH-2026-DROP", "possible-victim", _subject(), {"summary": "x"})

    posts = proxy.seen("POST", SIGNALS)
    assert len(posts) == 2
    # the server stored the first one; the client never heard of it and sent it again
    assert (posts[0].upstream_status, posts[0].answered) == (201, False)
    assert (posts[1].upstream_status, posts[1].answered) == (201, True)
    key = posts[0].header("Idempotency-Key")
    assert key and posts[1].header("Idempotency-Key") == key
    assert posts[0].body == posts[1].body  # the very same request body
    assert posts[0].header("DPoP") != posts[1].header("DPoP")  # a proof's jti is used once
    assert len(sleeps) == 1 and client.backoff / 2 <= sleeps[0] <= client.backoff

    stored = _own_signals(client, "BVH-2026-DROP")
    assert [s["id"] for s in stored] == [created["id"]]
    assert stored[0]["status"] == "active"
    assert [r.signal_id for r in client.state.receipts] == [created["id"]]


def test_a_429_is_honoured_with_its_retry_after(
    police: Enrolled, proxy: FaultyProxy, sleeps: list[float]
) -> None:
    client = _client(police, proxy, sleeps.append)
    client.access_token()
    problem = json.dumps(
        {
            "type": f"{client.issuer}/problems/rate-limited",
            "title": "Too many requests",
            "status": 429,
        }
    ).encode()
    proxy.fail(
        "POST",
        SIGNALS,
        "answer",
        429,
        {"Retry-After": "1", "Content-Type": "application/problem+json"},
        problem,
    )
    created = client.submit_signal("BVH-2026-429", "possible-victim", _subject(), {"summary": "x"})

    assert sleeps == [1.0]
    posts = proxy.seen("POST", SIGNALS)
    assert [e.upstream_status for e in posts] == [None, 201]  # the first never reached it
    assert posts[0].header("Idempotency-Key") == posts[1].header("Idempotency-Key")
    assert [s["id"] for s in _own_signals(client, "BVH-2026-429")] == [created["id"]]


def test_429_on_the_last_attempt_raises_with_retry_after(
    police: Enrolled, proxy: FaultyProxy, sleeps: list[float]
) -> None:
    client = _client(police, proxy, sleeps.append, max_attempts=2)
    client.access_token()
    for _ in range(2):
        proxy.fail("GET", DIRECTORY, "answer", 429, {"Retry-After": "3"}, b"")
    with pytest.raises(ApiError) as caught:
        client.directory()
    assert caught.value.status == 429
    assert caught.value.retry_after == 3.0
    assert sleeps == [3.0]
    assert len(proxy.seen("GET", DIRECTORY)) == 2


def test_an_unreachable_gateway_is_reported_with_its_cause(tmp_path: Path) -> None:
    from gateway.client.cli import generate_partner_keys
    from gateway.client.errors import TransportError

    keys = generate_partner_keys(tmp_path)
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = PartnerClient(
        f"http://127.0.0.1:{port}",
        "police-1",
        signing_key=keys["signing"],
        max_attempts=2,
        sleep=lambda _s: None,
    )
    with pytest.raises(TransportError, match="could not connect"):
        client.metadata()
