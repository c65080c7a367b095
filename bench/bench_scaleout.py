"""Benchmark: two gateway processes on one PostgreSQL against one, under the same load.

    KETENPOORT_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/bench_scaleout.py [--requests 400] [--workers 1] [--rounds 1]

Each setup gets a fresh PostgreSQL schema: `live_cluster` (tests/integration/live.py)
initialises it once (migrations, keys) and starts `ketenpoort serve` processes with
`--workers` gunicorn workers each, every process with its own background jobs
(matching outbox, audit sequencer), behind one public address, as the README's
deployment describes. The load process is `bench_ingest.py`'s (the same pre-built
signals, 8 concurrent clients), sending each request to the next process in turn (a
client-side balancer). Per setup it prints req/s, p50/p95/p99 and the servers' CPU
milliseconds per request, then the ratio two processes / one.

The machine's cores bound the ratio: with 2 cores shared by the load generator and
PostgreSQL, a second process can only use what the first leaves idle (with
`--workers 1`, one process can use one core at most). The figures say what this
machine allows, not what a 4-core host would give. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest  # noqa: E402


def one_setup(processes: int, workers: int, folder: Path) -> dict[str, Any]:
    """`processes` gateway processes on a fresh schema, under load; the result."""
    from tests.integration.live import live_cluster

    [(_, url, schema)] = bench_ingest.database_urls(folder, ["postgresql"])
    try:
        with live_cluster(
            url,
            folder / f"p{processes}-{uuid.uuid4().hex[:6]}",
            processes=processes,
            workers=workers,
            threads=bench_ingest.THREADS,
        ) as cluster:
            items = bench_ingest.prebuilt(cluster)
            pids = [g.process.pid for g in cluster.gateways]
            before = sum(bench_ingest.cpu_seconds(pid) for pid in pids)
            result = bench_ingest.run_load([f"{u}/v1/signals" for u in cluster.urls], items, folder)
            spent = sum(bench_ingest.cpu_seconds(pid) for pid in pids) - before
            result["cpu_ms"] = spent * 1000 / max(1, result["count"] + bench_ingest.WARMUP)
    finally:
        assert schema is not None
        bench_ingest.drop_schema(schema)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per process")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if not bench_ingest.postgres_base():
        sys.exit("needs PostgreSQL: set KETENPOORT_BENCH_DATABASE_URL")
    bench_ingest.REQUESTS = args.requests
    os.environ.setdefault("KETENPOORT_RATE_LIMIT_PER_CLIENT", "1000000/s burst 1000000")
    folder = Path(tempfile.mkdtemp(prefix="ketenpoort-bench-scaleout-"))
    print(
        f"scale-out: {args.requests} signals after {bench_ingest.WARMUP} warm-up, "
        f"{bench_ingest.CONCURRENCY} concurrent clients; each process {args.workers} "
        f"worker(s) x {bench_ingest.THREADS} threads; {os.cpu_count()} CPUs shared with "
        f"the load generator and PostgreSQL; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    for round_ in range(1, args.rounds + 1):
        rates = {}
        for processes in (1, 2):
            result = one_setup(processes, args.workers, folder)
            rates[processes] = bench_ingest.report(f"{processes} process(es)", result)
            print(f"    server CPU per request {result['cpu_ms']:.1f} ms", flush=True)
        print(
            f"  round {round_}: two processes / one = {rates[2] / rates[1]:.2f} "
            f"(goal >= 1.6 on 4 cores; load now {os.getloadavg()[0]:.1f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
