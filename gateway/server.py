"""Run the app under gunicorn from the CLI (not Flask's development server).

The workers only serve requests. The background jobs (audit sequencer, matching outbox,
retention, alerts) run in one process of their own beside them, which the arbiter starts,
restarts when it dies, and stops with them: as threads inside the workers they waited for
the GIL behind the request threads, and on PostgreSQL the matching fell minutes behind
a saturating load (README, "The matching outbox").
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from gateway.config import Settings
from gateway.errors import OperatorError

if TYPE_CHECKING:
    from gateway.jobs import BackgroundJob


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """The gateway under gunicorn: workers without background jobs, and (unless the
    settings turn them off) one jobs process beside them."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.jobs_settings = settings if settings.background_jobs else None
        self._settings = replace(settings, background_jobs=False)
        self._options = options
        super().__init__()

    def run(self) -> None:
        try:
            _JobsArbiter(self).run()
        except RuntimeError as error:  # as gunicorn's own run: a clear line, exit 1
            print(f"\nError: {error}\n", file=sys.stderr)
            sys.exit(1)

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
    _forget_metrics_of(worker.pid)


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
    atexit.register(_remove_from, os.getpid(), folder)


def _remove_from(owner: int, folder: str) -> None:
    """Remove the metrics folder when the process that made it exits. A forked worker
    inherits this atexit handler and runs it when it exits on its own (a restart, a
    SIGHUP): it must not take the folder from under the workers that go on."""
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    if not os.environ.get("LISTEN_FDS"):  # with socket activation the port is ours already
        check_port_free(host, port)
    share_metrics_between_workers()
    # Build once in the parent so that a bad setting or missing key fails before forking.
    from gateway.app import create_app
    from gateway.services import close_app

    # Closed again: the arbiter needs no database, and every worker and the jobs process
    # it forks would inherit the connection (SQLite's lock state in memory with it).
    close_app(create_app(settings=replace(settings, background_jobs=False)))
    options = gunicorn_options(host=host, port=port, workers=workers, threads=threads)
    _Gunicorn(
        settings, {**options, "child_exit": _worker_exit, "worker_exit": _close_worker_app}
    ).run()


#: The arbiter's log line for each jobs process it starts (operators and tests find the
#: process's pid by it).
JOBS_STARTED = "Started the background jobs (pid: %s)"

#: A jobs process that ends sooner than this after its start is restarted only after a
#: pause that doubles each time (up to `_RESTART_PAUSE_MAX`), so a job that cannot start
#: does not spin; one that ran longer is restarted at once.
_QUICK_EXIT = 10.0
_RESTART_PAUSE_MAX = 60.0


class _JobsArbiter(Arbiter):  # type: ignore[misc]
    """Gunicorn's arbiter, also keeping one background-jobs process alive.

    The process is forked like a worker (so it shares the arbiter's settings in memory,
    the demo's included) and is reaped, restarted and stopped from the arbiter's own
    loop: `manage_workers` runs about every second, `reap_workers` on SIGCHLD.
    """

    def __init__(self, app: _Gunicorn) -> None:
        self.jobs_pid = 0
        self._jobs_started = 0.0
        self._jobs_pause = 1.0
        self._jobs_next_start = 0.0
        super().__init__(app)

    def manage_workers(self) -> None:
        self._reap_jobs()
        settings = self.app.jobs_settings
        if settings is not None and not self.jobs_pid and time.monotonic() >= self._jobs_next_start:
            self._spawn_jobs(settings)  # before the workers: work waits from their first request
        super().manage_workers()

    def reap_workers(self) -> None:
        self._reap_jobs()  # first: gunicorn's waitpid(-1) would reap it as a stranger
        super().reap_workers()

    def stop(self, graceful: bool = True) -> None:
        """The jobs process and the workers together, within one graceful timeout (an
        orchestrator's stop grace period is often no longer): each job ends its current
        turn, and what it has not begun waits in the database; SIGKILL after that."""
        deadline = time.monotonic() + self.cfg.graceful_timeout
        self._signal_jobs(signal.SIGTERM if graceful else signal.SIGQUIT)
        super().stop(graceful)
        while self.jobs_pid and time.monotonic() < deadline:
            time.sleep(0.05)
            self._reap_jobs()
        if self.jobs_pid:
            self.log.warning("background jobs (pid:%s) did not stop; killed", self.jobs_pid)
            self._signal_jobs(signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.jobs_pid, 0)
            self.jobs_pid = 0

    def reload(self) -> None:
        """SIGHUP: new workers, and a new jobs process (started by the next loop, at once:
        an exit asked for is not a failure to pause after)."""
        super().reload()
        self._jobs_started = -_QUICK_EXIT
        self._signal_jobs(signal.SIGTERM)

    def _spawn_jobs(self, settings: Settings) -> None:
        parent = os.getpid()
        # Blocked across the fork: one that comes before the child has its own handler
        # stays pending, instead of going to the arbiter's (which would queue it in the
        # child's copy of the arbiter, where nothing reads it).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            pid = os.fork()
        except OSError as exc:  # out of processes or memory: the server goes on, retries
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            self.log.error("Could not start the background jobs: %s; retrying in 5 s", exc)
            self._jobs_next_start = time.monotonic() + 5
            return
        if pid == 0:  # the child unblocks them itself, once its handler is in place
            try:
                # not the port (the workers'), nor the workers' heartbeat files (as
                # gunicorn's workers close their siblings'), when it restarts beside them
                inherited = [*self.LISTENERS, *(worker.tmp for worker in self.WORKERS.values())]
                _run_jobs_process(settings, inherited, parent, self.cfg.graceful_timeout)
            finally:
                os._exit(1)  # never back into the arbiter's loop
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.jobs_pid = pid
        self._jobs_started = time.monotonic()
        self.log.info(JOBS_STARTED, pid)

    def _signal_jobs(self, sig: int) -> None:
        if self.jobs_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.jobs_pid, sig)

    def _reap_jobs(self) -> None:
        """Notice that the jobs process ended (reaped here, or already by gunicorn)."""
        if not self.jobs_pid:
            return
        try:
            pid, status = os.waitpid(self.jobs_pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.jobs_pid, -1  # reaped elsewhere: the status is lost
        if not pid:
            return
        _forget_metrics_of(pid)
        pause = 0.0
        if time.monotonic() - self._jobs_started < _QUICK_EXIT:
            pause = self._jobs_pause
            self._jobs_pause = min(2 * pause, _RESTART_PAUSE_MAX)
        else:
            self._jobs_pause = 1.0
        self._jobs_next_start = time.monotonic() + pause
        if status == 0:
            self.log.info("Background jobs (pid: %s) ended", pid)
        elif status < 0:  # gunicorn's waitpid(-1) took it in the moment between two checks
            self.log.info("Background jobs (pid: %s) ended (status collected elsewhere)", pid)
        else:  # with when the next one starts (unless the server is stopping)
            self.log.error(
                "Background jobs (pid: %s) ended unexpectedly: %s; the next starts in %g s",
                pid,
                _how(status),
                pause,
            )
        self.jobs_pid = 0


def _how(status: int) -> str:
    """A `waitpid` status in words."""
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _forget_metrics_of(pid: int) -> None:
    """A dead process's live gauges leave the multiprocess metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


#: The signals that stop the jobs process (each job ends its turn first).
_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})

#: Linux's prctl option that signals a child when its parent dies.
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """SIGTERM this process when the arbiter dies, even by SIGKILL (Linux; elsewhere the
    jobs loop notices a new parent within a second)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above
        os.kill(os.getpid(), signal.SIGTERM)


def _stop_signals_pipe() -> int:
    """Make SIGTERM, SIGINT and SIGQUIT write their number to a pipe (Python's wakeup
    fd, written by the C-level handler), and return its reading end. The Python handler
    does nothing: one that sets a `threading.Event` deadlocks on the event's lock when
    a signal lands while the main thread holds it (waiting on that event, or in the
    handler of the signal before: Ctrl-C twice), or nests until a RecursionError."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _no_op)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked in `_spawn_jobs`
    return read


def _no_op(_signum: int, _frame: object) -> None:
    """A Python handler, so that the wakeup fd is written; the work is the reader's."""


#: A turn of a background job longer than this is stuck (a lock never released, a hang
#: in a driver): the jobs process ends so that the arbiter starts a fresh one. Most turns
#: are bounded batches of seconds; retention erases all that is due in one turn, batch
#: by batch, each committed, so a cut one (a huge first run) goes on where it stopped.
STUCK_TURN_SECONDS = 1800.0


def _wait_for_stop(signals: int, parent: int, jobs: Sequence[BackgroundJob] = ()) -> bool:
    """Until a stop signal came (before this call too) or the arbiter is gone (True), or
    a job is stuck in one turn (False, said in the log)."""
    while os.getppid() == parent:
        ready, _, _ = select.select([signals], [], [], 1.0)
        if ready and _STOP_SIGNALS & set(os.read(signals, 512)):
            return True
        for job in jobs:
            if (lasted := job.in_turn_for()) > STUCK_TURN_SECONDS:
                _log().error(
                    "background job stuck; ending the jobs process",
                    job=job.name,
                    seconds=round(lasted),
                )
                return False
    return True


def _log() -> Any:
    from gateway.logs import get_logger

    return get_logger(__name__)


def _run_jobs_process(
    settings: Settings, inherited: list[Any], parent: int, timeout: float
) -> NoReturn:
    """The forked child: the app's background jobs and nothing else, until SIGTERM,
    SIGINT or SIGQUIT, or until the arbiter is gone; each job ends its turn first."""
    code = 0
    try:  # all of it: an exception must not take the child back into the arbiter's loop
        signals = _stop_signals_pipe()
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)  # the arbiter's to act on, not ours
        for sig in (signal.SIGCHLD, signal.SIGWINCH):
            signal.signal(sig, signal.SIG_DFL)
        for handle in inherited:  # the arbiter's, not ours: no connection waits here
            handle.close()
        _die_with(parent)
        from gateway.app import create_app
        from gateway.services import close_app, services_of

        app = create_app(settings=settings)
        if not _wait_for_stop(signals, parent, services_of(app).jobs):
            code = 1  # stuck: the arbiter starts a fresh one
        close_app(app, timeout)
    except BaseException:  # logged, and the arbiter starts another after a pause
        _log().exception("background jobs process failed")
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)  # never back into the arbiter's code, nor its atexit handlers
