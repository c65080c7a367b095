"""`/metrics` under gunicorn with two workers: every scrape gives the same, summed count
(without multiprocess mode each scrape answered from one worker's own counters)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import requests

from tests.faults.harness import restartable_gateway
from tests.integration.live import live_gateway

HEALTHZ = re.compile(
    r'^ketenpoort_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$',
    re.MULTILINE,
)


def _healthz_count(issuer: str) -> float:
    text = requests.get(f"{issuer}/metrics", timeout=10).text
    found = HEALTHZ.search(text)
    return float(found.group(1)) if found else 0.0


def test_every_scrape_sums_all_workers(tmp_path: Path) -> None:
    with live_gateway(f"sqlite:///{tmp_path / 'k.db'}", tmp_path, workers=2, threads=1) as live:
        before = _healthz_count(live.issuer)
        for _ in range(40):  # a new connection each: both workers take some
            assert requests.get(f"{live.issuer}/healthz", timeout=10).status_code == 200
        scrapes = {_healthz_count(live.issuer) for _ in range(8)}
    assert scrapes == {before + 40}


def test_a_worker_that_exits_on_its_own_leaves_the_metrics_to_the_others(tmp_path: Path) -> None:
    """A worker stopped by SIGTERM (as on a restart or SIGHUP) runs the atexit handlers
    it inherited from the arbiter; the shared metrics folder must survive them."""
    url = f"sqlite:///{tmp_path / 'k.db'}"
    with restartable_gateway(url, tmp_path, workers=2, threads=1) as live:
        before = _healthz_count(live.issuer)
        workers = [pid for pid in live.workers_pids() if f"(pid: {pid})" not in live.logs()]
        os.kill(workers[0], signal.SIGTERM)
        deadline = time.monotonic() + 30
        while workers[0] in live.workers_pids() or len(live.workers_pids()) < 3:
            assert time.monotonic() < deadline, "the arbiter started no new worker"
            time.sleep(0.1)
        for _ in range(40):
            assert requests.get(f"{live.issuer}/healthz", timeout=10).status_code == 200
        assert _healthz_count(live.issuer) >= before + 40
