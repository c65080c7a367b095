"""The case pages without a browser: every form refuses a missing CSRF token, a privacy
officer gets 403 (separation of duties), refusals are pages in Dutch, never a 500."""

from __future__ import annotations

import re

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway.actors import cli_actor
from gateway.users.service import add_user
from tests.cases.conftest import Clock, World

PASSWORD = "een-eigen-wachtwoord"


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert found
    return found.group(1)


def signed_in(app: Flask, name: str, role: str) -> FlaskClient:
    svc = app.extensions["ketenpoort"]
    with svc.db.transaction() as session:
        created = add_user(session, svc.keys, name=name, role=role, actor=cli_actor())
    client = app.test_client()
    client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client),
            "username": name,
            "password": created.one_time_password,
            "otp": pyotp.TOTP(created.totp_secret).now(),
        },
    )
    response = client.post(
        "/login/password",
        data={
            "csrf_token": csrf_token(client, "/login/password"),
            "new_password": PASSWORD,
            "confirm_password": PASSWORD,
        },
    )
    assert response.headers["Location"] == "/"
    return client


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> World:
    """Signals and audit entries, without an app context (each request pushes its own)."""
    return World(app, client, app.extensions["ketenpoort"].cases, Clock())


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]


def new_case(client: FlaskClient, title: str, *signal_ids: str) -> str:
    response = client.post(
        "/cases",
        data={
            "csrf_token": csrf_token(client, "/cases"),
            "title": title,
            "signal_ids": "\n".join(signal_ids),
        },
    )
    assert response.status_code == 302, text(response)
    location: str = response.headers["Location"]
    assert location.startswith("/cases/")
    return location


def test_every_case_form_refuses_a_missing_or_wrong_csrf_token(world: World) -> None:
    coordinator = signed_in(world.app, "c.jansen", "coordinator")
    sid = world.signal("politie-oost", "police", "possible-victim", "x")
    case = new_case(coordinator, "Casus Oost", sid)
    posts = {
        "/cases": {"title": "Nog een", "signal_ids": sid},
        f"{case}/signals": {"signal_id": sid, "reason": "hoort erbij"},
        f"{case}/signals/{sid}/unlink": {"reason": "hoort er niet bij"},
        f"{case}/status": {"status": "in-progress"},
        f"{case}/assignee": {"assignee": "c.jansen"},
        f"{case}/notes": {"text": "een notitie"},
        f"{case}/shares": {"signal_ids": sid, "organisations": "politie-oost", "purpose": "x"},
    }
    for path, data in posts.items():
        for token in (None, "not-a-token"):
            form = data if token is None else {**data, "csrf_token": token}
            response = coordinator.post(path, data=form)
            assert response.status_code == 400, path
            assert "Dit formulier is verlopen" in text(response), path
    assert "Nog geen notities." in text(coordinator.get(case))
    assert "Nog een" not in text(coordinator.get("/cases"))
    steps = [e["detail"].get("step") for e in world.entries() if e["action"].startswith("case.")]
    assert not {"link", "unlink", "update", "note.add", "share", "share.request"} & set(steps)
    assert steps.count("create") == 1
    assert len(world.entries("web.csrf-refused")) == 2 * len(posts)


def test_a_privacy_officer_gets_403_on_every_case_page(world: World) -> None:
    coordinator = signed_in(world.app, "c.jansen", "coordinator")
    sid = world.signal("politie-oost", "police", "possible-victim", "x")
    case = new_case(coordinator, "Casus Oost", sid)
    officer = signed_in(world.app, "p.visser", "privacy-officer")
    assert officer.get("/cases").status_code == 403
    assert officer.get(case).status_code == 403
    assert officer.get("/cases/unknown").status_code == 403  # the role first
    token = csrf_token(officer, "/")
    for path, data in {
        "/cases": {"title": "Van de FG", "signal_ids": sid},
        f"{case}/notes": {"text": "mag niet"},
        f"{case}/status": {"status": "closed", "outcome": "mag niet"},
    }.items():
        response = officer.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, path
        assert "separation-of-duties" in text(response)
    menu = text(officer.get("/"))
    assert 'href="/cases"' not in menu
    denied = [e for e in world.entries("case.write") if e["outcome"] == "denied"]
    # the three posts, and the reads (identical read denials are summarised in one entry)
    assert len(denied) >= 5


def test_refusals_are_dutch_messages_and_unknown_cases_are_404(world: World) -> None:
    coordinator = signed_in(world.app, "c.jansen", "coordinator")
    empty = coordinator.get("/cases")
    assert empty.status_code == 200 and "Er zijn nog geen casussen" in text(empty)
    for path in ("/cases/unknown", "/cases/" + "x" * 300):
        missing = coordinator.get(path)
        assert missing.status_code == 404 and "Pagina niet gevonden" in text(missing), path
    token = csrf_token(coordinator, "/cases")
    missing = coordinator.post("/cases/unknown/notes", data={"csrf_token": token, "text": "x"})
    assert missing.status_code == 404
    # a title that looks like personal data, and an unknown signal id
    bad = coordinator.post(
        "/cases", data={"csrf_token": token, "title": "Geboren 01-02-2010", "signal_ids": "nope"}
    )
    page = text(bad)
    assert bad.status_code == 400 and "Er is een probleem" in page
    assert "zonder persoonsgegevens" in page
    bad = coordinator.post("/cases", data={"csrf_token": token, "title": "Oost", "signal_ids": "x"})
    assert bad.status_code == 400 and "Geef de ids van actieve signalen" in text(bad)
    assert 'value="Geboren 01-02-2010"' in page
    sid = world.signal("politie-oost", "police", "possible-victim", "x")
    # from the match page without a title: back to the match, saying why
    match_id = world.match(sid, world.signal("zorg-oost", "care", "concern", "y"))
    assert "Casus aanmaken" in text(coordinator.get(f"/matches/{match_id}"))
    back = coordinator.post("/cases", data={"csrf_token": token, "title": "", "match_id": match_id})
    assert back.status_code == 302 and back.headers["Location"] == f"/matches/{match_id}"
    assert "Geef de casus een titel" in text(coordinator.get(back.headers["Location"]))
    case = new_case(coordinator, "Casus Oost", sid)
    for path, data, expected in [
        (f"{case}/signals", {"signal_id": sid, "reason": ""}, "Geef een reden"),
        (f"{case}/signals/{sid}/unlink", {"reason": ""}, "Geef een reden"),
        (f"{case}/signals/unknown/unlink", {"reason": "weg"}, "niet aan deze casus gekoppeld"),
        (f"{case}/status", {"status": "closed", "outcome": ""}, "uitkomst"),
        (f"{case}/assignee", {"assignee": "niemand"}, "Kies een actieve coördinator"),
        (f"{case}/notes", {"text": ""}, "Schrijf een notitie"),
        (f"{case}/shares", {"purpose": "case-meeting"}, "Kies een of meer"),
    ]:
        response = coordinator.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 400, path
        assert expected in text(response), (path, text(response))
    closed = coordinator.post(
        f"{case}/status",
        data={"csrf_token": token, "status": "closed", "outcome": "Hulp geregeld via COSM"},
    )
    assert closed.status_code == 302 and closed.headers["Location"] == case
    page = text(coordinator.get(case))
    assert "Gesloten: Hulp geregeld via COSM" in page and "De status is gewijzigd." in page


def test_a_refused_share_names_the_signal_and_the_organisation(world: World) -> None:
    """The policy's recipient rule in words: which signal (reference, category) may not go
    to which organisation (name, kind); the form says beforehand who may receive what."""
    coordinator = signed_in(world.app, "c.jansen", "coordinator")
    world.partner("roc-oost", "education")
    world.partner("zorg-oost", "care")
    sid = world.signal("politie-oost", "police", "possible-victim", "x")
    case = new_case(coordinator, "Casus Oost", sid)
    page = text(coordinator.get(case))
    assert re.search(r"roc-oost \(onderwijs\)[^<]*mag geen van deze signalen ontvangen", page)
    assert re.search(r"zorg-oost \(zorg\)[^<]*mag ontvangen: mogelijk slachtoffer", page)
    reference = re.search(r"(REF-[0-9a-f]{8})", page)
    assert reference
    refused = coordinator.post(
        f"{case}/shares",
        data={
            "csrf_token": csrf_token(coordinator, case),
            "signal_ids": sid,
            "organisations": "roc-oost",
            "purpose": "care-referral",
        },
    )
    summary = re.search(r'id="error-summary">(.*?)</div>', text(refused), re.S)
    assert refused.status_code == 403 and summary
    message = summary.group(1)
    assert (
        f"roc-oost (onderwijs) mag signaal {reference.group(1)} (mogelijk slachtoffer) "
        "niet ontvangen (regel deny:recipient-kind-not-allowed)" in message
    )
    assert sid not in message and "possible-victim" not in message and "education" not in message
