"""Run the app under gunicorn from the CLI (not Flask's development server)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gunicorn.app.base import BaseApplication

from gateway.config import Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
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
    }


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    # Build once in the parent so that a bad setting or missing key fails before forking.
    from gateway.app import create_app

    create_app(settings=replace(settings, background_jobs=False))  # the workers run the jobs
    options = gunicorn_options(host=host, port=port, workers=workers, threads=threads)
    _Gunicorn(settings, options).run()
