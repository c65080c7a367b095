"""Misuse alerts: the policy's rules over the audit log, raised once, recorded, shown on
`/alerts` and counted in `/metrics`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.actors import Actor
from gateway.alerts.service import AlertService
from gateway.audit import AuditEvent, record_event
from gateway.audit.models import AuditEntryRow
from gateway.services import services_of
from tests.signals.test_api import body
from tests.web.test_pages import _signed_in, csrf_token

ANNA = Actor(type="user", id="anna", role="coordinator", organisation="meldpunt")


def probing_burst(client: FlaskClient, headers: dict[str, str], times: int = 5) -> None:
    """Submit and withdraw the same person again and again, as a probing partner would."""
    for n in range(times):
        created = client.post(
            "/v1/signals", json=body(client, headers, f"PROBE-{n}"), headers=headers
        )
        assert created.status_code == 201, created.get_data(as_text=True)
        withdrawn = client.delete(f"/v1/signals/{created.get_json()['id']}", headers=headers)
        assert withdrawn.status_code == 200, withdrawn.get_data(as_text=True)


def evaluate(app: Flask, now: datetime | None = None) -> list[Any]:
    svc = services_of(app)
    with svc.db.transaction() as session:
        return svc.domain.alerts.evaluate(session, now)


def entries(app: Flask, action: str) -> list[dict[str, Any]]:
    with services_of(app).db.transaction(write=False) as session:
        rows = session.execute(
            select(AuditEntryRow.data).where(AuditEntryRow.action == action)
        ).scalars()
        return [json.loads(r) for r in rows]


def test_a_probing_burst_raises_one_alert_shown_and_counted(
    app: Flask, client: FlaskClient, token_headers: Any
) -> None:
    police = token_headers("police")
    probing_burst(client, police, 4)
    assert evaluate(app) == []  # under the threshold of 5
    probing_burst(client, police, 1)
    raised = evaluate(app)
    assert [(a.rule_id, a.actor_id, a.count) for a in raised] == [("probing-bursts", "police", 5)]
    assert evaluate(app) == []  # raised once
    [entry] = entries(app, "alert.raised")
    assert entry["actor"]["type"] == "system" and entry["resource"]["id"] == raised[0].id
    assert entry["detail"]["rule"] == "probing-bursts" and entry["detail"]["count"] == 5

    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'ketenpoort_alerts_raised_total{rule="probing-bursts"} 1.0' in metrics

    _signed_in(app, client, "p.visser", "privacy-officer")
    page = client.get("/alerts")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "probing-bursts" in html and "aftasten" in html
    assert 'href="/alerts"' in html  # in the menu
    ran = client.post("/alerts", data={"csrf_token": csrf_token(client, "/alerts")})
    assert ran.status_code == 302
    assert entries(app, "alert.evaluate")[0]["actor"]["id"] == "p.visser"


def test_coordinators_do_not_see_alerts(app: Flask, client: FlaskClient) -> None:
    _signed_in(app, client, "c.jansen", "coordinator")
    assert client.get("/alerts").status_code == 403
    assert 'href="/alerts"' not in client.get("/").get_data(as_text=True)


def _record(app: Flask, events: list[tuple[AuditEvent, datetime]]) -> None:
    with services_of(app).db.transaction() as session:
        for event, when in events:
            record_event(session, event, now=when)


def _read(actor: Actor = ANNA) -> AuditEvent:
    return AuditEvent(action="payload.read", outcome="success", actor=actor, resource_type="signal")


def test_reads_outside_office_hours_and_far_above_usual(app: Flask) -> None:
    sunday = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # a Sunday
    bram = Actor(type="user", id="bram", role="coordinator", organisation="meldpunt")
    usual = [(_read(bram), sunday - timedelta(days=d, hours=30)) for d in range(1, 28)]
    burst = [(_read(bram), sunday - timedelta(minutes=m)) for m in range(25)]
    _record(app, [(_read(), sunday - timedelta(hours=1)), *usual, *burst])
    raised = {(a.rule_id, a.actor_id) for a in evaluate(app, sunday)}
    assert ("reads-outside-office-hours", "anna") in raised
    assert ("payload-reads-above-usual", "bram") in raised
    assert ("payload-reads-above-usual", "anna") not in raised  # one read is not many


def test_refusals_and_subject_searches_per_actor(app: Flask) -> None:
    now = datetime.now(UTC)
    refused = AuditEvent(action="signal.create", outcome="denied", actor=ANNA)
    search = AuditEvent(
        action="subject.search",
        outcome="success",
        actor=Actor(type="user", id="fleur", role="privacy-officer"),
    )
    _record(app, [(refused, now)] * 10 + [(search, now)] * 10)
    raised = {(a.rule_id, a.actor_id) for a in evaluate(app, now + timedelta(seconds=1))}
    assert raised == {("refusals-per-client", "anna"), ("subject-searches-per-user", "fleur")}


def test_the_alert_rules_come_from_the_policy(app: Flask) -> None:
    service: AlertService = services_of(app).domain.alerts
    kinds = {rule.kind for rule in service.engine.loaded.policy.alerts}
    assert kinds == {
        "payload-reads-above-usual",
        "reads-outside-office-hours",
        "refusals-per-client",
        "submit-withdraw-bursts",
        "subject-searches-per-user",
    }
