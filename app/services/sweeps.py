"""Submitting, reading and cancelling robustness sweeps, on the job machinery.

A sweep is a row that records what was asked plus ordinary job rows (``Job.sweep_id``)
that do the work, so claiming, heartbeats, attempts, the recovery sweep, cancellation
and exactly-once results are the jobs' own:
- ``retrain``: one study job per point (the base study with the point's profile);
  identical finished work is reused per point, as for any job;
- ``evaluate``: one job of kind ``sweep-evaluate`` that trains the base study once and
  scores it on every point (``hwmodels.sweep``).
The sweep and its jobs are inserted in one transaction under the owner's lock, with the
same idempotency, in-flight and cost checks as a job (``app.services.jobs``); the jobs'
messages go out after the commit, and the recovery sweep sends any that could not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.vocabulary import IN_FLIGHT_STATUSES, JobKind, JobStatus, SweepMode
from app.db import queries, sweep_queries
from app.db.models import Job, Sweep, new_id, utcnow
from app.schemas import API_PREFIX
from app.services import jobs as job_service
from app.services.dispatch import Dispatcher
from app.services.errors import InvalidRequest, NotFound, StateConflict
from app.services.messages import describe_errors, issue
from app.services.sweep_curve import sweep_status
from app.sweep_schemas import SweepCreate
from hwmodels.cost import CostPart, StudyCost, estimate_cost, over_budget
from hwmodels.profile import HardwareProfile
from hwmodels.specs import StudySpec
from hwmodels.sweep_spec import MAX_POINTS, PARAMETERS, PointValueError, SweepPoint, build_points


@dataclass(frozen=True)
class SweepSubmission:
    sweep: Sweep
    created: bool  # False: an earlier request with the same Idempotency-Key made it


def build_sweep(request: SweepCreate, max_cost: int | None) -> tuple[StudySpec, list[SweepPoint]]:
    """Validate the base study and the grid, or raise InvalidRequest naming the field."""
    if request.study.model_id is not None:
        message = "sweeps do not take an uploaded model yet; submit one job per profile instead"
        raise _invalid(["body", "study", "model_id"], message, "model_id_unsupported")
    try:
        spec = job_service.build_spec(request.study)
    except InvalidRequest as exc:
        raise _under_study(exc) from None
    axes = _checked_axes(request)
    try:
        points = build_points(spec.profile, axes)
    except PointValueError as exc:
        loc: list[str | int] = ["body", "axes", exc.axis, "values", exc.position]
        described = describe_errors(exc.errors, HardwareProfile)
        reason = described[0]["message"] if described else str(exc)
        message = f"axes[{exc.axis}].values[{exc.position}] makes an invalid profile: {reason}"
        raise _invalid(loc, message, "invalid_point") from None
    if max_cost is not None:
        _check_sweep_cost(request.mode, spec, points, max_cost)
    return spec, points


def _checked_axes(request: SweepCreate) -> list[tuple[str, list[float]]]:
    axes: list[tuple[str, list[float]]] = []
    size = 1
    for number, axis in enumerate(request.axes):
        info = PARAMETERS[axis.parameter]
        where: list[str | int] = ["body", "axes", number]
        if any(axis.parameter == parameter for parameter, _ in axes):
            raise _invalid(
                [*where, "parameter"],
                f"{axis.parameter} is swept twice; a sweep varies two different parameters",
                "duplicate_parameter",
            )
        if info.integer and not all(isinstance(value, int) for value in axis.values):
            raise _invalid(
                [*where, "values"],
                f"{axis.parameter} takes whole numbers (e.g. [2, 4, 8]), got {axis.values}",
                "integer_values",
            )
        if len(set(axis.values)) != len(axis.values):
            raise _invalid(
                [*where, "values"],
                f"{axis.parameter} lists a value twice; give each value once",
                "duplicate_values",
            )
        size *= len(axis.values)
        axes.append((axis.parameter, list(axis.values)))
    if size > MAX_POINTS:
        raise _invalid(
            ["body", "axes"],
            f"the sweep has {size} points and the limit is {MAX_POINTS}; use fewer values",
            "too_many_points",
        )
    return axes


def _check_sweep_cost(
    mode: SweepMode, spec: StudySpec, points: list[SweepPoint], max_cost: int
) -> None:
    """Retrain: every point must fit the job budget. Evaluate: the one job must, with
    its two extra chip evaluations per point."""
    if mode == SweepMode.RETRAIN:
        for point in points:
            _within_budget(estimate_cost(_point_spec(spec, point)), max_cost)
        return
    cost = estimate_cost(spec)
    evaluation = next(part for part in cost.parts if part.name == "chip evaluation")
    extra = CostPart(
        "sweep evaluation",
        2 * len(points) * evaluation.passes,
        f"2 models x {len(points)} points x ({evaluation.detail})",
        ("axes", "evaluation.chips"),
    )
    _within_budget(StudyCost(parts=(*cost.parts, extra)), max_cost)


def _within_budget(cost: StudyCost, max_cost: int) -> None:
    message = over_budget(cost, max_cost)
    if message is not None:
        knob = cost.largest.knobs[0]
        loc = ["body", "axes"] if knob == "axes" else ["body", "study", *knob.split(".")]
        raise _invalid(loc, message, "cost_over_budget")


def _point_spec(spec: StudySpec, point: SweepPoint) -> StudySpec:
    return spec.model_copy(update={"profile": point.profile})


def _under_study(exc: InvalidRequest) -> InvalidRequest:
    """The base study's errors, located under ``study`` in the sweep's body."""
    errors = []
    for error in exc.errors:
        loc = list(error["loc"])
        loc = ["body", "study", *loc[1:]] if loc[:1] == ["body"] else loc
        errors.append(issue(loc, error["message"], error["type"]))
    return InvalidRequest(exc.message, errors)


def _invalid(loc: Sequence[str | int], message: str, kind: str) -> InvalidRequest:
    return InvalidRequest(message, [issue(loc, message, kind)])


def submit_sweep(
    session: Session,
    dispatcher: Dispatcher,
    *,
    owner: str,
    request: SweepCreate,
    idempotency_key: str | None,
    max_in_flight: int,
    max_cost: int | None = None,
) -> SweepSubmission:
    """Create the sweep and its jobs (or replay an idempotent request) and send the jobs."""
    spec, points = build_sweep(request, max_cost)
    digest = job_service.request_hash(request)
    if idempotency_key is not None:
        earlier = sweep_queries.find_sweep_by_idempotency_key(session, owner, idempotency_key)
        if earlier is not None:
            job_service.require_same_request(earlier.request_hash, digest)
            return SweepSubmission(earlier, created=False)
    sweep = Sweep(
        id=new_id(),
        owner_key=owner,
        mode=request.mode,
        axes=[axis.model_dump(mode="json") for axis in request.axes],
        spec=spec.model_dump(mode="json"),
        idempotency_key=idempotency_key,
        request_hash=digest,
        created_at=utcnow(),
    )
    try:
        queries.lock_owner(session, owner)
        session.add(sweep)
        session.flush()
        jobs = _add_jobs(session, sweep, request, spec, points)
        if any(job.status == JobStatus.QUEUED for job in jobs):
            job_service.check_in_flight(session, owner, max_in_flight)
        session.commit()
    except IntegrityError:
        session.rollback()
        winner = (
            sweep_queries.find_sweep_by_idempotency_key(session, owner, idempotency_key)
            if idempotency_key is not None
            else None
        )
        if winner is None:
            raise
        job_service.require_same_request(winner.request_hash, digest)
        return SweepSubmission(winner, created=False)
    for job in jobs:
        if job.status == JobStatus.QUEUED:
            job_service.dispatch(session, dispatcher, job)
    return SweepSubmission(sweep, created=True)


def _add_jobs(
    session: Session,
    sweep: Sweep,
    request: SweepCreate,
    spec: StudySpec,
    points: list[SweepPoint],
) -> list[Job]:
    """The sweep's jobs: one per point (retrain), or the one evaluation job."""
    if request.mode == SweepMode.EVALUATE:
        grid = [point.model_dump(mode="json") for point in points]
        work = job_service.spec_hash(spec, extra={"sweep_points": grid})
        jobs = [_job(session, sweep, spec, work, grid, JobKind.SWEEP_EVALUATE, request.study.fresh)]
    else:
        jobs = []
        for point in points:
            point_spec = _point_spec(spec, point)
            work = job_service.spec_hash(point_spec)
            mark = [{"index": point.index, "values": point.values}]
            jobs.append(
                _job(session, sweep, point_spec, work, mark, JobKind.STUDY, request.study.fresh)
            )
    session.flush()
    return jobs


def _job(
    session: Session,
    sweep: Sweep,
    spec: StudySpec,
    work: str,
    points: list[dict[str, Any]],
    kind: JobKind,
    fresh: bool,
) -> Job:
    original = None if fresh else queries.find_reusable(session, work)
    job = job_service.new_job(sweep.owner_key, spec, work, None, None, original)
    job.sweep_id, job.sweep_points, job.kind = sweep.id, points, kind
    session.add(job)
    if original is not None:
        session.flush()
        job_service.add_own_report(session, job, original.id)
    return job


def get_owned_sweep(session: Session, owner: str, sweep_id: str) -> Sweep:
    """The caller's sweep, or NotFound (also for another key's sweep: ids do not leak)."""
    sweep = sweep_queries.get_owned_sweep(session, owner, sweep_id)
    if sweep is None:
        raise NotFound(f"sweep {sweep_id!r} not found; GET {API_PREFIX}/sweeps lists your sweeps")
    return sweep


def cancel_sweep(session: Session, owner: str, sweep_id: str) -> Sweep:
    """Cancel every unfinished job of the sweep, each as POST /jobs/{id}/cancel would.

    The request is recorded on the sweep first, so it reads ``cancelling`` until its
    running jobs stop; a sweep whose jobs have all finished is a 409, as for a job.
    """
    sweep = get_owned_sweep(session, owner, sweep_id)
    jobs = sweep_queries.sweep_jobs(session, [sweep.id])[sweep.id]
    unfinished = [job.id for job in jobs if job.status in IN_FLIGHT_STATUSES]
    if not unfinished:
        status = sweep_status(jobs, sweep.cancel_requested_at is not None)
        raise StateConflict(
            f"sweep {sweep.id} is already {status}; only unfinished sweeps can be cancelled"
        )
    if sweep.cancel_requested_at is None:
        sweep.cancel_requested_at = utcnow()
        session.commit()
    for job_id in unfinished:
        try:
            job_service.cancel_job(session, owner, job_id)
        except StateConflict:  # it finished meanwhile: nothing left to cancel
            session.rollback()
    return get_owned_sweep(session, owner, sweep_id)
