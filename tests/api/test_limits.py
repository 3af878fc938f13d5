"""The per-key submission rate limit, the cached job metrics, and indexes for the queries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.metrics import JOB_DURATION_BUCKETS_S
from app.core.security import LOCAL_OWNER
from app.core.vocabulary import JobStatus
from app.db import queries
from app.db.models import Job, utcnow
from app.main import create_app
from tests.api.conftest import Caller, assert_problem
from tests.api.factories import make_job, study

JOBS = "/api/v1/jobs"
BURST = 3
PER_MINUTE = 60.0  # so the window of BURST jobs is 3 s


def _limited(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "submit_rate_per_minute": PER_MINUTE,
            "submit_burst": BURST,
            "max_jobs_in_flight_per_key": 100,
        }
    )


def test_submissions_past_the_burst_are_429_with_retry_after_until_the_window_moves(
    settings: Settings, alice: Caller, bob: Caller
) -> None:
    with TestClient(create_app(_limited(settings))) as client:
        first = client.post(JOBS, json=study(), headers={**alice.headers, "Idempotency-Key": "a"})
        codes = [client.post(JOBS, json=study(), headers=alice.headers).status_code for _ in "xy"]
        assert [first.status_code, *codes] == [202] * BURST
        refused = client.post(JOBS, json=study(), headers=alice.headers)
        assert_problem(refused, 429, f"created {BURST} jobs in the last 3 s", "submit again in")
        wait_s = int(refused.headers["Retry-After"])
        assert 1 <= wait_s <= 3
        # A replay creates nothing and is answered; another key has a budget of its own.
        same = client.post(
            JOBS,
            content=first.request.content,
            headers={**alice.headers, "Idempotency-Key": "a", "Content-Type": "application/json"},
        )
        assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
        assert client.post(JOBS, json=study(), headers=bob.headers).status_code == 202
        time.sleep(wait_s + 0.2)
        assert client.post(JOBS, json=study(), headers=alice.headers).status_code == 202


def test_the_rate_limit_holds_across_api_processes(
    settings: Settings, alice: Caller, db: Session
) -> None:
    """Two applications (two engines and pools, as two processes have) share one budget."""
    apps = [create_app(_limited(settings)) for _ in range(2)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        clients = [one, two] * 6
        with ThreadPoolExecutor(max_workers=len(clients)) as pool:
            codes = list(
                pool.map(lambda c: c.post(JOBS, json=study(), headers=alice.headers), clients)
            )
    assert sorted(r.status_code for r in codes) == [202] * BURST + [429] * (12 - BURST)
    made = db.scalar(select(func.count()).select_from(Job).where(Job.owner_key == alice.id))
    assert made == BURST


def _jobs_gauge(metrics: str, status: str) -> float:
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "hwscore_jobs" and sample.labels == {"status": status}:
                return float(sample.value)
    raise AssertionError("hwscore_jobs missing")


def test_metrics_read_the_jobs_table_at_most_once_per_cache_period(
    settings: Settings, alice: Caller, db: Session
) -> None:
    app = create_app(settings.model_copy(update={"metrics_cache_s": 60.0}))
    statements: list[str] = []
    engine = app.state.hwscore.database.engine
    lock = threading.Lock()

    def record(*args: Any) -> None:
        with lock:
            statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    with TestClient(app) as client:
        before = _jobs_gauge(client.get("/metrics").text, "failed")
        make_job(db, alice.id, status="failed")
        with ThreadPoolExecutor(max_workers=4) as pool:
            scrapes = list(pool.map(lambda _: client.get("/metrics").text, range(8)))
    reads = [s for s in statements if "FROM jobs" in s]
    assert len(reads) == 2  # counts and durations, once, for nine scrapes
    assert all(_jobs_gauge(s, "failed") == before for s in scrapes)


def test_the_queries_of_hot_paths_can_use_an_index(alice: Caller, db: Session) -> None:
    """With sequential scans priced out, every hot query still finds an index plan."""
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    job = make_job(db, alice.id, status="succeeded", events=2)
    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    calls: list[Callable[[], object]] = [
        lambda: queries.get_owned_job(db, alice.id, job.id),
        lambda: queries.count_in_flight(db, alice.id),
        lambda: queries.list_jobs(db, alice.id, status=None, limit=21, before=None),
        lambda: queries.list_jobs(
            db, alice.id, status=JobStatus.SUCCEEDED, limit=21, before=(utcnow(), job.id)
        ),
        lambda: queries.list_events(db, job.id, after=0, limit=200),
        lambda: queries.recent_job_times(db, alice.id, since=utcnow(), limit=10),
        lambda: queries.find_by_idempotency_key(db, alice.id, "k"),
        lambda: queries.job_counts_by_status(db),
        lambda: queries.job_duration_histogram(db, JOB_DURATION_BUCKETS_S),
    ]
    try:
        for call in calls:
            call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    db.rollback()
    with engine.connect() as connection:
        connection.execute(text("SET enable_seqscan = off"))
        raw = connection.connection.dbapi_connection
        assert raw is not None
        for statement, parameters in statements:
            with raw.cursor() as cursor:
                cursor.execute("EXPLAIN " + statement, parameters)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan" not in plan, f"{statement}\n{plan}"


def test_limits_speak_to_a_keyless_local_user_without_mentioning_api_keys(
    settings: Settings, db: Session
) -> None:
    """Auth off (or auto on loopback): the caller has no key, so "this API key" would mislead."""
    in_flight = queries.count_in_flight(db, LOCAL_OWNER)  # earlier tests' queued local jobs
    capped = settings.model_copy(
        update={"auth": "off", "submit_rate_per_minute": 0, "max_jobs_in_flight_per_key": in_flight}
    )
    with TestClient(create_app(capped)) as client:
        refused = client.post(JOBS, json=study())
    body = assert_problem(refused, 429, f"you already have {in_flight} unfinished jobs")
    assert "API key" not in body["detail"]

    rated = settings.model_copy(
        update={
            "auth": "off",
            "submit_rate_per_minute": 120.0,  # bursts of 2 within 1 s
            "submit_burst": 2,
            "max_jobs_in_flight_per_key": 1000,
        }
    )
    with TestClient(create_app(rated)) as client:
        answers = [client.post(JOBS, json=study()) for _ in range(3)]
    refused = next(r for r in answers if r.status_code == 429)
    body = assert_problem(refused, 429, "you created 2 jobs in the last 1 s", "submit again in")
    assert "API key" not in body["detail"]
