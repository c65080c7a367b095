"""The data-subject report: every access to one person, with legal bases, on the page
and as a PDF; restricted items are marked for review, never dropped; coordinators may
not make one."""

from __future__ import annotations

import io
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader

from gateway.actors import Actor
from gateway.cases.service import NewCase
from gateway.services import services_of
from tests.signals.test_api import BSN, SUBJECT, body
from tests.web.test_pages import _signed_in, csrf_token

ANNA = Actor(type="user", id="anna", role="coordinator", organisation="meldpunt")


def person_with_history(app: Flask, client: FlaskClient, token_headers: Any) -> dict[str, str]:
    """Police and care report the person; a coordinator makes a case, reads a payload
    (with a purpose) and shares the police signal with care."""
    police, care = token_headers("police"), token_headers("care")
    by_police = client.post("/v1/signals", json=body(client, police), headers=police).get_json()
    by_care = client.post(
        "/v1/signals", json=body(client, care, "JH-9", "concern"), headers=care
    ).get_json()
    other = body(client, police, "BVH-2", bsn="123456782", familyName="Jansen")
    client.post("/v1/signals", json=other, headers=police)
    svc = services_of(app)
    with app.app_context(), svc.db.transaction() as session:
        case = svc.cases.cases.create(
            session, ANNA, NewCase("Casus", signal_ids=(by_police["id"], by_care["id"]))
        )
        svc.cases.payloads.read(session, ANNA, by_care["id"], "case-assessment")
        svc.cases.shares.share(session, ANNA, case.id, ["care"], [by_police["id"]], "case-meeting")
    return {"police": by_police["id"], "care": by_care["id"]}


def report(client: FlaskClient, fmt: str = "html", **subject: str) -> Any:
    return client.post(
        "/subject-report",
        data={
            "csrf_token": csrf_token(client, "/subject-report"),
            "purpose": "access-request",
            "format": fmt,
            **(subject or SUBJECT),
        },
    )


def test_the_report_names_every_access_and_marks_restricted_items(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    ids = person_with_history(app, client, token_headers)
    _signed_in(app, client, "p.visser", "privacy-officer")
    response = report(client)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    for text in (
        "Signaal gemeld",
        "Melding ingezien",
        "Gedeeld met ketenpartners",
        "BVH-2026-00123",
        "JH-9",
        "AVG art. 6 lid 1 sub e",
        "Jeugdwet art. 7.4.0",
        "Beoordelen van een signaal of treffer door het meldpunt",  # the read's purpose
        "Wet politiegegevens art. 25",  # the police signal is restricted: the ground
    ):
        assert text in html, text
    assert "Ter beoordeling" in html  # the police's possible-victim signal
    assert "BVH-2" not in html.replace("BVH-2026", "")  # another person's signal
    report_part = html.split('id="report-title"', 1)[1]
    for raw in (BSN, "Berg", "2009-04-17"):  # in the form's inputs only, never in the report
        assert raw not in report_part, raw

    pdf = report(client, "pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"].startswith("attachment;")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    text = re.sub(r"\s+", " ", text)
    for expected in (
        "Inzagerapport",
        "Melding ingezien",
        "Gedeeld met ketenpartners",
        "anna",
        "JH-9",
    ):
        assert expected in text, expected
    assert "TER BEOORDELING" in text

    entries = [e for e in _entries(app) if e["action"] == "subject.report"]
    assert [e["detail"]["format"] for e in entries] == ["html", "pdf"]
    assert entries[0]["actor"]["id"] == "p.visser" and entries[0]["purpose"] == "access-request"
    assert entries[0]["subjects"] and entries[0]["detail"]["forReview"] >= 1
    assert ids["police"] not in str(entries)


def test_invalid_identifiers_are_named_without_their_values(
    app: Flask, client: FlaskClient
) -> None:
    _signed_in(app, client, "p.visser", "privacy-officer")
    response = report(client, bsn="123456789")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "is niet geldig" in html
    empty = report(client, bsn="")
    assert empty.status_code == 400


def test_a_coordinator_may_not_make_a_subject_report(app: Flask, client: FlaskClient) -> None:
    _signed_in(app, client, "c.jansen", "coordinator")
    assert client.get("/subject-report").status_code == 403
    token = csrf_token(client, "/")
    response = client.post(
        "/subject-report", data={"csrf_token": token, "purpose": "access-request", **SUBJECT}
    )
    assert response.status_code == 403
    denied = [e for e in _entries(app) if e["outcome"] == "denied"]
    assert any(e["actor"]["id"] == "c.jansen" for e in denied)
    assert not [e for e in _entries(app) if e["action"] == "subject.report"]


def _entries(app: Flask) -> list[dict[str, Any]]:
    import json

    from sqlalchemy import select

    from gateway.audit.models import AuditEntryRow

    with services_of(app).db.transaction(write=False) as session:
        rows = session.execute(select(AuditEntryRow.data).order_by(AuditEntryRow.id)).scalars()
        return [json.loads(r) for r in rows]
