"""Rate limits (429 + Retry-After) and the bounded audit of refusals."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.config import RateLimit
from gateway.oauth.failures import is_milestone
from tests.oauth.support import PartnerClient
from tests.oauth.test_attacks import assert_oauth_error

TOKEN = "/oauth/token"


def oauth_service(app: Flask) -> Any:
    return app.extensions["ketenpoort"].oauth


def refusals(app: Flask) -> list[dict[str, Any]]:
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        rows = session.scalars(
            select(AuditEntryRow)
            .where(AuditEntryRow.action == "token.refuse")
            .order_by(AuditEntryRow.id)
        ).all()
        return [json.loads(r.data) for r in rows]


def test_per_client_token_limit(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    oauth_service(app).limits.limits["token"] = RateLimit.parse("1/m burst 3")
    for _ in range(3):
        assert client.post(TOKEN, data=partner_client.form()).status_code == 200
    response = client.post(TOKEN, data=partner_client.form())
    assert_oauth_error(response, 429, "temporarily_unavailable")
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_per_address_limit_counts_failures_only(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    """Changed with security finding 4: failures from an address limit further failures
    from it, never a request that authenticates (before, it was refused too)."""
    oauth_service(app).config.failures_per_address = 5
    for _ in range(5):
        client.post(TOKEN, data={"grant_type": "client_credentials"})
    response = client.post(TOKEN, data={"grant_type": "client_credentials"})
    assert_oauth_error(response, 429, "temporarily_unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    assert client.post(TOKEN, data=partner_client.form()).status_code == 200
    other_address = client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert_oauth_error(other_address, 400, "invalid_client")


def test_refusal_flood_writes_few_entries_with_counts(app: Flask, client: FlaskClient) -> None:
    oauth_service(app).clock = lambda: 1_800_000_000.0  # one window for the whole flood
    for _ in range(120):
        response = client.post(TOKEN, data={"grant_type": "client_credentials"})
        assert response.status_code == 400
    entries = refusals(app)
    counts = [e["detail"]["countInWindow"] for e in entries]
    assert counts == [1, 10, 100]
    assert all(e["actor"] == {"type": "anonymous", "id": "anonymous"} for e in entries)
    assert entries[0]["detail"]["error"] == "invalid_client"
    assert entries[0]["outcome"] == "denied"


def test_refusal_entries_are_capped_per_window(app: Flask, client: FlaskClient) -> None:
    service = oauth_service(app)
    service.clock = lambda: 1_800_000_000.0
    service.config.refusal_entries_per_window = 3
    for n in range(10):  # ten addresses: ten keys, each would write its first entry
        client.get(
            "/v1/directory",
            headers={"Authorization": "Bearer x"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n}"},
        )
    entries = refusals(app)
    assert len(entries) == 4
    assert entries[-1]["detail"]["suppressed"] is True


def test_api_401_is_recorded_with_the_claimed_client(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    headers = token_headers(scopes="directory:read", dpop=True)
    client.get("/v1/directory", headers={"Authorization": f"Bearer {headers.access_token}"})
    entry = refusals(app)[-1]
    assert entry["detail"]["error"] == "invalid_token"
    assert entry["detail"]["claimedClient"] == headers.partner.client_id
    assert entry["detail"]["endpoint"] == "/v1/directory"
    assert headers.access_token not in json.dumps(entry)


def test_refusal_survives_the_failed_request(
    app: Flask, client: FlaskClient, partner_client: PartnerClient
) -> None:
    assertion = partner_client.assertion(lifetime=1000)
    client.post(TOKEN, data=partner_client.form(assertion))
    entry = refusals(app)[-1]
    assert entry["detail"]["claimedClient"] == partner_client.client_id
    assert "300" in entry["detail"]["description"]


def test_milestones() -> None:
    assert [n for n in range(1, 1001) if is_milestone(n)] == [1, 10, 100, 1000]
