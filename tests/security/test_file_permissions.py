"""Weakness 9 of the outside attack: the database files were world-readable.

The SQLite file, its `-wal` and `-shm`, the key store folder and its files must be
0600/0700 whatever the umask — checked in this process under umasks 022 and 000 and in
a `ketenpoort init` subprocess started with umask 000 — and the Dockerfile's data
folders 0700.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.bootstrap import initialise
from gateway.config import Settings
from gateway.crypto import b64url
from gateway.db import Database

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def assert_private_sqlite(database: Path) -> None:
    assert mode(database.parent) == 0o700
    assert mode(database) == 0o600
    for suffix in ("-wal", "-shm"):
        companion = database.with_name(database.name + suffix)
        assert companion.exists(), f"{companion.name} was not created"
        assert mode(companion) == 0o600, f"{companion.name}: {oct(mode(companion))}"


def assert_private_keys(keys: Path) -> None:
    assert mode(keys) == 0o700
    files = list(keys.iterdir())
    assert files
    for path in files:
        assert mode(path) == 0o600, f"{path.name}: {oct(mode(path))}"


def test_sqlite_files_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    database = tmp_path / "data" / "ketenpoort.db"
    db = Database(f"sqlite:///{database}")
    try:
        with db.transaction() as session:  # a write: WAL and shared memory exist now
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            session.execute(text("INSERT INTO t VALUES (1)"))
        with db.engine.connect() as conn:  # keep a connection: -wal and -shm stay
            assert conn.execute(text("SELECT x FROM t")).scalar() == 1
            assert_private_sqlite(database)
    finally:
        db.dispose()


def test_a_file_left_world_readable_is_narrowed(tmp_path: Path, umask: int) -> None:
    database = tmp_path / "ketenpoort.db"
    wal = tmp_path / "ketenpoort.db-wal"
    for path in (database, wal):
        path.touch()
        path.chmod(0o644)
    Database(f"sqlite:///{database}").dispose()
    assert mode(database) == 0o600
    assert mode(wal) == 0o600
    assert mode(tmp_path) == stat.S_IMODE(tmp_path.stat().st_mode)  # not ours: left alone


def test_init_creates_private_database_and_key_store(tmp_path: Path, umask: int) -> None:
    """With the development master key, which is written into the key store too."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'var' / 'ketenpoort.db'}",
        keys_dir=tmp_path / "keys",
        policy=ROOT / "policies" / "twente.yaml",
        master_key=None,
        log_format="json",
        testing=True,
    )
    initialise(settings)
    assert_private_keys(tmp_path / "keys")
    database = tmp_path / "var" / "ketenpoort.db"
    assert mode(database.parent) == 0o700
    assert mode(database) == 0o600


def test_a_wide_key_store_folder_is_narrowed(tmp_path: Path, umask: int) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    keys.chmod(0o755)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ketenpoort.db'}",
        keys_dir=keys,
        policy=ROOT / "policies" / "twente.yaml",
        master_key=secrets.token_bytes(32),
        log_format="json",
        testing=True,
    )
    initialise(settings)
    assert_private_keys(keys)


def test_cli_init_under_umask_000(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KETENPOORT_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'ketenpoort.db'}",
        "KETENPOORT_KEYS_DIR": str(tmp_path / "keys"),
        "KETENPOORT_POLICY": str(ROOT / "policies" / "twente.yaml"),
        "KETENPOORT_MASTER_KEY": b64url(secrets.token_bytes(32)),
        "KETENPOORT_LOG_FORMAT": "json",
    }
    script = (
        "import os, sys; os.umask(0); from gateway.cli import main; "
        "sys.argv = ['ketenpoort', 'init', '--json']; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_private_keys(tmp_path / "keys")
    database = tmp_path / "var" / "ketenpoort.db"
    assert mode(database.parent) == 0o700
    assert mode(database) == 0o600
    for suffix in ("-wal", "-shm"):  # left behind only if a connection stayed open
        companion = database.with_name(database.name + suffix)
        if companion.exists():
            assert mode(companion) == 0o600


def test_dockerfile_data_folders_are_private() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "chmod 0700 /srv/var /srv/keys" in dockerfile
