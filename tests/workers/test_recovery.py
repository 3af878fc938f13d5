"""The recovery sweep on a real database (SQLite and PostgreSQL), with a recording broker.

Stale heartbeats are made by moving ``heartbeat_at`` into the past, as a dead worker
leaves it; the live versions of these failures (real SIGKILLs, a real Redis restart)
run in tests/integration/test_recovery.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db.job_store import JobStore
from app.db.models import Artifact, Job, Lease, utcnow
from app.services.recovery import RecoverySweeper
from tests.workers.conftest import add_job, events, load_job

SETTINGS = Settings(heartbeat_interval_s=1, stale_after_s=10, sweep_interval_s=5, max_attempts=2)


@dataclass
class RecordingBroker:
    """A broker that records what was sent and says how many messages wait."""

    waiting: int = 0
    down: bool = False
    sent: list[str] = field(default_factory=list)

    def send_job(self, job_id: str) -> None:
        if self.down:
            raise ConnectionError("broker down")
        self.sent.append(job_id)

    def check(self) -> None:
        self.queued_messages()

    def queued_messages(self) -> int:
        if self.down:
            raise ConnectionError("broker down")
        return self.waiting


def age(
    sessions: sessionmaker[Session], job_id: str, *, heartbeat_s: float = 0, sent_s: float = 0
) -> None:
    """Move the job's heartbeat and last send this many seconds into the past."""
    values = {}
    if heartbeat_s:
        values["heartbeat_at"] = utcnow() - timedelta(seconds=heartbeat_s)
    if sent_s:
        values["dispatched_at"] = utcnow() - timedelta(seconds=sent_s)
    with sessions() as session:
        session.execute(update(Job).where(Job.id == job_id).values(**values))
        session.commit()


def claimed_job(sessions: sessionmaker[Session], store: JobStore, worker: str = "w1") -> str:
    job_id = add_job(sessions)
    assert store.claim(job_id, worker) is not None
    return job_id


def test_a_dead_workers_job_is_queued_again_and_sent(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    dead = claimed_job(sessions, store)
    alive = claimed_job(sessions, store, "w2")
    age(sessions, dead, heartbeat_s=11)
    broker = RecordingBroker()

    report = RecoverySweeper(SETTINGS, sessions, broker).sweep()

    assert report is not None and report.taken_back.requeued == [dead]
    assert broker.sent == [dead]
    job = load_job(sessions, dead)
    assert (job.status, job.worker, job.attempts) == ("queued", None, 1)
    assert job.dispatched_at is not None
    assert events(sessions, dead)[-1].data == {"status": "queued", "reason": "worker_lost"}
    assert load_job(sessions, alive).status == "running"
    # The message wakes a worker: the next claim is attempt 2.
    claim = store.claim(dead, "w3")
    assert claim is not None and claim.attempt == 2


def test_past_the_attempt_cap_the_job_fails_worker_lost_and_a_dead_cancel_ends_cancelled(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    looping = claimed_job(sessions, store)
    with sessions() as session:  # its worker has died once already
        session.execute(update(Job).where(Job.id == looping).values(attempts=2))
        session.commit()
    cancelling = claimed_job(sessions, store)
    with sessions() as session:
        session.execute(update(Job).where(Job.id == cancelling).values(status="cancelling"))
        session.commit()
    age(sessions, looping, heartbeat_s=60)
    age(sessions, cancelling, heartbeat_s=60)

    report = RecoverySweeper(SETTINGS, sessions, RecordingBroker()).sweep()

    assert report is not None
    assert (report.taken_back.lost, report.taken_back.cancelled) == ([looping], [cancelling])
    job = load_job(sessions, looping)
    assert (job.status, job.error_code) == ("failed", "worker_lost")
    assert "stopped responding on each of its 2 runs" in (job.error_message or "")
    assert job.finished_at is not None
    cancelled = load_job(sessions, cancelling)
    assert (cancelled.status, cancelled.finished_at is not None) == ("cancelled", True)


def test_a_stale_worker_that_wakes_up_writes_nothing(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions)
    old = store.claim(job_id, "sleepy")
    assert old is not None
    age(sessions, job_id, heartbeat_s=60)
    RecoverySweeper(SETTINGS, sessions, RecordingBroker()).sweep()
    new = store.claim(job_id, "fresh")
    assert new is not None and new.attempt == old.attempt + 1

    assert not store.heartbeat(old)
    assert not store.record_progress(old, phase="x", fraction=0.5, epoch=None)
    assert not store.succeed(old, {"stale": True}, {"metrics.csv": b"old"}, {})
    assert store.succeed(new, {"fresh": True}, {"metrics.csv": b"new"}, {})
    # Once terminal, neither claim moves it again, and no second artifact set appears.
    assert not store.fail(old, "internal_error", "late")
    assert not store.fail(new, "internal_error", "late")
    assert store.claim(job_id, "duplicate-message") is None
    job = load_job(sessions, job_id)
    assert (job.status, job.result) == ("succeeded", {"fresh": True})
    with sessions() as session:
        contents = session.scalars(select(Artifact.content).where(Artifact.job_id == job_id)).all()
    assert contents == [b"new"]


def test_queued_jobs_missing_from_the_broker_are_sent_again(
    sessions: sessionmaker[Session],
) -> None:
    never_sent = add_job(sessions)  # dispatched_at NULL: the broker was down at submit
    lost = [add_job(sessions) for _ in range(3)]
    for seconds, job_id in zip((300, 200, 100), lost, strict=True):
        age(sessions, job_id, sent_s=seconds)
    just_sent = add_job(sessions)
    age(
        sessions, just_sent, sent_s=SETTINGS.sweep_interval_s / 3
    )  # a worker may be claiming it now
    broker = RecordingBroker(waiting=1)  # 3 sent long ago, 1 still waits: 2 were lost

    sweeper = RecoverySweeper(SETTINGS, sessions, broker)

    assert sweeper.sweep() is not None and broker.sent == [never_sent, lost[0], lost[1]]
    # Sent now: the next sweep with the same broker sends nothing more.
    broker.waiting = 4
    assert sweeper.sweep() is not None
    assert broker.sent == [never_sent, lost[0], lost[1]]


def test_with_the_broker_down_the_sweep_still_takes_back_and_sends_later(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    dead = claimed_job(sessions, store)
    age(sessions, dead, heartbeat_s=60)
    broker = RecordingBroker(down=True)
    sweeper = RecoverySweeper(SETTINGS, sessions, broker)

    report = sweeper.sweep()
    assert report is not None and report.broker_error == "ConnectionError"
    assert load_job(sessions, dead).status == "queued" and broker.sent == []

    broker.down = False
    assert sweeper.sweep() is not None and broker.sent == [dead]


@pytest.mark.parametrize("expired", [False, True])
def test_one_sweeper_per_database_until_its_lease_expires(
    sessions: sessionmaker[Session], expired: bool
) -> None:
    first = RecoverySweeper(SETTINGS, sessions, RecordingBroker())
    second = RecoverySweeper(SETTINGS, sessions, RecordingBroker())
    assert first.sweep() is not None
    assert first.sweep() is not None  # the holder renews its own lease
    if expired:  # the holder died: nobody renewed it for two intervals
        with sessions() as session:
            session.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
            session.commit()
    assert (second.sweep() is not None) is expired
