"""Prometheus metrics, in a registry per app so that tests never share counters.

Under gunicorn with several workers set `PROMETHEUS_MULTIPROC_DIR` to a writable
folder; the scrape then sums all workers.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

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
