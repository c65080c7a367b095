"""Matches over HTTP: tiers from the typo-tolerant key families, the review state
(audited, `cases:write`), and blind submissions (`matchKeys`) matching plain ones."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit.models import AuditEntryRow
from tests.linkage.test_oprf_api import transport
from tests.matches_support import ANNA, MatchDesk
from tests.signals.test_api import body
from tests.test_http_conventions import assert_problem


def entries(app: Flask, action: str) -> list[dict[str, Any]]:
    with app.extensions["ketenpoort"].db.transaction(write=False) as session:
        rows = session.execute(select(AuditEntryRow.data)).scalars().all()
    found = [json.loads(r) for r in rows]
    return [e for e in found if e["action"] == action]


def test_a_typo_in_the_family_name_still_matches_strongly(desk: MatchDesk) -> None:
    match, a, b = desk.two_signals(other={**ANNA, "familyName": "van den Bergh"})
    assert {s["id"] for s in match["signals"]} == {a, b}
    assert match["tier"] == "strong" and match["state"] == "new"
    assert "name_dob" not in match["linkageKeys"] and "del_dob" in match["linkageKeys"]
    assert {s["tier"] for s in match["signals"]} == {"strong"}


def test_names_without_a_date_of_birth_are_only_possible(desk: MatchDesk) -> None:
    match, _, _ = desk.two_signals(other={"familyName": "van den Berg", "givenNames": "Anna"})
    assert match["tier"] == "possible"
    assert set(match["linkageKeys"]) <= {"names", "names_del"}


def test_twins_with_different_bsns_never_match(desk: MatchDesk) -> None:
    desk.submit(desk.police, {**ANNA, "bsn": "111222333"})
    desk.submit(desk.care, {**ANNA, "bsn": "123456782"})
    assert desk.matches() == []


def test_review_states_are_audited_and_a_dismissal_needs_a_reason(
    app: Flask, desk: MatchDesk
) -> None:
    client, police, meldpunt = desk.client, desk.police, desk.meldpunt
    match, _, _ = desk.two_signals()
    url = f"/v1/matches/{match['id']}"
    assert client.get(url, headers=meldpunt).get_json()["state"] == "new"
    reviewed = client.patch(url, json={"state": "under-review"}, headers=meldpunt)
    assert reviewed.status_code == 200 and reviewed.get_json()["state"] == "under-review"

    no_reason = client.patch(url, json={"state": "dismissed"}, headers=meldpunt)
    assert_problem(no_reason, 400, "invalid-input")
    free_text = client.patch(
        url, json={"state": "dismissed", "reason": "Anna is iemand anders"}, headers=meldpunt
    )
    assert_problem(free_text, 400, "invalid-input")
    assert "Anna" not in free_text.get_data(as_text=True)

    dismissed = client.patch(
        url, json={"state": "dismissed", "reason": "different-persons"}, headers=meldpunt
    ).get_json()
    assert dismissed["state"] == "dismissed" and dismissed["stateReason"] == "different-persons"
    assert desk.matches()[0]["state"] == "dismissed"
    audited = entries(app, "case.write")
    assert [e["detail"] for e in audited if e["resource"]["id"] == match["id"]] == [
        {"state": "under-review"},
        {"state": "dismissed", "reason": "different-persons"},
    ]

    # A partner may neither read nor review matches.
    assert client.get(url, headers=police).status_code == 403
    assert client.patch(url, json={"state": "new"}, headers=police).status_code == 403
    assert_problem(
        client.patch(
            "/v1/matches/00000000-0000-4000-8000-000000000000",
            json={"state": "confirmed"},
            headers=meldpunt,
        ),
        404,
        "not-found",
    )


def test_a_dismissed_pair_never_comes_back_together(desk: MatchDesk, token_headers: Any) -> None:
    match, a, b = desk.two_signals()
    desk.client.patch(
        f"/v1/matches/{match['id']}",
        json={"state": "dismissed", "reason": "different-persons"},
        headers=desk.meldpunt,
    )
    c = desk.submit(token_headers("education"), ANNA)
    found = desk.matches()
    dismissed = [m for m in found if m["id"] == match["id"]]
    assert {s["id"] for s in dismissed[0]["signals"]} == {a, b}
    fresh = [m for m in found if m["id"] != match["id"]]
    assert fresh and all(m["state"] == "new" for m in fresh)
    for m in fresh:
        ids = {s["id"] for s in m["signals"]}
        assert c in ids and not {a, b} <= ids


def test_a_case_made_from_a_match_shows_it_linked(desk: MatchDesk) -> None:
    match, _, _ = desk.two_signals()
    created = desk.client.post(
        "/v1/cases", json={"title": "Casus 1", "matchId": match["id"]}, headers=desk.meldpunt
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    assert desk.matches()[0]["state"] == "linked"


def test_a_blind_submission_matches_a_plain_one_of_the_same_person(desk: MatchDesk) -> None:
    from gateway.client.blind import BlindKeys

    client, care = desk.client, desk.care
    plain = desk.submit(desk.police, {**ANNA, "bsn": "111222333"})
    match_keys = BlindKeys(transport(client, care)).match_keys({**ANNA, "bsn": "111222333"})
    sent = body(client, care)
    del sent["subject"]
    sent["matchKeys"] = match_keys
    response = client.post("/v1/signals", json=sent, headers=care)
    assert response.status_code == 201, response.get_data(as_text=True)
    blind = response.get_json()
    assert {"bsn", "name_dob", "del_dob"} <= set(blind["linkageKeys"])
    (match,) = desk.matches()
    assert {s["id"] for s in match["signals"]} == {plain, blind["id"]}
    assert match["tier"] == "strong"


def test_match_keys_are_checked_and_never_sent_with_a_subject(
    client: FlaskClient, care: dict[str, str]
) -> None:
    sent = body(client, care)
    sent["matchKeys"] = {"name_dob": "AAAA"}
    assert_problem(client.post("/v1/signals", json=sent, headers=care), 400, "invalid-input")
    del sent["subject"]
    assert_problem(client.post("/v1/signals", json=sent, headers=care), 400, "invalid-input")
    sent["matchKeys"] = {"shoe_size": "AAAA"}
    refused = client.post("/v1/signals", json=sent, headers=care)
    assert_problem(refused, 400, "invalid-input")
    assert "shoe_size" not in refused.get_data(as_text=True)
    del sent["matchKeys"]
    assert_problem(client.post("/v1/signals", json=sent, headers=care), 400, "invalid-input")
