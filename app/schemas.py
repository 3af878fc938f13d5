"""Request and response bodies of the HTTP API.

Study parameters reuse the ``hwmodels`` models (one definition of every limit); this
module adds only what is about HTTP: how a profile is chosen, how a job is presented.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.db_safe import unstorable_strings
from app.core.vocabulary import JobStatus
from app.db.models import Artifact, Job, JobEvent
from hwmodels.datasets.catalog import DatasetName
from hwmodels.profile import HardwareProfile
from hwmodels.report import FloatTraining
from hwmodels.specs import EvaluationSettings, NetworkSpec, StudySpec, TrainingSettings

API_PREFIX = "/api/v1"


class _Request(BaseModel):
    """Taken as typed: no unknown fields, no coercion ("yes" is not true), no inf or NaN."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class ProfileChoice(_Request):
    """The target hardware: a preset, a preset with some fields changed, or a full profile."""

    preset: str | None = Field(
        default=None, description="A preset name from GET /api/v1/hardware-profiles."
    )
    overrides: dict[str, Any] | None = Field(
        default=None,
        description='Nested fields to change on the preset, e.g. {"noise": {"programming": 0.05}}.',
    )
    inline: dict[str, Any] | None = Field(
        default=None, description="A complete HardwareProfile (fields left out take defaults)."
    )

    @model_validator(mode="after")
    def _one_form(self) -> ProfileChoice:
        if (self.preset is None) == (self.inline is None):
            raise ValueError(
                "give exactly one of 'preset' (optionally with 'overrides') or 'inline'"
            )
        if self.overrides is not None and self.preset is None:
            raise ValueError("'overrides' apply to a preset: put the values into 'inline' instead")
        return self


class JobCreate(_Request):
    """A robustness study to run: dataset, network, hardware, training and evaluation."""

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        """Refuse text the database cannot hold, wherever it sits (free-form dicts too)."""
        bad = list(unstorable_strings(data))
        if bad:
            raise ValueError(
                f"{', '.join(bad[:3])}: text may not contain NUL characters (\\u0000) "
                "or unpaired surrogates; remove them"
            )
        return data

    dataset: DatasetName = "mnist"
    network: NetworkSpec = NetworkSpec()
    profile: ProfileChoice
    training: TrainingSettings = TrainingSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    model_id: str | None = Field(
        default=None,
        max_length=36,
        description="An uploaded model (POST /api/v1/models) to score instead of training "
        "in float: its weights are deployed naively and, with training.hw_epochs > 0, "
        "fine-tuned hardware-aware. network and dataset default to the model's (others are "
        "refused); training.epochs is unused.",
    )
    fresh: bool = Field(
        default=False,
        description="Run again even if an identical study already succeeded on this server.",
    )


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
@overload
def as_utc(moment: datetime | None) -> datetime | None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class Progress(BaseModel):
    phase: str | None = Field(description="Current phase, e.g. float_training; null before start.")
    epoch: int | None = Field(description="Current epoch within the phase, when training.")
    fraction: float = Field(description="Overall progress of the study, 0 to 1.")


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. worker_lost (see ErrorCode).")
    message: str


def percent(fraction: float) -> float:
    """A fraction in [0, 1] as percent, 2 decimals: the one unit of the job summary."""
    return round(100.0 * fraction, 2)


class ChipSummary(BaseModel):
    """Accuracy over simulated chips, in percent (0 to 100, 2 decimals)."""

    mean: float
    std: float
    worst: float
    p5: float = Field(description="5th percentile: 95% of chips do at least this well.")

    @classmethod
    def from_statistics(cls, stats: dict[str, Any]) -> ChipSummary:
        return cls(**{name: percent(stats[name]) for name in ("mean", "std", "worst", "p5")})


class ResultSummary(BaseModel):
    """The headline numbers of a succeeded study. Accuracies are percent (0 to 100) and
    drops percentage points, all rounded to 2 decimals; the full report at .../result
    keeps every chip's accuracy as an unrounded fraction in [0, 1]."""

    verdict: str = Field(description="The numbers below as one sentence.")
    float_accuracy_pct: float = Field(description="Test accuracy of the float network, %.")
    naive_pct: ChipSummary = Field(description="Float weights programmed as they are, %.")
    hardware_aware_pct: ChipSummary = Field(description="After hardware-aware training, %.")
    naive_drop_pp: float = Field(description="Float minus naive mean, percentage points.")
    hardware_aware_drop_pp: float = Field(
        description="Float minus hardware-aware mean, percentage points."
    )
    recovered_pct: float | None = Field(
        description="Share of the naive loss won back by hardware-aware training, %; null "
        "when naive deployment loses (almost) nothing."
    )
    float_training: FloatTraining | None = Field(
        default=None,
        description="Whether the float network was trained by this job or reused from the "
        "workers' float-training cache (reused: true, with its key); null for results "
        "made before the cache existed.",
    )

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> ResultSummary:
        recovered = report.get("recovered_fraction")
        float_training = report.get("float_training")
        summary = {
            "float_accuracy_pct": percent(report["float_accuracy"]),
            "naive_pct": ChipSummary.from_statistics(report["naive"]),
            "hardware_aware_pct": ChipSummary.from_statistics(report["hardware_aware"]),
            "naive_drop_pp": round(report["naive_drop_pp"], 2),
            "hardware_aware_drop_pp": round(report["hardware_aware_drop_pp"], 2),
            "recovered_pct": None if recovered is None else percent(recovered),
        }
        return cls(
            verdict=verdict(summary),
            float_training=None if float_training is None else FloatTraining(**float_training),
            **summary,
        )


def verdict(summary: dict[str, Any]) -> str:
    """One line a person reads first: float vs naive vs hardware-aware, drops, recovery."""
    naive, aware = summary["naive_pct"], summary["hardware_aware_pct"]
    recovered = summary["recovered_pct"]
    tail = (
        "naive deployment loses (almost) nothing"
        if recovered is None
        else f"hardware-aware training wins back {recovered:.1f}% of the naive loss"
    )
    return (
        f"Float {summary['float_accuracy_pct']:.2f}%, naive {naive.mean:.2f}% "
        f"({_change(summary['naive_drop_pp'])} pp), hardware-aware {aware.mean:.2f}% "
        f"({_change(summary['hardware_aware_drop_pp'])} pp): {tail}."
    )


def _change(drop_pp: float) -> str:
    """A drop as a signed change: 25.47 -> '-25.47', -0.04 -> '+0.04', 0 -> '±0.00'."""
    change = -round(drop_pp, 2)
    return "±0.00" if change == 0 else f"{change:+.2f}"


class JobLinks(BaseModel):
    self: str
    report: str = Field(description="The report page (HTML): verdict, figures, profile.")
    events: str
    result: str
    artifacts: str
    cancel: str


class JobOut(BaseModel):
    """A job as its owner sees it."""

    id: str
    status: JobStatus
    reused: bool = Field(
        description="True when an identical study had already succeeded and its results "
        "were reused instead of running again (send fresh=true to force a run)."
    )
    progress: Progress
    result: ResultSummary | None = Field(description="Set once the job has succeeded.")
    error: ErrorInfo | None = Field(description="Set once the job has failed.")
    links: JobLinks
    attempts: int = Field(description="How many times a worker has started this job.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    spec: StudySpec = Field(description="The validated study, with the resolved profile.")

    @classmethod
    def from_job(cls, job: Job) -> JobOut:
        base = f"{API_PREFIX}/jobs/{job.id}"
        return cls(
            id=job.id,
            status=job.status,
            reused=job.reused_from is not None,
            spec=StudySpec.model_validate(job.spec),
            progress=Progress(
                phase=job.progress_phase, epoch=job.progress_epoch, fraction=job.progress_fraction
            ),
            attempts=job.attempts,
            created_at=as_utc(job.created_at),
            started_at=as_utc(job.started_at),
            finished_at=as_utc(job.finished_at),
            updated_at=as_utc(job.updated_at),
            result=ResultSummary.from_report(job.result)
            if job.status == "succeeded" and job.result
            else None,
            error=ErrorInfo(code=job.error_code, message=job.error_message or "")
            if job.status == "failed" and job.error_code
            else None,
            links=JobLinks(
                self=base,
                report=f"{base}/report",
                events=f"{base}/events",
                result=f"{base}/result",
                artifacts=f"{base}/artifacts",
                cancel=f"{base}/cancel",
            ),
        )


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next (older) page; null on the last page."
    )


class EventOut(BaseModel):
    seq: int = Field(description="Increases by one per event of this job.")
    kind: str = Field(description="phase, batch, epoch, stage, chips or state.")
    phase: str | None
    data: dict[str, Any] = Field(description="Details: epoch, loss, accuracy, fraction...")
    created_at: datetime

    @classmethod
    def from_event(cls, event: JobEvent) -> EventOut:
        return cls(
            seq=event.seq,
            kind=event.kind,
            phase=event.phase,
            data=event.data or {},
            created_at=as_utc(event.created_at),
        )


class EventPage(BaseModel):
    events: list[EventOut]
    next_after: int | None = Field(
        description="Pass as ?after= to get only newer events; null when there are none yet."
    )


class ArtifactOut(BaseModel):
    name: str
    media_type: str
    size: int = Field(description="Bytes.")
    sha256: str
    url: str

    @classmethod
    def from_artifact(cls, job_id: str, artifact: Artifact) -> ArtifactOut:
        return cls(
            name=artifact.name,
            media_type=artifact.media_type,
            size=artifact.size,
            sha256=artifact.sha256,
            url=f"{API_PREFIX}/jobs/{job_id}/artifacts/{artifact.name}",
        )


class ArtifactList(BaseModel):
    items: list[ArtifactOut]


class HardwarePresetOut(BaseModel):
    name: str
    description: str
    source: str
    is_ideal: bool = Field(description="True when the hardware computes exactly like float.")
    profile: HardwareProfile

    @classmethod
    def from_profile(cls, profile: HardwareProfile) -> HardwarePresetOut:
        return cls(
            name=profile.name,
            description=profile.description,
            source=profile.source,
            is_ideal=profile.is_ideal,
            profile=profile,
        )


class DatasetOut(BaseModel):
    name: str
    description: str
    input_size: int = Field(description="Inputs of the network (pixels).")
    num_classes: int
    samples: dict[str, int] = Field(description="Published images per split (train, test).")
    present: bool = Field(
        description="Whether the files are on this server; a job on a missing dataset fails "
        "unless the worker can download it."
    )
    missing: list[str] = Field(description="Files not found on this server.")
    source: str = Field(description="Who made the data, its license, how to get it.")


class HealthOut(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str] = Field(default_factory=dict)


class ProblemError(BaseModel):
    loc: list[str | int] = Field(description="Where in the request, e.g. ['body', 'training'].")
    field: str = Field(description="The same place as one dotted path.")
    message: str
    type: str = Field(description="Machine-readable error type.")


class Problem(BaseModel):
    """An error, as RFC 9457 application/problem+json."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemError] | None = None
