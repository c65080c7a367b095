"""Match lookup time with 10^4 and 10^6 stored signals (goal: flat, <= 1 ms).

Fills one database in steps (bulk insert: executemany on SQLite, COPY on PostgreSQL),
and at each size times the lookup the service runs on every create
(`gateway.matching.service.candidate_pks`, through the ORM session, both linkage keys):
for a person nobody signalled (a miss) and for a stored one (a hit). It also times a
whole `create_signal` (insert, lookup, pseudonyms, flush; rolled back). Prints figures.

    .venv/bin/python bench/bench_matching.py                       # SQLite, 10^4 and 10^6
    .venv/bin/python bench/bench_matching.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/bench_matching.py --sizes 10000 100000  # quicker

Each stored signal has a `bsn` and a `name_dob` pseudonym (random 32-byte values) and
a short payload (the lookup never reads payloads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, insert, text

from gateway.db import Database
from gateway.matching.service import candidate_pks
from gateway.migrate import upgrade_to_head
from gateway.signals.models import SignalPseudonymRow, SignalRow
from gateway.signals.service import NewSignal, create_signal

NOW = datetime.now(UTC)
ORGS = [("police-oost", "police"), ("zorg-twente", "care"), ("roc-twente", "education")]
CHUNK = 50_000
SIGNAL_COLUMNS = [
    "id",
    "organisation",
    "organisation_kind",
    "reference",
    "category",
    "status",
    "linkage_keys",
    "created_at",
    "expires_at",
    "payload",
]


def rows(start: int, stop: int) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Signals numbered start..stop-1 (pk = number + 1) and their pseudonyms, in chunks."""
    expires = NOW + timedelta(days=365)
    for first in range(start, stop, CHUNK):
        signals, pseudonyms = [], []
        for n in range(first, min(first + CHUNK, stop)):
            org, kind = ORGS[n % len(ORGS)]
            signals.append(
                {
                    "pk": n + 1,
                    "id": str(uuid.uuid4()),
                    "organisation": org,
                    "organisation_kind": kind,
                    "reference": f"R-{n}",
                    "category": "possible-victim",
                    "status": "active",
                    "linkage_keys": "bsn,name_dob",
                    "created_at": NOW,
                    "expires_at": expires,
                    "payload": '{"ciphertext":"..."}',
                }
            )
            for family in ("bsn", "name_dob"):
                pseudonyms.append(
                    {
                        "signal_pk": n + 1,
                        "family": family,
                        "element": os.urandom(32),
                        "key_id": "psk-1",
                    }
                )
        yield signals, pseudonyms


def fill_sqlite(database: Database, start: int, stop: int) -> None:
    with database.transaction() as session:
        for signals, pseudonyms in rows(start, stop):
            session.execute(insert(SignalRow.__table__), signals)
            session.execute(insert(SignalPseudonymRow.__table__), pseudonyms)


def fill_postgres(database: Database, start: int, stop: int) -> None:
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for signals, pseudonyms in rows(start, stop):
            with cursor.copy(f"COPY signals (pk, {', '.join(SIGNAL_COLUMNS)}) FROM STDIN") as copy:
                for s in signals:
                    copy.write_row([s["pk"], *(s[c] for c in SIGNAL_COLUMNS)])
            with cursor.copy(
                "COPY signal_pseudonyms (signal_pk, family, element, key_id) FROM STDIN"
            ) as copy:
                for p in pseudonyms:
                    copy.write_row([p["signal_pk"], p["family"], p["element"], p["key_id"]])
        cursor.execute("SELECT setval('signals_pk_seq', %s)", (stop,))
        raw.commit()
        cursor.execute("ANALYZE signals")
        cursor.execute("ANALYZE signal_pseudonyms")
        raw.commit()
    finally:
        raw.close()


def stored_person(database: Database, pk: int) -> dict[str, bytes]:
    with database.engine.connect() as conn:
        found = conn.execute(
            text("SELECT family, element FROM signal_pseudonyms WHERE signal_pk = :pk"), {"pk": pk}
        ).all()
    return {family: bytes(element) for family, element in found}


def time_lookups(database: Database, people: list[dict[str, bytes]]) -> list[float]:
    """Milliseconds per lookup, one session per lookup batch (as a request would)."""
    timings = []
    with database.transaction(write=False) as session:
        candidate_pks(session, people[0], NOW, exclude_pk=0)  # warm the connection
        for subject in people:
            begin = time.perf_counter()
            candidate_pks(session, subject, NOW, exclude_pk=0)
            timings.append((time.perf_counter() - begin) * 1000)
    return timings


def time_creates(database: Database, count: int) -> list[float]:
    timings = []
    for _ in range(count):
        session = database.session(write=True)
        try:
            new = NewSignal(
                organisation="gemeente-enschede",
                organisation_kind="municipality",
                reference="BENCH",
                category="possible-victim",
                pseudonyms={"bsn": os.urandom(32), "name_dob": os.urandom(32)},
                pseudonym_key_id="psk-1",
                payload='{"ciphertext":"..."}',
                retention_days=365,
            )
            begin = time.perf_counter()
            create_signal(session, new, now=NOW)
            timings.append((time.perf_counter() - begin) * 1000)
        finally:
            session.rollback()
            session.close()
    return timings


def summary(timings: list[float]) -> str:
    ordered = sorted(timings)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"median {statistics.median(ordered):.3f} ms  p99 {p99:.3f} ms  (n={len(ordered)})"


def run(label: str, database: Database, sizes: list[int], samples: int) -> None:
    upgrade_to_head(database.engine)
    fill = fill_postgres if database.engine.dialect.name == "postgresql" else fill_sqlite
    stored = 0
    print(f"\n== {label}")
    for size in sizes:
        begin = time.perf_counter()
        fill(database, stored, size)
        loaded = time.perf_counter() - begin
        print(f"stored signals: {size:>9,}   (bulk insert of {size - stored:,}: {loaded:.1f} s)")
        stored = size
        misses = [{"bsn": os.urandom(32), "name_dob": os.urandom(32)} for _ in range(samples)]
        step = max(1, size // samples)
        hits = [stored_person(database, 1 + (i * step) % size) for i in range(samples)]
        print(f"  lookup, unknown person : {summary(time_lookups(database, misses))}")
        print(f"  lookup, stored person  : {summary(time_lookups(database, hits))}")
        print(f"  create_signal (no hit) : {summary(time_creates(database, samples // 4))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--postgres", default=os.environ.get("KETENPOORT_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            database = Database(f"sqlite:///{folder}/bench.db")
            try:
                run("SQLite (WAL, file)", database, sizes, args.samples)
            finally:
                database.dispose()
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in args.postgres else "?"
        url = f"{args.postgres}{separator}options={quote(f'-csearch_path={schema}')}"
        database = Database(url)
        try:
            run("PostgreSQL", database, sizes, args.samples)
        finally:
            database.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
