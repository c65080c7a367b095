"""Backup and restore: a consistent snapshot of the database, the key store apart.

`create_backup(settings, DIR)` writes

- `DIR/database.sqlite3` (SQLite's online backup API: consistent while the gateway
  runs) or `DIR/database.pgdump` (`pg_dump --format=custom` of the schema in use);
- `DIR/keys/`: a copy of the key store (sealed under the master key, which is never
  backed up: it comes from `KETENPOORT_MASTER_KEY`). Keep it apart from the database
  copy — another disk, another place — and give `restore --keys PATH`;
- `DIR/manifest.json`: backend, schema, migration, sizes and SHA-256 digests.

`restore_backup(settings, DIR)` refuses a backup whose digests do not match or whose
audit log does not verify (the same verifier as `ketenpoort audit verify`, with the
checkpoint keys of the key store the instance will have). On SQLite the copy is
verified before it replaces the database; on PostgreSQL the schema in use is moved
aside, the dump restored and verified, and the old schema dropped — or put back when
verification fails. Stop the gateway processes before a restore.

Crypto-shredding holds across restores: a database backup brings back only payloads
whose epoch key is still in the key store used with it (`gateway.keys.epochs`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from gateway import __version__
from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.audit.sequencer import verifier_keys
from gateway.audit.verify import Progress, Report, verify_log
from gateway.audit.verify_rows import database_source
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import OperatorError
from gateway.keys import KeyStore
from gateway.logs import get_logger
from gateway.private_files import ensure_private_file, make_private_dir

log = get_logger(__name__)

MANIFEST = "manifest.json"
#: SQLite pages copied per step of the online backup (progress is told after each).
BACKUP_PAGES = 1024
FORMAT = 1
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
KEYS_DIR = "keys"


class BackupError(OperatorError):
    """A backup cannot be made, or a backup is refused for a restore."""


# -- helpers ---------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tree_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): _sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".tmp-")
    }


def _sqlite_path(url: URL) -> Path:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("only a SQLite database in a file can be backed up")
    return Path(database)


def pg_schema(url: URL) -> str:
    """The schema a PostgreSQL URL works in: its `-csearch_path=` option, else public."""
    options = url.query.get("options")
    for option in [options] if isinstance(options, str) else list(options or ()):
        for part in unquote(option).split():
            if part.startswith("-csearch_path="):
                return part.removeprefix("-csearch_path=").split(",")[0].strip('"')
    return "public"


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URI without password or options, and the environment carrying the password
    (never on the command line, where other users could read it)."""
    plain = url.set(drivername="postgresql", password=None, query={})
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        raise BackupError(f"{name} is not installed (the PostgreSQL client tools are needed)")
    return found


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BackupError(f"{Path(command[0]).name} failed: {last}")
    return done


def _migration(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def _record(database_url: str, action: str, actor: Actor, detail: dict[str, Any]) -> None:
    database = Database(database_url)
    try:
        with database.transaction() as session:
            record_event(
                session,
                AuditEvent(
                    action=action,
                    outcome="success",
                    actor=actor,
                    resource_type="backup",
                    detail=detail,
                ),
            )
    finally:
        database.dispose()


def verify_database_log(
    database_url: str, keys_dir: Path, issuer: str, progress: Progress | None = None
) -> Report:
    """The audit verifier over a database, with the checkpoint keys of `keys_dir`;
    `progress(index)` hears how far it got."""
    keys = verifier_keys(KeyStore.public_only(keys_dir), issuer)
    if not keys:
        raise BackupError(f"no audit-checkpoint key in {keys_dir}")
    entries, notes, close = database_source(database_url)
    try:
        return verify_log(entries, notes, keys, origin=keys[0].name, progress=progress)
    finally:
        close()


# -- backup ----------------------------------------------------------------------------------


def create_backup(
    settings: Settings,
    directory: Path,
    *,
    actor: Actor,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Snapshot the database and copy the key store into `directory` (new or empty).

    `progress(done, total)` hears how far: SQLite pages copied, then the key store (a
    `pg_dump` reports nothing until it is done)."""
    advance = progress or (lambda done, total: None)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty; give a new folder")
    if not settings.keys_dir.is_dir():
        raise BackupError(f"the key store {settings.keys_dir} does not exist")
    url = make_url(settings.database_url)
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"cannot back up a {backend} database")
    make_private_dir(directory)
    created = datetime.now(UTC)
    # The entry goes in first, so the snapshot holds the record of its own making.
    _record(settings.database_url, "backup.create", actor, {"created": created.isoformat()})
    migration = _migration(settings.database_url)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "software": __version__,
        "created": created.isoformat(),
        "backend": backend,
        "migration": migration,
        "issuer": settings.issuer,
    }
    if backend == "sqlite":
        target = directory / SQLITE_FILE
        ensure_private_file(target)
        source = sqlite3.connect(_sqlite_path(url))
        try:
            with sqlite3.connect(target) as copy:
                source.backup(
                    copy,
                    pages=BACKUP_PAGES,
                    progress=lambda _status, remaining, total: advance(total - remaining, total),
                )
                # A self-contained file: no write-ahead log beside it, now or when opened.
                copy.execute("PRAGMA journal_mode=DELETE")
            copy.close()
        finally:
            source.close()
        manifest["database"] = SQLITE_FILE
    else:
        target = directory / PG_FILE
        ensure_private_file(target)
        conninfo, env = _libpq(url)
        schema = pg_schema(url)
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--schema={schema}",
                f"--file={target}",
                f"--dbname={conninfo}",
            ],
            env,
        )
        manifest["database"] = PG_FILE
        manifest["schema"] = schema
    manifest["databaseSha256"] = _sha256(target)
    keys_copy = directory / KEYS_DIR
    shutil.copytree(settings.keys_dir, keys_copy, ignore=shutil.ignore_patterns(".tmp-*"))
    advance(1, 1)
    os.chmod(keys_copy, 0o700)
    manifest["keys"] = _tree_digests(keys_copy)
    ensure_private_file(directory / MANIFEST)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("backup made", backend=backend, folder=str(directory))
    return {
        "folder": str(directory),
        "backend": backend,
        "migration": migration,
        "database": str(target),
        "keys": str(keys_copy),
        "created": manifest["created"],
    }


# -- restore ---------------------------------------------------------------------------------


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupError(f"{directory} holds no readable {MANIFEST}") from None
    if manifest.get("format") != FORMAT or manifest.get("database") not in (SQLITE_FILE, PG_FILE):
        raise BackupError(f"{directory / MANIFEST} is not a ketenpoort backup manifest")
    dump = directory / str(manifest["database"])
    if not dump.is_file() or _sha256(dump) != manifest.get("databaseSha256"):
        raise BackupError(f"{dump} is missing or does not match the manifest's digest")
    return manifest


def _check_keys(manifest: dict[str, Any], keys_from: Path) -> None:
    expected: dict[str, str] = manifest.get("keys") or {}
    if not keys_from.is_dir():
        raise BackupError(f"the key store backup {keys_from} does not exist; give --keys")
    found = _tree_digests(keys_from)
    if found != expected:
        raise BackupError(f"the key store in {keys_from} does not match the backup's manifest")


def restore_backup(
    settings: Settings,
    directory: Path,
    *,
    actor: Actor,
    keys_from: Path | None = None,
    keep_keys: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Restore `directory` into the instance `settings` names (see the module docstring).

    `keep_keys`: restore the database only and keep the key store in place (payloads
    whose epoch key it no longer holds stay unreadable); else the key store is replaced
    by the backup's (`keys_from`, default `DIR/keys`) and the old one kept beside it.
    `progress(done, total)` hears how far the verification of the backup's audit log
    got (entries; the total is not known beforehand: 0).
    """
    manifest = read_manifest(directory)
    url = make_url(settings.database_url)
    backend = url.get_backend_name()
    if backend != manifest["backend"]:
        raise BackupError(
            f"the backup is of a {manifest['backend']} database; this instance uses {backend}"
        )
    if keep_keys:
        verify_keys = settings.keys_dir
    else:
        verify_keys = keys_from or directory / KEYS_DIR
        _check_keys(manifest, verify_keys)
    dump = directory / str(manifest["database"])
    verified: Progress | None = (lambda index: progress(index, 0)) if progress else None
    if backend == "sqlite":
        report = _restore_sqlite(settings, url, dump, verify_keys, verified)
    else:
        schema = str(manifest["schema"])
        report = _restore_postgres(settings, url, dump, schema, verify_keys, verified)
    kept_aside: str | None = None
    if not keep_keys and verify_keys.resolve() != settings.keys_dir.resolve():
        if settings.keys_dir.exists():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            aside = settings.keys_dir.with_name(f"{settings.keys_dir.name}.pre-restore-{stamp}")
            settings.keys_dir.rename(aside)
            kept_aside = str(aside)
        shutil.copytree(verify_keys, settings.keys_dir)
        os.chmod(settings.keys_dir, 0o700)
    detail = {"backupCreated": manifest["created"], "entries": report.entries}
    _record(settings.database_url, "backup.restore", actor, detail)
    log.info("backup restored", backend=backend, folder=str(directory))
    return {
        "folder": str(directory),
        "backend": backend,
        "backupCreated": manifest["created"],
        "migration": manifest["migration"],
        "auditEntries": report.entries,
        "auditCheckpoints": report.checkpoints,
        "keysRestored": not keep_keys,
        "previousKeys": kept_aside,
    }


def _refuse(report: Report) -> BackupError:
    first = report.first_bad
    where = f" (first bad index {first.index}: {first.problem})" if first else ""
    return BackupError(f"the backup's audit log does not verify{where}; nothing was restored")


def _restore_sqlite(
    settings: Settings, url: URL, dump: Path, keys_dir: Path, progress: Progress | None
) -> Report:
    target = _sqlite_path(url)
    make_private_dir(target.parent)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".restore-", suffix=".db")
    os.close(fd)
    staged = Path(name)
    try:
        os.chmod(staged, 0o600)
        with sqlite3.connect(dump) as source, sqlite3.connect(staged) as copy:
            source.backup(copy)
        source.close()
        copy.close()
        report = verify_database_log(f"sqlite:///{staged}", keys_dir, settings.issuer, progress)
        if not report.ok:
            raise _refuse(report)
        for suffix in ("-wal", "-shm"):  # a stale log of the old file must not replay
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    return report


@contextmanager
def _admin(url: URL) -> Iterator[Any]:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _schema_exists(conn: Any, name: str) -> bool:
    found = conn.execute(
        text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :n"), {"n": name}
    ).scalar()
    return found is not None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _restore_postgres(
    settings: Settings,
    url: URL,
    dump: Path,
    source: str,
    keys_dir: Path,
    progress: Progress | None,
) -> Report:
    target = pg_schema(url)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    aside = f"{target[:40]}_pre_restore_{stamp}"
    conninfo, env = _libpq(url)
    with _admin(url) as conn:
        if source != target and _schema_exists(conn, source):
            raise BackupError(
                f"schema {source!r} (the backup's) exists beside {target!r}; drop or rename it"
            )
        moved = _schema_exists(conn, target)
        if moved:
            conn.execute(text(f"ALTER SCHEMA {_q(target)} RENAME TO {_q(aside)}"))
        try:
            conn.execute(text(f"CREATE SCHEMA {_q(source)}"))
            # Every entry but the schema itself (created above: `public` may or may not be
            # in a dump, depending on the server version).
            listing = _run([_tool("pg_restore"), "--list", str(dump)], env).stdout
            wanted = [
                line
                for line in listing.splitlines()
                if " SCHEMA - " not in line and "COMMENT - SCHEMA " not in line
            ]
            with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as handle:
                handle.write("\n".join(wanted) + "\n")
            try:
                _run(
                    [
                        _tool("pg_restore"),
                        "--no-owner",
                        "--no-privileges",
                        "--exit-on-error",
                        f"--use-list={handle.name}",
                        f"--dbname={conninfo}",
                        str(dump),
                    ],
                    env,
                )
            finally:
                os.unlink(handle.name)
            if source != target:
                conn.execute(text(f"ALTER SCHEMA {_q(source)} RENAME TO {_q(target)}"))
            report = verify_database_log(settings.database_url, keys_dir, settings.issuer, progress)
            if not report.ok:
                raise _refuse(report)
        except BaseException:
            for name in {source, target}:  # what this restore created
                conn.execute(text(f"DROP SCHEMA IF EXISTS {_q(name)} CASCADE"))
            if moved:
                conn.execute(text(f"ALTER SCHEMA {_q(aside)} RENAME TO {_q(target)}"))
            raise
        if moved:
            conn.execute(text(f"DROP SCHEMA {_q(aside)} CASCADE"))
    return report
