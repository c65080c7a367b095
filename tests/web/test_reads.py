"""The payload and approvals pages without a browser: CSRF, roles, a signal outside its
case, refusals shown as pages (never a 500), and a waiting share approved on /approvals.
(The whole four-eyes flow in a browser: test_four_eyes.py; the idle time-out:
test_sign_in.py.)"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.cases.approvals import PAYLOAD_READ
from gateway.cases.models import ApprovalRow, ShareRow
from gateway.cases.service import NewCase
from gateway.services import services
from tests.cases.conftest import ANNA, Clock, World
from tests.web.test_pages import _signed_in

PERPETRATOR_TEXT = "Man (30) haalt meisjes op bij het station"
VICTIM_TEXT = "Meisje (15) komt met dure spullen naar school"


@dataclass
class Seeded:
    world: World
    case_id: str
    perpetrator: str
    victim: str

    def path(self, signal_id: str, case_id: str | None = None) -> str:
        return f"/cases/{case_id or self.case_id}/signals/{signal_id}/payload"

    def approval(self, approval_id: str) -> ApprovalRow:
        with self.world.session() as session:
            row = session.execute(
                select(ApprovalRow).where(ApprovalRow.id == approval_id)
            ).scalar_one()
            session.expunge(row)
            return row

    def approvals(self) -> list[ApprovalRow]:
        with self.world.session() as session:
            rows = list(session.execute(select(ApprovalRow).order_by(ApprovalRow.pk)).scalars())
            session.expunge_all()
            return rows


@pytest.fixture
def seeded(app: Flask, client: FlaskClient) -> Seeded:
    """A case with a four-eyes signal (possible perpetrator) and a plain one."""
    with app.app_context():  # not around the requests: each needs its own `g`
        world = World(app, client, services().cases, Clock())
    perpetrator = world.signal("politie-oost", "police", "possible-perpetrator", PERPETRATOR_TEXT)
    victim = world.signal("zorg-twente", "care", "possible-victim", VICTIM_TEXT)
    with world.session() as session:
        case = world.svc.cases.create(
            session, ANNA, NewCase("Casus station", signal_ids=(perpetrator, victim))
        )
        session.commit()
    return Seeded(world, case.id, perpetrator, victim)


def token_of(client: FlaskClient, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined, no-any-return]


def _request_read(client: FlaskClient, seeded: Seeded, purpose: str = "case-meeting") -> str:
    path = seeded.path(seeded.perpetrator)
    response = client.post(
        path, data={"csrf_token": token_of(client, path), "purpose": purpose, "intent": "request"}
    )
    assert response.status_code == 302 and response.headers["Location"] == path
    return seeded.approvals()[-1].id


def test_a_plain_read_shows_the_content_on_the_post_only(
    app: Flask, client: FlaskClient, seeded: Seeded
) -> None:
    _signed_in(app, client, "c.jansen", "coordinator")
    path = seeded.path(seeded.victim)
    form = client.get(path)
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"
    assert VICTIM_TEXT not in text(form)
    for purpose in ("case-assessment", "safety-assessment", "care-referral", "case-meeting"):
        assert f'value="{purpose}"' in text(form)
    assert "Goedkeuring aanvragen" not in text(form)  # no four eyes for this category
    read = client.post(
        path,
        data={"csrf_token": token_of(client, path), "purpose": "care-referral", "intent": "read"},
    )
    assert read.status_code == 200 and VICTIM_TEXT in text(read)
    assert read.headers["Cache-Control"] == "no-store"
    assert "Toeleiden naar hulp en opvang" in text(read)
    entry = seeded.world.entries("payload.read")[-1]
    assert entry["outcome"] == "success" and entry["purpose"] == "care-referral"
    assert entry["actor"]["id"] == "c.jansen"
    assert entry["policy"]["rule"] == "coordinator-reads-payload"


def test_a_purpose_not_offered_and_a_signal_outside_the_case(
    app: Flask, client: FlaskClient, seeded: Seeded
) -> None:
    _signed_in(app, client, "c.jansen", "coordinator")
    path = seeded.path(seeded.victim)
    token = token_of(client, path)
    for purpose in ("", "nieuwsgierigheid", "x" * 100):
        response = client.post(
            path, data={"csrf_token": token, "purpose": purpose, "intent": "read"}
        )
        assert response.status_code == 400, purpose
        assert "Kies het doel waarvoor u deze melding inziet" in text(response)
        assert VICTIM_TEXT not in text(response)
    other = seeded.world.signal("politie-oost", "police", "concern", "los signaal")
    for missing in (seeded.path(other), seeded.path(seeded.victim, "no-such-case")):
        assert client.get(missing).status_code == 404
        response = client.post(
            missing, data={"csrf_token": token, "purpose": "case-assessment", "intent": "read"}
        )
        assert response.status_code == 404 and "los signaal" not in text(response)


def test_the_approve_form_without_its_csrf_token_is_refused(
    app: Flask, client: FlaskClient, seeded: Seeded
) -> None:
    _signed_in(app, client, "c.jansen", "coordinator")
    approval_id = _request_read(client, seeded)
    second = app.test_client()
    _signed_in(app, second, "m.bakker", "coordinator")
    page = second.get("/approvals")
    assert approval_id in text(page) and "Goedkeuren" in text(page)
    for data in (
        {"approval": approval_id, "decision": "approve"},
        {"approval": approval_id, "decision": "approve", "csrf_token": "forged"},
    ):
        refused = second.post("/approvals", data=data)
        assert refused.status_code == 400 and "Dit formulier is verlopen" in text(refused)
    assert seeded.approval(approval_id).status == "pending"
    refusals = seeded.world.entries("web.csrf-refused")
    assert refusals and refusals[-1]["actor"]["id"] == "m.bakker"


def test_a_privacy_officer_may_use_neither_page(
    app: Flask, client: FlaskClient, seeded: Seeded
) -> None:
    _signed_in(app, client, "p.visser", "privacy-officer")
    token = token_of(client, "/")
    for path in ("/approvals", seeded.path(seeded.victim)):
        assert client.get(path).status_code == 403, path
        response = client.post(
            path, data={"csrf_token": token, "purpose": "case-assessment", "intent": "read"}
        )
        assert response.status_code == 403 and VICTIM_TEXT not in text(response)
        assert "Geen toegang" in text(response)
    denied = [e for e in seeded.world.entries() if e["actor"]["id"] == "p.visser"]
    assert any(e["outcome"] == "denied" and e["action"] == "case.write" for e in denied)
    assert not [e for e in seeded.world.entries("payload.read") if e["actor"]["id"] == "p.visser"]
    assert "/approvals" not in text(client.get("/"))  # not in the menu either


def test_refusals_of_the_services_are_pages_not_errors(
    app: Flask, client: FlaskClient, seeded: Seeded
) -> None:
    _signed_in(app, client, "c.jansen", "coordinator")
    approval_id = _request_read(client, seeded)
    token = token_of(client, "/approvals")
    own = text(client.get("/approvals"))
    assert "Wacht op een tweede coördinator" in own and 'value="approve"' not in own

    # one's own request: the service refuses, the page says why
    response = client.post(
        "/approvals", data={"csrf_token": token, "approval": approval_id, "decision": "approve"}
    )
    assert response.status_code == 403
    assert "U kunt uw eigen verzoek niet goedkeuren" in text(response)
    assert "deny:four-eyes-same-person" in text(response)
    assert seeded.approval(approval_id).status == "pending"

    second = app.test_client()
    _signed_in(app, second, "m.bakker", "coordinator")
    token = token_of(second, "/approvals")
    cases = [
        ({"approval": approval_id, "decision": "refuse", "reason": ""}, 400, "Geef de reden"),
        (
            {"approval": approval_id, "decision": "refuse", "reason": "BSN 123456782"},
            400,
            "zonder persoonsgegevens",
        ),
        ({"approval": "nonexistent", "decision": "approve"}, 404, "bestaat niet meer"),
        ({"approval": approval_id, "decision": "delete"}, 400, "niet goed ingevuld"),
        ({"decision": "approve"}, 400, "niet goed ingevuld"),
    ]
    for data, status, message in cases:
        response = second.post("/approvals", data={"csrf_token": token, **data})
        assert response.status_code == status, data
        assert message in text(response), data
    assert seeded.approval(approval_id).status == "pending"
    assert "123456782" not in str(seeded.world.entries())

    # a request for a category without four eyes: nothing to approve
    path = seeded.path(seeded.victim)
    response = client.post(
        path,
        data={"csrf_token": token_of(client, path), "purpose": "case-meeting", "intent": "request"},
    )
    assert response.status_code == 409 and "geen goedkeuring nodig" in text(response)

    refused = second.post(
        "/approvals",
        data={
            "csrf_token": token,
            "approval": approval_id,
            "decision": "refuse",
            "reason": "Geen casusoverleg gepland",
        },
    )
    assert refused.status_code == 302
    again = second.post(
        "/approvals", data={"csrf_token": token, "approval": approval_id, "decision": "approve"}
    )
    assert again.status_code == 409 and "al beslist" in text(again)
    mine = text(client.get(seeded.path(seeded.perpetrator)))
    assert "afgewezen door m.bakker: Geen casusoverleg gepland" in mine
    assert "Afgewezen door m.bakker: Geen casusoverleg gepland" in text(client.get("/approvals"))


def test_a_waiting_share_is_approved_on_the_approvals_page(
    app: Flask, client: FlaskClient, seeded: Seeded
) -> None:
    world = seeded.world
    world.partner("politie-oost", "police")
    with world.session() as session:
        outcome = world.svc.shares.share(
            session,
            ANNA,
            seeded.case_id,
            ["politie-oost"],
            [seeded.perpetrator],
            "case-meeting",
        )
        session.commit()
    assert outcome.status == "pending" and outcome.approval_id

    _signed_in(app, client, "m.bakker", "coordinator")
    page = text(client.get("/approvals"))
    assert "Delen van een casus: anna" in page and "politie-oost (meldingen: 1)" in page
    response = client.post(
        "/approvals",
        data={
            "csrf_token": token_of(client, "/approvals"),
            "approval": outcome.approval_id,
            "decision": "approve",
        },
    )
    assert response.status_code == 302
    assert "het delen is goedgekeurd en uitgevoerd" in text(client.get("/approvals")).lower()
    with world.session() as session:
        share = session.execute(
            select(ShareRow).where(ShareRow.id == outcome.share.id)
        ).scalar_one()
        assert share.status == "shared"
    approve = [
        e for e in world.entries("case.share") if e["detail"].get("step") == "approval.approve"
    ]
    assert approve and approve[-1]["actor"]["id"] == "m.bakker"
    assert seeded.approval(outcome.approval_id).kind != PAYLOAD_READ
