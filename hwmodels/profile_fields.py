"""The groups of fields a hardware profile is made of, one per part of the circuit.

No torch here either (see profile.py, which assembles them into ``HardwareProfile``);
the meaning of every field is the reference model in docs/hardware-model.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_CLIP = 1e6
"""Largest fixed activation clip: the engine computes in float32, where a clip near its
range (3.4e38) turns the quantizer's step into infinity and every activation into NaN;
real activations of these networks stay far below it."""

MAX_DRIFT_TIME_S = 3.2e9  # about 100 years after programming


class StrictModel(BaseModel):
    """What a person typed is taken as typed, or refused.

    Unknown fields are errors (a typo in a profile must not silently mean 'ideal'); no
    coercion (``"bits": true`` is not 1, ``"yes"`` is not true; an integer is still a
    valid float); no infinity or NaN (JSON stores them as null, so they would come back
    as something else). Literals still accept their strings, so a spec stored as JSON
    validates again unchanged.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class WeightConfig(StrictModel):
    """How a trained weight becomes device levels."""

    bits: int | None = Field(
        default=None,
        ge=1,
        le=8,
        description="Bits per device: levels k = 0..2^bits-1. null = analog (float) weights.",
    )
    mapping: Literal["differential", "offset"] = Field(
        default="differential",
        description="differential: w ~ G+ - G-, one device each; "
        "offset: one device read against a mid-range reference device.",
    )
    programming: Literal["linear", "calibrated"] = Field(
        default="calibrated",
        description="linear: k = round(m L), the curve distorts every weight; "
        "calibrated: k is the level whose conductance is nearest the target.",
    )
    scale: Literal["per_layer", "per_column"] = Field(
        default="per_layer", description="One weight scale per layer or per output column."
    )
    scale_percentile: float = Field(
        default=100.0,
        gt=50.0,
        le=100.0,
        description="Scale s = this percentile of |w|; weights above it clip to the top level.",
    )


class ConductanceConfig(StrictModel):
    """The device's conductance versus programmed level, and the pair's mismatch."""

    on_off_ratio: float | None = Field(
        default=None,
        gt=1.0,
        description="Gmax/Gmin, above 1 (at 1 the device has no conductance range). "
        "null = infinite (Gmin = 0, an ideal off state).",
    )
    nonlinearity: float = Field(
        default=0.0,
        ge=-10.0,
        le=10.0,
        description="nu of G(k) = Gmin + (Gmax-Gmin)(1-exp(-nu k/L))/(1-exp(-nu)); 0 = linear.",
    )
    asymmetry: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Negative (or reference) device: Gmax- = (1 - a) Gmax+, same on/off ratio.",
    )
    nonlinearity_mismatch: float = Field(
        default=0.0,
        ge=-1.0,
        le=1.0,
        description="Negative (or reference) device: nu- = (1 + m) nu.",
    )


class ActivationConfig(StrictModel):
    """The neuron circuit: activation function, its range and resolution."""

    function: Literal["relu", "sigmoid"] = Field(default="relu")
    bits: int | None = Field(
        default=None, ge=1, le=8, description="Uniform levels over the range. null = float."
    )
    clip: float | None = Field(
        default=None,
        gt=0.0,
        le=MAX_CLIP,
        description="ReLU upper limit a_max. null = calibrated on training data (percentile).",
    )
    clip_percentile: float = Field(
        default=99.9,
        gt=50.0,
        le=100.0,
        description="Percentile of the float network's activations that sets a calibrated "
        "a_max (then learned in hardware-aware training).",
    )


class ConverterConfig(StrictModel):
    """Optional data converters around the array, uniform over a calibrated range."""

    input_bits: int | None = Field(default=None, ge=1, le=8, description="DAC bits on inputs.")
    output_bits: int | None = Field(default=None, ge=1, le=12, description="ADC bits on columns.")
    output_percentile: float = Field(
        default=99.9,
        gt=50.0,
        le=100.0,
        description="Percentile of |column output| (per tile) that sets the ADC range.",
    )


class NoiseConfig(StrictModel):
    """Device variation and faults, all relative to the conductance range Gmax - Gmin."""

    programming: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Std of programming error, fixed per chip."
    )
    read: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Std of read noise, drawn at every inference."
    )
    stuck_off: float = Field(
        default=0.0, ge=0.0, le=0.5, description="Fraction of devices stuck at Gmin."
    )
    stuck_on: float = Field(
        default=0.0, ge=0.0, le=0.5, description="Fraction of devices stuck at Gmax."
    )


class ArrayConfig(StrictModel):
    """The size of one crossbar array; a larger layer is split into tiles (tiling.py).

    A cell holds one weight (its device pair, or device and reference), as in arrays whose
    unit cell stores a signed weight. Each tile's column sums pass the ADC (when
    ``converters.output_bits`` is set) before the tiles' partial sums are added digitally.
    """

    rows: int = Field(ge=1, le=65536, description="Inputs (word lines) per array.")
    columns: int = Field(ge=1, le=65536, description="Weight columns (bit lines) per array.")


class DriftConfig(StrictModel):
    """Conductance drift after programming: G(t) = G(t0) (t / t0)^(-nu) for t >= t0.

    nu is drawn once per device of a simulated chip, normal with this mean and spread,
    clipped at 0 (conductance does not grow back). The default (mean and spread 0) is no
    drift; evaluation at times after t0 is asked for in ``evaluation.drift_times_s``.
    """

    nu_mean: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Mean drift exponent nu (PCM: about 0.05)."
    )
    nu_spread: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Std of nu from device to device."
    )
    t0_s: float = Field(
        default=1.0,
        gt=0.0,
        le=MAX_DRIFT_TIME_S,
        description="Time after programming (s) at which devices hold their programmed "
        "conductance: the chip as trained and evaluated without drift.",
    )
    compensation: bool = Field(
        default=False,
        description="Also evaluate with global drift compensation: each layer's outputs "
        "rescaled by its measured mean conductance decay (summed currents at t0 / at t).",
    )

    @property
    def active(self) -> bool:
        """True when any device can drift."""
        return self.nu_mean > 0.0 or self.nu_spread > 0.0

    @model_validator(mode="after")
    def _compensation_needs_drift(self) -> DriftConfig:
        if self.compensation and not self.active:
            raise ValueError(
                "drift.compensation needs drift: set drift.nu_mean or drift.nu_spread above 0"
            )
        return self
