"""Audit-log benchmarks; prints figures (never asserts them).

1. Sequenced entries per second with 8 concurrent writer processes (one transaction per
   entry: once in an ORM session, as actions write theirs, once in a Core transaction of
   its own, as reads and refusals are audited) while the sequencer runs as in production,
   on SQLite and (if KETENPOORT_BENCH_POSTGRES_URL or KETENPOORT_TEST_POSTGRES_URL is set)
   PostgreSQL; then the sequencer alone over a backlog.
2. Inclusion and consistency proof time from stored nodes at 10^6 leaves (a synthetic
   tree, written by the database itself: proofs read nodes, never entries).
3. A real log of --entries entries (bulk-inserted, then sequenced): proofs on it and
   the full verification rate (entries per second).

Wall-clock figures on a shared machine mostly measure waiting for a CPU: each part also
prints its own CPU per entry (or proof) and the load average.

Usage: .venv/bin/python bench/bench_audit.py [--entries 1000000] [--writes 4000]
       [--proof-size 1000000] [--only sequencer|proofs|log]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text

from gateway.actors import Actor
from gateway.audit import AuditEvent, record_event
from gateway.audit.entries import TraceFields, build_entry, canonical_bytes
from gateway.audit.models import AuditEntryRow
from gateway.audit.rfc9162 import leaf_hash
from gateway.audit.sequencer import (
    MAX_BATCH,
    CheckpointSigner,
    SequencerState,
    pause_after,
    sequence_batch,
    sequence_pending,
)
from gateway.audit.service import write_entry
from gateway.audit.tree import (
    stored_consistency_proof,
    stored_inclusion_proof,
)
from gateway.audit.verify import verify_log
from gateway.audit.verify_rows import database_source
from gateway.crypto import generate_ed25519_jwk
from gateway.db import Database
from gateway.migrate import upgrade_to_head

ACTOR = Actor(type="client", id="bench", organisation="police")


def make_signer() -> CheckpointSigner:
    private, public = generate_ed25519_jwk()
    return CheckpointSigner("bench.example/audit", public["kid"], private)


def fresh_database(kind: str, pg_url: str | None) -> tuple[str, Any]:
    if kind == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
        db = Database(url)
        upgrade_to_head(db.engine)
        db.dispose()
        return url, lambda: None
    assert pg_url is not None
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in pg_url else "?"
    url = f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    db = Database(url)
    upgrade_to_head(db.engine)
    db.dispose()

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return url, drop


#: How the writers write: each entry in an action's ORM transaction (`record_event`, as
#: every action does), or in a transaction of its own (`write_entry`, as the audit of a
#: read or of a refusal is written).
WRITERS = {"in an action's transaction": "action", "in a transaction of its own": "own"}


def _writer(url: str, count: int, worker: int, how: str) -> None:
    db = Database(url)
    actor = Actor(type="client", id=f"writer-{worker}", organisation="police")
    for i in range(count):
        event = AuditEvent(action="bench.write", outcome="success", actor=actor, detail={"i": i})
        if how == "own":
            write_entry(db, event, datetime.now(UTC))
            continue
        with db.transaction() as session:
            record_event(session, event)
    db.dispose()


def _sequencer(url: str, signer: dict[str, Any], total: int, result: Any, cpu: Any) -> None:
    """The production loop (`BackgroundSequencer`): a batch, again at once when it was
    full, else a wait the shorter the fuller it was (`pause_after`)."""
    db = Database(url)
    sign = CheckpointSigner(**signer)
    state = SequencerState()
    done = 0
    while done < total:
        batch = sequence_batch(db, sign, state=state)
        count = batch.count if batch is not None else 0
        if count < MAX_BATCH:
            time.sleep(pause_after(count))
        done += count
    result.value = time.perf_counter()
    cpu.value = time.process_time()
    db.dispose()


def bench_concurrent(kind: str, pg_url: str | None, writes: int) -> None:
    for how, writer in WRITERS.items():
        bench_writers(kind, pg_url, writes, how, writer)
    bench_backlog(kind, pg_url)


def bench_writers(kind: str, pg_url: str | None, writes: int, how: str, writer: str) -> None:
    url, drop = fresh_database(kind, pg_url)
    signer = make_signer()
    ctx = multiprocessing.get_context("fork")
    per = writes // 8
    finished, seq_cpu = ctx.Value("d", 0.0), ctx.Value("d", 0.0)
    fields = {"origin": signer.origin, "kid": signer.kid, "private_jwk": signer.private_jwk}
    seq = ctx.Process(target=_sequencer, args=(url, fields, per * 8, finished, seq_cpu))
    writers = [ctx.Process(target=_writer, args=(url, per, w, writer)) for w in range(8)]
    start = time.perf_counter()
    seq.start()
    for p in writers:
        p.start()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for p in writers:
        p.join()
    written = time.perf_counter() - start
    seq.join()
    total = finished.value - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    writer_cpu = (
        children.ru_utime + children.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    ) - seq_cpu.value
    db = Database(url)
    with db.session() as session:
        seqs = session.execute(select(func.count(), func.max(AuditEntryRow.seq))).one()
    db.dispose()
    contiguous = seqs[0] == per * 8 and seqs[1] == per * 8 - 1
    print(
        f"[{kind}] 8 writers x {per} entries, each {how}: "
        f"committed {per * 8 / written:,.0f} entries/s; "
        f"all sequenced after {total:.2f} s = {per * 8 / total:,.0f} sequenced entries/s "
        f"(contiguous: {contiguous})"
    )
    print(
        f"[{kind}]   CPU per entry: writers {writer_cpu / (per * 8) * 1e6:,.0f} us "
        f"(all 8 together), sequencer {seq_cpu.value / (per * 8) * 1e6:,.0f} us; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    drop()


def bench_backlog(kind: str, pg_url: str | None) -> None:
    """The sequencer alone, over a backlog: what it can absorb per second."""
    url, drop = fresh_database(kind, pg_url)
    signer = make_signer()
    _bulk_entries(url, 20_000)
    db = Database(url)
    t0, c0 = time.perf_counter(), time.process_time()
    count = sequence_pending(db, signer)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    db.dispose()
    print(
        f"[{kind}] sequencer over a backlog of {count:,}: {count / dt:,.0f} entries/s "
        f"(batches of {MAX_BATCH}; its own CPU {cpu / count * 1e6:.0f} us/entry)"
    )
    drop()


def _bulk_entries(url: str, count: int) -> None:
    """Insert `count` real entries fast (bench setup only: one bulk insert per chunk)."""
    db = Database(url)
    now = datetime.now(UTC)
    chunk = 10_000
    for start in range(0, count, chunk):
        rows = []
        for i in range(start, min(count, start + chunk)):
            entry = build_entry(
                AuditEvent(action="bench.bulk", outcome="success", actor=ACTOR, detail={"i": i}),
                TraceFields(uuid.uuid4().hex, uuid.uuid4().hex[:16], None, None),
                now,
            )
            data = canonical_bytes(entry)
            rows.append(
                {
                    "leaf_hash": leaf_hash(data),
                    "data": data,
                    "action": "bench.bulk",
                    "outcome": "success",
                    "actor_id": ACTOR.id,
                    "actor_organisation": ACTOR.organisation,
                    "created_at": now,
                }
            )
        with db.transaction() as session:
            session.execute(insert(AuditEntryRow.__table__), rows)
    db.dispose()


def _synthetic_tree(url: str, size: int) -> None:
    """Every complete Merkle node of a tree of `size` leaves, with made-up hashes, written
    by the database itself (bench setup only: proofs read nodes and never check them,
    so their timing at 10^6 needs no 10^6 real entries)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for level in range(size.bit_length()):
            count = size >> level
            if not count:
                break
            if engine.dialect.name == "postgresql":
                conn.execute(
                    text(
                        "INSERT INTO audit_tree_nodes (level, idx, hash) SELECT :level, i, "
                        "sha256(int8send(i) || int2send(CAST(:level AS smallint))) "
                        "FROM generate_series(0, :count - 1) AS i"
                    ),
                    {"level": level, "count": count},
                )
            else:
                conn.execute(
                    text(
                        "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s "
                        "WHERE i + 1 < :count) INSERT INTO audit_tree_nodes (level, idx, hash) "
                        "SELECT :level, i, randomblob(32) FROM s"
                    ),
                    {"level": level, "count": count},
                )
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE audit_tree_nodes"))
    engine.dispose()


def bench_proofs(kind: str, pg_url: str | None, size: int, samples: int = 1000) -> None:
    """Inclusion and consistency proofs from stored nodes at `size`: wall p50/p99 and the
    proof's own CPU in this process (the rest is the database and, on a shared machine,
    waiting for a CPU)."""
    url, drop = fresh_database(kind, pg_url)
    t0 = time.perf_counter()
    _synthetic_tree(url, size)
    took = time.perf_counter() - t0
    print(f"[{kind}] a tree of {size:,} leaves (synthetic nodes) in {took:.1f} s")
    db = Database(url)
    _time_proofs(kind, db, size, samples)
    db.dispose()
    drop()


def _time_proofs(kind: str, db: Database, size: int, samples: int) -> None:
    """Wall p50/p99 of each kind of proof, and the p99 of this thread's CPU per proof: on
    a shared machine a wall p99 of a few ms is mostly a proof preempted by another
    process (its CPU stays a fraction of a millisecond), which the CPU p99 shows."""
    rng = random.Random(7)
    incl, cons, cpus = [], [], []
    cpu = time.process_time()
    with db.session() as session:
        for _ in range(samples):
            index = rng.randrange(size)
            tree = rng.randrange(index + 1, size + 1)
            s, c = time.perf_counter(), time.thread_time()
            stored_inclusion_proof(session, index, tree)
            incl.append(time.perf_counter() - s)
            cpus.append(time.thread_time() - c)
            first = rng.randrange(1, size)
            s, c = time.perf_counter(), time.thread_time()
            stored_consistency_proof(session, first, size)
            cons.append(time.perf_counter() - s)
            cpus.append(time.thread_time() - c)
    cpu = (time.process_time() - cpu) / (2 * samples)
    p99 = int(samples * 0.99) - 1
    incl.sort()
    cons.sort()
    cpus.sort()
    print(
        f"[{kind}] proofs at {size:,}: inclusion median {statistics.median(incl) * 1000:.2f} ms "
        f"(p99 {incl[p99] * 1000:.2f} ms), consistency median "
        f"{statistics.median(cons) * 1000:.2f} ms (p99 {cons[p99] * 1000:.2f} ms); "
        f"this process's CPU {cpu * 1000:.2f} ms per proof (p99 "
        f"{cpus[int(len(cpus) * 0.99) - 1] * 1000:.2f} ms); "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def bench_million(kind: str, pg_url: str | None, entries: int) -> None:
    url, drop = fresh_database(kind, pg_url)
    signer = make_signer()
    t0 = time.perf_counter()
    _bulk_entries(url, entries)
    t1 = time.perf_counter()
    db = Database(url)
    sequence_pending(db, signer, max_batch=20_000)
    t2 = time.perf_counter()
    print(
        f"[{kind}] built a log of {entries:,} entries "
        f"(insert {t1 - t0:.1f} s, sequence {t2 - t1:.1f} s)"
    )
    if kind == "postgresql":
        # What autovacuum does soon after a bulk load (the sequencer's UPDATE leaves a
        # dead version of every row): without it the first scan sets the hint bits of
        # every page, writing the whole table once — a cost of the bench's fresh load,
        # not of verifying a log that has been in use.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) audit_entries"))
            conn.execute(text("VACUUM (ANALYZE) audit_tree_nodes"))
    _time_proofs(kind, db, entries, 300)
    db.dispose()
    rows, notes, close = database_source(url)
    cpu = time.process_time()
    report = verify_log(rows, notes, [signer.verifier_key])
    cpu = time.process_time() - cpu
    close()
    print(
        f"[{kind}] full verification of {report.entries:,} entries and "
        f"{report.checkpoints} checkpoints: {report.seconds:.1f} s = "
        f"{report.entries / report.seconds:,.0f} entries/s (ok: {report.ok}); the "
        f"verifier's own CPU {cpu / report.entries * 1e6:.2f} us/entry = "
        f"{report.entries / cpu:,.0f} entries per CPU-second; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    drop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--writes", type=int, default=4_000)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--proof-size", type=int, default=1_000_000)
    parser.add_argument(
        "--only", choices=("sequencer", "proofs", "log"), help="run one part (default: all)"
    )
    args = parser.parse_args()
    pg_url = os.environ.get("KETENPOORT_BENCH_POSTGRES_URL") or os.environ.get(
        "KETENPOORT_TEST_POSTGRES_URL"
    )
    kinds = ["sqlite", "postgresql"] if pg_url else ["sqlite"]
    print(f"audit benchmarks on {os.cpu_count()} CPU(s)")
    for kind in kinds:
        if args.only in (None, "sequencer"):
            bench_concurrent(kind, pg_url, args.writes)
        if args.only in (None, "proofs"):
            bench_proofs(kind, pg_url, args.proof_size)
        if args.only in (None, "log") and not args.skip_million:
            bench_million(kind, pg_url, args.entries)


if __name__ == "__main__":
    main()
