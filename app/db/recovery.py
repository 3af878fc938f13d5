"""The recovery sweep's reads and writes: stale jobs taken back, unsent jobs found.

A worker that dies (SIGKILL, out of memory, the hard time limit) leaves its job
``running`` with a heartbeat that stops moving; a message that never reached the broker,
or that a broker restart lost, leaves a job ``queued`` with nothing to wake a worker.
These queries find both. Every write is a conditional UPDATE, so a sweep that races a
worker or another sweep changes a job at most once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.vocabulary import ErrorCode, JobStatus
from app.db.job_store import add_event, release_values
from app.db.models import Job, Lease, utcnow
from app.db.session import rows_changed

RECOVERY_LEASE = "recovery-sweep"


def take_lease(session: Session, name: str, holder: str, ttl_s: float) -> bool:
    """Hold the lease ``name`` for ``ttl_s`` more seconds if it is free, expired or ours."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl_s)
    taken = rows_changed(
        session,
        update(Lease)
        .where(
            Lease.name == name,
            or_(Lease.holder == holder, Lease.expires_at.is_(None), Lease.expires_at < now),
        )
        .values(holder=holder, expires_at=expires)
        .execution_options(synchronize_session=False),
    )
    if taken == 1:
        session.commit()
        return True
    session.rollback()
    try:  # the first sweeper ever creates the row; a concurrent creator wins instead
        session.add(Lease(name=name, holder=holder, expires_at=expires))
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
        return False


@dataclass
class TakenBack:
    """What one sweep did with jobs whose worker stopped sending heartbeats."""

    requeued: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # failed: worker_lost, attempts spent
    cancelled: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.requeued or self.lost or self.cancelled)


def take_back_stale_jobs(session: Session, *, stale_after_s: float, max_attempts: int) -> TakenBack:
    """Take back every owned job whose heartbeat is older than ``stale_after_s``.

    ``cancelling`` becomes ``cancelled`` (the cancel the dead worker never honoured);
    ``running`` goes back to ``queued`` with no message out (the sweep sends one), or, on
    its last allowed attempt, fails with ``worker_lost``. A worker that was only slow
    finds the job no longer its own at its next write and drops it.
    """
    now = utcnow()
    stale = or_(
        Job.heartbeat_at.is_(None), Job.heartbeat_at < now - timedelta(seconds=stale_after_s)
    )
    lost = {
        "status": JobStatus.FAILED,
        "error_code": ErrorCode.WORKER_LOST,
        "error_message": worker_lost_message(max_attempts),
        "finished_at": now,
        "worker": None,
        "revision": Job.revision + 1,
        "updated_at": now,
    }
    done = TakenBack()
    steps: list[tuple[JobStatus, list[ColumnElement[bool]], dict[str, Any], list[str]]] = [
        (JobStatus.CANCELLING, [], release_values(JobStatus.CANCELLED, now), done.cancelled),
        (JobStatus.RUNNING, [Job.attempts >= max_attempts], lost, done.lost),
        (JobStatus.RUNNING, [], release_values(JobStatus.QUEUED, now), done.requeued),
    ]
    for current, conditions, values, taken in steps:
        taken.extend(
            session.scalars(
                update(Job)
                .where(Job.status == current, stale, *conditions)
                .values(**values)
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
        )
        data = {"status": values["status"], "reason": ErrorCode.WORKER_LOST}
        for job_id in taken:
            add_event(session, job_id, "state", None, data)
    session.commit()
    return done


def worker_lost_message(attempts: int) -> str:
    """What a user reads when the job's workers kept dying."""
    return (
        f"the worker running this job stopped responding on each of its {attempts} runs "
        "(killed, out of memory, or past the hard time limit), so it was not started again; "
        "if this job is large, ask for fewer epochs, samples or chips, or smaller layers"
    )


def jobs_to_send(session: Session, *, in_broker: int, sent_before: datetime) -> list[str]:
    """Queued jobs that need a message: never sent, or lost from the broker.

    A job whose message went out before ``sent_before`` (time enough for a worker to have
    claimed it) and that is still queued should have its message waiting in the broker;
    when fewer messages wait than such jobs, the difference was lost (a broker restart
    without persistence) and the oldest are sent again. A duplicate is harmless: only
    one delivery can claim the job.
    """
    unsent = session.scalars(
        select(Job.id)
        .where(Job.status == JobStatus.QUEUED, Job.dispatched_at.is_(None))
        .order_by(Job.created_at)
    ).all()
    waiting = session.scalars(
        select(Job.id)
        .where(Job.status == JobStatus.QUEUED, Job.dispatched_at < sent_before)
        .order_by(Job.dispatched_at)
    ).all()
    missing = max(len(waiting) - in_broker, 0)
    return [*unsent, *waiting[:missing]]


def mark_dispatched(session: Session, job_id: str) -> None:
    """Record that a message for ``job_id`` went out now."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(dispatched_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.commit()
