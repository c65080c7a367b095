"""Background jobs end with their app: every turn is over before the database goes.

A job left running after its app (or its test) had let go of the database ran on against
a disposed engine, a dropped PostgreSQL schema ("relation matching_outbox does not
exist") or a closed log stream ("I/O operation on closed file"). `close_app` stops and
joins the jobs first; a gunicorn worker that exits does the same.
"""

from __future__ import annotations

import io
import json
import os
import signal
import threading
from dataclasses import replace
from types import SimpleNamespace

import pytest

from gateway import server
from gateway.app import create_app
from gateway.config import Settings
from gateway.jobs import BackgroundJob
from gateway.logs import configure_logging
from gateway.server import _close_worker_app
from gateway.services import close_app, services_of
from gateway.signals.service import create_signal
from tests.signals.factory import NOW, new_signal, person


class _SlowTurn(BackgroundJob):
    """A job whose turn lasts until the test lets it end."""

    name = "slow-turn"

    def __init__(self) -> None:
        super().__init__(interval=0.01)
        self.inside = threading.Event()
        self.release = threading.Event()

    def step(self) -> bool:
        self.inside.set()
        self.release.wait(10)
        return False


def test_closing_an_app_ends_its_jobs_before_the_database_goes(
    settings: Settings, initialised: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings=replace(settings, background_jobs=True))
    found = services_of(app)
    with found.db.transaction() as session:  # work for the outbox job and the sequencer
        for organisation in ("police-oost", "zorg-twente"):
            create_signal(session, new_signal(organisation, person()), now=NOW)
    running_at_dispose: list[str] = []
    dispose = found.db.dispose

    def record_then_dispose() -> None:
        running_at_dispose.extend(job.name for job in found.jobs if job.running)
        dispose()

    monkeypatch.setattr(found.db, "dispose", record_then_dispose)
    assert found.jobs and all(job.running for job in found.jobs)
    close_app(app)
    assert running_at_dispose == []
    assert not any(job.running for job in found.jobs)


def test_a_stop_waits_for_the_turn_in_progress_and_says_when_it_cannot() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    job = _SlowTurn()
    job.start()
    assert job.inside.wait(5)
    assert job.stop(timeout=0.05) is False  # the turn goes on
    assert job.running
    (line,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert line["event"] == "background job still running after its stop"
    assert line["job"] == "slow-turn" and line["level"] == "warning"
    job.release.set()
    assert job.stop() is True and not job.running  # no further turn after a stop
    assert "background job failed" not in stream.getvalue()


def test_a_job_never_started_stops_at_once() -> None:
    assert _SlowTurn().stop(timeout=0.01) is True


def test_an_exiting_gunicorn_worker_closes_its_app(settings: Settings, initialised: object) -> None:
    app = create_app(settings=replace(settings, background_jobs=True))
    jobs = services_of(app).jobs
    assert jobs and all(job.running for job in jobs)
    _close_worker_app(None, SimpleNamespace(wsgi=app))
    assert not any(job.running for job in jobs)
    _close_worker_app(None, SimpleNamespace())  # a worker whose app failed to load


def test_a_job_stuck_in_one_turn_ends_the_jobs_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs process waits for a stop signal, but ends (for the arbiter to start a
    fresh one) when a job's turn lasts far longer than any turn should; said in the log."""
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    monkeypatch.setattr(server, "STUCK_TURN_SECONDS", 0.5)
    job = _SlowTurn()
    read, write = os.pipe()
    try:
        job.start()
        assert job.inside.wait(5)
        assert 0 < job.in_turn_for() < 5
        assert server._wait_for_stop(read, os.getppid(), [job]) is False
        (line,) = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert line["event"] == "background job stuck; ending the jobs process"
        assert line["job"] == "slow-turn" and line["level"] == "error"
        os.write(write, bytes([signal.SIGTERM]))  # a stop signal, as the wakeup fd writes it
        assert server._wait_for_stop(read, os.getppid(), [job]) is True
    finally:
        job.release.set()
        assert job.stop()
        os.close(read)
        os.close(write)
    assert job.in_turn_for() == 0
