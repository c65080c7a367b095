"""SQLite's writers wait in a queue instead of polling the database lock.

SQLite has one write lock per database. A writer that finds it taken sleeps in the busy
handler (1, 2, 5 … 100 ms) and tries again; under load the lock is free most of the time
the waiters sleep, and a writer that just arrived often wins over one that has waited
for a second (the ingest benchmark's p95 was seconds). Here a write transaction first
takes a lock that wakes its next waiter as soon as it is released:

- a `threading.Lock` per process (the threads of a worker), then
- an exclusive `flock` on `<database>-lock` (0600) across processes (the workers and
  the CLI). The one waiting thread of each process has a helper thread block in
  `flock` for it, so the kernel hands the lock over the moment it is released (polling
  left it unused for milliseconds between writers: 8 writer processes sequenced ~2,000
  audit entries/s where one process alone wrote 4,000/s); the waiter itself waits on a
  condition with a timeout, which a blocking `flock` has not.

Then BEGIN IMMEDIATE finds the database lock free. Taken in the engine's "begin" hook
for IMMEDIATE transactions only (write sessions, `gateway.db.Database.session`) and
released after that connection's COMMIT or ROLLBACK. A writer that waits longer than
the busy timeout goes ahead without it and leaves the wait to SQLite, as before.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Any

from gateway.private_files import ensure_private_file

#: As SQLite's `busy_timeout` (`gateway.db`): past it a writer stops queueing here.
WAIT_SECONDS = 30.0


class WriterQueue:
    """The write lock of one SQLite database file, for this process's connections."""

    def __init__(self, database: Path | None) -> None:
        self._path = Path(f"{database}-lock") if database is not None else None
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        #: The connection holding the lock (its DBAPI connection's id), if any.
        self._holder: int | None = None
        self._blocking: _BlockingFlock | None = None

    def _file(self, path: Path) -> int:
        """This process's descriptor of the lock file (a forked worker opens its own:
        a descriptor inherited across fork would share one lock with the parent)."""
        if self._fd is None or self._pid != os.getpid():
            ensure_private_file(path)
            self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            self._pid = os.getpid()
            self._blocking = _BlockingFlock(self._fd)  # its thread stayed with the parent
        return self._fd

    def acquire(self, connection: Any) -> None:
        """Wait for the write lock for `connection` (at most `WAIT_SECONDS`)."""
        if self._path is None:  # an in-memory database: nothing to queue for
            return
        started = time.monotonic()
        if not self._threads.acquire(timeout=WAIT_SECONDS):
            return
        try:
            fd = self._file(self._path)
            assert self._blocking is not None
            if not _flock(fd, self._blocking, WAIT_SECONDS - (time.monotonic() - started)):
                self._threads.release()
                return
        except BaseException:
            self._threads.release()
            raise
        self._holder = _identity(connection)

    def release(self, connection: Any) -> None:
        """Release the lock if `connection` holds it (idempotent)."""
        if self._holder is None or self._holder != _identity(connection):
            return
        self._holder = None
        if self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


def _identity(connection: Any) -> int:
    return id(getattr(connection, "dbapi_connection", connection))


def _flock(fd: int, blocking: _BlockingFlock, seconds: float) -> bool:
    """An exclusive flock within `seconds`: at once when it is free, else from the
    moment it is released (`_BlockingFlock`)."""
    return blocking.acquire(seconds)


class _BlockingFlock:
    """A thread that blocks in `flock(LOCK_EX)` for this process's one waiting writer
    (`WriterQueue` lets one thread per process wait), so the wait itself can time out.

    A wait that timed out leaves the flock call running: the lock it brings goes to the
    next waiter of this process, or is let go at once if none is waiting."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._changed = threading.Condition(threading.Lock())
        self._wanted = False  # a writer waits for the lock
        self._granted = False  # the thread got it for that writer
        self._pending = False  # a flock call is under way
        self._thread: threading.Thread | None = None

    def acquire(self, seconds: float) -> bool:
        with self._changed:
            if not self._pending:  # at once when free (not beside a pending call: on the
                try:  # same descriptor both would succeed, and that one may let go)
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    pass
            self._wanted, self._granted = True, False
            if not self._pending:
                self._pending = True
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="sqlite-write-lock", daemon=True
                    )
                    self._thread.start()
                self._changed.notify_all()
            got = self._changed.wait_for(lambda: self._granted, timeout=max(seconds, 0.0))
            self._wanted = self._granted = False
            return got

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending)
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                locked = True
            except OSError:
                locked = False  # the waiter times out and goes ahead without it
            with self._changed:
                self._pending = False
                if locked and self._wanted:
                    self._granted = True
                    self._changed.notify_all()
                elif locked:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)  # its waiter gave up meanwhile
