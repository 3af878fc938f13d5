"""Submitting and cancelling jobs: validation, reuse, idempotency, the in-flight cap.

The rules that make this safe under concurrency:
- Idempotency is enforced by the unique constraint (owner_key, idempotency_key): insert,
  and on IntegrityError read the row that won. A lookup first is only a fast path.
- The in-flight cap is checked after inserting, in the same transaction, while holding
  a per-owner lock (PostgreSQL advisory lock; SQLite has one writer at a time anyway),
  so concurrent submissions cannot all squeeze under the cap.
- The job is committed before its task is sent. If sending fails (the broker is down)
  the job is still accepted: it stays queued with no message out, and the recovery
  sweep (``app.services.recovery``) sends one once the broker is back.
- Cancellation is a conditional UPDATE ... WHERE status = ..., so it cannot lose a race
  against a worker claiming the job.

``new_job``, ``add_own_report``, ``check_in_flight``, ``dispatch`` and
``require_same_request`` are public because ``app.services.sweeps`` creates a sweep's jobs
with them, under the same rules.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.core.security import caller_words
from app.core.vocabulary import TERMINAL_STATUSES, JobStatus
from app.db import queries
from app.db.models import Artifact, Job, new_id, utcnow
from app.db.session import rows_changed
from app.schemas import API_PREFIX, JobCreate
from app.services import models
from app.services.dispatch import Dispatcher
from app.services.errors import (
    InvalidRequest,
    NotFound,
    StateConflict,
    TooManyJobsInFlight,
)
from app.services.messages import describe_errors, issue
from hwmodels import ENGINE_VERSION
from hwmodels.cost import estimate_cost, over_budget
from hwmodels.profile import HardwareProfile, UnknownPresetError, resolve_profile
from hwmodels.report import ARTIFACTS
from hwmodels.specs import StartFrom, StudySpec

logger = logging.getLogger(__name__)

REPORT_ARTIFACT = "report.json"
RETRY_AFTER_S = 30
"""What a client over its in-flight cap is told to wait; a study takes minutes."""

_PROFILE_LABELS = {"name", "description", "source"}


@dataclass(frozen=True)
class Submission:
    job: Job
    created: bool  # False: an earlier request with the same Idempotency-Key made it


def _canonical_hash(data: Any) -> str:
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


def spec_hash(spec: StudySpec, extra: dict[str, Any] | None = None) -> str:
    """Identity of the work: everything that affects results, not the profile's labels.

    Results depend only on this and the engine's version (training is seeded), so a
    study is reused across API keys, never across engine versions; the reusing caller
    learns only that it was reused, never the original's id. ``extra``: whatever else
    the work depends on (an evaluate-mode sweep's grid).
    """
    # The weights' content hash stays in; which upload holds them does not matter.
    exclude: dict[str, Any] = {"profile": _PROFILE_LABELS, "start_from": {"model_id"}}
    work = spec.model_dump(mode="json", exclude=exclude)
    return _canonical_hash({"engine": ENGINE_VERSION, "spec": work, **(extra or {})})


def request_hash(request: BaseModel) -> str:
    """Identity of a request for Idempotency-Key checks (defaults filled in)."""
    return _canonical_hash(request.model_dump(mode="json"))


def build_spec(
    request: JobCreate, max_cost: int | None = None, start_from: StartFrom | None = None
) -> StudySpec:
    """Resolve the profile and validate the whole study, or raise InvalidRequest.

    With ``max_cost``, a study whose estimated cost (hwmodels.cost) is above it is
    refused too: it would not finish within the time limit the budget stands for.
    """
    choice = request.profile
    form = "inline" if choice.inline is not None else "overrides"
    try:
        profile = resolve_profile(
            preset=choice.preset, overrides=choice.overrides, inline=choice.inline
        )
    except UnknownPresetError as exc:
        raise _invalid([issue(["body", "profile", "preset"], str(exc), "unknown_preset")]) from None
    except ValidationError as exc:
        raise _invalid(
            describe_errors(exc.errors(), HardwareProfile, prefix=["body", "profile", form])
        ) from None
    try:
        spec = StudySpec(
            dataset=request.dataset,
            network=request.network,
            profile=profile,
            training=request.training,
            evaluation=request.evaluation,
            start_from=start_from,
        )
    except ValidationError as exc:
        raise _invalid(describe_errors(exc.errors(), StudySpec, prefix=["body"])) from None
    if max_cost is not None:
        _check_cost(spec, max_cost)
    return spec


def _check_cost(spec: StudySpec, max_cost: int) -> None:
    """Raise InvalidRequest naming the largest part of the cost and what lowers it."""
    cost = estimate_cost(spec)
    message = over_budget(cost, max_cost)
    if message is not None:
        knob = cost.largest.knobs[0].split(".")
        raise _invalid([issue(["body", *knob], message, "cost_over_budget")])


def _invalid(errors: list[dict[str, Any]]) -> InvalidRequest:
    messages = [error["message"] for error in errors]
    summary = messages[0] if len(messages) == 1 else "; ".join(messages)
    return InvalidRequest(summary, errors)


def submit_job(
    session: Session,
    dispatcher: Dispatcher,
    *,
    owner: str,
    request: JobCreate,
    idempotency_key: str | None,
    max_in_flight: int,
    max_cost: int | None = None,
) -> Submission:
    """Create the job (or reuse finished work, or replay an idempotent request) and send it."""
    digest = request_hash(request)
    start_from = None
    if request.model_id is not None:  # 404 for another key's model, as for its jobs
        request, start_from = models.start_from_model(session, owner, request)
    spec = build_spec(request, max_cost, start_from)
    if idempotency_key is not None:
        earlier = queries.find_by_idempotency_key(session, owner, idempotency_key)
        if earlier is not None:
            return _replay(earlier, digest)
    work = spec_hash(spec)
    original = None if request.fresh else queries.find_reusable(session, work)
    job = new_job(owner, spec, work, digest, idempotency_key, original)
    try:
        queries.lock_owner(session, owner)
        session.add(job)
        session.flush()
        if original is not None:
            add_own_report(session, job, original.id)
        if job.status == JobStatus.QUEUED:
            check_in_flight(session, owner, max_in_flight)
        session.commit()
    except IntegrityError:
        session.rollback()
        winner = (
            queries.find_by_idempotency_key(session, owner, idempotency_key)
            if idempotency_key is not None
            else None
        )
        if winner is None:
            raise
        return _replay(winner, digest)
    if job.status == JobStatus.QUEUED:
        dispatch(session, dispatcher, job)
    return Submission(job=job, created=True)


def new_job(
    owner: str,
    spec: StudySpec,
    work: str,
    digest: str | None,
    idempotency_key: str | None,
    original: Job | None,
) -> Job:
    now = utcnow()
    job = Job(
        id=new_id(),
        owner_key=owner,
        status=JobStatus.QUEUED,
        spec=spec.model_dump(mode="json"),
        spec_hash=work,
        idempotency_key=idempotency_key,
        request_hash=digest,
        progress_fraction=0.0,
        attempts=0,
        revision=0,
        created_at=now,
        updated_at=now,
        dispatched_at=now,  # sent right after the commit; cleared if that fails
    )
    if original is not None:
        job.status = JobStatus.SUCCEEDED
        job.reused_from = original.id
        # The original's numbers under the caller's own profile labels: the original's
        # name, description and source belong to its owner.
        job.result = {**(original.result or {}), "profile": spec.profile.model_dump(mode="json")}
        job.progress_phase = "done"
        job.progress_fraction = 1.0
        job.started_at = job.finished_at = now
    return job


def add_own_report(session: Session, job: Job, original_id: str) -> None:
    """Give a reused job its own report.json (its labels); other artifacts stay shared."""
    if queries.get_artifact(session, original_id, REPORT_ARTIFACT) is None:
        return
    content = json.dumps(job.result, indent=2).encode()
    session.add(
        Artifact(
            job_id=job.id,
            name=REPORT_ARTIFACT,
            media_type=ARTIFACTS[REPORT_ARTIFACT],
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            content=content,
        )
    )


def _replay(job: Job, digest: str) -> Submission:
    require_same_request(job.request_hash, digest)
    return Submission(job=job, created=False)


def require_same_request(earlier_hash: str | None, digest: str) -> None:
    """An Idempotency-Key replay must carry the body that first used the key (else 422)."""
    if earlier_hash != digest:
        raise InvalidRequest(
            "this Idempotency-Key was already used with a different request body; "
            "send a new key for a new request",
            [
                issue(
                    ["header", "Idempotency-Key"],
                    "already used with a different request body",
                    "idempotency_key_reused",
                )
            ],
        )


def check_in_flight(session: Session, owner: str, limit: int) -> None:
    in_flight = queries.count_in_flight(session, owner)  # includes the job just added
    if in_flight > limit:
        session.rollback()
        who = caller_words(owner)
        has = "have" if who == "you" else "has"
        raise TooManyJobsInFlight(
            f"{who} already {has} {in_flight - 1} unfinished jobs or sweeps (queued, running "
            f"or cancelling) and the limit is {limit}; wait for one to finish or cancel one, "
            "then submit again",
            retry_after_s=RETRY_AFTER_S,
        )


def dispatch(session: Session, dispatcher: Dispatcher, job: Job) -> None:
    """Send the job's message; on failure leave it to the recovery sweep (no error)."""
    try:
        dispatcher.send_job(job.id)
    except Exception as exc:
        logger.warning(
            "job %s accepted but not sent (broker: %s); the sweep will send it",
            job.id,
            type(exc).__name__,
        )
        _mark_unsent(session, job)


def _mark_unsent(session: Session, job: Job) -> None:
    """Clear ``dispatched_at``, so the sweep sends the message without waiting."""
    try:
        session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == JobStatus.QUEUED)
            .values(dispatched_at=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    except SQLAlchemyError:  # the sweep still finds the job: it is missing from the broker
        session.rollback()
        logger.warning("job %s: could not record the failed send", job.id, exc_info=True)


def get_owned_job(session: Session, owner: str, job_id: str) -> Job:
    """The caller's job, or NotFound (also for another key's job: ids do not leak)."""
    job = queries.get_owned_job(session, owner, job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} not found; GET {API_PREFIX}/jobs lists your jobs")
    return job


def require_succeeded(job: Job, what: str) -> None:
    """Raise StateConflict, naming the status, unless the job has succeeded."""
    if job.status == JobStatus.SUCCEEDED:
        return
    if job.status in TERMINAL_STATUSES:
        hint = f" ({job.error_message})" if job.error_message else ""
        raise StateConflict(f"job {job.id} is {job.status}{hint}, so it has no {what}")
    raise StateConflict(
        f"job {job.id} is {job.status}; its {what} will be available once it has succeeded "
        f"(poll GET {API_PREFIX}/jobs/{job.id})"
    )


_CANCEL_STEPS = ((JobStatus.QUEUED, JobStatus.CANCELLED), (JobStatus.RUNNING, JobStatus.CANCELLING))


def cancel_job(session: Session, owner: str, job_id: str) -> Job:
    """queued -> cancelled now; running -> cancelling (the worker stops at its next check).

    Each step is a conditional UPDATE, so a worker claiming the job at the same moment
    makes the first step miss and the second one hit; a few rounds cover a job that a
    retrying worker put back in the queue in between.
    """
    for _ in range(3):
        for current, target in _CANCEL_STEPS:
            now = utcnow()
            values: dict[str, Any] = {"status": target, "updated_at": now}
            if target == JobStatus.CANCELLED:
                values["finished_at"] = now
            changed = rows_changed(
                session,
                update(Job)
                .where(Job.id == job_id, Job.owner_key == owner, Job.status == current)
                .values(revision=Job.revision + 1, **values)
                .execution_options(synchronize_session=False),
            )
            if changed == 1:
                session.commit()
                return get_owned_job(session, owner, job_id)
        session.rollback()
        job = get_owned_job(session, owner, job_id)
        if job.status == JobStatus.CANCELLING:
            return job
        if job.status in TERMINAL_STATUSES:
            raise StateConflict(
                f"job {job_id} is already {job.status}; only queued or running jobs can be "
                "cancelled"
            )
    raise StateConflict(f"job {job_id} changed state while cancelling; try again")
