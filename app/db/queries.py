"""Read queries and small writes the API needs, in one place, for PostgreSQL and SQLite."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, func, or_, select, text
from sqlalchemy.orm import Session, defer

from app.core.vocabulary import IN_FLIGHT_STATUSES, JobStatus
from app.db.models import Artifact, Job, JobEvent, Sweep


def get_owned_job(session: Session, owner: str, job_id: str) -> Job | None:
    """The job if it belongs to ``owner``; another owner's job is treated as absent."""
    query = select(Job).where(Job.id == job_id, Job.owner_key == owner)
    return session.scalars(query.execution_options(populate_existing=True)).first()


def find_by_idempotency_key(session: Session, owner: str, key: str) -> Job | None:
    return session.scalars(
        select(Job).where(Job.owner_key == owner, Job.idempotency_key == key)
    ).first()


def find_reusable(session: Session, spec_hash: str) -> Job | None:
    """The latest original (not itself reused) succeeded job with this spec, any owner."""
    return session.scalars(
        select(Job)
        .where(
            Job.spec_hash == spec_hash, Job.status == JobStatus.SUCCEEDED, Job.reused_from.is_(None)
        )
        .order_by(Job.finished_at.desc())
        .limit(1)
    ).first()


def count_in_flight(session: Session, owner: str) -> int:
    """Unfinished work of ``owner``: a sweep with unfinished jobs counts once, like a job."""
    work = func.coalesce(Job.sweep_id, Job.id)
    return (
        session.scalar(
            select(func.count(func.distinct(work)))
            .select_from(Job)
            .where(Job.owner_key == owner, Job.status.in_(IN_FLIGHT_STATUSES))
        )
        or 0
    )


def lock_owner(session: Session, owner: str) -> None:
    """Serialise job submissions of one owner until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock keyed by the owner (works for the
    'local' owner too, which has no api_keys row to lock). SQLite: nothing to do, since
    it lets one writer at a time, and the caller writes before it counts.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"hwscore-owner:{owner}".encode()).digest()
    session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"),
        {"key": int.from_bytes(digest[:8], "big", signed=True)},
    )


def recent_job_times(
    session: Session, owner: str, *, since: datetime, limit: int
) -> list[datetime]:
    """Creation times of ``owner``'s newest submissions after ``since``, newest first.

    A submission is a job of its own or a whole sweep (its jobs are not counted one by
    one), both read through their owner indexes.
    """
    jobs = session.scalars(
        select(Job.created_at)
        .where(Job.owner_key == owner, Job.created_at > since, Job.sweep_id.is_(None))
        .order_by(Job.created_at.desc())
        .limit(limit)
    )
    sweeps = session.scalars(
        select(Sweep.created_at)
        .where(Sweep.owner_key == owner, Sweep.created_at > since)
        .order_by(Sweep.created_at.desc())
        .limit(limit)
    )
    return sorted([*jobs, *sweeps], reverse=True)[:limit]


def list_jobs(
    session: Session,
    owner: str,
    *,
    status: str | None,
    limit: int,
    before: tuple[datetime, str] | None,
) -> Sequence[Job]:
    """Newest first; ``before`` is the (created_at, id) of the last job already shown."""
    query = select(Job).where(Job.owner_key == owner)
    if status is not None:
        query = query.where(Job.status == status)
    if before is not None:
        created_at, job_id = before
        query = query.where(
            or_(Job.created_at < created_at, and_(Job.created_at == created_at, Job.id < job_id))
        )
    return session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)).all()


def list_events(session: Session, job_id: str, *, after: int, limit: int) -> Sequence[JobEvent]:
    return session.scalars(
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.seq > after)
        .order_by(JobEvent.seq)
        .limit(limit)
    ).all()


def list_epoch_events(session: Session, job_id: str, limit: int = 2000) -> Sequence[JobEvent]:
    """The job's epoch events in order (its training curve while it runs)."""
    return session.scalars(
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.kind == "epoch")
        .order_by(JobEvent.seq)
        .limit(limit)
    ).all()


def list_artifacts(session: Session, job_id: str) -> Sequence[Artifact]:
    """Artifact metadata, without loading the contents."""
    return session.scalars(
        select(Artifact)
        .where(Artifact.job_id == job_id)
        .options(defer(Artifact.content))
        .order_by(Artifact.name)
    ).all()


def get_artifact(session: Session, job_id: str, name: str) -> Artifact | None:
    return session.scalars(
        select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name)
    ).first()


def list_job_artifacts(session: Session, job: Job) -> list[Artifact]:
    """A job's artifacts; a reused job's come from the original, its own ones first."""
    found = {a.name: a for a in list_artifacts(session, job.reused_from)} if job.reused_from else {}
    found.update({a.name: a for a in list_artifacts(session, job.id)})
    return sorted(found.values(), key=lambda artifact: artifact.name)


def find_job_artifact(session: Session, job: Job, name: str) -> Artifact | None:
    """One artifact of a job, looked up like list_job_artifacts."""
    own = get_artifact(session, job.id, name)
    if own is None and job.reused_from:
        return get_artifact(session, job.reused_from, name)
    return own


def job_counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    return {status: count for status, count in rows}


def _duration_seconds(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", Job.finished_at - Job.started_at)
    return cast((func.julianday(Job.finished_at) - func.julianday(Job.started_at)) * 86400.0, Float)


def job_duration_histogram(
    session: Session, buckets: Sequence[float]
) -> dict[str, tuple[list[int], float, int]]:
    """Per final status: cumulative counts per bucket bound, sum of seconds, count.

    Over every job that ran to an end (succeeded or failed, started, not reused).
    """
    duration = _duration_seconds(session.get_bind().dialect.name)
    columns = [func.sum(case((duration <= bound, 1), else_=0)) for bound in buckets]
    rows = session.execute(
        select(Job.status, *columns, func.sum(duration), func.count())
        .where(
            Job.status.in_((JobStatus.SUCCEEDED, JobStatus.FAILED)),
            Job.started_at.is_not(None),
            Job.finished_at.is_not(None),
            Job.reused_from.is_(None),
        )
        .group_by(Job.status)
    ).all()
    return {
        row[0]: ([int(c or 0) for c in row[1 : 1 + len(buckets)]], float(row[-2] or 0), row[-1])
        for row in rows
    }
