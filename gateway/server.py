"""Run the app under gunicorn from the CLI (not Flask's development server)."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from dataclasses import replace
from typing import Any

from gunicorn.app.base import BaseApplication

from gateway.config import Settings
from gateway.errors import OperatorError


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if key == "control_socket_disable" and key not in self.cfg.settings:
                continue  # gunicorn before 25.1 has no control socket to disable
            self.cfg.set(key, value)

    def load(self) -> Any:
        from gateway.app import create_app

        return create_app(settings=self._settings)


def gunicorn_options(*, host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    """The production server settings (also used by bench/bench_ingest.py's bare app)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "accesslog": None,  # the app logs each request itself, redacted
        "errorlog": "-",
        "timeout": 30,
        "graceful_timeout": 10,
        "limit_request_line": 8190,
        "forwarded_allow_ips": "127.0.0.1",
        # gunicorn 25.1+ opens an admin socket at one fixed path per user
        # ($HOME/.gunicorn/gunicorn.ctl): two instances would fight over it, and we
        # administer through signals and the orchestrator, not through it.
        "control_socket_disable": True,
    }


class PortInUse(OperatorError):
    """The port is taken: said in one line before anything starts."""


def check_port_free(host: str, port: int) -> None:
    """Refuse a port in use before touching anything: gunicorn would retry for seconds
    with raw errors, and another server there would answer our readiness checks."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError:
            raise PortInUse(
                f"port {port} on {host} is in use; stop what serves there or choose "
                "another with --port"
            ) from None


def _worker_exit(_server: Any, worker: Any) -> None:
    """Gunicorn hook: a dead worker's live gauges leave the multiprocess metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _close_worker_app(_server: Any, worker: Any) -> None:
    """Gunicorn hook, in a worker that is exiting: its app's background jobs end their
    turn before the process does (a daemon thread would be cut off mid-turn)."""
    from flask import Flask

    from gateway.services import close_app

    app = getattr(worker, "wsgi", None)  # not there when the app failed to load
    if isinstance(app, Flask):
        close_app(app)


def share_metrics_between_workers() -> None:
    """Prometheus multiprocess mode, so every scrape sums all workers.

    Without it each scrape answers from whichever worker took it: counters jump up and
    down. prometheus_client picks its storage when first imported, so this runs before
    the app (and prometheus_client) is imported; an operator's own folder is kept.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    folder = tempfile.mkdtemp(prefix="ketenpoort-metrics-")  # 0700
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    if not os.environ.get("LISTEN_FDS"):  # with socket activation the port is ours already
        check_port_free(host, port)
    share_metrics_between_workers()
    # Build once in the parent so that a bad setting or missing key fails before forking.
    from gateway.app import create_app

    create_app(settings=replace(settings, background_jobs=False))  # the workers run the jobs
    options = gunicorn_options(host=host, port=port, workers=workers, threads=threads)
    _Gunicorn(
        settings, {**options, "child_exit": _worker_exit, "worker_exit": _close_worker_app}
    ).run()
