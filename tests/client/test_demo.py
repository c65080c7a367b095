"""`ketenpoort demo --no-serve` runs end to end, as a newcomer runs it: a fresh instance,
partners over HTTP, a summary with cross-partner matches and a verified checkpoint; a
second run starts clean; the commands it suggests work."""

from __future__ import annotations

import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from tests.integration.live import ROOT, free_port


def _demo(directory: Path, port: int) -> str:
    started = time.monotonic()
    command = ["demo", "--no-serve", "--port", str(port), "--dir", str(directory)]
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert time.monotonic() - started < 60
    return done.stdout


def _figure(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in the summary:\n{text}"
    return int(found.group(1))


def _signals_in(directory: Path) -> int:
    with sqlite3.connect(directory / "ketenpoort.db") as db:
        count: int = db.execute("SELECT count(*) FROM signals").fetchone()[0]
    return count


def test_demo_runs_end_to_end_and_a_second_run_starts_clean(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    port = free_port()  # the demo binds it itself: a port the OS hands out
    summary = _demo(directory, port)

    signals = _figure(r"signals submitted\s+(\d+) by 5 partners", summary)
    assert _figure(r"\((\d+) withdrawn\)", summary) == 1
    assert _figure(r"matches\s+\d+ \((\d+) across partners\)", summary) >= 1
    assert "checkpoint verified by every partner: yes" in summary
    # every submission and the withdrawal left a receipt, and each was proven included
    assert _figure(r"(\d+) receipts proven included", summary) == signals + 1
    tree = _figure(r"audit log\s+(\d+) entries", summary)
    assert tree > signals
    assert _signals_in(directory) == signals

    # the suggested lines work as printed, in a shell that sourced the env file
    env_file = directory / "env"
    assert f"source {env_file}" in summary
    assert env_file.stat().st_mode & 0o777 == 0o600  # the master key is in it
    for line in ("ketenpoort audit verify",):  # (partner commands need it serving)
        suggested = next(x.strip() for x in summary.splitlines() if x.strip().startswith(line))
        done = subprocess.run(
            ["bash", "-c", f"source {shlex.quote(str(env_file))} && {suggested}"],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, suggested + done.stdout[-2000:] + done.stderr[-2000:]

    (directory / "left-over").write_text("from the first run")
    master = (directory / "master-key").read_text()
    again = _demo(directory, port)
    assert not (directory / "left-over").exists()
    assert (directory / "master-key").read_text() != master  # a new instance, new keys
    assert _figure(r"signals submitted\s+(\d+)", again) == signals
    assert _signals_in(directory) == signals  # not the first run's plus the second's
    assert _figure(r"audit log\s+(\d+) entries", again) < 2 * tree
    assert "checkpoint verified by every partner: yes" in again


class _Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_demo_refuses_a_port_in_use_and_leaves_the_directory_alone(tmp_path: Path) -> None:
    """Another server on the port (a demo still serving) must not be taken for ours."""
    other = HTTPServer(("127.0.0.1", 0), _Ready)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    directory = tmp_path / "demo"
    directory.mkdir()
    (directory / "ketenpoort.db").write_text("the running demo's database")
    try:
        result = CliRunner().invoke(
            main,
            ["demo", "--no-serve", "--port", str(other.server_port), "--dir", str(directory)],
        )
    finally:
        other.shutdown()
        other.server_close()
    assert result.exit_code == 1
    assert f"port {other.server_port} on 127.0.0.1 is in use" in result.output
    assert (directory / "ketenpoort.db").read_text() == "the running demo's database"


def test_sigterm_stops_the_demo_and_the_gateway_it_started(tmp_path: Path) -> None:
    port = free_port()
    command = ["demo", "--port", str(port), "--dir", str(tmp_path / "demo")]
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", *command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the summary is printed once the demo serves
            if "Ctrl-C stops" in line:
                break
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        with socket.socket() as probe:  # nothing serves the port any more
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if process.poll() is None:
            process.kill()


def test_sigint_stops_the_demo_even_when_started_with_it_ignored() -> None:
    """A demo started in the background of a script inherits SIGINT ignored; it sets its
    own handler, so `kill -INT` stops it as Ctrl-C and SIGTERM do (the SIGTERM test above
    shows that stop ends the gateway too)."""
    from gateway.demo.run import _stop_on_sigterm

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `make run &` leaves it
        _stop_on_sigterm()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signum)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
