"""A gateway that can be killed and started again, partners submitting under load, and
the checks that nothing acknowledged was lost or doubled (issue 17, faults under load).

The listening socket stays open in the test process for the whole test: gunicorn gets
it by socket activation (`LISTEN_FDS`), so a killed gateway's port cannot be taken by
anything else, and a client that connects while the gateway is down waits in the
socket's backlog until the next one accepts it — as behind a load balancer.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

from gateway.audit.models import AuditEntryRow
from gateway.bootstrap import initialise
from gateway.client import ApiError, OAuthError, PartnerClient, TransportError
from gateway.config import Settings
from gateway.crypto.jwe import encrypt_for_recipients
from gateway.db import Database
from gateway.demo.people import people
from gateway.signals.models import SignalRow
from tests.integration.live import (
    _SERVE_ON_FD,
    ROOT,
    LiveGateway,
    _env,
    bound_socket,
    instance_settings,
)

#: Generous: the machine may be busy (CI runs the suite on every core).
READY_TIMEOUT = 60.0
REQUEST_TIMEOUT = 20.0
#: The problem type of a request the database could not serve (503, Retry-After).
UNAVAILABLE = "/problems/database-unavailable"


class RestartableGateway(LiveGateway):
    """`ketenpoort serve` (gunicorn, its workers) on a socket the test keeps open."""

    def __init__(
        self, settings: Settings, listener: socket.socket, log_dir: Path, workers: int, threads: int
    ) -> None:
        self.listener = listener
        self.log_dir = log_dir
        self.workers = workers
        self.threads = threads
        self.starts = 0
        super().__init__(settings.issuer, settings, None, log_dir / "gateway-0.log")  # type: ignore[arg-type]

    def start(self) -> None:
        self.starts += 1
        self.log_path = self.log_dir / f"gateway-{self.starts}.log"
        env = {**os.environ, **_env(self.settings)}
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            env.pop(name, None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _SERVE_ON_FD,
                    str(self.listener.fileno()),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.listener.getsockname()[1]),
                    "--workers",
                    str(self.workers),
                    "--threads",
                    str(self.threads),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
                pass_fds=(self.listener.fileno(),),
            )
        self.wait_until_ready()

    def wait_until_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited early:\n{self.log()[-4000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.issuer}/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the gateway was not ready in {timeout} s:\n{self.log()[-4000:]}")

    def workers_pids(self) -> list[int]:
        """The gunicorn workers: the arbiter's children (read from /proc)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.process.pid:
                found.append(int(entry.name))
        return found

    def kill_worker(self) -> int | None:
        """SIGKILL one worker (gunicorn's arbiter starts another)."""
        pids = self.workers_pids()
        if not pids:
            return None
        victim = secrets.choice(pids)
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
        return victim

    def kill_all(self) -> None:
        """SIGKILL the arbiter and every worker at once: a crash of the whole server."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill_all()

    def logs(self) -> str:
        return "\n".join(
            (self.log_dir / f"gateway-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
        )


@contextlib.contextmanager
def restartable_gateway(
    database_url: str,
    tmp_path: Path,
    *,
    workers: int = 2,
    threads: int = 4,
    policy: Path | None = None,
) -> Iterator[RestartableGateway]:
    """Initialise a gateway on `database_url` and serve it; stopped at the end. `policy`
    is a policy file of the test's own (one it may break), instead of the repository's."""
    listener = bound_socket()
    port = listener.getsockname()[1]
    settings = instance_settings(database_url, tmp_path / "live-keys", f"http://127.0.0.1:{port}")
    if policy is not None:
        settings = replace(settings, policy=policy)
    with listener:
        initialise(settings)
        gateway = RestartableGateway(settings, listener, tmp_path, workers, threads)
        gateway.start()
        try:
            yield gateway
        finally:
            gateway.stop()


# --- load --------------------------------------------------------------------------


@dataclass
class Submitter:
    """One partner system: submits signals one after another, each with its own
    Idempotency-Key, retried with that same key and the same body (a new encryption
    would be another body: 422) until the gateway acknowledges it."""

    name: str
    client: PartnerClient
    acknowledged: dict[str, str] = field(default_factory=dict)  # reference -> signal id
    statuses: Counter[int | str] = field(default_factory=Counter)
    problems: list[dict[str, Any]] = field(default_factory=list)
    retry_after_missing: int = 0
    longest: float = 0.0
    failures: list[str] = field(default_factory=list)
    replays: int = 0  # retries the gateway answered from the stored response (audited)

    def submit_until_acknowledged(
        self, reference: str, subject: dict[str, str], give_up: float
    ) -> None:
        key = str(uuid.uuid4())
        request: dict[str, Any] | None = None  # built once: a retry sends the very same body
        while time.monotonic() < give_up:
            started = time.monotonic()
            try:
                if request is None:
                    keys = self.client.recipient_keys("possible-victim")
                    request = {
                        "reference": reference,
                        "category": "possible-victim",
                        "subject": subject,
                        "payload": encrypt_for_recipients(b'{"summary": "zorgen"}', keys),
                    }
                created = self.client.request(
                    "POST", "/signals", json_body=request, headers={"Idempotency-Key": key}
                ).json()
            except ApiError as exc:
                self._record(exc.status, started)
                body = exc.body or {}
                if exc.status >= 500:
                    self.problems.append(body)
                    if exc.retry_after is None:
                        self.retry_after_missing += 1
                elif exc.status not in (401, 429):
                    self.failures.append(f"{reference}: {exc.status} {body}")
                    return
                time.sleep(min(exc.retry_after or 0.5, 1.0))
                continue
            except OAuthError as exc:  # a token renewal while the gateway is down
                self._record(exc.status, started)
                if exc.status < 500:
                    self.failures.append(f"{reference}: token refused {exc.status} {exc.error}")
                    return
                time.sleep(0.5)
                continue
            except TransportError as exc:
                self._record("transport", started)
                if "Read timed out" in str(exc):
                    self.statuses["timeout"] += 1
                time.sleep(0.3)
                continue
            self._record(201, started)
            previous = self.acknowledged.setdefault(reference, created["id"])
            if previous != created["id"]:
                self.failures.append(
                    f"{reference}: acknowledged twice as {previous}, {created['id']}"
                )
            return
        self.failures.append(f"{reference}: not acknowledged before the deadline")

    def _record(self, status: int | str, started: float) -> None:
        self.statuses[status] += 1
        self.longest = max(self.longest, time.monotonic() - started)


def partner_clients(gateway: LiveGateway, count: int) -> list[PartnerClient]:
    """`count` clients of one police organisation, each with its token already; a
    client sends each request once (the test retries), with a bounded timeout."""
    clients = []
    for _ in range(count):
        client = gateway.register("police", "police")
        client.max_attempts = 1
        client.timeout = REQUEST_TIMEOUT
        client.access_token()
        clients.append(client)
    return clients


def run_load(
    submitters: list[Submitter],
    stop: threading.Event,
    *,
    drain_seconds: float = 60.0,
) -> None:
    """Every submitter submits new signals until `stop`, then finishes its last one
    (retrying) within `drain_seconds`."""
    subjects = [p.subject() for p in people(50)]

    def work(index: int, submitter: Submitter) -> None:
        n = 0
        while not stop.is_set():
            give_up = time.monotonic() + drain_seconds
            submitter.submit_until_acknowledged(
                f"{submitter.name}-{n}", subjects[(index * 7 + n) % len(subjects)], give_up
            )
            n += 1

    threads = [
        threading.Thread(target=work, args=(i, s), daemon=True) for i, s in enumerate(submitters)
    ]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join(timeout=drain_seconds + 30)
        assert not thread.is_alive(), "a submitter hung"


def load_in_background(submitters: list[Submitter]) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    runner = threading.Thread(target=run_load, args=(submitters, stop), daemon=True)
    runner.start()
    return stop, runner


# --- what must hold afterwards ------------------------------------------------------


def check_nothing_lost_or_doubled(database_url: str, submitters: list[Submitter]) -> int:
    """Every acknowledged signal is stored once, with exactly one `signal.create` audit
    entry (and one more per idempotent replay, marked so); no reference was stored
    twice. Returns how many signals there are."""
    for submitter in submitters:
        assert not submitter.failures, submitter.failures[:5]
    acknowledged = {ref: sid for s in submitters for ref, sid in s.acknowledged.items()}
    database = Database(database_url)
    try:
        with database.transaction(write=False) as session:
            rows = session.execute(select(SignalRow.id, SignalRow.reference)).all()
            creates = session.execute(
                select(AuditEntryRow.data).where(AuditEntryRow.action == "signal.create")
            ).scalars()
            entries = [json.loads(data) for data in creates]
    finally:
        database.dispose()
    # an idempotent replay is audited too, as `signal.create` with detail `replay`
    audited = Counter(e["resource"]["id"] for e in entries if not e["detail"].get("replay"))
    replays = Counter(e["resource"]["id"] for e in entries if e["detail"].get("replay"))
    by_reference = Counter(reference for _, reference in rows)
    doubled = [ref for ref, n in by_reference.items() if n > 1]
    assert not doubled, f"stored twice: {doubled[:5]}"
    stored = {reference: sid for sid, reference in rows}
    lost = [ref for ref, sid in acknowledged.items() if stored.get(ref) != sid]
    assert not lost, f"acknowledged but not stored: {lost[:5]}"
    # a request the gateway stored but could not acknowledge was retried with its key
    # and acknowledged then: nothing is stored that nobody was told of
    assert set(stored) == set(acknowledged), set(stored) ^ set(acknowledged)
    wrong_audit = {sid: audited[sid] for sid in stored.values() if audited[sid] != 1}
    assert not wrong_audit, f"signal.create entries per signal: {wrong_audit}"
    assert sum(audited.values()) == len(stored)
    assert set(replays) <= set(stored.values())
    for submitter in submitters:
        submitter.replays = sum(replays[sid] for sid in submitter.acknowledged.values())
    return len(stored)


def wait_until_sequenced(database_url: str, timeout: float = 60.0) -> int:
    """The running gateway's own sequencer numbers every entry (it resumed): returns
    the log's size."""
    database = Database(database_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with database.transaction(write=False) as session:
                pending = session.scalar(
                    select(func.count())
                    .select_from(AuditEntryRow)
                    .where(AuditEntryRow.seq.is_(None))
                )
                size = session.scalar(select(func.count()).select_from(AuditEntryRow))
            if pending == 0:
                return int(size or 0)
            assert time.monotonic() < deadline, f"{pending} entries still unsequenced"
            time.sleep(0.5)
    finally:
        database.dispose()


def verify_log(gateway: LiveGateway) -> dict[str, Any]:
    """`ketenpoort audit verify --json` on the database: every entry, checkpoint, proof."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "verify", "--json", "--no-progress"],
        env={**os.environ, **gateway.env()},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def settle_and_verify(
    gateway: RestartableGateway,
    submitters: list[Submitter],
    *,
    after_stop: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """How every fault test ends: each acknowledged signal stored and audited once,
    every entry sequenced, the gateway stopped (then `after_stop`, a check on the files
    it left), no request in the catch-all handler, and `audit verify` passing. Returns
    (signals stored, log size)."""
    url = gateway.settings.database_url
    stored = check_nothing_lost_or_doubled(url, submitters)
    size = wait_until_sequenced(url)
    gateway.stop()
    if after_stop is not None:
        after_stop()
    assert_no_unhandled_errors(gateway)
    report = verify_log(gateway)
    assert report["ok"] is True, report
    return stored, size


def poll(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


def assert_no_unhandled_errors(gateway: RestartableGateway) -> None:
    """No request ended in the catch-all handler (a 500) in any of the gateway's runs."""
    unhandled = [line for line in gateway.logs().splitlines() if '"unhandled error"' in line]
    assert not unhandled, unhandled[:3]
