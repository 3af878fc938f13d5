"""Request and response bodies of the sweep endpoints.

The base study is a job's body (``JobCreate``) unchanged; limits on axes come from
``hwmodels.sweep_spec``, so the API and the engine cannot disagree about them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.core.vocabulary import JobStatus, SweepMode
from app.schemas import ErrorInfo, JobCreate, _Request
from hwmodels.specs import StudySpec
from hwmodels.sweep_spec import MAX_AXES, MAX_POINTS, MAX_VALUES_PER_AXIS, SweepParameter


class SweepAxis(_Request):
    """One swept parameter and the values it takes."""

    parameter: SweepParameter = Field(
        description="weight_bits (weights.bits), activation_bits (activations.bits), "
        "on_off_ratio (conductance.on_off_ratio), nonlinearity (conductance.nonlinearity), "
        "asymmetry (conductance.asymmetry), programming_noise (noise.programming), "
        "stuck_fraction (noise.stuck_off)."
    )
    values: list[int | float] = Field(
        min_length=2,
        max_length=MAX_VALUES_PER_AXIS,
        description=f"2 to {MAX_VALUES_PER_AXIS} distinct values; whole numbers for bits.",
    )


class SweepCreate(_Request):
    """A robustness sweep: a base study and one or two profile parameters to vary."""

    mode: SweepMode = Field(
        strict=False,  # the enum from its JSON string; still only its two values
        description="retrain: one hardware-aware training per point (one job each); "
        "evaluate: train once on the base profile, then score that network on every point.",
    )
    study: JobCreate = Field(description="The base study: the body of POST /api/v1/jobs.")
    axes: list[SweepAxis] = Field(
        min_length=1,
        max_length=MAX_AXES,
        description=f"One axis (a curve) or two (a heat map); at most {MAX_POINTS} points.",
    )


class SweepJob(BaseModel):
    """A job of the sweep: one point (retrain) or the whole evaluation (evaluate)."""

    id: str
    status: JobStatus
    values: dict[str, int | float] | None = Field(description="The point's values (retrain mode).")
    fraction: float
    error: ErrorInfo | None
    link: str


class CurvePoint(BaseModel):
    """Accuracy at one point of the grid, in percent (2 decimals); null until measured."""

    index: int
    values: dict[str, int | float]
    status: JobStatus = Field(description="Of the job that measures this point.")
    float_pct: float | None
    naive_pct: float | None = Field(description="Mean over simulated chips.")
    naive_std_pp: float | None = Field(description="Monte Carlo standard deviation, pp.")
    hardware_aware_pct: float | None
    hardware_aware_std_pp: float | None
    chips: int | None


class RobustnessFigure(BaseModel):
    """How far along the swept parameter a model stays within ``within_pp`` of float.

    ``value``: the harshest swept value such that this one and every milder one keep
    the model's mean accuracy within ``within_pp`` of float; null when even the mildest
    value does not. Defined for one-parameter sweeps (README, "Robustness figures").
    """

    model: Literal["naive", "hardware_aware"]
    parameter: str
    within_pp: float
    value: int | float | None
    whole_range: bool = Field(description="True when the model held at every value tried.")
    points_within: int = Field(description="Points at which the model is within within_pp.")
    points_measured: int
    statement: str


class SweepProgress(BaseModel):
    fraction: float = Field(description="Mean progress of the sweep's jobs, 0 to 1.")
    points_measured: int
    points: int


class SweepLinks(BaseModel):
    self: str
    report: str = Field(description="The report page (HTML): curve or heat map, figures.")
    curve_csv: str
    cancel: str


class SweepOut(BaseModel):
    """A sweep as its owner sees it: status and curve first, then what was asked."""

    id: str
    mode: SweepMode
    status: JobStatus = Field(description="Derived from the sweep's jobs.")
    progress: SweepProgress
    robustness: list[RobustnessFigure] = Field(
        description="Read off the curve once every point is measured (one-parameter sweeps)."
    )
    curve: list[CurvePoint]
    jobs: list[SweepJob]
    links: SweepLinks
    axes: list[dict[str, Any]]
    created_at: datetime
    finished_at: datetime | None
    spec: StudySpec = Field(description="The base study, with the resolved profile.")


class SweepPage(BaseModel):
    items: list[SweepOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next (older) page; null on the last page."
    )
