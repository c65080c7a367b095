"""Soak: mixed partner traffic against a live gateway for minutes; memory and latency
per minute (issue 17). Figures are printed; nothing is asserted.

    make soak                      # 30 minutes on SQLite
    make soak SOAK_MINUTES=5       # shorter
    KETENPOORT_SOAK_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        make soak                  # PostgreSQL (a fresh schema, dropped afterwards)

The gateway is `ketenpoort serve` (gunicorn, SOAK_WORKERS x SOAK_THREADS, default 2 x 4)
on a port the OS hands out. SOAK_CLIENTS partner threads (default 6: police and care
systems, and the meldpunt) each loop over a weighted mix, pausing SOAK_PAUSE seconds
(default 0.05) between calls:
- submit a signal (encrypted payload, Idempotency-Key), get it back, list own signals;
- withdraw one of its own earlier signals;
- the meldpunt reads its notifications and lists matches;
- a witness check: the client verifies the checkpoint, consistency with the previous
  one and the inclusion of every receipt it holds (`PartnerClient.verify`).
Every minute one line: the RSS of the arbiter, its workers and its jobs process (sum,
largest worker, jobs process; from /proc), the machine's load average, the audit
entries not yet sequenced, requests and errors in that minute, and latency percentiles
(all calls, and p99 per kind; a witness check includes waiting for its receipts to be
sequenced). At the end: RSS and
p99 of the first full minute against the last.
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MINUTES = float(os.environ.get("SOAK_MINUTES", "30"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "6"))
WORKERS = int(os.environ.get("SOAK_WORKERS", "2"))
THREADS = int(os.environ.get("SOAK_THREADS", "4"))
PAUSE = float(os.environ.get("SOAK_PAUSE", "0.05"))
WINDOW = float(os.environ.get("SOAK_WINDOW_SECONDS", "60"))  # one line per window
MELDPUNT_SCOPES = "cases:write audit:read notifications:read directory:read signals:read"


@dataclass
class Window:
    """What happened in one minute."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    #: (sum, largest worker, jobs process) in kB
    rss: list[tuple[int, int, int]] = field(default_factory=list)
    backlog: int = 0  # audit entries not yet sequenced, at the end of the minute
    load: float = 0.0  # the machine's 1-minute load average, at the end of the minute


class Recorder:
    def __init__(self, started: float) -> None:
        self.started = started
        self.windows: dict[int, Window] = defaultdict(Window)
        self.lock = threading.Lock()

    def index(self) -> int:
        return int((time.monotonic() - self.started) // WINDOW)

    def timed(self, kind: str, call: Callable[[], Any]) -> Any:
        begun = time.perf_counter()
        try:
            result = call()
        except Exception as exc:
            with self.lock:
                self.windows[self.index()].errors[f"{kind}: {type(exc).__name__}"] += 1
            return None
        elapsed = time.perf_counter() - begun
        with self.lock:
            self.windows[self.index()].latencies[kind].append(elapsed)
        return result

    def rss(self, total: int, largest: int, jobs: int) -> None:
        with self.lock:
            self.windows[self.index()].rss.append((total, largest, jobs))


def _rss_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def sample_memory(arbiter: int, log: Path, recorder: Recorder, stop: threading.Event) -> None:
    from tests.integration.live import jobs_pids

    jobs: int | None = None
    while not stop.is_set():
        children = _children(arbiter)
        if jobs not in children:  # (re)started since: the log says which one it is
            with contextlib.suppress(OSError):
                started = jobs_pids(log.read_text(errors="replace"))
                jobs = started[-1] if started else None
        workers = [_rss_kb(pid) for pid in children if pid != jobs]
        jobs_kb = _rss_kb(jobs) if jobs in children else 0
        total = _rss_kb(arbiter) + sum(workers) + jobs_kb
        recorder.rss(total, max(workers, default=0), jobs_kb)
        stop.wait(5)


def partner_loop(
    client: Any, meldpunt: bool, recorder: Recorder, stop: threading.Event, seed: int
) -> None:
    from gateway.demo.people import people

    rng = random.Random(seed)
    persons = people(200)
    mine: list[str] = []
    n = 0
    while not stop.is_set():
        roll = rng.random()
        if meldpunt:
            if roll < 0.45:
                recorder.timed("notifications", lambda: client.notifications(limit=50))
            elif roll < 0.8:
                recorder.timed("matches", lambda: next(client.matches(limit=20), None))
            else:
                recorder.timed("list", lambda: next(client.signals(limit=20), None))
        elif roll < 0.4:
            person = persons[rng.randrange(len(persons))]
            created = recorder.timed(
                "submit",
                lambda p=person, k=n: client.submit_signal(
                    f"SOAK-{seed}-{k}",
                    "possible-victim",
                    p.subject(with_bsn=rng.random() < 0.5),
                    {"summary": "zorgen"},
                    idempotency_key=str(uuid.uuid4()),
                ),
            )
            n += 1
            if created:
                mine.append(created["id"])
        elif roll < 0.55 and mine:
            signal_id = mine[rng.randrange(len(mine))]
            recorder.timed("get", lambda s=signal_id: client.signal(s))
        elif roll < 0.75:
            recorder.timed("list", lambda: next(client.signals(limit=20), None))
        elif roll < 0.85 and mine:
            signal_id = mine.pop(rng.randrange(len(mine)))
            recorder.timed("withdraw", lambda s=signal_id: client.withdraw(s))
        elif roll < 0.9:
            recorder.timed("witness", lambda: client.verify(wait_seconds=10))
        else:
            recorder.timed("directory", client.directory)
        stop.wait(PAUSE)


def enrol_partners(gateway: Any) -> list[tuple[Any, bool]]:
    """The meldpunt and CLIENTS - 1 police and care systems, each with a token: (client,
    is the meldpunt)."""
    clients: list[tuple[Any, bool]] = [
        (gateway.register("meldpunt", "meldpunt", MELDPUNT_SCOPES), True)
    ]
    for n in range(CLIENTS - 1):
        org, kind = ("police", "police") if n % 2 == 0 else ("zorg-twente", "care")
        clients.append((gateway.register(org, kind), False))
    for client, _ in clients:
        client.access_token()
    return clients


def unsequenced(url: str) -> int:
    """Audit entries the gateway's sequencer has not numbered yet (it keeps up: ~0)."""
    from sqlalchemy import func, select

    from gateway.audit.models import AuditEntryRow
    from gateway.db import Database

    database = Database(url)
    try:
        with database.transaction(write=False) as session:
            count = select(func.count()).select_from(AuditEntryRow)
            return int(session.scalar(count.where(AuditEntryRow.seq.is_(None))) or 0)
    finally:
        database.dispose()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


KINDS = ("submit", "get", "list", "withdraw", "witness", "notifications", "matches", "directory")


def print_header() -> None:
    kinds = " ".join(f"{k[:8]:>8}" for k in KINDS)
    print(
        f"{'min':>4} {'rss MB':>7} {'wkr MB':>7} {'jobs MB':>7} {'load':>5} {'backlog':>7} "
        f"{'calls':>6} {'err':>4} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} | p99 ms per kind: {kinds}",
        flush=True,
    )


def print_window(index: int, window: Window) -> tuple[float, float]:
    every = [v for values in window.latencies.values() for v in values]
    rss_total = max((t for t, _, _ in window.rss), default=0) / 1024
    rss_worker = max((w for _, w, _ in window.rss), default=0) / 1024
    rss_jobs = max((j for _, _, j in window.rss), default=0) / 1024
    per_kind = " ".join(f"{_pct(window.latencies.get(k, []), 0.99):8.0f}" for k in KINDS)
    p99 = _pct(every, 0.99)
    print(
        f"{index + 1:>4} {rss_total:7.1f} {rss_worker:7.1f} {rss_jobs:7.1f} {window.load:5.1f} "
        f"{window.backlog:7d} {len(every):6d} "
        f"{sum(window.errors.values()):4d} {_pct(every, 0.5):7.1f} {_pct(every, 0.95):7.1f} "
        f"{p99:7.1f} | {'':16} {per_kind}",
        flush=True,
    )
    for what, count in window.errors.most_common(3):
        print(f"       error x{count}: {what}", flush=True)
    return rss_total, p99


@contextlib.contextmanager
def database(folder: Path) -> Iterator[str]:
    url = os.environ.get("KETENPOORT_SOAK_DATABASE_URL", "")
    if not url:
        yield f"sqlite:///{folder / 'soak.db'}"
        return
    from schemas import fresh_schema  # bench/ is on the path: this file runs from there

    with fresh_schema(url, "soak") as schema_url:
        yield schema_url


def main() -> None:
    from tests.integration.live import live_gateway

    # partners well within their limits: the soak measures the stack, not 429s
    os.environ.setdefault("KETENPOORT_RATE_LIMIT_PER_CLIENT", "1000000/s burst 1000000")
    folder = Path(tempfile.mkdtemp(prefix="ketenpoort-soak-"))
    with (
        database(folder) as url,
        live_gateway(url, folder, workers=WORKERS, threads=THREADS, log_level="WARNING") as gateway,
    ):
        backend = url.split(":", 1)[0]
        print(
            f"soak: {MINUTES:g} min on {backend}, {CLIENTS} partner threads (pause {PAUSE} s), "
            f"gunicorn {WORKERS} workers x {THREADS} threads, {os.cpu_count()} CPUs "
            "shared with the load",
            flush=True,
        )
        clients = enrol_partners(gateway)
        started = time.monotonic()
        recorder = Recorder(started)
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=sample_memory,
                args=(gateway.process.pid, gateway.log_path, recorder, stop),
            )
        ] + [
            threading.Thread(target=partner_loop, args=(c, m, recorder, stop, i))
            for i, (c, m) in enumerate(clients)
        ]
        for thread in threads:
            thread.start()
        print_header()
        total = int(MINUTES * 60 // WINDOW)
        summary: list[tuple[float, float]] = []
        try:
            for index in range(total):
                time.sleep(max(0.0, started + (index + 1) * WINDOW - time.monotonic()))
                with recorder.lock:
                    window = recorder.windows[index]
                window.backlog = unsequenced(gateway.settings.database_url)
                window.load = os.getloadavg()[0]
                summary.append(print_window(index, window))
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        _conclude(summary)


def _conclude(summary: list[tuple[float, float]]) -> None:
    if len(summary) < 3:
        return
    first_rss, first_p99 = summary[1]  # minute 1 warms up (imports, caches, pools)
    last_rss, last_p99 = summary[-1]
    middle = [p for _, p in summary[1:]]
    print(
        f"RSS minute 2 -> last: {first_rss:.1f} -> {last_rss:.1f} MB "
        f"({last_rss - first_rss:+.1f} MB); p99 minute 2 -> last: {first_p99:.0f} -> "
        f"{last_p99:.0f} ms (median p99 over the run {statistics.median(middle):.0f} ms)",
        flush=True,
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
