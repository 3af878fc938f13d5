"""Hardware profiles: what a neuromorphic crossbar does to a network, as validated data.

This module imports no torch, so the API process can validate profiles with it. The
meaning of every field is the reference model in docs/hardware-model.md; the engine in
``hwmodels.device`` and ``hwmodels.mapping`` implements exactly these fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, model_validator

from hwmodels.profile_fields import (
    MAX_CLIP,
    MAX_DRIFT_TIME_S,
    ActivationConfig,
    ArrayConfig,
    ConductanceConfig,
    ConverterConfig,
    DriftConfig,
    NoiseConfig,
    StrictModel,
    WeightConfig,
)

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
