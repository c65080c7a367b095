"""Background work in every gateway process: a daemon thread per job.

Each job is safe to run in several processes at once (the audit sequencer takes a lock,
expiry locks what it changes), so every gunicorn worker runs its own and no scheduler
is needed. A failing turn is logged and retried later; it never stops the thread.
"""

from __future__ import annotations

import threading

from gateway.logs import get_logger

log = get_logger(__name__)


class BackgroundJob:
    """Runs `step()` every `interval` seconds, at once again while it reports more work."""

    name = "background-job"

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def step(self) -> bool:
        """One turn; True when there is more to do right away."""
        raise NotImplementedError

    def pause(self) -> float:
        """Seconds to wait after a turn that left nothing to do right away."""
        return self._interval

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                more = self.step()
            except Exception:  # keep running: the next turn may succeed (or a lock frees)
                log.exception("background job failed", job=self.name)
                more = False
                self._stop.wait(4 * self._interval)
            if not more:
                self._stop.wait(self.pause())
