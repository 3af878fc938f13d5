"""A sweep as read from its jobs: status, progress, the curve and its robustness figures.

Nothing here is stored: a sweep's jobs are the source of truth (their rows carry the
recovery guarantees), and everything a caller sees is derived from them on each read.
Accuracies are percent and drops percentage points (pp), 2 decimals, as in a job's summary.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from app.core.vocabulary import JobKind, JobStatus
from app.db.models import Job, Sweep
from app.schemas import API_PREFIX, ErrorInfo, as_utc, percent
from app.sweep_schemas import (
    CurvePoint,
    RobustnessFigure,
    SweepJob,
    SweepLinks,
    SweepOut,
    SweepProgress,
)
from hwmodels.specs import StudySpec
from hwmodels.sweep_spec import PARAMETERS, ParameterInfo

WITHIN_PP = 1.0
"""The robustness figures' tolerance: within 1 percentage point of float."""

_ACTIVE = frozenset({JobStatus.RUNNING, JobStatus.CANCELLING})


def sweep_status(jobs: Sequence[Job], cancel_requested: bool) -> JobStatus:
    """One status for the sweep, in the jobs' own vocabulary.

    Unfinished: cancelling once a cancel was asked for, running once any job started
    (or finished), else queued. Finished: succeeded if every job did, failed if any
    failed, else cancelled.
    """
    statuses = [JobStatus(job.status) for job in jobs]
    if not all(status.is_terminal for status in statuses):
        if cancel_requested:
            return JobStatus.CANCELLING
        if any(status in _ACTIVE or status.is_terminal for status in statuses):
            return JobStatus.RUNNING
        return JobStatus.QUEUED
    if all(status == JobStatus.SUCCEEDED for status in statuses):
        return JobStatus.SUCCEEDED
    if any(status == JobStatus.FAILED for status in statuses):
        return JobStatus.FAILED
    return JobStatus.CANCELLED


def sweep_out(sweep: Sweep, jobs: Sequence[Job]) -> SweepOut:
    """The sweep as its owner sees it, derived from its jobs."""
    jobs = ordered_jobs(jobs)
    status = sweep_status(jobs, sweep.cancel_requested_at is not None)
    points = curve(sweep, jobs)
    base = f"{API_PREFIX}/sweeps/{sweep.id}"
    finished = [as_utc(job.finished_at) for job in jobs if job.finished_at is not None]
    return SweepOut(
        id=sweep.id,
        mode=sweep.mode,
        status=status,
        progress=SweepProgress(
            fraction=round(sum(job.progress_fraction for job in jobs) / max(len(jobs), 1), 4),
            points_measured=sum(point.float_pct is not None for point in points),
            points=len(points),
        ),
        robustness=robustness(sweep.axes, points),
        curve=points,
        jobs=[_job_view(job) for job in jobs],
        links=SweepLinks(
            self=base,
            report=f"{base}/report",
            curve_csv=f"{base}/curve.csv",
            cancel=f"{base}/cancel",
        ),
        axes=sweep.axes,
        created_at=as_utc(sweep.created_at),
        finished_at=max(finished) if status.is_terminal and finished else None,
        spec=StudySpec.model_validate(sweep.spec),
    )


def _job_view(job: Job) -> SweepJob:
    retrain_point = job.kind == JobKind.STUDY and job.sweep_points
    return SweepJob(
        id=job.id,
        status=JobStatus(job.status),
        values=job.sweep_points[0]["values"] if retrain_point and job.sweep_points else None,
        fraction=job.progress_fraction,
        error=ErrorInfo(code=job.error_code, message=job.error_message or "")
        if job.status == JobStatus.FAILED and job.error_code
        else None,
        link=f"{API_PREFIX}/jobs/{job.id}",
    )


def ordered_jobs(jobs: Sequence[Job]) -> list[Job]:
    """The jobs in point order (a retrain job's point index is in its ``sweep_points``)."""
    return sorted(jobs, key=lambda job: (job.sweep_points or [{}])[0].get("index", 0))


def curve(sweep: Sweep, jobs: Sequence[Job]) -> list[CurvePoint]:
    """One point per grid point, in grid order; accuracies null until measured."""
    if sweep.mode == "evaluate":
        return _evaluate_curve(jobs)
    return [_retrain_point(job) for job in ordered_jobs(jobs)]


def _retrain_point(job: Job) -> CurvePoint:
    point = (job.sweep_points or [{}])[0]
    report = job.result if job.status == JobStatus.SUCCEEDED else None
    return CurvePoint(
        index=point.get("index", 0),
        values=point.get("values", {}),
        status=JobStatus(job.status),
        float_pct=percent(report["float_accuracy"]) if report else None,
        naive_pct=percent(report["naive"]["mean"]) if report else None,
        naive_std_pp=percent(report["naive"]["std"]) if report else None,
        hardware_aware_pct=percent(report["hardware_aware"]["mean"]) if report else None,
        hardware_aware_std_pp=percent(report["hardware_aware"]["std"]) if report else None,
        chips=report["naive"]["chips"] if report else None,
    )


def _evaluate_curve(jobs: Sequence[Job]) -> list[CurvePoint]:
    job = next((job for job in jobs if job.kind == JobKind.SWEEP_EVALUATE), None)
    if job is None:
        return []
    report = job.result if job.status == JobStatus.SUCCEEDED else None
    if report is None:
        return [
            CurvePoint(
                index=point["index"],
                values=point["values"],
                status=JobStatus(job.status),
                float_pct=None,
                naive_pct=None,
                naive_std_pp=None,
                hardware_aware_pct=None,
                hardware_aware_std_pp=None,
                chips=None,
            )
            for point in job.sweep_points or []
        ]
    return [
        CurvePoint(
            index=point["index"],
            values=point["values"],
            status=JobStatus.SUCCEEDED,
            float_pct=percent(report["float_accuracy"]),
            naive_pct=percent(point["naive_mean"]),
            naive_std_pp=percent(point["naive_std"]),
            hardware_aware_pct=percent(point["hardware_aware_mean"]),
            hardware_aware_std_pp=percent(point["hardware_aware_std"]),
            chips=point["chips"],
        )
        for point in report["sweep_points"]
    ]


def robustness(axes: list[dict[str, Any]], points: Sequence[CurvePoint]) -> list[RobustnessFigure]:
    """The figures of a finished one-parameter curve (README: "Robustness figures")."""
    measured = [point for point in points if point.float_pct is not None]
    if len(axes) != 1 or not measured or len(measured) != len(points):
        return []
    parameter = axes[0]["parameter"]
    info = PARAMETERS[parameter]
    walk = sorted(measured, key=lambda point: info.mildness(point.values[parameter]))
    figures = []
    for model, words in (("hardware_aware", "hardware-aware"), ("naive", "naive")):
        within = [_within(point, model) for point in walk]
        held = 0
        while held < len(walk) and within[held]:
            held += 1
        value = walk[held - 1].values[parameter] if held else None
        figures.append(
            RobustnessFigure(
                model=model,
                parameter=parameter,
                within_pp=WITHIN_PP,
                value=value,
                whole_range=held == len(walk),
                points_within=sum(within),
                points_measured=len(walk),
                statement=_statement(words, info, walk, held, parameter),
            )
        )
    return figures


def _within(point: CurvePoint, model: str) -> bool:
    mean = point.hardware_aware_pct if model == "hardware_aware" else point.naive_pct
    assert mean is not None and point.float_pct is not None
    return point.float_pct - mean <= WITHIN_PP


def _statement(
    words: str, info: ParameterInfo, walk: Sequence[CurvePoint], held: int, parameter: str
) -> str:
    label = info.label
    reach = "down to" if info.harsher == "lower" else "up to"
    mildest = _number(walk[0].values[parameter])
    if held == 0:
        return (
            f"The {words} model is more than {WITHIN_PP:g} pp below float already at "
            f"{label} = {mildest}."
        )
    reached = _number(walk[held - 1].values[parameter])
    if held == len(walk):
        return (
            f"The {words} model stays within {WITHIN_PP:g} pp of float over the whole range, "
            f"{reach} {label} = {reached}."
        )
    broke = _number(walk[held].values[parameter])
    return (
        f"The {words} model stays within {WITHIN_PP:g} pp of float {reach} {label} = {reached}, "
        f"and is more than {WITHIN_PP:g} pp below it at {broke}."
    )


def _number(value: float) -> str:
    return f"{value:g}"


CSV_COLUMNS = [
    "float_pct",
    "naive_pct",
    "naive_std_pp",
    "hardware_aware_pct",
    "hardware_aware_std_pp",
    "chips",
    "status",
]


def curve_csv(axes: list[dict[str, Any]], points: Sequence[CurvePoint]) -> bytes:
    """The curve as CSV: one row per point, swept values first, empty cells until measured."""
    parameters = [axis["parameter"] for axis in axes]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*parameters, *CSV_COLUMNS])
    for point in points:
        row: list[Any] = [_number(point.values[name]) for name in parameters]
        for column in CSV_COLUMNS:
            value = getattr(point, column)
            if isinstance(value, float):
                value = f"{value:.2f}"
            row.append("" if value is None else value)
        writer.writerow(row)
    return buffer.getvalue().encode()
