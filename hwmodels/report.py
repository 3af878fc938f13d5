"""The robustness report: what a study measured. Pydantic, no torch import.

Accuracies are fractions in [0, 1]; drops are in percentage points (pp). ``figures``
holds, in plain numbers, what the service's report page draws: the API process has no
torch, so the engine computes it where the tensors are.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from hwmodels.profile import HardwareProfile
from hwmodels.specs import EvaluationSettings, TrainingSettings


class ChipStatistics(BaseModel):
    """Test accuracy over simulated chip instances (Monte Carlo over noise and faults)."""

    chips: int
    mean: float
    std: float
    worst: float
    p5: float = Field(description="5th percentile: 95% of chips do at least this well.")
    best: float
    accuracies: list[float] = Field(description="Accuracy of every simulated chip.")


class LayerMapping(BaseModel):
    """How one layer's weights landed on devices (nominal chip, before noise)."""

    name: str
    fan_in: int
    fan_out: int
    scale: float = Field(description="Weight scale s (mean over columns when per column).")
    levels: int | None = Field(
        description="Programmable levels per device (L + 1); null for analog devices."
    )
    clipped_fraction: float = Field(description="Weights with |w| > s, stored at the top level.")
    mean_abs_error: float = Field(description="Mean |w - w_eff| relative to s.")
    level_histogram: list[int] = Field(description="Devices programmed at each level.")
    arrays: int | None = Field(
        default=None,
        description="Crossbar arrays the layer occupies (profile.array tiles; 1 when the "
        "array size is unbounded); null in reports made before tiling existed.",
    )


class DeviceCurves(BaseModel):
    """Conductance against programmed pulse fraction u, normalised so positive Gmax = 1."""

    u: list[float] = Field(description="Programmed fractions u in [0, 1] of the curve points.")
    positive: list[float] = Field(description="G(u) of the positive (nominal) device.")
    negative: list[float] = Field(
        description="G(u) of the negative device of a pair (offset mapping: the reference "
        "device's type, which is mismatched the same way)."
    )
    level_u: list[float] = Field(description="u = k / L of the programmable levels (none: analog).")
    positive_levels: list[float]
    negative_levels: list[float]
    reference: float | None = Field(description="Reference conductance (offset mapping only).")


class WeightHistogram(BaseModel):
    """One layer's weights binned in device-level units, before and after hw-aware training.

    ``unit`` "level": x = L w / s (differential, -L..L; offset, L (w / s + 1) / 2 in 0..L),
    so neighbouring levels of a linear device are 1 apart; "scale" (analog): x = w / s.
    """

    name: str
    unit: Literal["level", "scale"]
    low: float = Field(description="Left edge of the first bin.")
    high: float = Field(description="Right edge of the last bin (values beyond are clipped).")
    float_counts: list[int] = Field(description="The float-trained weights (what naive programs).")
    hardware_aware_counts: list[int] = Field(description="The hardware-aware trained weights.")
    level_positions: list[float] = Field(
        description="x of the weight each level code reads back as on the nominal chip "
        "(left out above 129 codes: too many to tell apart)."
    )


class EpochPoint(BaseModel):
    """One training epoch (or the part of it spent in one annealing stage)."""

    phase: str
    stage: int | None
    epoch: int
    loss: float
    train_accuracy: float
    validation_accuracy: float | None = Field(
        default=None,
        description="On the held-out training images (hardware-aware: the nominal chip).",
    )


class ReportFigures(BaseModel):
    """The data behind the report page's figures, in plain numbers (a few kB)."""

    device: DeviceCurves
    weights: list[WeightHistogram]
    confusion: list[list[int]] = Field(
        description="Hardware-aware model: counts [true class][predicted class] over the "
        "test set, summed over every simulated chip evaluated."
    )
    training: list[EpochPoint]


class DriftPoint(BaseModel):
    """Both networks on the same simulated chips at one time after programming."""

    time_s: float = Field(description="Seconds after programming (at least profile.drift.t0_s).")
    naive: ChipStatistics
    hardware_aware: ChipStatistics
    naive_compensated: ChipStatistics | None = Field(
        default=None, description="With global drift compensation; null when it is off."
    )
    hardware_aware_compensated: ChipStatistics | None = Field(
        default=None, description="With global drift compensation; null when it is off."
    )


class FloatTraining(BaseModel):
    """Where the study's float network came from (see hwmodels.float_cache)."""

    reused: bool = Field(
        description="True when the float network was not trained by this study but read "
        "from the float-training cache, where an earlier study with the same key stored "
        "it; its float training rows (metrics.csv, the report's training curve) are the "
        "ones recorded when it was trained."
    )
    key: str | None = Field(
        description="The float-training key: SHA-256 of the dataset, network, float-training "
        "settings (epochs, learning_rate, batch_size, seed, train_samples), activation "
        "function, engine and torch versions; null when the study started from given "
        "weights (start_from), which involves no float training."
    )


class RobustnessReport(BaseModel):
    """Float, naive-deployment and hardware-aware accuracy of one network on one profile."""

    dataset: str
    layer_sizes: list[int]
    parameters: int
    profile: HardwareProfile
    training: TrainingSettings
    evaluation: EvaluationSettings
    float_accuracy: float
    naive: ChipStatistics
    hardware_aware: ChipStatistics
    naive_drop_pp: float = Field(description="(float - naive mean) in percentage points.")
    hardware_aware_drop_pp: float = Field(description="(float - hardware-aware mean) in pp.")
    recovered_fraction: float | None = Field(
        description="Share of the naive loss that hardware-aware training wins back; "
        "null when naive deployment loses nothing."
    )
    layers: list[LayerMapping]
    timings_s: dict[str, float]
    figures: ReportFigures | None = Field(
        default=None, description="Data for the report page; null in reports of engine < 3."
    )
    drift: list[DriftPoint] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Accuracy at each of evaluation.drift_times_s; absent when the study "
        "asked for no times.",
    )
    float_training: FloatTraining | None = Field(
        default=None,
        description="Whether the float network was trained here or reused; null in "
        "reports made before the float-training cache existed.",
    )


def recovered_fraction(naive_drop_pp: float, hardware_aware_drop_pp: float) -> float | None:
    """(naive loss - hardware-aware loss) / naive loss; None if naive loses under 0.05 pp."""
    if naive_drop_pp < 0.05:
        return None
    return (naive_drop_pp - hardware_aware_drop_pp) / naive_drop_pp


ARTIFACTS: dict[str, str] = {
    "float_weights.pt": "application/octet-stream",
    "hw_weights.pt": "application/octet-stream",
    "hw_weights.safetensors": "application/octet-stream",
    "device_levels.npz": "application/octet-stream",
    "metrics.csv": "text/csv",
    "report.json": "application/json",
}
"""Artifact names a study produces, with their media types."""
