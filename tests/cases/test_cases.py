"""CaseService and /v1/cases: from a match, link/unlink, status, assignment, notes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import MetaData, select

from gateway.cases.models import CaseNoteRow
from gateway.cases.service import CaseUpdate, NewCase
from gateway.errors import InvalidInput, NotFound, PolicyDenied
from tests.cases.conftest import ANNA, CASE_SYSTEM, World

MELDPUNT_CASES = "cases:write"


def _steps(world: World, case_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in world.entries("case.write")
        if e["resource"] and e["resource"]["id"] == case_id and e["outcome"] == "success"
    ]


def test_a_case_from_a_match_linked_unlinked_status_and_assignment_all_audited(
    world: World,
) -> None:
    a = world.signal("politie-oost", "police", "possible-victim", "zij is 15")
    b = world.signal("zorg-twente", "care", "concern", "wegloopgedrag")
    c = world.signal("roc-twente", "education", "concern", "dure spullen")
    match_id = world.match(a, b)
    cases = world.svc.cases
    with world.session() as session:
        case = cases.create(session, ANNA, NewCase("Casus Hengelo-Noord", match_id=match_id))
        session.commit()
    assert case.status == "open" and case.match_id == match_id
    assert {s.id for s in case.signals} == {a, b}
    with world.session() as session:
        case = cases.link(session, ANNA, case.id, c, "zelfde school, zelfde periode")
        case = cases.unlink(session, ANNA, case.id, a, "ander persoon na controle")
        case = cases.update(session, ANNA, case.id, CaseUpdate(status="in-progress"))
        case = cases.update(session, ANNA, case.id, CaseUpdate(assignee="bram"))
        case = cases.update(
            session, ANNA, case.id, CaseUpdate(status="closed", outcome="doorverwezen naar COSM")
        )
        session.commit()
    assert {s.id for s in case.signals} == {b, c}
    assert (case.status, case.outcome, case.assignee) == (
        "closed",
        "doorverwezen naar COSM",
        "bram",
    )

    steps = _steps(world, case.id)
    assert [e["detail"]["step"] for e in steps] == [
        "create", "link", "unlink", "update", "update", "update"
    ]  # fmt: skip
    assert {e["policy"]["rule"] for e in steps} == {"coordinator-handles-matches"}
    assert all(e["policy"]["digest"] for e in steps)
    assert steps[1]["detail"]["reason"] == "zelfde school, zelfde periode"
    assert steps[2]["detail"]["signal"] == a
    assert steps[4]["detail"]["assignee"] == "bram"
    assert steps[1]["subjects"], "linking a signal names its subject (pseudonymised)"


def test_invalid_case_changes_are_400_and_change_nothing(world: World) -> None:
    a = world.signal("politie-oost", "police", "possible-victim", "x")
    cases = world.svc.cases
    with world.session() as session:
        case = cases.create(session, ANNA, NewCase("Casus", signal_ids=(a,)))
        session.commit()
    with world.session() as session:
        bad = [
            CaseUpdate(status="closed"),  # closing needs an outcome
            CaseUpdate(assignee="fleur"),  # a privacy officer, not a coordinator
            CaseUpdate(assignee="nobody"),
            CaseUpdate(),
        ]
        for change in bad:
            with pytest.raises(InvalidInput):
                cases.update(session, ANNA, case.id, change)
        with pytest.raises(InvalidInput):
            cases.create(session, ANNA, NewCase("Geboren 2010-04-01", signal_ids=(a,)))
        with pytest.raises(InvalidInput):
            cases.create(session, ANNA, NewCase("Casus", signal_ids=("nope",)))
        with pytest.raises(InvalidInput):
            cases.link(session, ANNA, case.id, a, "")
        with pytest.raises(NotFound):
            cases.get(session, ANNA, "no-such-case")
    assert len(_steps(world, case.id)) == 1


def test_notes_are_encrypted_at_rest_and_never_audited(world: World) -> None:
    a = world.signal("politie-oost", "police", "possible-victim", "x")
    secret = "Moeder belde: vriendje Kevin haalt haar op bij de Albert Heijn"
    with world.session() as session:
        case = world.svc.cases.create(session, ANNA, NewCase("Casus", signal_ids=(a,)))
        note = world.svc.cases.add_note(session, ANNA, case.id, secret)
        session.commit()
    with world.session() as session:
        notes = world.svc.cases.notes(session, ANNA, case.id)
        session.commit()
    assert [(n.id, n.text) for n in notes] == [(note.id, secret)]

    # Nothing in any table of the database holds the text (nor a word of it).
    needles = [secret.encode(), b"Kevin", b"Albert Heijn"]
    with world.session() as session:
        meta = MetaData()
        meta.reflect(bind=session.connection())  # (its own connection: it holds the lock)
        for table in meta.sorted_tables:
            for row in session.execute(select(table)):
                blob = repr(tuple(row)).encode() + b"".join(v for v in row if isinstance(v, bytes))
                assert not any(n in blob for n in needles), table.name
        stored = session.execute(select(CaseNoteRow)).scalar_one()
        assert stored.key_id.startswith("hkdf:") and len(stored.nonce) == 12
    assert all("Kevin" not in str(e) for e in world.entries())


def test_partners_never_see_cases_or_matches(world: World) -> None:
    police = world.partner("politie-oost", "police", "signals:write signals:read shares:read")
    headers = world.token(police, "signals:read shares:read")
    for path in ("/v1/cases", "/v1/matches"):
        response = world.client.get(path, headers=headers)
        assert response.status_code == 403, path
        assert response.get_json()["type"].endswith("/insufficient-scope")
    # Even a partner actor holding the scope is refused by the policy, naming the rule.
    intruder = CASE_SYSTEM.__class__(
        type="client",
        id="politie-oost-x",
        organisation="politie-oost",
        organisation_kind="police",
        scopes=frozenset({"cases:write"}),
    )
    with world.session() as session, pytest.raises(PolicyDenied, match="deny:no-matching-rule"):
        world.svc.cases.list(session, intruder)
    denied = world.entries("case.write")[-1]
    assert denied["outcome"] == "denied" and denied["policy"]["rule"] == "deny:no-matching-rule"


def test_the_cases_api(world: World) -> None:
    meldpunt = world.partner("meldpunt", "meldpunt", MELDPUNT_CASES)
    headers = world.token(meldpunt, MELDPUNT_CASES)
    a = world.signal("politie-oost", "police", "possible-victim", "x")
    b = world.signal("zorg-twente", "care", "concern", "y")
    match_id = world.match(a, b)
    client = world.client

    created = client.post(
        "/v1/cases", json={"title": "Casus", "matchId": match_id}, headers=headers
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert created.headers["Location"].endswith(f"/v1/cases/{body['id']}")
    assert set(body) >= {"id", "title", "status", "signals", "createdAt"}
    assert body["status"] == "open"
    assert set(body["signals"][0]) == {"id", "organisation", "category", "reference"}
    case_id = body["id"]

    other = client.post("/v1/cases", json={"title": "Tweede", "signalIds": [a]}, headers=headers)
    assert other.status_code == 201
    page = client.get("/v1/cases?limit=1", headers=headers).get_json()
    assert len(page["items"]) == 1 and page["next"]
    rest = client.get(f"/v1/cases?limit=1&cursor={page['next']}", headers=headers).get_json()
    assert rest["items"][0]["id"] == other.get_json()["id"] and rest["next"] is None

    unlinked = client.delete(
        f"/v1/cases/{case_id}/signals/{b}", json={"reason": "niet dezelfde"}, headers=headers
    )
    assert unlinked.status_code == 200 and [s["id"] for s in unlinked.get_json()["signals"]] == [a]
    linked = client.post(
        f"/v1/cases/{case_id}/signals", json={"signalId": b, "reason": "toch wel"}, headers=headers
    )
    assert linked.status_code == 200 and len(linked.get_json()["signals"]) == 2
    patched = client.patch(
        f"/v1/cases/{case_id}", json={"status": "in-progress", "assignee": "anna"}, headers=headers
    )
    assert patched.status_code == 200
    assert (patched.get_json()["status"], patched.get_json()["assignee"]) == ("in-progress", "anna")
    note = client.post(
        f"/v1/cases/{case_id}/notes", json={"text": "gesprek gepland"}, headers=headers
    )
    assert note.status_code == 201
    notes = client.get(f"/v1/cases/{case_id}/notes", headers=headers).get_json()["items"]
    assert [n["text"] for n in notes] == ["gesprek gepland"]
    assert client.get(f"/v1/cases/{case_id}", headers=headers).get_json()["id"] == case_id

    for bad in (
        {"title": "x"},
        {"title": "x", "signalIds": [a], "matchId": match_id},
        {"title": "", "signalIds": [a]},
        {"title": "x", "signalIds": "nope"},
        {"title": "x", "matchId": "no-such-match"},
    ):
        response = client.post("/v1/cases", json=bad, headers=headers)
        assert response.status_code == 400, bad
        assert response.get_json()["errors"]
    assert client.get("/v1/cases/unknown", headers=headers).status_code == 404
    assert client.get("/v1/cases?cursor=%%%", headers=headers).status_code == 400
    bad_patch = client.patch(f"/v1/cases/{case_id}", json={"status": "gone"}, headers=headers)
    assert bad_patch.status_code == 400


def test_a_new_case_lists_schema_and_signal_errors_together(world: World) -> None:
    meldpunt = world.partner("meldpunt", "meldpunt", MELDPUNT_CASES)
    headers = world.token(meldpunt, MELDPUNT_CASES)
    a = world.signal("politie-oost", "police", "possible-victim", "x")
    response = world.client.post("/v1/cases", json={"signalIds": ["nope"]}, headers=headers)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["type"].endswith("/problems/invalid-input")
    assert {e["pointer"] for e in response.get_json()["errors"]} == {"/title", "/signalIds/0"}
    both = world.client.post(
        "/v1/cases",
        json={"title": "2010-03-12", "signalIds": [a, "nope", 7], "extra": 1},
        headers=headers,
    )
    assert both.status_code == 400
    errors = both.get_json()["errors"]
    assert {e["pointer"] for e in errors} == {"/title", "/signalIds/1", "/signalIds/2", "/extra"}
    assert len(errors) == 4, "a value the schema refused is not refused again"
    assert "2010-03-12" not in both.get_data(as_text=True)
    assert world.client.get("/v1/cases", headers=headers).get_json()["items"] == []
