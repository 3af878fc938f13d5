"""Prometheus metrics of the API, in a registry per application.

- ``hwscore_http_requests_total`` and ``hwscore_http_request_duration_seconds``: counted
  by the API as it answers, labelled by route template (``/api/v1/jobs/{job_id}``, never
  the raw path, so ids do not explode the label space) and status code.
- ``hwscore_jobs`` (gauge, by status) and ``hwscore_job_duration_seconds`` (histogram of
  started -> finished, by final status): computed from the database at scrape time, so
  every API replica reports the same truth and jobs finished by workers are included
  without the API having to watch them. Reused jobs (no work done) are left out. Both
  come from two aggregate queries served by indexes, run at most once per
  ``metrics_cache_s`` (HWSCORE_METRICS_CACHE_S) by one scrape at a time; other scrapes in
  between get the figures of the last read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from app.core.vocabulary import JobStatus
from app.db import queries

logger = logging.getLogger(__name__)

JOB_DURATION_BUCKETS_S = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
HTTP_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class JobFigures:
    """What one read of the jobs table gives the metrics."""

    counts: dict[str, int]
    durations: dict[str, tuple[list[int], float, int]]
    read_at: float


class JobsCollector(Collector):
    """Job gauges and duration histogram, read from the database at most every ``ttl_s``."""

    def __init__(self, session_factory: Callable[[], Session], ttl_s: float) -> None:
        self._session_factory = session_factory
        self._ttl_s = ttl_s
        self._figures: JobFigures | None = None
        self._lock = threading.Lock()  # one read at a time; the others wait and reuse it

    def figures(self) -> JobFigures:
        """The cached figures, read again once they are older than the TTL."""
        with self._lock:
            cached = self._figures
            if cached is not None and time.monotonic() - cached.read_at < self._ttl_s:
                return cached
            with self._session_factory() as session:
                counts = queries.job_counts_by_status(session)
                durations = queries.job_duration_histogram(session, JOB_DURATION_BUCKETS_S)
            self._figures = JobFigures(counts, durations, time.monotonic())
            return self._figures

    def collect(self) -> Iterator[Metric]:
        try:
            figures = self.figures()
        except Exception as exc:
            logger.warning("metrics: could not read jobs from the database: %s", exc)
            return
        counts, durations = figures.counts, figures.durations
        gauge = GaugeMetricFamily("hwscore_jobs", "Jobs by status.", labels=["status"])
        for status in JobStatus:
            gauge.add_metric([status], counts.get(status, 0))
        yield gauge
        histogram = HistogramMetricFamily(
            "hwscore_job_duration_seconds",
            "Time from start to end of jobs that ran, by final status.",
            labels=["status"],
        )
        for status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            cumulative, total_s, count = durations.get(
                status, ([0] * len(JOB_DURATION_BUCKETS_S), 0.0, 0)
            )
            buckets = [(str(b), c) for b, c in zip(JOB_DURATION_BUCKETS_S, cumulative, strict=True)]
            histogram.add_metric([status], [*buckets, ("+Inf", count)], total_s)
        yield histogram

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no database query when the collector is registered


class ApiMetrics:
    """The registry of one application and the request metrics recorded into it."""

    def __init__(self, session_factory: Callable[[], Session], jobs_ttl_s: float = 0.0) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hwscore_http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hwscore_http_request_duration_seconds",
            "Time to answer HTTP requests, by method and route template.",
            ["method", "route"],
            buckets=HTTP_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.jobs = JobsCollector(session_factory, jobs_ttl_s)
        self.registry.register(self.jobs)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
