"""SIGKILL under load (issue 17): gunicorn workers, then the whole `ketenpoort serve`.

Eight partner systems submit signals, each with its own Idempotency-Key, retried with
that same key until acknowledged (what a partner's outbox does). Meanwhile workers are
killed mid-request, then the arbiter with every worker at once, and the server is
started again. Afterwards: every acknowledged signal is stored exactly once with
exactly one audit entry, nothing was stored twice, the restarted gateway's sequencer
numbers every entry by itself, and `ketenpoort audit verify` passes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import (
    RestartableGateway,
    Submitter,
    load_in_background,
    partner_clients,
    restartable_gateway,
    settle_and_verify,
)

CLIENTS = 8

pytestmark = pytest.mark.slow


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[RestartableGateway]:
    with restartable_gateway(database_url, tmp_path, workers=2, threads=4) as live:
        yield live


def _acknowledged(submitters: list[Submitter]) -> int:
    return sum(len(s.acknowledged) for s in submitters)


def _wait_for_progress(submitters: list[Submitter], more_than: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _acknowledged(submitters) <= more_than:
        assert time.monotonic() < deadline, "no signal acknowledged: the gateway did not recover"
        time.sleep(0.1)


def test_killed_workers_and_server_lose_and_double_nothing(gateway: RestartableGateway) -> None:
    submitters = [
        Submitter(f"T{n}", client) for n, client in enumerate(partner_clients(gateway, CLIENTS))
    ]
    stop, runner = load_in_background(submitters)
    killed: list[str] = []
    try:
        for _ in range(3):  # a worker, mid-request, three times
            _wait_for_progress(submitters, _acknowledged(submitters) + 3)
            if gateway.kill_worker() is not None:
                killed.append("worker")
        _wait_for_progress(submitters, _acknowledged(submitters) + 3)
        gateway.kill_all()  # the arbiter and every worker at once
        killed.append("server")
        time.sleep(1)  # requests queue in the listening socket's backlog meanwhile
        gateway.start()
        _wait_for_progress(submitters, _acknowledged(submitters) + 3)
        if gateway.kill_worker() is not None:
            killed.append("worker")
        _wait_for_progress(submitters, _acknowledged(submitters) + 8)
    finally:
        stop.set()
        runner.join(timeout=120)
    assert not runner.is_alive()
    assert killed.count("server") == 1 and killed.count("worker") >= 3, killed

    # never a 500: an interrupted request is a broken connection, then a retry
    statuses = sum((s.statuses for s in submitters), start=type(submitters[0].statuses)())
    assert statuses[500] == 0, (statuses, gateway.logs()[-4000:])
    stored, size = settle_and_verify(gateway, submitters)
    assert stored >= 20 and size >= stored
    print(
        f"\nkilled: {killed}; stored {stored} signals; statuses {dict(statuses)}; "
        f"replays {sum(s.replays for s in submitters)}; log {size}"
    )
