"""The worker's side of a job's life: claim, progress, and the one final transition.

Every write is a conditional UPDATE on the job row, so two workers never run one job and
a worker that lost its job (cancelled while queued, or handed to another worker by crash
recovery) cannot overwrite what happened since. A worker's hold on a job is its
``Claim``: the job id plus the attempt number the claim set; every later write checks
both, so a stale worker's writes change nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core.vocabulary import OWNED_STATUSES, JobKind, JobStatus
from app.db.models import Artifact, Job, JobEvent, UploadedModel, utcnow
from app.db.session import rows_changed

log = logging.getLogger(__name__)

T = TypeVar("T")

# A unique (job_id, seq) clash means another writer added an event at the same moment.
_SEQ_RETRIES = 5


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one job: valid while the row's attempts still equal ``attempt``."""

    job_id: str
    attempt: int
    worker: str
    spec: dict[str, Any]
    kind: str = JobKind.STUDY
    sweep_points: list[dict[str, Any]] | None = None
    """What an evaluate-mode sweep job scores (``hwmodels.sweep_spec.SweepPoint``)."""


class JobStore:
    """Job transitions a worker makes, each in its own short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # -- claiming ---------------------------------------------------------------------

    def claim(self, job_id: str, worker: str) -> Claim | None:
        """Take a queued job: exactly one caller wins; None if it is not (or no longer) queued."""
        now = utcnow()

        def write(session: Session) -> Claim | None:
            changed = rows_changed(
                session,
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                .values(
                    status=JobStatus.RUNNING,
                    attempts=Job.attempts + 1,
                    started_at=now,
                    worker=worker,
                    heartbeat_at=now,
                    error_code=None,
                    error_message=None,
                    revision=Job.revision + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False),
            )
            if changed != 1:
                return None
            attempt, spec, kind, points = session.execute(
                select(Job.attempts, Job.spec, Job.kind, Job.sweep_points).where(Job.id == job_id)
            ).one()
            add_event(
                session, job_id, "state", None, {"status": JobStatus.RUNNING, "attempt": attempt}
            )
            return Claim(
                job_id=job_id,
                attempt=attempt,
                worker=worker,
                spec=dict(spec),
                kind=kind,
                sweep_points=points,
            )

        return self._transaction(write)

    def status(self, job_id: str) -> str | None:
        """The job's status now, or None if the job does not exist."""
        with self._sessions() as session:
            return session.execute(select(Job.status).where(Job.id == job_id)).scalar()

    def model_weights(self, model_id: str, sha256: str) -> bytes | None:
        """An uploaded model's stored weights, if it still holds exactly these (None: it
        was deleted since the job was submitted)."""
        with self._sessions() as session:
            content = session.execute(
                select(UploadedModel.content).where(
                    UploadedModel.id == model_id, UploadedModel.sha256 == sha256
                )
            ).scalar()
        return content

    def should_stop(self, claim: Claim) -> bool:
        """True when the worker must stop: cancel requested, or the job is no longer ours."""
        with self._sessions() as session:
            row = session.execute(
                select(Job.status, Job.attempts).where(Job.id == claim.job_id)
            ).one_or_none()
        if row is None:
            return True
        status, attempts = row
        return status != JobStatus.RUNNING or attempts != claim.attempt

    # -- while running ----------------------------------------------------------------

    def record_progress(
        self,
        claim: Claim,
        *,
        phase: str | None,
        fraction: float,
        epoch: int | None,
        event: tuple[str, dict[str, Any]] | None = None,
    ) -> bool:
        """Store progress and the heartbeat, and append ``event`` (kind, data) if given.

        Returns False when the job is no longer ours (nothing is written then).
        """
        now = utcnow()
        values: dict[str, Any] = {
            "progress_phase": phase,
            "progress_fraction": min(max(fraction, 0.0), 1.0),
            "heartbeat_at": now,
            "revision": Job.revision + 1,
            "updated_at": now,
        }
        if epoch is not None:
            values["progress_epoch"] = epoch

        def write(session: Session) -> bool:
            if not _update_owned(session, claim, values):
                return False
            if event is not None:
                add_event(session, claim.job_id, event[0], phase, event[1])
            return True

        return self._transaction(write)

    def heartbeat(self, claim: Claim) -> bool:
        """Stamp the job as alive; False when it is no longer ours (nothing written)."""

        def write(session: Session) -> bool:
            return _update_owned(session, claim, {"heartbeat_at": utcnow()})

        return self._transaction(write)

    # -- the final transition ---------------------------------------------------------

    def succeed(
        self,
        claim: Claim,
        result: dict[str, Any],
        artifacts: Mapping[str, bytes],
        media_types: Mapping[str, str],
    ) -> bool:
        """Result, artifacts and status in ONE transaction: a reader sees all or nothing.

        A cancel requested after the engine's last check does not undo finished work:
        a ``cancelling`` job that completes is ``succeeded``.
        """
        now = utcnow()
        values = {
            "status": JobStatus.SUCCEEDED,
            "result": result,
            "progress_fraction": 1.0,
            "progress_phase": "done",
            "finished_at": now,
            "heartbeat_at": now,
            "revision": Job.revision + 1,
            "updated_at": now,
        }

        def write(session: Session) -> bool:
            if not _update_owned(session, claim, values):
                return False
            for name, content in artifacts.items():
                session.add(
                    Artifact(
                        job_id=claim.job_id,
                        name=name,
                        media_type=media_types.get(name, "application/octet-stream"),
                        size=len(content),
                        sha256=hashlib.sha256(content).hexdigest(),
                        content=content,
                    )
                )
            add_event(session, claim.job_id, "state", "done", {"status": JobStatus.SUCCEEDED})
            return True

        return self._transaction(write)

    def cancel(self, claim: Claim) -> bool:
        """The engine stopped at a cancel check: the job is cancelled."""
        return self._finish(claim, JobStatus.CANCELLED, {})

    def fail(self, claim: Claim, code: str, message: str) -> bool:
        """The job failed for good; ``code`` is stable for programs, ``message`` for people."""
        return self._finish(
            claim, JobStatus.FAILED, {"error_code": code, "error_message": message[:4000]}
        )

    def requeue(self, claim: Claim, reason: str) -> str | None:
        """Give the job back after a transient error; the recovery sweep sends it again.

        Returns the status the job was left in: ``queued``, or ``cancelled`` when a cancel
        was requested meanwhile (retrying it would be pointless); None if it was not ours.
        """
        now = utcnow()

        def write(session: Session) -> str | None:
            for current, target in RELEASES:
                changed = rows_changed(
                    session,
                    update(Job)
                    .where(
                        Job.id == claim.job_id,
                        Job.attempts == claim.attempt,
                        Job.status == current,
                    )
                    .values(**release_values(target, now))
                    .execution_options(synchronize_session=False),
                )
                if changed == 1:
                    data = {"status": target, "reason": reason}
                    add_event(session, claim.job_id, "state", None, data)
                    return target
            return None

        return self._transaction(write)

    def _finish(self, claim: Claim, status: str, extra: dict[str, Any]) -> bool:
        now = utcnow()
        values = {
            "status": status,
            "finished_at": now,
            "heartbeat_at": now,
            "revision": Job.revision + 1,
            "updated_at": now,
            **extra,
        }
        data: dict[str, Any] = {"status": status}
        if "error_code" in extra:
            data["error_code"] = extra["error_code"]

        def write(session: Session) -> bool:
            if not _update_owned(session, claim, values):
                return False
            add_event(session, claim.job_id, "state", None, data)
            return True

        return self._transaction(write)

    # -- plumbing ---------------------------------------------------------------------

    def _transaction(self, write: Callable[[Session], T]) -> T:
        """Run ``write`` in one transaction; retry when an event's seq number clashed."""
        for attempt in range(_SEQ_RETRIES):
            with self._sessions() as session:
                try:
                    outcome = write(session)
                    session.commit()
                    return outcome
                except IntegrityError:
                    session.rollback()
                    if attempt == _SEQ_RETRIES - 1:
                        raise
                    log.info("event number taken by a concurrent writer; writing again")
        raise AssertionError("unreachable")


def release_jobs_of_worker(sessions: sessionmaker[Session], worker_prefix: str) -> list[str]:
    """Hand back the jobs of a worker that is being stopped on purpose.

    Running jobs go back to ``queued`` (the caller sends their messages again); jobs
    whose cancel was already requested become ``cancelled``. The stopping worker sees
    the change at its next cancel check and drops the job without writing anything.
    Returns the ids put back in the queue.
    """
    now = utcnow()
    released: dict[str, list[str]] = {}
    with sessions() as session:
        # UPDATE ... RETURNING: the write comes first, so SQLite never has to turn a read
        # into a write while the stopping worker is still writing progress.
        for current, target in RELEASES:
            released[target] = list(
                session.scalars(
                    update(Job)
                    .where(
                        Job.status == current,
                        Job.worker.startswith(worker_prefix, autoescape=True),
                    )
                    .values(**release_values(target, now))
                    .returning(Job.id)
                    .execution_options(synchronize_session=False)
                )
            )
            for job_id in released[target]:
                add_event(session, job_id, "state", None, {"status": target, "reason": "stopped"})
        session.commit()
    return released[JobStatus.QUEUED]


RELEASES = ((JobStatus.RUNNING, JobStatus.QUEUED), (JobStatus.CANCELLING, JobStatus.CANCELLED))
"""A released job: running goes back to the queue, a requested cancel takes effect."""


def release_values(target: str, now: datetime) -> dict[str, Any]:
    """The column values of a job released to ``target`` (queued or cancelled)."""
    values: dict[str, Any] = {
        "status": target,
        "worker": None,
        "revision": Job.revision + 1,
        "updated_at": now,
    }
    if target == JobStatus.CANCELLED:
        values["finished_at"] = now
    else:  # the recovery sweep sends the message that runs it again
        values["dispatched_at"] = None
    return values


def _update_owned(session: Session, claim: Claim, values: dict[str, Any]) -> bool:
    """UPDATE the job only while ``claim`` still owns it; True if the row changed."""
    changed = rows_changed(
        session,
        update(Job)
        .where(
            Job.id == claim.job_id,
            Job.attempts == claim.attempt,
            Job.status.in_(OWNED_STATUSES),
        )
        .values(**values)
        .execution_options(synchronize_session=False),
    )
    return changed == 1


def add_event(
    session: Session, job_id: str, kind: str, phase: str | None, data: dict[str, Any]
) -> None:
    """Append an event with the next sequence number of its job."""
    last = session.execute(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id)).scalar()
    session.add(JobEvent(job_id=job_id, seq=(last or 0) + 1, kind=kind, phase=phase, data=data))
    session.flush()
