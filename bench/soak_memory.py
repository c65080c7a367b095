"""Soak memory probe: the soak's traffic mix against the gateway served in this very
process, with `tracemalloc` snapshots every window, to tell a leak from caches filling.
Figures are printed; nothing is asserted.

    PYTHONPATH=$PWD .venv/bin/python bench/soak_memory.py     # SOAK_MINUTES (default 8)

The app is `create_app` (background jobs on, as in a gunicorn worker) behind werkzeug's
WSGI server with a fixed pool of SOAK_THREADS request threads (gunicorn's gthread keeps
its threads too, so per-thread state is not mistaken for growth). The partner threads
are bench/soak.py's; their own allocations (gateway/client, requests, the bench) are
left out of the snapshots. Each window prints the process RSS, the traced total, and
the allocation sites that grew most since the first snapshot (taken after minute 1).
SOAK_TRACE_FRAMES=0 skips tracemalloc (its snapshots take a minute and stall the
traffic) and prints only the cheap figures: RSS before and after `malloc_trim`,
SQLite's own heap, Python's allocated blocks and the object types that grew.

What it showed (November 2026, SQLite, ~1,800 calls a minute, machine loaded by CI):
no server-side Python structure grows without bound; the object counts that grow are
the partner threads' receipts (client side) and SQLAlchemy's/sqlite3's statement
caches, which stop after a few minutes. SQLite's heap stays at 4-10 MB; of the RSS
growth, a large and growing share is free memory glibc keeps (malloc_trim gives back
8-18 MB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SOAK_MINUTES", "8")
MINUTES = float(os.environ["SOAK_MINUTES"])
WINDOW = float(os.environ.get("SOAK_WINDOW_SECONDS", "60"))
#: Frames per trace; 0: no tracemalloc (traffic at full speed, only the cheap figures).
FRAMES = int(os.environ.get("SOAK_TRACE_FRAMES", "1"))
TOP = int(os.environ.get("SOAK_TOP", "12"))

# partners well within their limits, as in bench/soak.py
os.environ.setdefault("KETENPOORT_RATE_LIMIT_PER_CLIENT", "1000000/s burst 1000000")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="soak-metrics-"))

_CLIENT_SIDE = ("*/gateway/client/*", "*/bench/*", "*/requests/*", "*/urllib3/*")


def _server_side(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    """Without the partner threads' own allocations (a cheap filter: the site only)."""
    filters = [tracemalloc.Filter(False, pattern) for pattern in _CLIENT_SIDE]
    filters.append(tracemalloc.Filter(False, tracemalloc.__file__))
    return snapshot.filter_traces(filters)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _sqlite_heap_mb() -> tuple[float, float]:
    """SQLite's own heap (page caches, prepared statements of every connection) and its
    high-water mark: malloc'd outside Python, so invisible to tracemalloc."""
    library = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    library.sqlite3_memory_used.restype = ctypes.c_int64
    library.sqlite3_memory_highwater.restype = ctypes.c_int64
    return library.sqlite3_memory_used() / 2**20, library.sqlite3_memory_highwater(0) / 2**20


def _trimmed_rss_mb() -> float:
    """RSS after glibc hands its free pages back (malloc_trim): what is left is in use;
    the difference was freed memory the allocator kept (arenas, fragmentation)."""
    ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
    return _rss_mb()


def _types() -> Counter[str]:
    return Counter(type(o).__name__ for o in gc.get_objects())


def _cheap_figures(app: Any, types: Counter[str] | None) -> str:
    from gateway.services import services_of

    used, peak = _sqlite_heap_mb()
    pool = services_of(app).db.engine.pool
    rss = _rss_mb()
    grown = ""
    if types is not None:
        diff = _types()
        diff.subtract(types)
        grown = ", ".join(f"{name} {n:+d}" for name, n in diff.most_common(6) if n > 0)
    return (
        f"rss {rss:.1f} MB (after malloc_trim {_trimmed_rss_mb():.1f}), "
        f"sqlite heap {used:.1f} MB (peak {peak:.1f}), "
        f"python blocks {sys.getallocatedblocks()}, gc objects {len(gc.get_objects())}, "
        f"pool: {pool.status()}\n    gc types grown since minute 1: {grown}"
    )


def _serve(app: Any, port: int, threads: int) -> Any:
    from werkzeug.serving import BaseWSGIServer

    class PooledServer(BaseWSGIServer):
        """A fixed pool of request threads, like gunicorn's gthread worker."""

        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="request")

        def process_request(self, request: Any, client_address: Any) -> None:
            self.pool.submit(self._handle, request, client_address)

        def _handle(self, request: Any, client_address: Any) -> None:
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    server = PooledServer("127.0.0.1", port, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _report(index: int, base: tracemalloc.Snapshot | None, now: tracemalloc.Snapshot) -> None:
    traced = sum(s.size for s in now.statistics("filename")) / 2**20
    print(f"--- minute {index + 1}: rss {_rss_mb():.1f} MB, traced (server side) {traced:.1f} MB")
    if base is None:
        return
    for stat in now.compare_to(base, "lineno")[:TOP]:
        frame = stat.traceback[0]
        print(
            f"  {stat.size_diff / 1024:+9.1f} kB {stat.count_diff:+7d} blocks "
            f"(now {stat.size / 1024:8.1f} kB)  {frame.filename}:{frame.lineno}"
        )
    print("  top growing tracebacks:")
    for stat in now.compare_to(base, "traceback")[:3]:
        print(f"  {stat.size_diff / 1024:+9.1f} kB {stat.count_diff:+7d} blocks")
        for line in stat.traceback.format(limit=FRAMES)[-2 * FRAMES :]:
            print(f"      {line}")
    sys.stdout.flush()


def main() -> None:
    from bench.soak import Recorder, enrol_partners, partner_loop
    from gateway.app import create_app
    from gateway.bootstrap import initialise
    from tests.integration.live import LiveGateway, free_port, instance_settings

    folder = Path(tempfile.mkdtemp(prefix="ketenpoort-soak-memory-"))
    port = free_port()
    settings = instance_settings(
        f"sqlite:///{folder / 'soak.db'}",
        folder / "keys",
        f"http://127.0.0.1:{port}",
        log_level="WARNING",
    )
    initialise(settings)
    if FRAMES:
        tracemalloc.start(FRAMES)
    app = create_app(settings=settings)
    server = _serve(app, port, int(os.environ.get("SOAK_THREADS", "4")))
    gateway = LiveGateway(settings.issuer, settings, None, folder / "log")  # type: ignore[arg-type]
    clients = enrol_partners(gateway)
    started = time.monotonic()
    recorder = Recorder(started)
    stop = threading.Event()
    threads = [
        threading.Thread(target=partner_loop, args=(c, m, recorder, stop, i))
        for i, (c, m) in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    base: tracemalloc.Snapshot | None = None
    types: Counter[str] | None = None
    try:
        for index in range(int(MINUTES * 60 // WINDOW)):
            time.sleep(max(0.0, started + (index + 1) * WINDOW - time.monotonic()))
            calls = sum(len(v) for v in recorder.windows[index].latencies.values())
            errors = sum(recorder.windows[index].errors.values())
            figures = _cheap_figures(app, types)
            print(f"=== minute {index + 1}: {calls} calls, {errors} errors; {figures}", flush=True)
            types = types or _types()
            if not FRAMES:
                continue
            begun = time.monotonic()
            snapshot = _server_side(tracemalloc.take_snapshot())
            _report(index, base, snapshot)
            print(f"  (snapshot and diff took {time.monotonic() - begun:.0f} s)", flush=True)
            if base is None:
                base = snapshot
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        server.shutdown()


if __name__ == "__main__":
    main()
