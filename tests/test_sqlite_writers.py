"""SQLite writers queue for the write lock (`gateway.sqlite_writers`) and always let go."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.db import Database


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path}/w.db")
    with db.write_connection() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    return db


def test_concurrent_writers_all_commit_and_the_lock_file_is_private(
    database: Database, tmp_path: Path
) -> None:
    def bump() -> None:
        for _ in range(25):
            with database.transaction() as session:
                n = session.execute(text("SELECT n FROM counter")).scalar_one()
                session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with database.read_connection() as connection:
        assert connection.execute(text("SELECT n FROM counter")).scalar_one() == 100
    lock = tmp_path / "w.db-lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    database.dispose()


def test_a_failed_or_abandoned_write_lets_go(database: Database) -> None:
    with pytest.raises(RuntimeError), database.transaction() as session:
        session.execute(text("UPDATE counter SET n = 1"))
        raise RuntimeError("rolled back")
    abandoned = database.session(write=True)
    abandoned.execute(text("UPDATE counter SET n = 2"))
    abandoned.close()  # the pool's reset rolls back and releases

    done = threading.Event()

    def write() -> None:
        with database.transaction() as session:
            session.execute(text("UPDATE counter SET n = 3"))
        done.set()

    other = threading.Thread(target=write)
    other.start()
    assert done.wait(timeout=5)  # not the 30 s of a lock left held
    other.join()
    with database.read_connection() as connection:
        assert connection.execute(text("SELECT n FROM counter")).scalar_one() == 3
    database.dispose()


def test_a_write_session_begins_at_its_first_statement(database: Database) -> None:
    """Opening a write session takes no lock: another writer goes ahead meanwhile."""
    held = database.session(write=True)
    try:
        with database.transaction() as session:
            session.execute(text("UPDATE counter SET n = 7"))
        held.execute(text("UPDATE counter SET n = n + 1"))
        held.commit()
    finally:
        held.close()
    with database.read_connection() as connection:
        assert connection.execute(text("SELECT n FROM counter")).scalar_one() == 8
    database.dispose()


def test_a_writer_waiting_on_another_process_gets_the_lock_when_freed_or_gives_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait for the lock file blocks (no polling) yet still times out; a wait that
    gave up leaves no lock behind once the other process lets go."""
    from gateway import sqlite_writers

    queue = sqlite_writers.WriterQueue(tmp_path / "q.db")
    connection = object()
    queue.acquire(connection)  # creates the lock file
    queue.release(connection)
    other = os.open(tmp_path / "q.db-lock", os.O_RDWR)  # another process's descriptor
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        monkeypatch.setattr(sqlite_writers, "WAIT_SECONDS", 0.2)
        queue.acquire(connection)  # gives up: goes ahead without the lock
        assert queue._holder is None
        fcntl.flock(other, fcntl.LOCK_UN)
        assert _eventually_free(other)  # the abandoned wait let go of what it got

        fcntl.flock(other, fcntl.LOCK_EX)
        monkeypatch.setattr(sqlite_writers, "WAIT_SECONDS", 30.0)
        got = threading.Event()

        def writer() -> None:
            queue.acquire(connection)
            got.set()

        thread = threading.Thread(target=writer)
        thread.start()
        assert not got.wait(0.2)  # waits while the other process holds it
        fcntl.flock(other, fcntl.LOCK_UN)
        assert got.wait(10)
        thread.join()
        with pytest.raises(BlockingIOError):  # this process holds it now
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        queue.release(connection)
        assert _eventually_free(other)
        fcntl.flock(other, fcntl.LOCK_UN)
    finally:
        os.close(other)


def _eventually_free(fd: int) -> bool:
    for _ in range(200):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            threading.Event().wait(0.05)
    return False


def test_an_abandoned_wait_does_not_take_the_lock_from_the_next_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wait that gave up leaves its `flock` call running. The next writer of the
    process must not take the lock beside it (same descriptor: both calls succeed),
    or that call, finding no one waiting, lets go of the lock the writer holds."""
    from gateway import sqlite_writers

    queue = sqlite_writers.WriterQueue(tmp_path / "q.db")
    first, second = object(), object()
    queue.acquire(first)  # creates the lock file
    queue.release(first)
    other = os.open(tmp_path / "q.db-lock", os.O_RDWR)  # another process's descriptor
    third = os.open(tmp_path / "q.db-lock", os.O_RDWR)  # yet another, to look
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        monkeypatch.setattr(sqlite_writers, "WAIT_SECONDS", 0.2)
        queue.acquire(first)  # gives up; its flock call stays pending
        assert queue._holder is None
        monkeypatch.setattr(sqlite_writers, "WAIT_SECONDS", 30.0)
        blocking = queue._blocking
        assert blocking is not None
        got = threading.Event()

        def writer() -> None:
            queue.acquire(second)
            got.set()

        with blocking._changed:  # the pending call cannot hand over or let go meanwhile
            fcntl.flock(other, fcntl.LOCK_UN)
            thread = threading.Thread(target=writer)
            thread.start()
            got.wait(0.3)
        assert got.wait(10)
        thread.join()
        assert queue._holder is not None
        threading.Event().wait(0.3)  # time for the pending call to act, had it the lock
        with pytest.raises(BlockingIOError):  # the second writer still holds it
            fcntl.flock(third, fcntl.LOCK_EX | fcntl.LOCK_NB)
        queue.release(second)
        assert _eventually_free(third)
        fcntl.flock(third, fcntl.LOCK_UN)
    finally:
        os.close(other)
        os.close(third)
