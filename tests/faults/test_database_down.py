"""PostgreSQL stops mid-load and starts again, or turns read-only (issue 17).

A cluster of the test's own (`tests/faults/pgcluster.py`; the shared server is never
stopped) serves a live gateway while partners submit. While the database is down every
request fails fast with 503 `database-unavailable`, `Retry-After` and problem+json —
never a 500, never a hang past the client's timeout — and `/readyz` is red. Once the
database is back the same gateway (no restart) turns green and serves again, and every
signal acknowledged before, during or after is stored once, audited once, sequenced and
verified.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.faults.harness import (
    REQUEST_TIMEOUT,
    UNAVAILABLE,
    RestartableGateway,
    Submitter,
    load_in_background,
    partner_clients,
    poll,
    restartable_gateway,
    settle_and_verify,
)
from tests.faults.pgcluster import Cluster, own_cluster

pytestmark = pytest.mark.slow
OUTAGE = 6.0  # seconds the database stays down, at least


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with own_cluster() as running:
        yield running


@pytest.fixture
def gateway(cluster: Cluster, tmp_path: Path) -> Iterator[RestartableGateway]:
    with restartable_gateway(cluster.url, tmp_path, workers=2, threads=4) as live:
        yield live


class ReadinessWatch(threading.Thread):
    """Polls /readyz and keeps every answer, with its Retry-After and duration."""

    def __init__(self, issuer: str) -> None:
        super().__init__(daemon=True)
        self.issuer = issuer
        self.seen: list[tuple[float, int | str, str | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                response = requests.get(f"{self.issuer}/readyz", timeout=REQUEST_TIMEOUT)
                self.seen.append(
                    (time.monotonic(), response.status_code, response.headers.get("Retry-After"))
                )
            except requests.RequestException as exc:
                self.seen.append((time.monotonic(), type(exc).__name__, None))
            self.stop.wait(0.25)

    def last(self) -> int | str | None:
        return self.seen[-1][1] if self.seen else None


def _acknowledged(submitters: list[Submitter]) -> int:
    return sum(len(s.acknowledged) for s in submitters)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_database_stop_answers_503_and_the_gateway_recovers_by_itself(
    gateway: RestartableGateway, cluster: Cluster, mode: str
) -> None:
    """`fast`: PostgreSQL shuts down, cutting every connection; `immediate`: it dies as in
    a crash and recovers from its WAL when started again."""
    submitters = [Submitter(f"D{n}", c) for n, c in enumerate(partner_clients(gateway, 4))]
    watch = ReadinessWatch(gateway.issuer)
    watch.start()
    stop, runner = load_in_background(submitters)
    arbiter = gateway.process.pid
    try:
        assert poll(lambda: _acknowledged(submitters) >= 6, timeout=60)
        before = _acknowledged(submitters)
        cluster.stop(mode)  # every connection is cut, new ones are refused
        down_at = time.monotonic()
        assert poll(lambda: watch.last() == 503, timeout=30), watch.seen[-5:]
        assert poll(lambda: sum(s.statuses[503] for s in submitters) >= 4, timeout=30)
        time.sleep(max(0.0, down_at + OUTAGE - time.monotonic()))  # stay down a while
        during = _acknowledged(submitters) - before
        cluster.start()
        up_at = time.monotonic()
        assert poll(lambda: watch.last() == 200, timeout=60), watch.seen[-5:]
        back = _acknowledged(submitters)
        assert poll(lambda: _acknowledged(submitters) >= back + 8, timeout=60)
    finally:
        stop.set()
        runner.join(timeout=120)
        watch.stop.set()
        watch.join(timeout=30)
    assert not runner.is_alive()
    assert gateway.process.pid == arbiter and gateway.process.poll() is None  # no restart

    statuses: Counter[int | str] = Counter()
    for submitter in submitters:
        statuses.update(submitter.statuses)
    logs = gateway.logs()
    assert statuses[500] == 0, (statuses, logs[-4000:])
    assert statuses["timeout"] == 0, statuses
    assert statuses[503] >= 4, statuses
    problems = [p for s in submitters for p in s.problems]
    assert all(str(p.get("type", "")).endswith(UNAVAILABLE) for p in problems), problems[:3]
    assert all(p.get("status") == 503 for p in problems)
    assert sum(s.retry_after_missing for s in submitters) == 0
    assert max(s.longest for s in submitters) < REQUEST_TIMEOUT
    assert '"status": 500' not in logs

    red = [(t, code, retry) for t, code, retry in watch.seen if down_at <= t <= up_at]
    assert any(code == 503 and retry for _, code, retry in red), red
    assert all(code in (200, 503) for _, code, _ in watch.seen), set(c for _, c, _ in watch.seen)

    stored, size = settle_and_verify(gateway, submitters)
    print(
        f"\nPostgreSQL down ({mode}) {up_at - down_at:.1f} s; acknowledged during: {during}; "
        f"stored {stored}; statuses {dict(statuses)}; "
        f"readyz {Counter(c for _, c, _ in watch.seen)}; log {size}; "
        f"longest request {max(s.longest for s in submitters):.2f} s"
    )


def _set_read_only(cluster: Cluster, on: bool) -> None:
    """The whole server refuses writes (as a standby after a failover would); every
    session takes the new default at its next transaction."""
    engine = create_engine(cluster.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            value = "on" if on else "off"
            conn.execute(text(f"ALTER SYSTEM SET default_transaction_read_only = {value}"))
            conn.execute(text("SELECT pg_reload_conf()"))
    finally:
        engine.dispose()


def test_read_only_database_answers_503_and_recovers(
    gateway: RestartableGateway, cluster: Cluster
) -> None:
    submitters = [Submitter(f"R{n}", c) for n, c in enumerate(partner_clients(gateway, 3))]
    stop, runner = load_in_background(submitters)
    try:
        assert poll(lambda: _acknowledged(submitters) >= 4, timeout=60)
        _set_read_only(cluster, True)
        assert poll(lambda: sum(s.statuses[503] for s in submitters) >= 4, timeout=60), [
            s.statuses for s in submitters
        ]
        _set_read_only(cluster, False)
        back = _acknowledged(submitters)
        assert poll(lambda: _acknowledged(submitters) >= back + 6, timeout=60)
    finally:
        stop.set()
        runner.join(timeout=120)
    assert not runner.is_alive()
    statuses: Counter[int | str] = Counter()
    for submitter in submitters:
        statuses.update(submitter.statuses)
    assert statuses[500] == 0, (statuses, gateway.logs()[-4000:])
    problems = [p for s in submitters for p in s.problems]
    assert problems and all(str(p.get("type", "")).endswith(UNAVAILABLE) for p in problems)
    assert sum(s.retry_after_missing for s in submitters) == 0
    stored, size = settle_and_verify(gateway, submitters)
    print(f"\nread-only PostgreSQL: stored {stored}; statuses {dict(statuses)}; log {size}")
