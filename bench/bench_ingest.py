"""Benchmark: signal ingest through the real stack against a bare Flask endpoint.

    .venv/bin/python bench/bench_ingest.py              # SQLite, and PostgreSQL when
    KETENPOORT_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/bench_ingest.py          # this is set (a fresh schema)

Both servers run under gunicorn with the same settings (`gateway.server.gunicorn_options`:
workers, gthread threads, timeouts), one after the other in the same run, on 127.0.0.1
(ports the OS hands out), with the per-client rate limits lifted:
- the gateway (`python -m gateway serve`): bearer token check (revocation, client
  standing), the client's rate-limit bucket, schema validation, policy, pseudonyms (one
  OPRF evaluation per match key of every linkage family, about 35 for a subject with a
  BSN), envelope check (the meldpunt copy is decrypted), the signal, its pseudonyms, its
  matching-outbox row and the audit entry in one transaction, the request log line; and
  in the background (the jobs process beside the workers) the matching of every signal
  (the outbox processor) and the audit sequencer, until nothing is left of either;
- a bare Flask app whose POST /v1/signals only reads and parses the same JSON.

The load generator is another process (`--load`): a thread pool of `requests` sessions
posting pre-built bodies (the JWE envelopes are encrypted and the access tokens fetched
before the clock starts). Every request of a run is a new signal; about a third of the
people are signalled by two partners, so matches are made as well. The figures are
printed; nothing is asserted. Knobs (options override the environment):
`--requests` / BENCH_REQUESTS (default 600), `--concurrency` / BENCH_CONCURRENCY (8),
BENCH_WORKERS (2), BENCH_THREADS (4), `--seconds` / BENCH_SECONDS (60, the bound of one
load run), `--rounds` (1: each round is a fresh gateway and bare server, one after the
other, so the two always share the machine's load of the moment), `--databases`
(sqlite,postgresql). PostgreSQL is KETENPOORT_BENCH_DATABASE_URL, else
KETENPOORT_TEST_POSTGRES_URL (a fresh schema per round, dropped after).

`--py-spy DIR` records the gateway's workers with py-spy (`--subprocesses`, needs
ptrace: root or CAP_SYS_PTRACE) during each gateway load run and writes the collapsed
stacks to DIR, with a summary of the top functions by share of samples
(`python bench/bench_ingest.py --hot DIR/FILE.txt` prints it again).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "600"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
WARMUP = 30
PARTNERS = {"police": "police", "zorg-twente": "care", "gemeente-hengelo": "municipality"}


# --- the bare endpoint (served in its own process) ----------------------------------


def bare_app() -> Any:
    """Flask, one route: read the body (same size limit), parse the JSON, answer 201."""
    from flask import Flask, Response, request

    app = Flask("bare")
    app.config["MAX_CONTENT_LENGTH"] = 256 * 1024

    @app.post("/v1/signals")
    def create() -> Response:
        data = json.loads(request.get_data())
        if not isinstance(data, dict):
            return Response("{}", 400, mimetype="application/json")
        body = json.dumps({"id": str(uuid.uuid4()), "reference": data.get("reference")})
        return Response(body, 201, mimetype="application/json")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status":"ok"}', 200, mimetype="application/json")

    return app


def serve_bare(port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    from gateway.server import gunicorn_options

    class Bare(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = gunicorn_options(
                host="127.0.0.1", port=port, workers=workers, threads=threads
            )
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return bare_app()

    Bare().run()


@contextmanager
def bare_server(folder: Path) -> Iterator[tuple[int, str]]:
    from tests.integration.live import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "bare.log").open("wb")
    command = [sys.executable, __file__, "--serve-bare", str(port), str(WORKERS), str(THREADS)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            raise RuntimeError("the bare server did not start; see bare.log")
        yield process.pid, url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        log.close()


# --- the load generator (its own process) -------------------------------------------


def percentile(ordered: list[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[max(0, min(len(ordered) - 1, round(len(ordered) * fraction) - 1))]


def load(spec_path: str) -> None:
    """POST every pre-built request with a thread pool; print one JSON line of results."""
    spec = json.loads(Path(spec_path).read_text())
    # `urls`: several processes of one gateway, taken in turn (a client-side balancer)
    urls, items = spec.get("urls") or [spec["url"]], spec["requests"]
    local = threading.local()
    deadline = [0.0]

    def post(numbered: tuple[int, dict[str, Any]]) -> tuple[int, float]:
        n, item = numbered
        if time.perf_counter() > deadline[0]:
            return -1, 0.0
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        response = session.post(
            urls[n % len(urls)], data=item["body"].encode(), headers=item["headers"]
        )
        return response.status_code, time.perf_counter() - started

    warmup = spec["warmup"]
    with ThreadPoolExecutor(spec["concurrency"]) as pool:
        deadline[0] = time.perf_counter() + spec["seconds"]
        list(pool.map(post, enumerate(items[:warmup])))  # connections, caches, JIT of paths
        deadline[0] = time.perf_counter() + spec["seconds"]
        started = time.perf_counter()
        results = list(pool.map(post, enumerate(items[warmup:])))
        elapsed = time.perf_counter() - started
    done = [(status, seconds) for status, seconds in results if status != -1]
    latencies = sorted(seconds for _, seconds in done)
    print(
        json.dumps(
            {
                "count": len(done),
                "seconds": elapsed,
                "statuses": dict(Counter(str(status) for status, _ in done)),
                "p50": statistics.median(latencies),
                "p95": percentile(latencies, 0.95),
                "p99": percentile(latencies, 0.99),
            }
        )
    )


def run_load(url: str | list[str], items: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    spec_path = folder / f"load-{uuid.uuid4().hex[:8]}.json"
    spec = {
        "urls": [url] if isinstance(url, str) else url,
        "requests": items,
        "concurrency": CONCURRENCY,
        "seconds": SECONDS,
        "warmup": WARMUP,
    }
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, __file__, "--load", str(spec_path)],
        capture_output=True,
        check=True,
        timeout=SECONDS * 2 + 60,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


# --- CPU time: what a request costs whatever else the machine runs -------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its children (the gunicorn workers), from
    /proc (Linux); 0.0 elsewhere."""
    total = 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    for one in [str(pid), *children]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measured(pid: int, url: str, items: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """`run_load`, with the server's CPU milliseconds per request."""
    before = cpu_seconds(pid)
    result = run_load(url, items, folder)
    result["cpu_ms"] = (cpu_seconds(pid) - before) * 1000 / max(1, result["count"] + WARMUP)
    return result


# --- py-spy: where the gateway's workers spend their time --------------------------


@contextmanager
def py_spy(pid: int, out: Path | None) -> Iterator[None]:
    """Sample `pid` and its subprocesses (the gunicorn workers) while the body runs."""
    if out is None:
        yield
        return
    found = Path(sys.executable).with_name("py-spy")
    command = [
        str(found) if found.exists() else "py-spy",
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--rate",
        "200",
    ]
    command += ["--format", "raw", "--output", str(out), "--nonblocking"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attached before the first request
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
        if out.exists():
            print(hot_spots(out))
        else:
            error = spy.stderr.read().decode(errors="replace") if spy.stderr else ""
            print(f"  py-spy wrote nothing: {error.strip()[-300:]}")


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    name, _, where = frame.partition(" (")
    path = where.split(":")[0]
    for marker in ("/gateway/", "/site-packages/", "/lib/python"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def hot_spots(collapsed: Path, top: int = 25) -> str:
    """The functions with the largest inclusive share of the samples (py-spy raw)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")[1:]]  # [0] is the process
        total += count
        for name in set(frames):
            inclusive[name] += count
        if frames:
            own[frames[-1]] += count
    if not total:
        return "  (no samples)"
    lines = [f"  py-spy: {total} samples in {collapsed.name}; inclusive share:"]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    lines.append("  own time (leaf) share:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in own.most_common(top // 2)]
    return "\n".join(lines)


# --- the run ------------------------------------------------------------------------


def database_urls(folder: Path, databases: list[str]) -> list[tuple[str, str, str | None]]:
    from sqlalchemy import create_engine, text

    urls: list[tuple[str, str, str | None]] = []
    if "sqlite" in databases:
        urls.append(("SQLite", f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}", None))
    base = postgres_base()
    if "postgresql" in databases and base:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with create_engine(base, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        urls.append(("PostgreSQL", f"{base}?options={quote(f'-csearch_path={schema}')}", schema))
    return urls


def postgres_base() -> str | None:
    return os.environ.get("KETENPOORT_BENCH_DATABASE_URL") or os.environ.get(
        "KETENPOORT_TEST_POSTGRES_URL"
    )


def drop_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    base = postgres_base()
    assert base is not None
    with create_engine(base, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def prebuilt(gateway: Any) -> list[dict[str, Any]]:
    """Signal requests with bearer tokens and encrypted envelopes, ready to send."""
    from gateway.crypto.jwe import encrypt_for_recipients
    from gateway.demo.people import people

    clients = {org: gateway.register(org, kind, dpop=False) for org, kind in PARTNERS.items()}
    headers = {
        org: {
            "Authorization": f"Bearer {client.access_token()}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        for org, client in clients.items()
    }
    keys = clients["police"].recipient_keys("possible-victim")
    rng = random.Random(6)
    total = REQUESTS + WARMUP
    persons = people(total)
    orgs = list(PARTNERS)
    items: list[dict[str, Any]] = []
    for n in range(total):
        # about a third of the signals are about a person another partner signalled
        person = persons[n - 1] if n % 3 == 2 else persons[n]
        org = orgs[(n + (1 if n % 3 == 2 else 0)) % len(orgs)]
        body = {
            "reference": f"BENCH-{n:05d}",
            "category": "possible-victim",
            "subject": person.subject(with_bsn=rng.random() < 0.8),
            "payload": encrypt_for_recipients(
                json.dumps({"summary": f"signaal {n}", "details": "x" * 600}).encode(), keys
            ),
        }
        items.append({"headers": headers[org], "body": json.dumps(body)})
    return items


def report(name: str, result: dict[str, Any]) -> float:
    throughput = result["count"] / result["seconds"]
    print(
        f"  {name:<28} {throughput:8.1f} req/s   p50 {result['p50'] * 1000:6.1f} ms   "
        f"p95 {result['p95'] * 1000:6.1f} ms   p99 {result['p99'] * 1000:6.1f} ms   "
        f"n={result['count']}   {result['statuses']}",
        flush=True,
    )
    return throughput


def one_round(
    name: str, url: str, schema: str | None, folder: Path, spy: Path | None
) -> tuple[float, float]:
    """A fresh gateway on `url` under load, then the bare server with the same bodies."""
    from tests.integration.live import live_gateway

    try:
        with live_gateway(
            url,
            folder / f"{name}-{uuid.uuid4().hex[:6]}",
            workers=WORKERS,
            threads=THREADS,
            log_level="WARNING",
        ) as gateway:
            items = prebuilt(gateway)
            started_cpu = cpu_seconds(gateway.process.pid)
            with py_spy(gateway.process.pid, spy):
                full = measured(gateway.process.pid, f"{gateway.issuer}/v1/signals", items, folder)
            waiting = backlog(url)
            drained_in = drain(url)
            all_cpu_ms = (cpu_seconds(gateway.process.pid) - started_cpu) * 1000
            full["all_cpu_ms"] = all_cpu_ms / max(1, full["count"] + WARMUP)
        with bare_server(folder) as (bare_pid, bare_url):
            bare = measured(bare_pid, f"{bare_url}/v1/signals", items, folder)
    finally:
        if schema:
            drop_schema(schema)
    gateway_rate = report("gateway POST /v1/signals", full)
    bare_rate = report("bare Flask (parse JSON only)", bare)
    print(f"  ratio gateway / bare: {gateway_rate / bare_rate:.2f} (goal >= 0.5)", flush=True)
    if full["cpu_ms"] > 0:
        print(
            f"  server CPU per request: gateway {full['cpu_ms']:.1f} ms, "
            f"bare {bare['cpu_ms']:.1f} ms (the gateway's background matching and sequencing "
            f"during the run included); CPU ratio bare / gateway "
            f"{bare['cpu_ms'] / full['cpu_ms']:.2f}",
            flush=True,
        )
    print(
        f"  left waiting when the load stopped (background work not in the CPU figure): "
        f"{waiting[0]} signals to match, {waiting[1]} audit entries to sequence; "
        + (
            f"all done {drained_in:.1f} s later, gateway CPU per request with all of it "
            f"{full['all_cpu_ms']:.1f} ms"
            if drained_in is not None
            else f"not all done {DRAIN_SECONDS:.0f} s later"
        ),
        flush=True,
    )
    return gateway_rate, bare_rate


#: How long the background work may take to catch up after the load.
DRAIN_SECONDS = 180.0


def drain(url: str) -> float | None:
    """Seconds until nothing waits to be matched or sequenced (None: not within
    `DRAIN_SECONDS`), so that the CPU figure can hold all the work of the run."""
    started = time.monotonic()
    while any(backlog(url)):
        if time.monotonic() - started > DRAIN_SECONDS:
            return None
        time.sleep(0.2)
    return time.monotonic() - started


def backlog(url: str) -> tuple[int, int]:
    """Matching outbox rows and unsequenced audit entries the moment the load stopped:
    the gateway's CPU figure holds only the background work done before then."""
    from gateway.audit.sequencer import sequencing_backlog
    from gateway.db import Database
    from gateway.matching.processor import outbox_backlog

    db = Database(url)
    try:
        return outbox_backlog(db).waiting, sequencing_backlog(db).waiting
    finally:
        db.dispose()


def main() -> None:
    global REQUESTS, CONCURRENCY, SECONDS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--py-spy", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    REQUESTS, CONCURRENCY, SECONDS = args.requests, args.concurrency, args.seconds
    databases = [d.strip().lower() for d in args.databases.split(",") if d.strip()]

    # measure the stack, not the rate limiter's 429s (the gateway inherits this env)
    os.environ.setdefault("KETENPOORT_RATE_LIMIT_PER_CLIENT", "1000000/s burst 1000000")
    folder = Path(tempfile.mkdtemp(prefix="ketenpoort-bench-ingest-"))
    if args.py_spy is not None:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    print(
        f"ingest: {REQUESTS} signals after {WARMUP} warm-up, {CONCURRENCY} concurrent clients; "
        f"gunicorn {WORKERS} workers x {THREADS} threads; {os.cpu_count()} CPUs shared with "
        f"the load generator (and whatever else runs); load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    if "postgresql" in databases and not postgres_base():
        print("PostgreSQL: skipped (set KETENPOORT_BENCH_DATABASE_URL)")
    ratios: dict[str, list[float]] = {}
    for round_ in range(1, args.rounds + 1):
        for name, url, schema in database_urls(folder, databases):
            print(f"{name} (round {round_}/{args.rounds}):", flush=True)
            spy = args.py_spy / f"{name.lower()}-{round_}.txt" if args.py_spy else None
            gateway_rate, bare_rate = one_round(name, url, schema, folder, spy)
            ratios.setdefault(name, []).append(gateway_rate / bare_rate)
    if args.rounds > 1:
        for name, values in ratios.items():
            listed = ", ".join(f"{v:.2f}" for v in values)
            print(f"{name}: ratio per round {listed}; median {statistics.median(values):.2f}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        load(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--hot":
        print(hot_spots(Path(sys.argv[2])))
    else:
        main()
