"""Request and response bodies of the HTTP API.

Study parameters reuse the ``hwmodels`` models (one definition of every limit); this
module adds only what is about HTTP: how a profile is chosen, how a job is presented.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.db_safe import unstorable_strings
from app.core.vocabulary import JobStatus
from app.db.models import Artifact, Job, JobEvent
from hwmodels.datasets.catalog import DatasetName
from hwmodels.profile import HardwareProfile
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
    fresh: bool = Field(
        default=False,
        description="Run again even if an identical study already succeeded on this server.",
    )


JOB_CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "preset": {
        "summary": "A preset profile",
        "description": "Score a 784-256-128-10 MLP on MNIST for 4-bit RRAM.",
        "value": {
            "dataset": "mnist",
            "network": {"hidden": [256, 128]},
            "profile": {"preset": "rram-4bit"},
            "training": {"epochs": 10, "hw_epochs": 5, "strategy": "annealed"},
            "evaluation": {"chips": 100},
        },
    },
    "preset-with-overrides": {
        "summary": "A preset with some fields changed",
        "description": "PCM with twice the programming noise and a poorer on/off ratio, "
        "a quick run on part of Fashion-MNIST.",
        "value": {
            "dataset": "fashion-mnist",
            "network": {"hidden": [128]},
            "profile": {
                "preset": "pcm-4bit",
                "overrides": {"noise": {"programming": 0.08}, "conductance": {"on_off_ratio": 20}},
            },
            "training": {"epochs": 3, "hw_epochs": 2, "strategy": "ste", "train_samples": 10000},
            "evaluation": {"chips": 20, "test_samples": 2000},
        },
    },
    "inline": {
        "summary": "A complete profile of your own device",
        "value": {
            "dataset": "emnist-digits",
            "network": {"hidden": [200]},
            "profile": {
                "inline": {
                    "name": "our-array-v2",
                    "source": "wafer 7 measurements, March",
                    "weights": {"bits": 3, "mapping": "differential"},
                    "conductance": {"on_off_ratio": 50, "nonlinearity": 2.0, "asymmetry": 0.05},
                    "activations": {"bits": 4},
                    "noise": {"programming": 0.02, "read": 0.01, "stuck_off": 0.001},
                }
            },
            "evaluation": {"chips": 50},
            "fresh": True,
        },
    },
}


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


class ChipSummary(BaseModel):
    """Accuracy over simulated chips (fractions in [0, 1])."""

    mean: float
    std: float
    worst: float
    p5: float = Field(description="5th percentile: 95% of chips do at least this well.")


class ResultSummary(BaseModel):
    """The headline numbers of a succeeded study; the full report is at .../result."""

    float_accuracy: float
    naive: ChipSummary
    hardware_aware: ChipSummary
    naive_drop_pp: float = Field(description="Float minus naive mean, percentage points.")
    hardware_aware_drop_pp: float = Field(description="Float minus hardware-aware mean, pp.")
    recovered_fraction: float | None = Field(
        description="Share of the naive loss won back by hardware-aware training."
    )

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> ResultSummary:
        return cls.model_validate(report)


class JobLinks(BaseModel):
    self: str
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
    spec: StudySpec = Field(description="The validated study, with the resolved profile.")
    progress: Progress
    attempts: int = Field(description="How many times a worker has started this job.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    result: ResultSummary | None = Field(description="Set once the job has succeeded.")
    error: ErrorInfo | None = Field(description="Set once the job has failed.")
    links: JobLinks

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
