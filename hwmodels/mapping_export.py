"""A layer's nominal programming for export and reports: levels, statistics, tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from hwmodels.report import LayerMapping
from hwmodels.surrogates import HARD

if TYPE_CHECKING:
    from hwmodels.mapping import WeightMapper


@dataclass(frozen=True)
class ProgrammedLayer:
    """One layer's nominal programming: what a chip programmer would write."""

    scale: Tensor
    """s: shape () per layer or (fan_out, 1) per column."""
    positive: np.ndarray
    """uint8 levels of the positive device (offset mapping: the single device)."""
    negative: np.ndarray | None
    """uint8 levels of the negative device (differential only)."""
    effective: Tensor
    """w_eff of the nominal chip (no noise, no faults)."""


def program(mapper: WeightMapper, weight: Tensor) -> ProgrammedLayer:
    """The nominal programming of a weight matrix (levels, scale, w_eff)."""
    with torch.no_grad():
        s = mapper.scale(weight)
        v = weight / s
        effective = mapper.nominal_effective(v, HARD) * s
        if mapper.coding is None:
            fractions = _analog_fractions(mapper, v)
            return ProgrammedLayer(s, fractions[0], fractions[1], effective)
        code = mapper.coding.codes(v)
        if mapper.offset:
            return ProgrammedLayer(s, _uint8(code), None, effective)
        levels = mapper.coding.levels
        positive = (code - levels).clamp_(min=0)
        negative = (levels - code).clamp_(min=0)
        return ProgrammedLayer(s, _uint8(positive), _uint8(negative), effective)


def layer_statistics(mapper: WeightMapper, name: str, weight: Tensor) -> LayerMapping:
    """report.LayerMapping of one layer's nominal programming."""
    programmed = program(mapper, weight)
    with torch.no_grad():
        s = programmed.scale
        clipped = float((weight.abs() > s).double().mean())
        error = float(((weight - programmed.effective).abs() / s).double().mean())
    histogram: list[int] = []
    if mapper.levels is not None:
        counts = np.bincount(programmed.positive.ravel(), minlength=mapper.levels + 1)
        if programmed.negative is not None:
            counts = counts + np.bincount(programmed.negative.ravel(), minlength=mapper.levels + 1)
        histogram = [int(c) for c in counts]
    return LayerMapping(
        name=name,
        fan_in=int(weight.shape[1]),
        fan_out=int(weight.shape[0]),
        scale=float(s.double().mean()),
        levels=None if mapper.levels is None else mapper.levels + 1,
        clipped_fraction=clipped,
        mean_abs_error=error,
        level_histogram=histogram,
    )


def conductance_tables(mapper: WeightMapper) -> dict[str, np.ndarray]:
    """Level conductance tables (float64) of the devices, for the artifact."""
    if mapper.levels is None:
        return {}
    pair = mapper.pair
    tables = {"positive_conductance": pair.level_conductances(pair.positive).numpy()}
    if mapper.offset:
        tables["reference_conductance"] = np.array([mapper.reference])
    else:
        tables["negative_conductance"] = pair.level_conductances(pair.negative).numpy()
    return tables


def _analog_fractions(mapper: WeightMapper, v: Tensor) -> tuple[np.ndarray, np.ndarray | None]:
    """Analog export: programmed fractions u (float32) instead of integer levels."""
    clipped = v.clamp(-1.0, 1.0)
    if mapper.offset:
        u = mapper.programmed_fraction((clipped + 1.0) * 0.5)
        return u.numpy().astype(np.float32), None
    u = mapper.programmed_fraction(clipped.abs())
    return (
        (u * (clipped > 0)).numpy().astype(np.float32),
        (u * (clipped < 0)).numpy().astype(np.float32),
    )


def _uint8(levels: Tensor) -> np.ndarray:
    return levels.to(torch.uint8).numpy()


__all__ = ["ProgrammedLayer", "conductance_tables", "layer_statistics", "program"]
