"""The verifier's database source: the log's rows read with plain SQL.

Apart from `gateway.audit.verify` so that the verifier itself never imports SQLAlchemy
(a partner or auditor verifies over the API with nothing of the server installed).

The rows go to the verifier as the driver hands them over — `(seq, data, recorded
leaf, tree leaf)` tuples, fetched in large chunks; on PostgreSQL from a server-side
cursor in binary format, so neither side holds the whole log and no text is parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

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

    def rows() -> Generator[Any, None, None]:
        try:
            if postgres:
                cursor = raw.driver_connection.cursor(  # type: ignore[union-attr]
                    name="ketenpoort_audit_verify", binary=True
                )
                cursor.itersize = CHUNK
                cursor.execute(_ROWS.format(missing="'\\x6d697373696e67'::bytea"))
            else:
                cursor = raw.cursor()
                cursor.execute(_ROWS.format(missing="x'6d697373696e67'"))
            while chunk := cursor.fetchmany(CHUNK):
                yield from chunk
            cursor.close()
        finally:
            finish()

    stream = rows()

    def close() -> None:
        stream.close()  # a verification that stopped early still frees its cursor
        finish()
        engine.dispose()

    return stream, notes, close
