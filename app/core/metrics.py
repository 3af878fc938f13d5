"""Prometheus metrics of the API, in a registry per application.

- ``hwscore_http_requests_total`` and ``hwscore_http_request_duration_seconds``: counted
  by the API as it answers, labelled by route template (``/api/v1/jobs/{job_id}``, never
  the raw path, so ids do not explode the label space) and status code.
- ``hwscore_jobs`` (gauge, by status) and ``hwscore_job_duration_seconds`` (histogram of
  started -> finished, by final status): computed from the database at scrape time, so
  every API replica reports the same truth and jobs finished by workers are included
  without the API having to watch them. Reused jobs (no work done) are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from app.core.vocabulary import JobStatus
from app.db import queries

logger = logging.getLogger(__name__)

JOB_DURATION_BUCKETS_S = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
HTTP_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class JobsCollector(Collector):
    """Job gauges and duration histogram, read from the database at each scrape."""

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory

    def collect(self) -> Iterator[Metric]:
        try:
            with self._session_factory() as session:
                counts = queries.job_counts_by_status(session)
                durations = queries.job_duration_histogram(session, JOB_DURATION_BUCKETS_S)
        except Exception:
            logger.exception("metrics: could not read jobs from the database")
            return
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

    def __init__(self, session_factory: Callable[[], Session]) -> None:
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
        self.registry.register(JobsCollector(session_factory))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
