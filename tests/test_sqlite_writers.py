"""SQLite writers queue for the write lock (`gateway.sqlite_writers`) and always let go."""

from __future__ import annotations

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
