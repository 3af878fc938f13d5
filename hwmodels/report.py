"""The robustness report: what a study measured. Pydantic, no torch import.

Accuracies are fractions in [0, 1]; drops are in percentage points (pp).
"""

from __future__ import annotations

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


def recovered_fraction(naive_drop_pp: float, hardware_aware_drop_pp: float) -> float | None:
    """(naive loss - hardware-aware loss) / naive loss; None if naive loses under 0.05 pp."""
    if naive_drop_pp < 0.05:
        return None
    return (naive_drop_pp - hardware_aware_drop_pp) / naive_drop_pp


ARTIFACTS: dict[str, str] = {
    "float_weights.pt": "application/octet-stream",
    "hw_weights.pt": "application/octet-stream",
    "device_levels.npz": "application/octet-stream",
    "metrics.csv": "text/csv",
    "report.json": "application/json",
}
"""Artifact names a study produces, with their media types."""
