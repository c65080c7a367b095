"""SQLAlchemy 2 engine, sessions and the declarative base.

SQLite runs in WAL mode with foreign keys on, and we issue BEGIN ourselves so that a
write transaction can take the write lock up front (BEGIN IMMEDIATE) instead of failing
with "database is locked" when it upgrades from reading to writing halfway.
PostgreSQL is reached through psycopg 3.

The SQLite file is created 0600 (and its folder 0700 when we create it) whatever the
umask: SQLite gives the `-wal` and `-shm` files the database file's mode, so all three
stay private (security finding 9). A file left wider by an older version is narrowed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from gateway.private_files import ensure_private_file, make_private_dir, narrow_if_present
from gateway.sqlite_writers import WriterQueue

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: `Session.info` key: a read request's session hands its audit entries to this writer
#: (`gateway.audit.reads.ReadAudit`) instead of adding them to its own transaction.
READ_AUDIT = "ketenpoort.read_audit"


class Base(DeclarativeBase):
    """Declarative base of every model; the naming convention keeps migrations stable."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: SQLite copies its WAL back into the database file (a checkpoint, with its fsyncs) in
#: whichever commit finds the WAL this long — while that writer holds the write lock.
#: The audit sequencer checkpoints after each batch instead, outside the write lock
#: (`Database.checkpoint_wal`); this is the backstop, well above what a batch leaves.
WAL_AUTOCHECKPOINT_PAGES = 8000


def _configure_sqlite(engine: Engine, writers: WriterQueue) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode != "IMMEDIATE":
            _begin(conn, "BEGIN DEFERRED")
            return
        writers.acquire(conn.connection)
        try:
            _begin(conn, "BEGIN IMMEDIATE")
        except BaseException:
            writers.release(conn.connection)
            raise

    # Released once the transaction has ended (the pool's reset on return also
    # rolls back through the dialect, so a dropped session releases it too).
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            writers.release(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            writers.release(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    @event.listens_for(engine, "close")
    def _on_close(dbapi_connection: Any, _record: Any) -> None:
        writers.release(dbapi_connection)


def _begin(conn: Connection, statement: str) -> None:
    """BEGIN on the driver's connection itself: every transaction runs this, and a
    statement through SQLAlchemy's execute (events, result set-up) cost more than the
    BEGIN. A failure is raised as SQLAlchemy's error, as an execute would."""
    try:
        conn.connection.dbapi_connection.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise sa_exc.DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc


SQLITE_COMPANIONS = ("-wal", "-shm", "-journal", "-lock")


def secure_sqlite_file(database: str) -> None:
    """Create the database file 0600 before SQLite does, and narrow existing ones
    (with its companions: SQLite copies the database file's mode only when creating)."""
    path = Path(database)
    make_private_dir(path.parent)
    ensure_private_file(path)
    for suffix in SQLITE_COMPANIONS:
        narrow_if_present(path.with_name(path.name + suffix))


#: Seconds to connect to PostgreSQL and to wait for a pooled connection (`make_engine`).
CONNECT_TIMEOUT_SECONDS = 5
POOL_TIMEOUT_SECONDS = 10

#: libpq's TCP settings for every PostgreSQL connection: one whose peer vanished without
#: closing it (a network partition, a host that died) is found dead in about a minute
#: instead of the kernel's two hours or more, so a request fails with a 503 and a
#: background job's turn ends and is retried, instead of hanging on it. Probes start
#: after 30 s without traffic, every 10 s, 3 unanswered; data unacknowledged for 60 s
#: closes it too. A long query is not cut: the server answers the probes meanwhile.
_TCP = {"keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
_TCP_USER_TIMEOUT_MS = 60_000
POSTGRES_TCP = {"keepalives": 1, **_TCP, "tcp_user_timeout": _TCP_USER_TIMEOUT_MS}

#: The server's side of the same, set on each new connection (its settings are named
#: `tcp_…`): the server ends the session of a gateway that vanished (and with it the
#: transaction and the advisory locks it held, the sequencer's or a cluster's) in about
#: a minute, not hours later.
_SERVER_TCP = "SELECT " + ", ".join(
    f"set_config('{name}', '{value}', false)"
    for name, value in [
        *((f"tcp_{name}", value) for name, value in _TCP.items()),
        ("tcp_user_timeout", _TCP_USER_TIMEOUT_MS),
    ]
)


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        on_disk = None
        if database and database != ":memory:" and not database.startswith("file:"):
            secure_sqlite_file(database)
            on_disk = Path(database)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, WriterQueue(on_disk))
        return engine
    ping_when_idle = "pool_pre_ping" not in kwargs
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # A database that is down must fail a request in seconds, not hang it: the connect
    # (an unreachable host) and the wait for a pooled connection are both bounded.
    kwargs.setdefault("pool_timeout", POOL_TIMEOUT_SECONDS)
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault(
            "connect_args", {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **POSTGRES_TCP}
        )
    engine = create_engine(url, **kwargs)
    if ping_when_idle:
        _ping_when_idle(engine)
    if parsed.get_backend_name() == "postgresql":
        _server_keepalive(engine)
    return engine


def _server_keepalive(engine: Engine) -> None:
    """`_SERVER_TCP` on every new PostgreSQL connection, committed (a rolled-back SET
    would be undone), in one round trip."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(_SERVER_TCP)
        dbapi_connection.commit()


#: A pooled connection idle at least this long is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """`pool_pre_ping`, but only for a connection that sat in the pool for a while.

    A ping is a round trip before every transaction; under load a connection comes back
    to the pool and goes out again within milliseconds, and one broken meanwhile (the
    server restarted) fails its statement, which invalidates the whole pool at once, as
    any disconnect does. A connection idle longer (the server may have gone and come
    back, a firewall may have dropped it) is pinged first and silently replaced if dead.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["ketenpoort_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("ketenpoort_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool replaces the connection (up to 3 tries)
            raise sa_exc.DisconnectionError(f"idle connection is gone: {exc}") from exc


#: Failures of the database itself, not of the request: the server is down or
#: restarting, a connection broke, the pool is exhausted, or SQLite cannot write (disk
#: full, read-only file, I/O error, locked past the busy timeout).
_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)


#: PostgreSQL SQLSTATEs of the same kind, whatever class psycopg gives them: a read-only
#: server (25006: a standby after a failover, `default_transaction_read_only`), a lost
#: connection (08), no space or memory (53), an administrator's shutdown (57P), an I/O
#: error of the server (58).
_UNAVAILABLE_STATES = ("25006", "08", "53", "57P", "58")


#: SQLite's primary result codes of the same kind: BUSY, LOCKED, NOMEM, READONLY,
#: IOERR, FULL, CANTOPEN, PROTOCOL. Its other errors share the OperationalError class
#: ("no such table", a syntax error) but are bugs: they must stay 500s, not be retried.
_SQLITE_UNAVAILABLE = frozenset({5, 6, 7, 8, 10, 13, 14, 15})


def _sqlite_failure(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _SQLITE_UNAVAILABLE


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` (or what caused it) says the database is unavailable; the HTTP
    layer answers those 503 with Retry-After instead of 500."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and isinstance(current.orig, sqlite3.Error):
            return _sqlite_failure(current.orig)
        if isinstance(current, sqlite3.Error):
            return _sqlite_failure(current)
        if isinstance(current, _UNAVAILABLE):
            return True
        if isinstance(current, sa_exc.DBAPIError) and (
            current.connection_invalidated
            or str(getattr(current.orig, "sqlstate", "") or "").startswith(_UNAVAILABLE_STATES)
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


#: Advisory lock keys are database-wide; XOR-ed with a hash of the schema they are per
#: schema, like the data they guard.
_SCHEMA_KEY = ":key # hashtextextended(current_schema(), 0)"


def try_advisory_xact_lock(session: Session, key: int) -> bool:
    """PostgreSQL: try the transaction-scoped advisory lock `key` *of this schema*.

    Advisory locks are database-wide, but a gateway's data (and a test's) is a schema:
    the key is XOR-ed with a hash of `current_schema()`, so gateways or test runs in
    different schemas of one database never take each other's lock (two suites side by
    side made each other's audit sequencer skip its turn). SQLite: always True (its
    writers are serialised by BEGIN IMMEDIATE).
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    statement = text(f"SELECT pg_try_advisory_xact_lock({_SCHEMA_KEY})")
    return bool(session.execute(statement, {"key": key}).scalar_one())


def advisory_xact_lock(session: Session | Connection, key: int) -> None:
    """PostgreSQL: wait for the transaction-scoped advisory lock `key` of this schema."""
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock({_SCHEMA_KEY})"), {"key": key})


class Database:
    """The engine and a session factory; one per app (never a module global)."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite write sessions: the same pool, every transaction begun IMMEDIATE.
        self._write_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.is_sqlite
            else self.engine
        )
        self._write_factory = sessionmaker(self._write_engine, expire_on_commit=False)

    def session(self, *, write: bool = False) -> Session:
        """A new session; `write=True` takes SQLite's write lock at BEGIN.

        BEGIN is lazy: it runs at the session's first statement, not here. So a request
        that opens its write session first and then checks its input, evaluates
        pseudonyms and decrypts an envelope holds SQLite's write lock only for its SQL.
        Every transaction of a write session (also one after a commit or rollback)
        begins IMMEDIATE: a deferred one that reads, then writes, fails under
        concurrent writers.
        """
        return (self._write_factory if write else self._factory)()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A Core connection in a read transaction, rolled back at the end: for a few
        reads on a hot path (an ORM session costs more than they do)."""
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A Core connection in a write transaction (SQLite: BEGIN IMMEDIATE), committed
        on success, rolled back on any exception: for one statement on a hot path."""
        with self._write_engine.begin() as connection:
            yield connection

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session that commits on success and rolls back on any exception."""
        session = self.session(write=write)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def checkpoint_wal(self) -> None:
        """SQLite: copy what the WAL holds back into the database file, PASSIVE (it waits
        for no reader and no writer, and writers go on meanwhile). PostgreSQL: nothing."""
        if not self.is_sqlite:
            return
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
        finally:
            raw.close()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
