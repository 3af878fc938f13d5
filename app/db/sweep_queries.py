"""Read queries for sweeps and their jobs, for PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.db.models import Job, Sweep


def get_owned_sweep(session: Session, owner: str, sweep_id: str) -> Sweep | None:
    """The sweep if it belongs to ``owner``; another owner's sweep is treated as absent."""
    query = select(Sweep).where(Sweep.id == sweep_id, Sweep.owner_key == owner)
    return session.scalars(query.execution_options(populate_existing=True)).first()


def find_sweep_by_idempotency_key(session: Session, owner: str, key: str) -> Sweep | None:
    return session.scalars(
        select(Sweep).where(Sweep.owner_key == owner, Sweep.idempotency_key == key)
    ).first()


def list_sweeps(
    session: Session, owner: str, *, limit: int, before: tuple[datetime, str] | None
) -> Sequence[Sweep]:
    """Newest first; ``before`` is the (created_at, id) of the last sweep already shown."""
    query = select(Sweep).where(Sweep.owner_key == owner)
    if before is not None:
        created_at, sweep_id = before
        query = query.where(
            or_(
                Sweep.created_at < created_at,
                and_(Sweep.created_at == created_at, Sweep.id < sweep_id),
            )
        )
    return session.scalars(
        query.order_by(Sweep.created_at.desc(), Sweep.id.desc()).limit(limit)
    ).all()


def sweep_jobs(session: Session, sweep_ids: Sequence[str]) -> dict[str, list[Job]]:
    """The jobs of each sweep, in point order (creation order), in one query."""
    found: dict[str, list[Job]] = {sweep_id: [] for sweep_id in sweep_ids}
    if not sweep_ids:
        return found
    rows = session.scalars(
        select(Job)
        .where(Job.sweep_id.in_(sweep_ids))
        .order_by(Job.created_at, Job.id)
        .execution_options(populate_existing=True)
    )
    for job in rows:
        assert job.sweep_id is not None
        found[job.sweep_id].append(job)
    return found
