"""Weakness 10 of the outside attack: audit gaps and confusion.

A request for another organisation's signal (404) was not audited, nor were idempotent
replays; a caller could choose the request id recorded as ours. Now every authorisation
outcome is an entry — "not yours" and "no such id" alike, so the entry is no oracle
either — a replay is an entry of its own, and our request id is always ours.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from gateway.pseudonyms.detector import recordable_uuid
from tests.security.test_matching_oracle import blank
from tests.signals.test_api import body


def _entries(app: Flask) -> list[dict[str, Any]]:
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        rows = session.execute(select(AuditEntryRow.data).order_by(AuditEntryRow.id)).scalars()
        return [json.loads(data) for data in rows]


def _last(app: Flask, action: str, organisation: str) -> dict[str, Any]:
    found = [
        e
        for e in _entries(app)
        if e["action"] == action and e["actor"].get("organisation") == organisation
    ]
    assert found, f"no {action} entry by {organisation}"
    return found[-1]


@pytest.mark.parametrize(
    ("method", "action"), [("GET", "signal.read"), ("DELETE", "signal.withdraw")]
)
def test_another_organisations_signal_is_a_404_audited_like_a_missing_one(
    app: Flask,
    client: FlaskClient,
    police: dict[str, str],
    care: dict[str, str],
    method: str,
    action: str,
) -> None:
    created = client.post("/v1/signals", json=body(client, police), headers=police)
    assert created.status_code == 201
    theirs = created.get_json()["id"]
    missing = recordable_uuid()  # as the gateway's own ids are

    answers = []
    entries = []
    for signal_id in (theirs, missing):
        response = client.open(f"/v1/signals/{signal_id}", method=method, headers=care)
        assert response.status_code == 404
        answers.append(blank({k: v for k, v in response.get_json().items() if k != "instance"}))
        entry = _last(app, action, "care")
        assert entry["outcome"] == "denied"
        assert entry["resource"] == {"type": "signal", "id": signal_id}
        entries.append(blank(entry))
    assert answers[0] == answers[1]
    assert entries[0] == entries[1]
    # and the signal is untouched
    assert client.get(f"/v1/signals/{theirs}", headers=police).get_json()["status"] == "active"


def test_a_malformed_id_is_audited_without_echoing_it(
    app: Flask, client: FlaskClient, care: dict[str, str]
) -> None:
    response = client.get("/v1/signals/123456782", headers=care)
    assert response.status_code == 404
    entry = _last(app, "signal.read", "care")
    assert entry["outcome"] == "denied" and entry["resource"] == {"type": "signal", "id": None}
    assert "123456782" not in json.dumps(_entries(app))


def test_an_idempotent_replay_is_audited(
    app: Flask, client: FlaskClient, police: dict[str, str]
) -> None:
    headers = {**police, "Idempotency-Key": "retry-replay-01"}
    signal = body(client, police)
    first = client.post("/v1/signals", json=signal, headers=headers)
    again = client.post("/v1/signals", json=signal, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    created = [
        e
        for e in _entries(app)
        if e["action"] == "signal.create" and e["resource"]["id"] == first.get_json()["id"]
    ]
    assert len(created) == 2
    assert created[0]["outcome"] == created[1]["outcome"] == "success"
    assert "replay" not in created[0]["detail"] and created[1]["detail"]["replay"] is True
    assert created[1]["policy"]["rule"] == created[0]["policy"]["rule"]
    assert created[1]["requestId"] == again.headers["X-Request-Id"]


def test_our_request_id_is_ours_and_the_callers_is_kept_apart(
    app: Flask, client: FlaskClient, police: dict[str, str], meldpunt: dict[str, str]
) -> None:
    """A partner sending the meldpunt's request id does not file its entry under it."""
    listed = client.get("/v1/notifications", headers=meldpunt)
    theirs = listed.headers["X-Request-Id"]
    response = client.get("/v1/signals", headers={**police, "X-Request-Id": theirs})
    assert response.status_code == 200
    entry = _last(app, "signal.list", "police")
    assert entry["requestId"] == response.headers["X-Request-Id"] != theirs
    assert entry["caller"] == {"requestId": theirs}
