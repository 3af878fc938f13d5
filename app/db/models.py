"""The database schema: API keys, jobs, their events and artifacts, uploaded models
(SQLAlchemy 2, typed).

The job row is the source of truth for everything a user sees; a broker message only
wakes a worker with a job id. The same models run on PostgreSQL and SQLite.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.core.vocabulary import JobKind, JobStatus

IDEMPOTENCY_KEY_MAX_LENGTH = 200
ARTIFACT_NAME_MAX_LENGTH = 100
MODEL_NAME_MAX_LENGTH = 200
"""Column widths a request value must fit (the API declares them on its parameters)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    pass


class ApiKey(Base):
    """A caller. Only the SHA-256 of the secret is stored; the secret is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """One robustness study requested by one API key (or the local user, owner NULL)."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("owner_key", "idempotency_key", name="uq_jobs_owner_idempotency"),
        Index("ix_jobs_owner_created", "owner_key", "created_at", "id"),
        Index("ix_jobs_spec_hash_status", "spec_hash", "status"),
        Index("ix_jobs_owner_status", "owner_key", "status"),
        # Jobs that ran (not reused), for the duration histogram of /metrics.
        Index(
            "ix_jobs_ran",
            "status",
            "finished_at",
            "started_at",
            postgresql_where=text("reused_from IS NULL"),
            sqlite_where=text("reused_from IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # API key id, or "local" for the unauthenticated loopback user: never NULL, so the
    # unique constraint on (owner_key, idempotency_key) holds on every database.
    owner_key: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED, index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    reused_from: Mapped[str | None] = mapped_column(String(36))

    progress_phase: Mapped[str | None] = mapped_column(String(40))
    progress_fraction: Mapped[float] = mapped_column(default=0.0)
    progress_epoch: Mapped[int | None] = mapped_column(Integer)

    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)

    attempts: Mapped[int] = mapped_column(default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the last message that runs this job was sent; NULL: none went out (the broker
    # was down, or the job was handed back), so the recovery sweep sends one.
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped on every change a client can see; the ETag is derived from it.
    revision: Mapped[int] = mapped_column(default=0)
    # What the worker runs: a study, or the evaluate-mode sweep over ``sweep_points``.
    kind: Mapped[str] = mapped_column(String(20), default=JobKind.STUDY, server_default="study")
    # The sweep this job is a point (retrain) or the whole evaluation (evaluate) of.
    sweep_id: Mapped[str | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), index=True
    )
    sweep_points: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    events: Mapped[list[JobEvent]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="JobEvent.seq"
    )
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="job", cascade="all, delete-orphan"
    )


class Sweep(Base):
    """A robustness sweep: one or two profile parameters varied over a base study.

    Its status and progress are derived from its child jobs (``Job.sweep_id``), which
    carry all the recovery guarantees; the row holds only what the caller asked for.
    """

    __tablename__ = "sweeps"
    __table_args__ = (
        UniqueConstraint("owner_key", "idempotency_key", name="uq_sweeps_owner_idempotency"),
        Index("ix_sweeps_owner_created", "owner_key", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_key: Mapped[str] = mapped_column(String(36))
    mode: Mapped[str] = mapped_column(String(16))
    # [{"parameter": "weight_bits", "values": [2, 4, 8]}, ...]
    axes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The base study as validated (StudySpec, resolved profile).
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UploadedModel(Base):
    """Trained float weights a caller uploaded, to be scored by jobs naming its id.

    ``content`` is the checked weights in hwscore's canonical form (float32 safetensors
    under hwscore's tensor names), so a worker reads it without checking it again and
    ``sha256`` (of that content) identifies the weights in a job's spec hash.
    """

    __tablename__ = "models"
    __table_args__ = (Index("ix_models_owner_created", "owner_key", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    owner_key: Mapped[str] = mapped_column(String(36))
    name: Mapped[str | None] = mapped_column(String(MODEL_NAME_MAX_LENGTH))
    dataset: Mapped[str] = mapped_column(String(40))
    network: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobEvent(Base):
    """A progress event: a phase change, an epoch's loss and accuracy, a state change."""

    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_job_events_job_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    phase: Mapped[str | None] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    job: Mapped[Job] = relationship(back_populates="events")


class Artifact(Base):
    """A file a study produced: weights, programmed device levels, metrics."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "name", name="uq_artifacts_job_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(ARTIFACT_NAME_MAX_LENGTH))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    job: Mapped[Job] = relationship(back_populates="artifacts")


class Lease(Base):
    """A named role one process holds at a time, e.g. the recovery sweeper of a database.

    Taken by a conditional UPDATE (free, expired, or already ours), so it works the same
    on PostgreSQL and SQLite; a holder that dies simply stops renewing it.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
