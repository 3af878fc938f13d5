"""A migrated, empty database per test, on SQLite and on PostgreSQL, and job factories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.job_store import JobStore
from app.db.models import Job, JobEvent
from app.db.session import make_engine, upgrade_database
from hwmodels.specs import EvaluationSettings, NetworkSpec, StudySpec, TrainingSettings
from tests.integration.services import fresh_postgres_database

TINY_SPEC = StudySpec(
    network=NetworkSpec(hidden=[16]),
    training=TrainingSettings(epochs=1, hw_epochs=1, train_samples=200),
    evaluation=EvaluationSettings(chips=2, test_samples=100),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
        upgrade_database(url)
        yield url
        return
    with fresh_postgres_database("hwscore_wk") as url:
        upgrade_database(url)
        yield url


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def store(sessions: sessionmaker[Session]) -> JobStore:
    return JobStore(sessions)


def add_job(
    sessions: sessionmaker[Session], *, status: str = "queued", spec: dict[str, Any] | None = None
) -> str:
    """Insert a job row as the API would, and return its id."""
    with sessions() as session:
        job = Job(
            owner_key="local",
            status=status,
            spec=spec if spec is not None else TINY_SPEC.model_dump(mode="json"),
            spec_hash="0" * 64,
        )
        session.add(job)
        session.commit()
        return job.id


def load_job(sessions: sessionmaker[Session], job_id: str) -> Job:
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def events(sessions: sessionmaker[Session], job_id: str) -> list[JobEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)
            )
        )


def set_status(sessions: sessionmaker[Session], job_id: str, status: str) -> None:
    """Change a job's status as the API's cancel endpoint would."""
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status = status
        session.commit()
