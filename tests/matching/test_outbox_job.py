"""The matching-outbox job: every gateway process runs one; nothing waits on a request."""

from __future__ import annotations

import time
from dataclasses import replace

from flask import Flask

from gateway.app import create_app
from gateway.config import Settings
from gateway.matching.jobs import OutboxJob, catch_up
from gateway.matching.models import MatchingOutboxRow
from gateway.matching.service import list_matches
from gateway.services import close_app, services_of
from gateway.signals.service import create_signal
from tests.signals.factory import NOW, count, new_signal, person


def test_the_background_job_matches_what_was_submitted(
    settings: Settings, initialised: object
) -> None:
    app = create_app(settings=replace(settings, background_jobs=True))
    db = app.extensions["ketenpoort"].db
    try:
        assert any(isinstance(job, OutboxJob) for job in services_of(app).jobs)
        subject = person()
        for organisation in ("police-oost", "zorg-twente"):
            with db.transaction() as session:
                create_signal(session, new_signal(organisation, subject), now=NOW)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with db.transaction(write=False) as session:
                if count(session, MatchingOutboxRow) == 0:
                    break
            time.sleep(0.05)
        with db.transaction(write=False) as session:
            assert count(session, MatchingOutboxRow) == 0
            (match,) = list_matches(session, None, 10).items
        assert len(match.signals) == 2
    finally:
        close_app(app)


def test_no_job_without_background_work(settings: Settings, initialised: object) -> None:
    app = create_app(settings=settings)  # tests: background_jobs=False
    assert services_of(app).jobs == ()
    close_app(app)


def test_catch_up_never_waits_on_its_own_request_on_sqlite(app: Flask) -> None:
    """Called after the request's session took SQLite's write lock, it leaves the work to
    the job instead of waiting for that lock until the busy timeout."""
    from gateway.services import db_session

    db = app.extensions["ketenpoort"].db
    with db.transaction() as session:
        create_signal(session, new_signal("police-oost", person()), now=NOW)
    with app.test_request_context():
        db_session().connection()
        started = time.monotonic()
        catch_up()
        assert time.monotonic() - started < 5
    with db.transaction(write=False) as session:
        assert count(session, MatchingOutboxRow) == (1 if db.is_sqlite else 0)
    with app.test_request_context():
        catch_up()  # before the request's session: it drains
    with db.transaction(write=False) as session:
        assert count(session, MatchingOutboxRow) == 0
