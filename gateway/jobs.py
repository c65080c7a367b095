"""Background work of a gateway: a daemon thread per job.

Each job is safe to run in several processes at once (the audit sequencer takes a lock,
expiry locks what it changes), so several gateways on one database need no scheduler.
`ketenpoort serve` runs them in one process beside its workers (`gateway.server`); an
app built by `gateway.wsgi` runs them in each worker. A failing turn is logged and
retried later; it never stops the thread.

An app that shuts down stops and joins its jobs before it lets go of its database
(`gateway.services.close_app`): a turn cut off halfway would otherwise run on against
a disposed engine, a dropped schema or a closed log stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gateway.logs import get_logger

log = get_logger(__name__)


class JobThread(threading.Thread):
    """The thread of one `BackgroundJob` (recognisable, so tests can check that none
    outlives the app that started it)."""

    def __init__(self, job: BackgroundJob, target: Callable[[], None]) -> None:
        super().__init__(target=target, name=job.name, daemon=True)
        self.job = job


class BackgroundJob:
    """Runs `step()` every `interval` seconds, at once again while it reports more work."""

    name = "background-job"

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = JobThread(self, self._run)
        self._turn_started: float | None = None

    def step(self) -> bool:
        """One turn; True when there is more to do right away."""
        raise NotImplementedError

    def pause(self) -> float:
        """Seconds to wait after a turn that left nothing to do right away."""
        return self._interval

    def in_turn_for(self) -> float:
        """Seconds the current turn has lasted (0 between turns): a turn that lasts far
        longer than any turn should is stuck (`gateway.server` ends its process then)."""
        started = self._turn_started
        return 0.0 if started is None else time.monotonic() - started

    @property
    def running(self) -> bool:
        """Whether the thread is alive (started and not yet ended)."""
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to end after its current turn (without waiting for it)."""
        self._stop.set()

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; False (and a warning) when it is still running."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        if self.running:
            log.warning("background job still running after its stop", job=self.name)
            return False
        return True

    def stop(self, timeout: float = 5.0) -> bool:
        """End the thread and wait for its current turn; see `join`."""
        self.request_stop()
        return self.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._turn_started = time.monotonic()
            try:
                more, failed = self.step(), False
            except Exception:  # keep running: the next turn may succeed (or a lock frees)
                log.exception("background job failed", job=self.name)
                more, failed = False, True
            finally:
                self._turn_started = None
            if failed:
                self._stop.wait(4 * self._interval)
            if not more:
                self._stop.wait(self.pause())
