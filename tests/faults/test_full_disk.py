"""SQLite on a full disk (issue 17): clean 503s, no corrupt state, and back by itself.

The database lives on a small tmpfs of the test's own (mounting one needs root; the
test is skipped, saying so, where that is not allowed). After some load the write-ahead
log is truncated and the filesystem filled to the last byte, so the next write needs
space there is none of. Partners keep submitting: every failed write answers 503
`database-unavailable` with Retry-After (never a 500). Once space is freed the same
gateway acknowledges again; SQLite's integrity check passes, every acknowledged signal
is stored and audited once, and the audit log verifies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

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

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs, unmounted afterwards."""
    mountpoint = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        pytest.skip("filling a disk needs a small filesystem of our own: mount needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)


@pytest.fixture
def gateway(small_disk: Path, tmp_path: Path) -> Iterator[RestartableGateway]:
    url = f"sqlite:///{small_disk / 'ketenpoort.db'}"
    with restartable_gateway(url, tmp_path, workers=2, threads=4) as live:
        yield live


def _truncate_wal(database: Path, timeout: float = 30) -> None:
    """Checkpoint the write-ahead log into the database and cut it to 0 bytes, so the
    next write must allocate (it waits for the gateway's readers to let go)."""
    deadline = time.monotonic() + timeout
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        while True:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            assert time.monotonic() < deadline, "the write-ahead log stayed busy"
            time.sleep(0.05)


def _fill(disk: Path) -> Path:
    """Write a filler file until the filesystem has no byte left."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * chunk
            try:
                while True:
                    out.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


def _acknowledged(submitters: list[Submitter]) -> int:
    return sum(len(s.acknowledged) for s in submitters)


def test_full_disk_answers_503_and_recovers_without_corruption(
    gateway: RestartableGateway, small_disk: Path
) -> None:
    database = small_disk / "ketenpoort.db"
    clients = partner_clients(gateway, 4)
    warmup = [Submitter(f"W{n}", c) for n, c in enumerate(clients)]
    stop, runner = load_in_background(warmup)
    assert poll(lambda: _acknowledged(warmup) >= 6, timeout=60)
    stop.set()
    runner.join(timeout=120)

    _truncate_wal(database)
    filler = _fill(small_disk)
    submitters = [Submitter(f"F{n}", c) for n, c in enumerate(clients)]
    stop, runner = load_in_background(submitters)
    try:
        assert poll(lambda: sum(s.statuses[503] for s in submitters) >= 4, timeout=60), [
            s.statuses for s in submitters
        ]
        full_acknowledged = _acknowledged(submitters)
        filler.unlink()  # space again
        assert poll(lambda: _acknowledged(submitters) >= full_acknowledged + 8, timeout=60)
    finally:
        stop.set()
        runner.join(timeout=120)
    assert not runner.is_alive()

    statuses: Counter[int | str] = Counter()
    for submitter in submitters:
        statuses.update(submitter.statuses)
    assert statuses[500] == 0, (statuses, gateway.logs()[-4000:])
    assert statuses["timeout"] == 0 and statuses["transport"] == 0, statuses
    problems = [p for s in submitters for p in s.problems]
    assert problems and all(str(p.get("type", "")).endswith(UNAVAILABLE) for p in problems)
    assert sum(s.retry_after_missing for s in submitters) == 0
    assert max(s.longest for s in submitters) < REQUEST_TIMEOUT

    def intact() -> None:
        with contextlib.closing(sqlite3.connect(database)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    stored, size = settle_and_verify(gateway, warmup + submitters, after_stop=intact)
    print(f"\nfull disk: stored {stored}; statuses {dict(statuses)}; log {size}")
