"""What a robustness sweep varies: named profile parameters, their values, the grid of points.

No torch import: the API validates sweeps with this module and the worker runs them with
``hwmodels.sweep``. A sweep varies one or two parameters of a base study's hardware
profile; every point of the grid is the base profile with those fields replaced, and is
validated as a whole ``HardwareProfile``, so a value outside a field's range is refused
with the same message a job would get.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from hwmodels.profile import HardwareProfile
from hwmodels.report import RobustnessReport

MAX_VALUES_PER_AXIS = 12
MAX_POINTS = 48
MAX_AXES = 2

SweepParameter = Literal[
    "weight_bits",
    "activation_bits",
    "on_off_ratio",
    "nonlinearity",
    "asymmetry",
    "programming_noise",
    "stuck_fraction",
]


@dataclass(frozen=True)
class ParameterInfo:
    """Where a sweep parameter lives in the profile and which way is harsher hardware.

    ``harsher``: "lower" when smaller values are worse hardware (fewer bits, a smaller
    on/off ratio), "higher" when larger ones are (more noise); "farther_from_zero" for
    the non-linearity, which hurts in either sign. The robustness figures walk the curve
    from the mildest value towards the harshest.
    """

    path: tuple[str, str]
    label: str
    integer: bool
    harsher: Literal["lower", "higher", "farther_from_zero"]

    def mildness(self, value: float) -> float:
        """A key that sorts values from the mildest to the harshest hardware."""
        if self.harsher == "lower":
            return -value
        if self.harsher == "higher":
            return value
        return abs(value)


PARAMETERS: dict[str, ParameterInfo] = {
    "weight_bits": ParameterInfo(("weights", "bits"), "weight bits", True, "lower"),
    "activation_bits": ParameterInfo(("activations", "bits"), "activation bits", True, "lower"),
    "on_off_ratio": ParameterInfo(
        ("conductance", "on_off_ratio"), "on/off ratio Gmax/Gmin", False, "lower"
    ),
    "nonlinearity": ParameterInfo(
        ("conductance", "nonlinearity"), "non-linearity ν", False, "farther_from_zero"
    ),
    "asymmetry": ParameterInfo(("conductance", "asymmetry"), "pair asymmetry", False, "higher"),
    "programming_noise": ParameterInfo(
        ("noise", "programming"), "programming noise (σ / range)", False, "higher"
    ),
    # Devices stuck at Gmin, the commoner fault; stuck-on devices stay as in the base profile.
    "stuck_fraction": ParameterInfo(("noise", "stuck_off"), "stuck-off fraction", False, "higher"),
}


class SweepPoint(BaseModel):
    """One point of the grid: the swept values and the complete profile they give."""

    index: int
    values: dict[str, int | float]
    profile: HardwareProfile


class PointValueError(ValueError):
    """A value the profile refuses; ``axis`` and ``position`` say which one."""

    def __init__(
        self, axis: int, position: int, message: str, errors: list[Any] | None = None
    ) -> None:
        super().__init__(message)
        self.axis = axis
        self.position = position
        self.errors = errors or []  # pydantic's error entries, for a caller to reword


def build_points(base: HardwareProfile, axes: list[tuple[str, list[float]]]) -> list[SweepPoint]:
    """Every combination of the axes' values (first axis outermost), as profiles.

    Raises PointValueError for the first value that makes an invalid profile.
    """
    for axis, (parameter, values) in enumerate(axes):
        for position, value in enumerate(values):
            try:
                _with_values(base, {parameter: value})
            except ValueError as exc:
                raise PointValueError(axis, position, _first_message(exc), _errors(exc)) from None
    points = []
    for index, combination in enumerate(itertools.product(*(values for _, values in axes))):
        chosen = {parameter: value for (parameter, _), value in zip(axes, combination, strict=True)}
        try:
            profile = _with_values(base, chosen)
        except ValueError as exc:  # valid alone, invalid together (e.g. stuck fractions)
            raise PointValueError(0, index, _first_message(exc), _errors(exc)) from None
        label = ", ".join(f"{name}={value:g}" for name, value in chosen.items())
        profile = profile.model_copy(update={"name": f"{base.name} {label}"[:64]})
        points.append(SweepPoint(index=index, values=chosen, profile=profile))
    return points


def _with_values(base: HardwareProfile, chosen: dict[str, int | float]) -> HardwareProfile:
    overrides: dict[str, Any] = {}
    for parameter, value in chosen.items():
        group, name = PARAMETERS[parameter].path
        overrides.setdefault(group, {})[name] = value
    return base.with_overrides(overrides)


def _errors(exc: ValueError) -> list[Any]:
    errors = getattr(exc, "errors", None)
    return list(errors()) if callable(errors) else []


def _first_message(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc)


class PointResult(BaseModel):
    """One point of an evaluate-mode sweep: the trained networks on that hardware."""

    index: int
    values: dict[str, int | float]
    naive_mean: float
    naive_std: float
    hardware_aware_mean: float
    hardware_aware_std: float
    chips: int = Field(description="Simulated chips per model at this point.")


class SweepEvaluationReport(RobustnessReport):
    """An evaluate-mode sweep: the base study's report, plus its networks on every point.

    A subclass, so the job that ran it has the ordinary summary, report page and
    artifacts of its base study; ``sweep_points`` holds the curve.
    """

    sweep_points: list[PointResult]


__all__ = [
    "MAX_AXES",
    "MAX_POINTS",
    "MAX_VALUES_PER_AXIS",
    "PARAMETERS",
    "ParameterInfo",
    "PointResult",
    "PointValueError",
    "SweepEvaluationReport",
    "SweepParameter",
    "SweepPoint",
    "build_points",
]
