"""Hardware profiles: what a neuromorphic crossbar does to a network, as validated data.

This module imports no torch, so the API process can validate profiles with it. The
meaning of every field is the reference model in docs/hardware-model.md; the engine in
``hwmodels.device`` and ``hwmodels.mapping`` implements exactly these fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


_NO_DRIFT = DriftConfig()


class HardwareProfile(StrictModel):
    """A complete description of the target hardware for one network."""

    name: str = Field(default="custom", max_length=64)
    description: str = Field(default="", max_length=2000)
    source: str = Field(
        default="", max_length=2000, description="Where the numbers come from, or 'illustrative'."
    )
    weights: WeightConfig = WeightConfig()
    conductance: ConductanceConfig = ConductanceConfig()
    activations: ActivationConfig = ActivationConfig()
    converters: ConverterConfig = ConverterConfig()
    noise: NoiseConfig = NoiseConfig()
    array: ArrayConfig | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description='Crossbar array size, e.g. {"rows": 256, "columns": 256}; null = '
        "unbounded (one array per layer). Left out of a dump when null, so stored "
        "profiles dump (and hash) as before.",
    )
    drift: DriftConfig = Field(
        default=DriftConfig(),
        exclude_if=lambda value: value == _NO_DRIFT,
        description="Conductance drift after programming; left out of a dump when off "
        "(the default), so stored profiles dump (and hash) as before.",
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> HardwareProfile:
        if self.noise.stuck_off + self.noise.stuck_on > 0.5:
            raise ValueError(
                "noise.stuck_off + noise.stuck_on must be at most 0.5: "
                "a chip with most devices stuck computes nothing useful"
            )
        if self.activations.function == "sigmoid" and self.activations.clip is not None:
            raise ValueError("activations.clip applies to relu only: sigmoid's range is (0, 1)")
        return self

    @property
    def is_ideal(self) -> bool:
        """True when the hardware computes exactly what float software computes."""
        return self.model_dump(include=_PHYSICAL_FIELDS) == _IDEAL_PHYSICS

    def with_overrides(self, overrides: dict[str, Any]) -> HardwareProfile:
        """A copy with nested fields replaced, e.g. {"noise": {"programming": 0.05}}."""
        merged = _deep_merge(self.model_dump(), overrides)
        return HardwareProfile.model_validate(merged)


_PHYSICAL_FIELDS = {"weights", "conductance", "activations", "converters", "noise", "drift"}


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class UnknownPresetError(KeyError):
    """Raised for a preset name that does not exist; the message lists the valid ones."""

    def __str__(self) -> str:
        return str(self.args[0])


_ILLUSTRATIVE = (
    "Illustrative: values chosen within the ranges that device reviews report for this "
    "technology (e.g. Burr et al., Adv. Phys. X 2017; Yu, Proc. IEEE 2018), "
    "not measurements of a particular chip."
)


def _preset(name: str, description: str, source: str, **groups: dict[str, Any]) -> HardwareProfile:
    return HardwareProfile.model_validate(
        {"name": name, "description": description, "source": source, **groups}
    )


def _rram(bits: int) -> HardwareProfile:
    return _preset(
        f"rram-{bits}bit",
        f"Filamentary RRAM (HfOx-like), {bits} bits per device, differential pair: "
        "modest on/off ratio, strongly non-linear programming, device-to-device variation.",
        _ILLUSTRATIVE,
        weights={"bits": bits},
        conductance={"on_off_ratio": 10.0, "nonlinearity": 3.0, "asymmetry": 0.1},
        activations={"bits": 4},
        noise={"programming": 0.03, "read": 0.01, "stuck_off": 0.005, "stuck_on": 0.002},
    )


def _pcm(bits: int) -> HardwareProfile:
    return _preset(
        f"pcm-{bits}bit",
        f"Phase-change memory, {bits} bits per device, differential pair: high on/off "
        "ratio, gradual SET non-linearity, larger programming noise.",
        _ILLUSTRATIVE,
        weights={"bits": bits},
        conductance={"on_off_ratio": 100.0, "nonlinearity": 1.5, "asymmetry": 0.05},
        activations={"bits": 4},
        noise={"programming": 0.04, "read": 0.02, "stuck_off": 0.002, "stuck_on": 0.001},
    )


def _fefet(bits: int) -> HardwareProfile:
    return _preset(
        f"fefet-{bits}bit",
        f"Ferroelectric FET (HfZrO-like), {bits} bits per device, differential pair: "
        "large on/off ratio, mild non-linearity, low noise.",
        _ILLUSTRATIVE,
        weights={"bits": bits},
        conductance={"on_off_ratio": 1000.0, "nonlinearity": 1.0, "asymmetry": 0.05},
        activations={"bits": 4},
        noise={"programming": 0.02, "read": 0.005},
    )


PRESETS: dict[str, HardwareProfile] = {
    p.name: p
    for p in [
        _preset(
            "ideal",
            "Float software: no quantization, no non-ideality. The reference point.",
            "Definition.",
        ),
        _preset(
            "sram-4bit",
            "Digital SRAM compute-in-memory: 4-bit weights from bit-sliced 1-bit cells and "
            "4-bit activations. Exact levels: only quantization, no analog error.",
            "Illustrative of digital SRAM CIM macros with 4-bit weights and inputs.",
            weights={"bits": 4},
            activations={"bits": 4},
        ),
        _preset(
            "sram-8bit",
            "Digital SRAM compute-in-memory with 8-bit weights and activations.",
            "Illustrative of digital SRAM CIM macros with 8-bit weights and inputs.",
            weights={"bits": 8},
            activations={"bits": 8},
        ),
        _rram(2),
        _rram(4),
        _pcm(3),
        _pcm(4),
        _fefet(2),
        _fefet(3),
    ]
}


def get_preset(name: str) -> HardwareProfile:
    """The named preset; an unknown name raises UnknownPresetError listing valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        valid = ", ".join(sorted(PRESETS))
        raise UnknownPresetError(
            f"unknown hardware preset {name!r}; valid presets: {valid}"
        ) from None


def resolve_profile(
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    inline: dict[str, Any] | None = None,
) -> HardwareProfile:
    """Build a profile from a preset name, a preset plus overrides, or inline parameters.

    Raises UnknownPresetError or pydantic.ValidationError with a message naming the field.
    """
    if inline is not None:
        if preset is not None:
            raise ValueError("give either a preset (with optional overrides) or an inline profile")
        base = HardwareProfile.model_validate(inline)
    else:
        base = get_preset(preset or "ideal")
    if overrides:
        base = base.with_overrides(overrides)
        if preset is not None:
            base = base.model_copy(update={"name": f"{preset}+overrides"})
    return base


IDEAL = PRESETS["ideal"]
_IDEAL_PHYSICS = IDEAL.model_dump(include=_PHYSICAL_FIELDS)

__all__ = [
    "MAX_CLIP",
    "MAX_DRIFT_TIME_S",
    "PRESETS",
    "ActivationConfig",
    "ArrayConfig",
    "ConductanceConfig",
    "ConverterConfig",
    "DriftConfig",
    "HardwareProfile",
    "NoiseConfig",
    "StrictModel",
    "UnknownPresetError",
    "ValidationError",
    "WeightConfig",
    "get_preset",
    "resolve_profile",
]
