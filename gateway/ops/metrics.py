"""Prometheus metrics, in a registry per app so that tests never share counters.

Under gunicorn with several workers set `PROMETHEUS_MULTIPROC_DIR` to a writable
folder; the scrape then sums all workers.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from gateway.logs import get_logger

log = get_logger(__name__)

#: Methods counted under their own name. Any token is a valid method on the wire, and
#: each label value is a series kept for the life of the process (and a slot in every
#: worker's multiprocess file): the rest are counted as "other", so no client can grow
#: the metrics without bound.
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._shared: list[Collector] = []
        self.requests = Counter(
            "ketenpoort_http_requests",
            "HTTP requests by route, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ketenpoort_http_request_duration_seconds",
            "HTTP request latency by route and method.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

        self.limited = Counter(
            "ketenpoort_rate_limited_requests",
            'Requests answered 429, by client id ("anonymous" for failures counted per'
            " address) and endpoint kind (v1, token, address).",
            ["client", "endpoint"],
            registry=self.registry,
        )

    def add_collector(self, collector: Collector) -> None:
        """A collector that reads its figures from the database at scrape time (the same
        in every worker, so it joins the multiprocess scrape as it is)."""
        self.registry.register(collector)
        self._shared.append(collector)

    def rate_limited(self, client: str, endpoint: str) -> None:
        """Count one 429; the label set is bounded by the registered clients."""
        self.limited.labels(client, endpoint).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            for collector in self._shared:
                registry.register(collector)
            data: bytes = generate_latest(registry)
            return data
        data = generate_latest(self.registry)
        return data


@dataclass(frozen=True)
class Backlog:
    """What one kind of background work still has to do."""

    waiting: int
    #: When the oldest waiting item was written (None: nothing waits).
    oldest: datetime | None
    #: Items the job gave up on after repeated failures (they wait for an operator).
    given_up: int = 0


#: Seconds a backlog reading is reused by the scrapes of one process.
BACKLOG_REFRESH_SECONDS = 15.0
#: Seconds the database readings of `/metrics` are skipped after one found the database
#: out of reach.
AWAY_SECONDS = 15.0


class DatabaseAway:
    """Shared by the collectors that read the database at scrape time.

    Each reading of a database out of reach waits the connect timeout (5 s). Once one
    of them found it away, the others skip theirs for `seconds`, so a scrape during an
    outage costs one timeout, not one per reading, and answers within Prometheus's
    scrape timeout (10 s) with the figures that need no database.
    """

    def __init__(
        self, seconds: float = AWAY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        self._until = -math.inf

    def now(self) -> bool:
        """Whether a reading should be skipped."""
        return self._clock() < self._until

    def saw(self, error: SQLAlchemyError) -> None:
        """A reading failed with `error`; a connection error marks the database away."""
        if isinstance(error, OperationalError):
            self._until = self._clock() + self._seconds


class BacklogCollector:
    """`ketenpoort_background_waiting{work}`, `ketenpoort_background_oldest_seconds{work}`
    and `ketenpoort_background_given_up{work}`, read from the database.

    The same in every process, whichever runs the jobs: an oldest age that keeps growing
    says the jobs process is stuck or far behind (matches and notifications late,
    receipts not yet provable), which nothing else a scrape shows would say.

    `/metrics` is open, so a reading is reused for `refresh` seconds: a scrape storm
    costs the database nothing more, and a partner polling it cannot time the moment
    its own signal's matching ended (a hit takes a few milliseconds longer than a miss).
    """

    def __init__(
        self,
        readers: Mapping[str, Callable[[], Backlog]],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        refresh: float | None = None,
        away: DatabaseAway | None = None,
    ) -> None:
        self._readers = readers
        self._away = away or DatabaseAway()
        self._now = now
        self._refresh = BACKLOG_REFRESH_SECONDS if refresh is None else refresh
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._families: list[GaugeMetricFamily] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            if time.monotonic() - self._read_at >= self._refresh:
                self._families = list(self._read())
                self._read_at = time.monotonic()
            families = self._families
        yield from families

    def _read(self) -> Iterator[GaugeMetricFamily]:
        waiting = GaugeMetricFamily(
            "ketenpoort_background_waiting",
            "Items waiting for the background jobs, by kind of work.",
            labels=["work"],
        )
        oldest = GaugeMetricFamily(
            "ketenpoort_background_oldest_seconds",
            "Age of the oldest item waiting for the background jobs (0 when none waits).",
            labels=["work"],
        )
        given_up = GaugeMetricFamily(
            "ketenpoort_background_given_up",
            "Items the background jobs gave up on after repeated failures (see the log).",
            labels=["work"],
        )
        now = self._now()
        for work, read in self._readers.items():
            if self._away.now():  # the next would wait the connect timeout as well
                break
            try:
                found = read()
            except SQLAlchemyError as exc:  # not initialised yet, or the database is away
                log.warning("metrics.backlog_failed", work=work, error=type(exc).__name__)
                self._away.saw(exc)
                continue
            waiting.add_metric([work], found.waiting)
            given_up.add_metric([work], found.given_up)
            oldest.add_metric([work], _age(now, found.oldest))
        yield from (waiting, oldest, given_up)


def _age(now: datetime, then: datetime | None) -> float:
    """Seconds since `then` (SQLite gives back naive UTC), never negative."""
    if then is None:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())
