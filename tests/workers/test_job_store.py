"""The job row's transitions on the worker side, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading

from sqlalchemy.orm import Session, sessionmaker

from app.db.job_store import JobStore, release_jobs_of_worker
from app.db.models import Artifact
from tests.workers.conftest import add_job, events, load_job, set_status


def test_exactly_one_of_many_concurrent_claims_wins(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions)
    contenders = 6
    barrier = threading.Barrier(contenders)
    results: list[object] = [None] * contenders
    errors: list[BaseException] = []

    def contend(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = store.claim(job_id, f"worker-{index}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors
    winners = [(i, claim) for i, claim in enumerate(results) if claim is not None]
    assert len(winners) == 1
    index, claim = winners[0]
    job = load_job(sessions, job_id)
    assert (job.status, job.attempts, job.worker) == ("running", 1, f"worker-{index}")
    assert job.started_at is not None and job.heartbeat_at is not None
    assert claim.attempt == 1  # type: ignore[attr-defined]
    assert [(e.kind, e.data["status"]) for e in events(sessions, job_id)] == [("state", "running")]


def test_a_job_that_is_not_queued_cannot_be_claimed(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    for status in ("cancelled", "running", "succeeded", "failed", "cancelling"):
        job_id = add_job(sessions, status=status)
        assert store.claim(job_id, "w") is None
        assert load_job(sessions, job_id).attempts == 0
    assert store.claim("no-such-job", "w") is None


def test_cancel_request_is_seen_and_ends_cancelled(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions)
    claim = store.claim(job_id, "w")
    assert claim is not None
    assert not store.should_stop(claim)
    set_status(sessions, job_id, "cancelling")
    assert store.should_stop(claim)
    assert store.cancel(claim)
    job = load_job(sessions, job_id)
    assert job.status == "cancelled" and job.finished_at is not None


def test_success_stores_result_and_artifacts_together(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions)
    claim = store.claim(job_id, "w")
    assert claim is not None
    content = b"epoch,accuracy\n1,0.9\n"
    media = {"metrics.csv": "text/csv"}
    assert store.succeed(claim, {"float_accuracy": 0.9}, {"metrics.csv": content}, media)

    job = load_job(sessions, job_id)
    assert (job.status, job.progress_fraction, job.result) == (
        "succeeded",
        1.0,
        {"float_accuracy": 0.9},
    )
    with sessions() as session:
        (artifact,) = session.query(Artifact).filter_by(job_id=job_id).all()
    assert (artifact.name, artifact.media_type, artifact.size) == ("metrics.csv", "text/csv", 21)
    assert artifact.sha256 == hashlib.sha256(content).hexdigest()
    assert artifact.content == content


def test_a_stale_claim_changes_nothing(sessions: sessionmaker[Session], store: JobStore) -> None:
    job_id = add_job(sessions)
    first = store.claim(job_id, "w1")
    assert first is not None
    assert store.requeue(first, "OperationalError: connection lost") == "queued"
    second = store.claim(job_id, "w2")
    assert second is not None and second.attempt == 2

    # The first worker comes back from its outage: none of its writes may land.
    assert not store.record_progress(first, phase="float_training", fraction=0.5, epoch=1)
    assert not store.fail(first, "internal_error", "late")
    assert store.should_stop(first)
    job = load_job(sessions, job_id)
    assert (job.status, job.worker, job.attempts, job.error_code) == ("running", "w2", 2, None)


def test_requeue_of_a_job_being_cancelled_cancels_it(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions)
    claim = store.claim(job_id, "w")
    assert claim is not None
    set_status(sessions, job_id, "cancelling")
    assert store.requeue(claim, "OperationalError") == "cancelled"
    assert load_job(sessions, job_id).status == "cancelled"


def test_stopping_worker_hands_its_jobs_back(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    mine, cancelling, other = (add_job(sessions) for _ in range(3))
    assert store.claim(mine, "serve-1@host:11") is not None
    assert store.claim(cancelling, "serve-1@host:12") is not None
    assert store.claim(other, "serve-10@host:13") is not None
    set_status(sessions, cancelling, "cancelling")

    assert release_jobs_of_worker(sessions, "serve-1@") == [mine]
    assert load_job(sessions, mine).status == "queued"
    assert load_job(sessions, cancelling).status == "cancelled"
    assert load_job(sessions, other).status == "running"
    assert store.claim(mine, "serve-2@host:20") is not None
