"""The external contract of DESIGN.md, checked where a review found the gateway off it.

Each test names the contract sentence it holds the gateway to.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway import API_VERSION
from gateway.audit.views import catch_up
from tests.signals.test_api import OTHER_BSN, body

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _submit(client: FlaskClient, headers: dict[str, str], reference: str, **subject: str) -> str:
    response = client.post(
        "/v1/signals", json=body(client, headers, reference, **subject), headers=headers
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    signal_id: str = response.get_json()["id"]
    return signal_id


def test_every_page_names_next_even_on_the_last_page(
    client: FlaskClient, police: dict[str, str], meldpunt: dict[str, str]
) -> None:
    """`GET /v1/signals` → `{"items", "next"}`; likewise matches and audit entries."""
    signals = client.get("/v1/signals", headers=police).get_json()
    assert signals == {"items": [], "next": None}
    matches = client.get("/v1/matches", headers=meldpunt).get_json()
    assert matches == {"items": [], "next": None}
    entries = client.get("/v1/audit/entries?start=0&limit=1000", headers=meldpunt).get_json()
    assert set(entries) == {"entries", "next"} and entries["next"] is None


def test_notifications_feed_resumes_from_next(
    client: FlaskClient, police: dict[str, str], care: dict[str, str], meldpunt: dict[str, str]
) -> None:
    """`GET /v1/notifications?after=C` → `{"items", "next": C}`: polling with `after=next`
    gives only what arrived since, also when the previous page was the last one."""
    first = client.get("/v1/notifications", headers=meldpunt).get_json()
    assert first["items"] == [] and isinstance(first["next"], str)

    _submit(client, police, "POL-1")
    _submit(client, care, "ZORG-1")
    page = client.get(f"/v1/notifications?after={first['next']}", headers=meldpunt).get_json()
    assert [n["type"] for n in page["items"]] == ["match"]
    assert set(page["items"][0]) >= {"id", "type", "signalId", "createdAt"}

    again = client.get(f"/v1/notifications?after={page['next']}", headers=meldpunt).get_json()
    assert again == {"items": [], "next": page["next"]}

    _submit(client, police, "POL-2", bsn=OTHER_BSN, familyName="Jansen")
    _submit(client, care, "ZORG-2", bsn=OTHER_BSN, familyName="Jansen")
    later = client.get(f"/v1/notifications?after={page['next']}", headers=meldpunt).get_json()
    assert [n["type"] for n in later["items"]] == ["match"]
    assert later["items"][0]["id"] != page["items"][0]["id"]


def test_audit_entries_carry_ldv_fields_under_their_contract_names(
    app: Flask, client: FlaskClient, police: dict[str, str], meldpunt: dict[str, str]
) -> None:
    """Entries carry LDV's `trace_id` / `span_id`, `status` (Unset/Ok/Error), `name`,
    start and end in ms and `dpl.core.processing_activity_id`; the trace id is our own,
    the incoming `traceparent`'s is kept apart as the caller's (security finding 10)."""
    signal_id = _submit(client, {**police, "traceparent": TRACEPARENT}, "POL-9")
    with app.app_context():
        catch_up()
    entries = client.get("/v1/audit/entries?start=0&limit=1000", headers=meldpunt).get_json()
    created = [
        e["entry"]
        for e in entries["entries"]
        if e["entry"]["action"] == "signal.create" and e["entry"]["resource"]["id"] == signal_id
    ]
    assert len(created) == 1
    ldv = created[0]["ldv"]
    assert ldv["trace_id"] != TRACE_ID and len(ldv["trace_id"]) == 32
    assert created[0]["caller"] == {"traceId": TRACE_ID, "spanId": "00f067aa0ba902b7"}
    assert len(ldv["span_id"]) == 16 and int(ldv["span_id"], 16) >= 0
    assert ldv["status"] in {"Unset", "Ok", "Error"} and ldv["name"] == "signal.create"
    assert isinstance(ldv["start_time"], int) and ldv["end_time"] >= ldv["start_time"]
    policy = client.get("/v1/policy", headers=police).get_json()
    expected = policy["categories"]["possible-victim"]["processingActivity"]
    assert ldv["dpl.core.processing_activity_id"] == expected
    assert created[0]["subjects"] and all(set(s) == {"id", "type"} for s in created[0]["subjects"])


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_oauth_endpoints_answer_a_wrong_method_as_rfc6749(client: FlaskClient, path: str) -> None:
    """ "OAuth endpoints answer RFC 6749 errors", also before routing chose a view."""
    response = client.get(path)
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert response.get_json()["error"] == "invalid_request"
    assert response.headers["API-Version"] == API_VERSION
    assert "POST" in response.headers["Allow"]


def test_other_paths_answer_a_wrong_method_as_problem(client: FlaskClient) -> None:
    response = client.put("/v1/directory")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _path(document: dict[str, Any], path: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"].get(path) or document["paths"][f"/v1{path}"]
    return found


def test_matches_carry_tier_and_state_and_signals_may_carry_match_keys(
    client: FlaskClient, police: dict[str, str], care: dict[str, str], meldpunt: dict[str, str]
) -> None:
    """`GET /v1/matches` items also carry `"tier": "strong"|"possible"` and `"state"`;
    `POST /v1/signals` may carry `"matchKeys"` instead of `"subject"`."""
    _submit(client, police, "POL-1")
    _submit(client, care, "ZORG-1")
    (item,) = client.get("/v1/matches", headers=meldpunt).get_json()["items"]
    assert set(item) >= {"id", "signals", "linkageKeys", "createdAt", "tier", "state"}
    assert item["tier"] in {"strong", "possible"} and item["state"] == "new"
    assert client.get(f"/v1/matches/{item['id']}", headers=meldpunt).get_json() == item

    document = client.get("/v1/openapi.json").get_json()
    ok = _path(document, "/matches")["get"]["responses"]["200"]["content"]["application/json"]
    page = _resolved(document, ok["schema"])
    match = _resolved(document, page["properties"]["items"]["items"])
    assert {"tier", "state", "linkageKeys"} <= set(match["properties"])
    create = _path(document, "/signals")["post"]["requestBody"]["content"]["application/json"]
    assert {"subject", "matchKeys"} <= set(_resolved(document, create["schema"])["properties"])
    assert "patch" in _path(document, "/matches/{match_id}")
