"""`/metrics` says what the background jobs still have to do, and since when.

The jobs run in one process of their own (`ketenpoort serve`); when it is stuck or far
behind, matches and notifications come late and receipts cannot be proven. The
backlog gauges are read from the database at scrape time, so every process reports
the same, whichever runs the jobs.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, update
from sqlalchemy.exc import OperationalError

from gateway.actors import Actor
from gateway.alerts.service import AlertCounter
from gateway.audit.entries import AuditEvent
from gateway.audit.service import record_event
from gateway.db import Database
from gateway.matching.jobs import drainer
from gateway.matching.models import MatchingOutboxRow
from gateway.matching.processor import MAX_ATTEMPTS
from gateway.ops.metrics import Backlog, BacklogCollector, DatabaseAway
from gateway.services import services_of
from gateway.signals.service import create_signal
from tests.signals.factory import NOW, new_signal, person


def _gauges(client: FlaskClient) -> dict[tuple[str, str], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (sample.name, sample.labels["work"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("ketenpoort_background_")
        for sample in family.samples
    }


@pytest.fixture
def fresh_readings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scrape reads the backlog anew (a reading is reused for 15 s otherwise)."""
    monkeypatch.setattr("gateway.ops.metrics.BACKLOG_REFRESH_SECONDS", 0.0)


def test_the_backlog_of_the_background_jobs_is_in_the_metrics(
    fresh_readings: None, app: Flask, client: FlaskClient
) -> None:
    found = services_of(app)
    found.audit.catch_up()  # the set-up's own entries (this app runs no jobs)
    nothing = _gauges(client)
    for work in ("matching", "sequencing"):
        assert nothing[("ketenpoort_background_waiting", work)] == 0
        assert nothing[("ketenpoort_background_oldest_seconds", work)] == 0
    with found.db.transaction() as session:  # two partners, one person: matching to do
        shared = person()
        for organisation in ("police-oost", "zorg-twente"):
            create_signal(session, new_signal(organisation, shared), now=NOW)
            actor = Actor(type="client", id=f"{organisation}-system", organisation=organisation)
            event = AuditEvent(action="signal.create", outcome="success", actor=actor)
            record_event(session, event, now=NOW)  # as the service writes it

    waiting = _gauges(client)
    since = (datetime.now(UTC) - NOW).total_seconds()
    assert waiting[("ketenpoort_background_waiting", "matching")] == 2
    assert waiting[("ketenpoort_background_waiting", "sequencing")] == 2
    for work in ("matching", "sequencing"):
        assert since - 60 < waiting[("ketenpoort_background_oldest_seconds", work)] <= since + 60

    with found.db.transaction() as session:  # one row failed too often: given up
        session.execute(
            update(MatchingOutboxRow)
            .values(attempts=MAX_ATTEMPTS)
            .where(
                MatchingOutboxRow.id
                == session.query(MatchingOutboxRow.id)
                .order_by(MatchingOutboxRow.id)
                .limit(1)
                .scalar_subquery()
            )
        )
    given_up = _gauges(client)
    assert given_up[("ketenpoort_background_waiting", "matching")] == 1
    assert given_up[("ketenpoort_background_given_up", "matching")] == 1

    drainer(found.db, found.policy.engine)()
    found.audit.catch_up()
    done = _gauges(client)
    assert done[("ketenpoort_background_waiting", "matching")] == 0
    assert done[("ketenpoort_background_oldest_seconds", "matching")] == 0
    assert done[("ketenpoort_background_given_up", "matching")] == 1
    assert done[("ketenpoort_background_oldest_seconds", "sequencing")] < 60


def test_a_backlog_reading_is_reused_for_a_while(app: Flask, client: FlaskClient) -> None:
    """`/metrics` is open: a partner polling it sees the backlog change at most every
    15 s per process, not the millisecond its own signal's matching ended."""
    services_of(app).audit.catch_up()
    before = _gauges(client)[("ketenpoort_background_waiting", "matching")]
    with services_of(app).db.transaction() as session:
        create_signal(session, new_signal("police-oost", person()), now=NOW)
    assert _gauges(client)[("ketenpoort_background_waiting", "matching")] == before


def test_a_database_out_of_reach_costs_one_reading_not_one_per_kind_of_work() -> None:
    """Each reading would wait the connect timeout: after the first connection error the
    others are not tried, and the scrape still answers (without the backlog gauges)."""
    tried: list[str] = []

    def away(work: str) -> Backlog:
        tried.append(work)
        raise OperationalError("SELECT 1", {}, Exception("connection timed out"))

    collector = BacklogCollector(
        {"matching": lambda: away("matching"), "sequencing": lambda: away("sequencing")},
        refresh=0.0,
    )
    families = list(collector.collect())
    assert tried == ["matching"]
    assert [f.name for f in families] == [
        "ketenpoort_background_waiting",
        "ketenpoort_background_oldest_seconds",
        "ketenpoort_background_given_up",
    ]
    assert all(not f.samples for f in families)


def test_an_outage_costs_a_scrape_one_connect_timeout_not_one_per_collector() -> None:
    """The alert count and the backlog share what they learnt: after the first finds the
    database out of reach, the rest of the scrape (and the next scrapes, for a while)
    skip their readings instead of each waiting the connect timeout."""
    clock = [0.0]
    away = DatabaseAway(seconds=15.0, clock=lambda: clock[0])
    # A real connection error: nothing listens on port 1.
    unreachable = Database("postgresql+psycopg://postgres@127.0.0.1:1/test")
    connects: list[int] = []
    event.listen(unreachable.engine, "do_connect", lambda *_: connects.append(1))
    tried: list[str] = []

    def backlog() -> Backlog:
        tried.append("matching")
        return Backlog(waiting=0, oldest=None)

    registry = CollectorRegistry()
    registry.register(AlertCounter(unreachable, away))
    registry.register(BacklogCollector({"matching": backlog}, refresh=0.0, away=away))
    assert "ketenpoort_alerts_raised" in generate_latest(registry).decode()
    assert (len(connects), tried) == (1, [])
    clock[0] = 14.0
    generate_latest(registry)
    assert (len(connects), tried) == (1, [])
    clock[0] = 16.0  # asked again once the while is over
    generate_latest(registry)
    assert (len(connects), tried) == (2, [])
    unreachable.dispose()
