"""The privacy officer's subject search: every signal and audit entry about one person."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from tests.conftest import MELDPUNT_SCOPES
from tests.signals.test_api import BSN, SUBJECT, body
from tests.test_http_conventions import assert_problem


def test_finds_signals_and_audit_entries_including_withdrawn(
    client: FlaskClient, token_headers: Any
) -> None:
    police, care = token_headers("police"), token_headers("care")
    officer = token_headers("meldpunt", MELDPUNT_SCOPES)
    a = client.post("/v1/signals", json=body(client, police), headers=police).get_json()
    b = client.post("/v1/signals", json=body(client, care, "JH-9", "concern"), headers=care)
    b = b.get_json()
    client.delete(f"/v1/signals/{b['id']}", headers=care)
    other = body(client, police, "BVH-2", bsn="123456782", familyName="Jansen")
    client.post("/v1/signals", json=other, headers=police)

    response = client.post("/v1/subject-searches", json={"subject": SUBJECT}, headers=officer)
    assert response.status_code == 200, response.get_data(as_text=True)
    result = response.get_json()
    assert [s["id"] for s in result["signals"]] == [a["id"]]  # the withdrawn one holds nothing
    actions = {
        (e["entry"]["action"], (e["entry"]["resource"] or {}).get("id"))
        for e in result["auditEntries"]
    }
    assert ("signal.create", a["id"]) in actions
    assert ("signal.create", b["id"]) in actions
    assert ("signal.withdraw", b["id"]) in actions
    assert len(result["subjectReferences"]) == 2
    text = response.get_data(as_text=True)
    assert BSN not in text and "Berg" not in text


def test_only_the_privacy_officers_system_may_search(
    client: FlaskClient, token_headers: Any
) -> None:
    police = token_headers("police")
    assert_problem(
        client.post("/v1/subject-searches", json={"subject": SUBJECT}, headers=police),
        403,
        "insufficient-scope",
    )


def test_invalid_identifiers_are_400(client: FlaskClient, token_headers: Any) -> None:
    officer = token_headers("meldpunt", MELDPUNT_SCOPES)
    response = client.post(
        "/v1/subject-searches", json={"subject": {"bsn": "123456789"}}, headers=officer
    )
    assert_problem(response, 400, "invalid-subject")
