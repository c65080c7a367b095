"""`ketenpoort serve` runs the background jobs in one process of their own (issue 16).

As threads inside the workers, the matching job waited for the GIL behind the request
threads and fell far behind a saturating load on PostgreSQL. Now the arbiter forks one
jobs process beside the workers, restarts it when it dies, and stops it with the
server; the workers run no job at all. Checked on a real server: the signals of two
partners about one person become a match only through that process (paused, nothing
is matched or sequenced; resumed, it is), a killed one is replaced, and it never
outlives the arbiter, not even one killed with SIGKILL.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from gateway.audit.models import AuditEntryRow
from gateway.client import PartnerClient
from gateway.db import Database
from gateway.demo.people import people
from gateway.matching.models import MatchingOutboxRow, MatchRow
from tests.faults.harness import RestartableGateway, restartable_gateway
from tests.integration.live import ROOT, jobs_pids, signal_body

pytestmark = pytest.mark.slow


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[RestartableGateway]:
    with restartable_gateway(database_url, tmp_path, workers=2, threads=2) as live:
        yield live


def _jobs_pids(gateway: RestartableGateway) -> list[int]:
    return jobs_pids(gateway.logs())


def _first_jobs_pid(gateway: RestartableGateway) -> int:
    _wait_for("the jobs process", lambda: len(_jobs_pids(gateway)) == 1)
    return _jobs_pids(gateway)[0]


def _wait_for(what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _count(database_url: str, statement: object) -> int:
    database = Database(database_url)
    try:
        with database.transaction(write=False) as session:
            return int(session.execute(statement).scalar_one())  # type: ignore[call-overload]
    finally:
        database.dispose()


def _matches(url: str) -> int:
    return _count(url, select(func.count()).select_from(MatchRow))


def _waiting(url: str) -> tuple[int, int]:
    """Outbox rows still to match, audit entries still to sequence."""
    outbox = _count(url, select(func.count()).select_from(MatchingOutboxRow))
    unsequenced = _count(
        url, select(func.count()).select_from(AuditEntryRow).where(AuditEntryRow.seq.is_(None))
    )
    return outbox, unsequenced


def _report_twice(police: PartnerClient, care: PartnerClient, n: int) -> None:
    """Two organisations report the same person: work for the matching job."""
    subject = people(n + 1, seed=77)[n].subject()
    for client, reference in ((police, f"P-{n}"), (care, f"Z-{n}")):
        client.request("POST", "/signals", json_body=signal_body(client, reference, subject))


def test_the_jobs_run_in_one_process_of_their_own(gateway: RestartableGateway) -> None:
    url = gateway.settings.database_url
    first = _first_jobs_pid(gateway)
    children = set(gateway.workers_pids())
    assert first in children and len(children) == gateway.workers + 1

    police = gateway.register("police", "police")
    care = gateway.register("zorg", "care")
    _report_twice(police, care, 0)
    _wait_for("the first match", lambda: _matches(url) == 1)
    # and its entry sequenced: a process paused inside a write would hold SQLite's lock
    _wait_for("the first match's entries", lambda: _waiting(url) == (0, 0))

    # paused, nothing is matched or sequenced: no worker runs a job
    os.kill(first, signal.SIGSTOP)
    try:
        _report_twice(police, care, 1)
        time.sleep(3)  # six turns of the matching job, twelve of the sequencer
        outbox, unsequenced = _waiting(url)
        assert _matches(url) == 1 and outbox == 2 and unsequenced >= 2
    finally:
        os.kill(first, signal.SIGCONT)
    _wait_for("the match after the pause", lambda: _matches(url) == 2)
    _wait_for("the sequencer after the pause", lambda: _waiting(url) == (0, 0))

    # killed, it is replaced, and the new one does the work
    os.kill(first, signal.SIGKILL)
    _wait_for("a new jobs process", lambda: len(_jobs_pids(gateway)) == 2)
    second = _jobs_pids(gateway)[1]
    assert not _alive(first) and _alive(second)
    assert f"Background jobs (pid: {first}) ended unexpectedly: killed by SIGKILL" in gateway.logs()
    _report_twice(police, care, 2)
    _wait_for("the match after the restart", lambda: _matches(url) == 3)

    # a graceful stop ends it with the server
    gateway.stop()
    assert gateway.process.returncode == 0
    assert not _alive(second)
    assert f"Background jobs (pid: {second}) ended\n" in gateway.logs()


def test_the_jobs_process_never_outlives_a_killed_arbiter(gateway: RestartableGateway) -> None:
    jobs = _first_jobs_pid(gateway)
    os.kill(gateway.process.pid, signal.SIGKILL)  # the arbiter alone, not its group
    gateway.process.wait(timeout=30)
    _wait_for("the orphaned jobs process to end", lambda: not _alive(jobs), timeout=30)


def test_sighup_starts_a_fresh_jobs_process(gateway: RestartableGateway) -> None:
    old = _first_jobs_pid(gateway)
    os.kill(gateway.process.pid, signal.SIGHUP)  # new workers, a new jobs process
    _wait_for("a new jobs process", lambda: len(_jobs_pids(gateway)) == 2, timeout=30)
    new = _jobs_pids(gateway)[1]
    assert not _alive(old) and _alive(new)
    assert f"Background jobs (pid: {old}) ended\n" in gateway.logs()
    # started beside the workers, it holds none of what is theirs: not the port, not
    # their heartbeat files (gunicorn's workers close their siblings' too)
    port = os.readlink(f"/proc/self/fd/{gateway.listener.fileno()}")  # socket:[inode]
    held = [os.readlink(fd) for fd in Path(f"/proc/{new}/fd").iterdir()]
    assert not [f for f in held if "wgunicorn-" in f or f == port], held


def _flood(pid: int, seconds: float = 2.0) -> None:
    """SIGINT to `pid` as fast as this process can, until it is gone (or `seconds`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return


def test_a_flood_of_stop_signals_still_stops_the_jobs_process(
    gateway: RestartableGateway,
) -> None:
    """Ctrl-C pressed again and again: each press reaches the jobs process. Its handler
    set a threading.Event, and deadlocked on the event's lock when a signal came while
    the main thread held it, or nested until a RecursionError (one flood in two or
    three). Now the handler does nothing; the signal's number comes through a pipe."""
    for started in (1, 2, 3):  # each flood ends one; the arbiter starts the next
        _wait_for("a jobs process", lambda n=started: len(_jobs_pids(gateway)) == n)
        jobs = _jobs_pids(gateway)[-1]
        helper = os.fork()  # a second sender: signals closer together
        if helper == 0:
            try:
                _flood(jobs)
            finally:
                os._exit(0)
        _flood(jobs)
        os.waitpid(helper, 0)
        ended = f"Background jobs (pid: {jobs}) ended"
        _wait_for("its end", lambda line=ended: line in gateway.logs(), timeout=30)
        assert f"{ended}\n" in gateway.logs()  # not "unexpectedly" (a RecursionError)
        assert not _alive(jobs)


def test_the_arbiter_keeps_no_database_connection(gateway: RestartableGateway) -> None:
    """The app built in the arbiter to check the settings is closed again: its
    connection stayed open for the arbiter's whole life, and every worker and jobs
    process forked from it inherited it (on SQLite the library's lock state with it)."""
    _first_jobs_pid(gateway)
    port = os.readlink(f"/proc/self/fd/{gateway.listener.fileno()}")  # socket:[inode]
    url = gateway.settings.database_url
    database = url.split("///", 1)[1] if url.startswith("sqlite") else None
    held = [os.readlink(fd) for fd in Path(f"/proc/{gateway.process.pid}/fd").iterdir()]
    connections = [
        f
        for f in held
        if (f.startswith("socket:") and f != port)
        or (database is not None and f in (database, f"{database}-wal", f"{database}-shm"))
    ]
    assert not connections, held


@pytest.fixture
def own_policy_gateway(database_url: str, tmp_path: Path) -> Iterator[RestartableGateway]:
    """A gateway whose policy file is a copy of the test's own, to break."""
    policy = tmp_path / "policy.yaml"
    policy.write_bytes((ROOT / "policies" / "twente.yaml").read_bytes())
    with restartable_gateway(database_url, tmp_path, workers=2, threads=2, policy=policy) as live:
        yield live


def test_a_jobs_process_that_cannot_start_is_retried_after_a_doubling_pause(
    own_policy_gateway: RestartableGateway,
) -> None:
    """A jobs process that fails while it starts (here: the policy file broken since the
    server started, as a database out of reach would) says why, the server goes on
    serving, the next one starts after a pause that doubles (each said in the log), and
    one starts and stays once the cause is gone."""
    gateway = own_policy_gateway
    first = _first_jobs_pid(gateway)
    policy = Path(gateway.settings.policy)
    assert policy.is_relative_to(gateway.log_dir)  # never the repository's own file
    original = policy.read_bytes()
    failed = re.compile(r"ended unexpectedly: exit code 1; the next starts in (\d+) s")
    try:
        policy.write_text("rules: [this is no policy\n")
        os.kill(first, signal.SIGKILL)
        _wait_for("two failed starts", lambda: len(failed.findall(gateway.logs())) == 2)
        assert "background jobs process failed" in gateway.logs()
        assert requests.get(f"{gateway.issuer}/readyz", timeout=10).status_code == 200
    finally:
        policy.write_bytes(original)
    assert f"(pid: {first}) ended unexpectedly: killed by SIGKILL" in gateway.logs()
    first_pause, second_pause = (int(s) for s in failed.findall(gateway.logs()))
    assert first_pause in (1, 2) and second_pause == 2 * first_pause  # 1 s after a quick end
    started = len(_jobs_pids(gateway))
    _wait_for("a jobs process after the cause is gone", lambda: len(_jobs_pids(gateway)) > started)
    time.sleep(2)  # as long as the failed ones ran, and more
    assert _alive(_jobs_pids(gateway)[-1]) and len(failed.findall(gateway.logs())) == 2
