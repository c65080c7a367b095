"""The verifier's database source: the log's rows read with plain SQL.

Apart from `gateway.audit.verify` so that the verifier itself never imports SQLAlchemy
(a partner or auditor verifies over the API with nothing of the server installed).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

from sqlalchemy import create_engine, text

from gateway.audit.verify import LogEntry


def database_source(url: str) -> tuple[Iterator[LogEntry], list[str], Callable[[], None]]:
    """Entries and checkpoints straight from the database rows, with plain SQL.

    Both are read in one transaction, on PostgreSQL a REPEATABLE READ snapshot: a
    running gateway's sequencer that numbers entries and signs a checkpoint meanwhile
    would otherwise show entries no checkpoint read here covers (a false finding)."""
    engine = create_engine(url)
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    conn.begin()
    notes = [row[0] for row in conn.execute(text("SELECT note FROM audit_checkpoints ORDER BY id"))]

    def rows() -> Generator[LogEntry, None, None]:
        result = conn.execution_options(stream_results=True, yield_per=20_000).execute(
            text(
                "SELECT e.seq, e.data, e.leaf_hash, n.hash FROM audit_entries e "
                "LEFT JOIN audit_tree_nodes n ON n.level = 0 AND n.idx = e.seq "
                "WHERE e.seq IS NOT NULL ORDER BY e.seq"
            )
        )
        for seq, data, recorded, tree_leaf in result:
            yield LogEntry(int(seq), bytes(data), bytes(recorded), _leaf_or_missing(tree_leaf))

    stream = rows()

    def close() -> None:
        stream.close()  # a verification that stopped early still frees its cursor
        conn.close()  # ends the read-only transaction
        engine.dispose()

    return stream, notes, close


def _leaf_or_missing(value: bytes | None) -> bytes:
    # A leaf missing from the tree compares unequal to every real leaf hash.
    return bytes(value) if value is not None else b"missing"
