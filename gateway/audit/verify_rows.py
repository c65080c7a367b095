"""The verifier's database source: the log's rows read with plain SQL.

Apart from `gateway.audit.verify` so that the verifier itself never imports SQLAlchemy
(a partner or auditor verifies over the API with nothing of the server installed).

The rows go to the verifier as the driver hands them over — `(seq, data, recorded
leaf, tree leaf)` tuples, fetched in large chunks; on PostgreSQL from a server-side
cursor in binary format, so neither side holds the whole log and no text is parsed.
On PostgreSQL a reader thread fetches the next chunk while the verifier hashes this
one, so the server's work overlaps the hashing instead of alternating with it (SQLite
works in-process, mostly holding the GIL: a thread there only costs).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, ClassVar

from sqlalchemy import create_engine

from gateway.audit.verify import LogEntry

#: A leaf missing from the tree reads as b"missing" (hex below), which compares unequal
#: to every real leaf hash.
_ROWS = (
    "SELECT e.seq, e.data, e.leaf_hash, COALESCE(n.hash, {missing}) "
    "FROM audit_entries e LEFT JOIN audit_tree_nodes n ON n.level = 0 AND n.idx = e.seq "
    "WHERE e.seq IS NOT NULL ORDER BY e.seq"
)
CHUNK = 20_000
#: Chunks fetched ahead of the verifier (memory: this many chunks of CHUNK rows).
AHEAD = 2


def database_source(url: str) -> tuple[Iterator[LogEntry], list[str], Callable[[], None]]:
    """Entries and checkpoints straight from the database rows, with plain SQL, both
    from one snapshot: on a live gateway a batch sequenced between reading the
    checkpoints and the entries would otherwise show as entries no checkpoint covers."""
    engine = create_engine(url)
    postgres = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    try:
        if postgres:
            from psycopg import IsolationLevel

            raw.driver_connection.isolation_level = IsolationLevel.REPEATABLE_READ  # type: ignore[union-attr]
        cursor = raw.cursor()
        if not postgres:
            cursor.execute("BEGIN")  # SQLite (WAL): the read snapshot holds until the end
        cursor.execute("SELECT note FROM audit_checkpoints ORDER BY id")
        notes = [row[0] for row in cursor.fetchall()]
        cursor.close()
    except BaseException:
        raw.close()
        engine.dispose()
        raise
    done = False

    def finish() -> None:
        nonlocal done
        if not done:
            done = True
            raw.rollback()  # ends the read transaction (and a server-side cursor with it)
            raw.close()

    def open_cursor() -> Any:
        if postgres:
            # no JIT: compiling the plan costs more than it saves on a streamed scan
            raw.driver_connection.execute("SET LOCAL jit = off")  # type: ignore[union-attr]
            cursor = raw.driver_connection.cursor(  # type: ignore[union-attr]
                name="ketenpoort_audit_verify", binary=True
            )
            cursor.itersize = CHUNK
            cursor.execute(_ROWS.format(missing="'\\x6d697373696e67'::bytea"))
        else:
            cursor = raw.cursor()
            cursor.execute(_ROWS.format(missing="x'6d697373696e67'"))
        return cursor

    def rows() -> Generator[Any, None, None]:
        if not postgres:
            try:
                cursor = open_cursor()
                while chunk := cursor.fetchmany(CHUNK):
                    yield from chunk
                cursor.close()
            finally:
                finish()
            return
        reader = _Reader(open_cursor)
        try:
            while chunk := reader.next():
                yield from chunk
        finally:
            reader.stop()  # before the connection is used again
            finish()

    stream = rows()

    def close() -> None:
        stream.close()  # a verification that stopped early still frees its cursor
        finish()
        engine.dispose()

    return stream, notes, close


class _Reader:
    """Fetches chunks of rows in a thread of its own, `AHEAD` chunks ahead; the one
    thread that uses the connection until `stop` has joined it. An error in the thread
    is raised by `next`."""

    _END: ClassVar[list[Any]] = []

    def __init__(self, open_cursor: Callable[[], Any]) -> None:
        self._chunks: queue.Queue[list[Any] | BaseException] = queue.Queue(AHEAD)
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(open_cursor,), name="audit-verify-reader", daemon=True
        )
        self._thread.start()

    def _put(self, item: list[Any] | BaseException) -> bool:
        while not self._stopping.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, open_cursor: Callable[[], Any]) -> None:
        try:
            cursor = open_cursor()
            try:
                while chunk := cursor.fetchmany(CHUNK):
                    if not self._put(chunk):
                        return
            finally:
                cursor.close()
            self._put(self._END)
        except BaseException as exc:  # handed to the verifier's thread
            self._put(exc)

    def next(self) -> list[Any]:
        item = self._chunks.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
