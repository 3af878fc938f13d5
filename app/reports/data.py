"""What a job's report page shows, read from the job row and its epoch events.

Everything here is plain numbers and text (no torch): the engine stored the figures'
data in the report (``hwmodels.report.ReportFigures``). A running job has no report yet;
its training curve so far comes from its epoch events. Reports of engine < 3 have no
figure data: the page says so for the figures it cannot draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core.vocabulary import JobStatus
from app.db import queries
from app.db.models import Job
from app.schemas import API_PREFIX, ResultSummary, as_utc
from hwmodels.report import EpochPoint, RobustnessReport
from hwmodels.specs import StudySpec

_EVENT_PHASES = {"float_training": "float", "hardware_aware_training": "hardware_aware"}

FIGURES: dict[str, str] = {
    "accuracy": "Accuracy: float, naive and hardware-aware (Monte Carlo mean ± std)",
    "chips": "Accuracy over simulated chips",
    "training": "Training curves",
    "device": "Device conductance and programmed levels",
    "weights": "Weights against the device's levels, per layer",
    "confusion": "Confusion matrix of the hardware-aware model (all chips)",
    "drift": "Accuracy over time after programming (conductance drift)",
}
"""Figure names (as in their URLs) and titles, in page order."""


@dataclass(frozen=True)
class JobView:
    """One job as the pages show it."""

    id: str
    status: JobStatus
    revision: int
    dataset: str
    network: str
    profile_name: str
    progress_pct: float
    phase: str | None
    epoch: int | None
    created_at: datetime | None
    finished_at: datetime | None
    summary: ResultSummary | None
    error: str | None

    @property
    def in_flight(self) -> bool:
        return not self.status.is_terminal

    @property
    def report_url(self) -> str:
        return f"{API_PREFIX}/jobs/{self.id}/report"


@dataclass(frozen=True)
class ReportData:
    """Everything the report page and its figures are made from."""

    job: JobView
    spec: StudySpec
    report: RobustnessReport | None
    training: list[EpochPoint]

    def available(self, figure: str) -> bool:
        """Whether this job has the data to draw ``figure``."""
        if figure == "training":
            return bool(self.training)
        if self.report is None:
            return False
        if figure in {"accuracy", "chips"}:
            return True
        if figure == "drift":
            return bool(self.report.drift)
        return self.report.figures is not None

    def wanted(self, figure: str) -> bool:
        """Whether this job calls for ``figure`` at all (drift: only when it asked for
        times), so that a page lists as missing only what it should have had."""
        return figure != "drift" or self.spec.evaluation.drift_times_s is not None

    def profile_rows(self) -> list[tuple[str, str]]:
        """The hardware profile as (field, value) rows, nested groups dotted."""
        return _rows(self.spec.profile.model_dump(mode="json"))

    def study_rows(self) -> list[tuple[str, str]]:
        """Dataset, network and training/evaluation settings as (field, value) rows."""
        spec = self.spec
        rows = [("dataset", spec.dataset), ("network", self.job.network)]
        rows += _rows(spec.training.model_dump(mode="json"), "training")
        rows += _rows(spec.evaluation.model_dump(mode="json"), "evaluation")
        return rows


def job_view(job: Job) -> JobView:
    spec = job.spec or {}
    succeeded = job.status == JobStatus.SUCCEEDED and job.result
    failed = job.status == JobStatus.FAILED
    return JobView(
        id=job.id,
        status=JobStatus(job.status),
        revision=job.revision,
        dataset=str(spec.get("dataset", "")),
        network=_network(spec),
        profile_name=str((spec.get("profile") or {}).get("name", "")),
        progress_pct=round(100.0 * (job.progress_fraction or 0.0), 1),
        phase=job.progress_phase,
        epoch=job.progress_epoch,
        created_at=as_utc(job.created_at),
        finished_at=as_utc(job.finished_at),
        summary=ResultSummary.from_report(job.result) if succeeded and job.result else None,
        error=(job.error_message or job.error_code) if failed else None,
    )


def report_data(session: Session, job: Job) -> ReportData:
    """The job's report (when it has succeeded) and training curve."""
    report = None
    if job.status == JobStatus.SUCCEEDED and job.result:
        try:
            report = RobustnessReport.model_validate(job.result)
        except ValidationError:  # written by another engine: show what the summary can
            report = None
    if report is not None and report.figures is not None:
        training = report.figures.training
    else:
        training = _training_from_events(session, job.id)
    return ReportData(
        job=job_view(job), spec=StudySpec.model_validate(job.spec), report=report, training=training
    )


def _training_from_events(session: Session, job_id: str) -> list[EpochPoint]:
    """Epoch events as training points (a running job, or a report of engine < 3)."""
    points = []
    for event in queries.list_epoch_events(session, job_id):
        data = event.data or {}
        raw_extra = data.get("extra")
        extra = raw_extra if isinstance(raw_extra, dict) else {}
        phase = _EVENT_PHASES.get(event.phase or "")
        if phase is None or "loss" not in data or "epoch" not in data:
            continue
        points.append(
            EpochPoint(
                phase=phase,
                stage=extra.get("stage"),
                epoch=int(data["epoch"]),
                loss=float(data["loss"]),
                train_accuracy=float(data.get("accuracy", 0.0)),
            )
        )
    return points


def _network(spec: dict[str, Any]) -> str:
    hidden = (spec.get("network") or {}).get("hidden") or []
    return "-".join(["in", *(str(h) for h in hidden), "out"])


def _rows(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            rows += _rows(value, name)
        else:
            rows.append((name, "—" if value is None else str(value)))
    return rows
