"""Marking an alert handled: once, by a privacy officer, with a note that stays on the
alert and never enters the audit log; every refusal is clean and leaves the alert open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.actors import Actor
from gateway.alerts.models import NOTE_MAX_LENGTH, AlertRow
from gateway.alerts.service import (
    Alert,
    AlertAlreadyHandled,
    AlertService,
    InvalidNote,
    clean_note,
    note_problem,
    raised_per_rule,
)
from gateway.audit import AuditEvent
from gateway.audit.models import AuditEntryRow
from gateway.errors import NotFound, PolicyDenied
from gateway.pseudonyms.detector import safe_uuid
from gateway.services import services_of
from tests.alerts.test_alerts import ANNA, _record, entries, evaluate

FLEUR = Actor(type="user", id="fleur", role="privacy-officer")
NOTE = "Besproken met de teamleider: testaccount van de leverancier. Geen misbruik."


def raise_refusals(app: Flask, actor: Actor = ANNA, now: datetime | None = None) -> Alert:
    """Ten refused calls by `actor`: one `refusals-per-client` alert."""
    now = now or datetime.now(UTC)
    refused = AuditEvent(action="signal.create", outcome="denied", actor=actor)
    _record(app, [(refused, now)] * 10)
    raised: list[Alert] = evaluate(app, now + timedelta(seconds=1))
    [alert] = raised
    assert alert.rule_id == "refusals-per-client" and not alert.handled
    assert safe_uuid(alert.id) == alert.id  # recorded as it is when a refusal names it
    return alert


def handle(app: Flask, actor: Actor, alert_id: str, note: str) -> Alert:
    svc = services_of(app)
    service: AlertService = svc.domain.alerts
    with svc.db.transaction() as session:
        return service.handle(session, actor, alert_id, note)


def row(app: Flask, alert_id: str) -> AlertRow:
    with services_of(app).db.transaction(write=False) as session:
        found = session.get(AlertRow, alert_id)
        assert found is not None
        session.expunge(found)
        return found


def recent(app: Flask) -> list[Alert]:
    svc = services_of(app)
    with svc.db.transaction() as session:
        found: list[Alert] = svc.domain.alerts.recent(session, FLEUR)
        return found


def raw_entries(app: Flask) -> list[bytes]:
    with services_of(app).db.transaction(write=False) as session:
        return list(session.execute(select(AuditEntryRow.data)).scalars())


def test_an_officer_marks_an_alert_handled_audited_without_the_note(
    app: Flask, client: FlaskClient
) -> None:
    older = raise_refusals(app, now=datetime.now(UTC) - timedelta(hours=2))
    bram = Actor(type="user", id="bram", role="coordinator", organisation="meldpunt")
    newer = raise_refusals(app, bram)

    handled = handle(app, FLEUR, newer.id, f"  {NOTE}\r\nAfgesloten.  ")

    assert handled.handled and handled.handled_by == "fleur"
    assert handled.note == f"{NOTE}\nAfgesloten."
    stored = row(app, newer.id)
    assert (stored.handled_by, stored.note) == ("fleur", f"{NOTE}\nAfgesloten.")
    assert stored.handled_at is not None
    # The open alert first, though the handled one was raised later.
    assert [(a.id, a.handled) for a in recent(app)] == [(older.id, False), (newer.id, True)]

    [entry] = entries(app, "alert.handle")
    assert entry["outcome"] == "success"
    assert entry["actor"]["id"] == "fleur"
    assert entry["resource"] == {"type": "alert", "id": newer.id}
    assert entry["detail"] == {"rule": "refusals-per-client", "state": "handled"}
    assert entry["policy"]["rule"] == "privacy-officer-reviews-log"
    assert not any(b"teamleider" in data or b"Afgesloten" in data for data in raw_entries(app))

    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'ketenpoort_alerts_raised_total{rule="refusals-per-client"} 2.0' in metrics
    assert 'ketenpoort_alerts_open{rule="refusals-per-client"} 1.0' in metrics


@pytest.mark.parametrize(
    ("note", "problem"),
    [
        ("", "empty"),
        ("   \r\n ", "empty"),
        ("x" * (NOTE_MAX_LENGTH + 1), "too-long"),
        ("Gebeld met\x00de leverancier", "unprintable"),
        ("Betreft BSN 111222333, navraag gedaan", "personal-data"),
        ("Geboren 12-03-1990, navraag gedaan", "personal-data"),
    ],
)
def test_notes_refused(note: str, problem: str) -> None:
    assert note_problem(clean_note(note)) == problem


def test_a_note_of_the_longest_length_and_several_lines_is_taken() -> None:
    assert note_problem("x" * NOTE_MAX_LENGTH) is None
    assert note_problem(clean_note("Eerste regel\r\nTweede regel")) is None


def _open_without_entry(app: Flask, alert_id: str) -> None:
    stored = row(app, alert_id)
    assert (stored.handled_at, stored.handled_by, stored.note) == (None, None, None)
    assert entries(app, "alert.handle") == []


def test_an_invalid_note_is_refused_and_the_alert_stays_open(app: Flask) -> None:
    alert = raise_refusals(app)
    for note in ("  ", "x" * (NOTE_MAX_LENGTH + 1), "BSN 111222333"):
        with pytest.raises(InvalidNote) as refused:
            handle(app, FLEUR, alert.id, note)
        assert refused.value.status == 400
        assert [e.pointer for e in refused.value.errors] == ["/note"]
    _open_without_entry(app, alert.id)


def test_an_unknown_alert_is_a_404_and_its_refusal_is_audited(app: Flask) -> None:
    raise_refusals(app)
    unknown = "6f1c1c3e-8a4b-4c57-9a54-2d3e4f5a6b7c"
    with pytest.raises(NotFound):
        handle(app, FLEUR, unknown, NOTE)
    with pytest.raises(NotFound):
        handle(app, FLEUR, "not-an-id", NOTE)
    denied = [e for e in entries(app, "audit.read") if e["outcome"] == "denied"]
    assert [e["resource"].get("id") for e in denied] == [unknown, None]
    assert all(e["actor"]["id"] == "fleur" for e in denied)
    assert entries(app, "alert.handle") == []


def test_an_alert_is_handled_once(app: Flask) -> None:
    alert = raise_refusals(app)
    handle(app, FLEUR, alert.id, NOTE)
    gijs = Actor(type="user", id="gijs", role="privacy-officer")
    with pytest.raises(AlertAlreadyHandled) as refused:
        handle(app, gijs, alert.id, "Nogmaals bekeken.")
    assert refused.value.status == 409
    stored = row(app, alert.id)
    assert (stored.handled_by, stored.note) == ("fleur", NOTE)  # the first note stands
    assert len(entries(app, "alert.handle")) == 1


@pytest.mark.parametrize("role", ["coordinator", "admin", "professional"])
def test_only_a_privacy_officer_marks_alerts_handled(app: Flask, role: str) -> None:
    alert = raise_refusals(app)
    someone = Actor(type="user", id="someone", role=role, organisation="meldpunt")
    with pytest.raises(PolicyDenied):
        handle(app, someone, alert.id, NOTE)
    _open_without_entry(app, alert.id)
    [denied] = [e for e in entries(app, "audit.read") if e["outcome"] == "denied"]
    assert denied["actor"]["id"] == "someone" and denied["resource"]["id"] == alert.id


def test_handled_alerts_still_count_as_raised_but_not_open(app: Flask) -> None:
    alert = raise_refusals(app)
    handle(app, FLEUR, alert.id, NOTE)
    assert list(raised_per_rule(services_of(app).db)) == [("refusals-per-client", 1, 0)]
