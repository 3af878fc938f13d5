"""The numbers behind the report page's figures, computed where the tensors are.

The service draws a study's figures in the API process, which has no torch; so the
engine stores, in the report, the few kilobytes each figure needs: the device's
conductance curves and levels, every layer's weights binned in device-level units, the
hardware-aware model's confusion matrix (accumulated by the Monte Carlo evaluation) and
the training curve.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hwmodels.mapping import WeightMapper
from hwmodels.network import HardwareNet
from hwmodels.report import DeviceCurves, EpochPoint, ReportFigures, WeightHistogram
from hwmodels.training import EpochRecord

CURVE_POINTS = 65
MAX_BINS = 256
MAX_MARKED_LEVELS = 129
BINS_PER_LEVEL = 8
ANALOG_BINS = 80


def report_figures(
    naive: HardwareNet, aware: HardwareNet, confusion: Tensor, records: list[EpochRecord]
) -> ReportFigures:
    """All figure data of one study (``naive`` holds the float weights as programmed)."""
    mapper = aware.mapper
    weights = [
        weight_histogram(mapper, f"layer{index}", before.weight.detach(), after.weight.detach())
        for index, (before, after) in enumerate(
            zip(naive.hardware_layers(), aware.hardware_layers(), strict=True), 1
        )
    ]
    return ReportFigures(
        device=device_curves(mapper),
        weights=weights,
        confusion=[[int(c) for c in row] for row in confusion.tolist()],
        training=[training_point(record) for record in records],
    )


def device_curves(mapper: WeightMapper) -> DeviceCurves:
    """G(u) of both device types on a fine grid, and at the programmable levels."""
    pair = mapper.pair
    u = torch.linspace(0.0, 1.0, CURVE_POINTS, dtype=torch.float64)
    level_u: list[float] = []
    positive_levels: list[float] = []
    negative_levels: list[float] = []
    if pair.levels is not None:
        level_u = _rounded(torch.arange(pair.levels + 1, dtype=torch.float64) / pair.levels)
        positive_levels = _rounded(pair.level_conductances(pair.positive))
        negative_levels = _rounded(pair.level_conductances(pair.negative))
    return DeviceCurves(
        u=_rounded(u),
        positive=_rounded(pair.positive.conductance(u)),
        negative=_rounded(pair.negative.conductance(u)),
        level_u=level_u,
        positive_levels=positive_levels,
        negative_levels=negative_levels,
        reference=round(mapper.reference, 6) if mapper.offset else None,
    )


def weight_histogram(
    mapper: WeightMapper, name: str, before: Tensor, after: Tensor
) -> WeightHistogram:
    """Both weight matrices in device-level units (see report.WeightHistogram), binned."""
    if mapper.levels is None:
        low, high, bins = -1.0, 1.0, ANALOG_BINS
        positions: list[float] = []
    else:
        top = mapper.levels
        bottom = 0 if mapper.offset else -top
        codes = top - bottom + 1
        low, high = bottom - 0.5, top + 0.5
        per_level = min(BINS_PER_LEVEL, MAX_BINS // codes)  # whole bins per level
        bins = per_level * codes if per_level >= 1 else MAX_BINS
        positions = (
            _rounded(_in_units(mapper, mapper.code_effective.double()))
            if codes <= MAX_MARKED_LEVELS
            else []  # too many to tell apart in a figure (e.g. 8-bit SRAM)
        )
    return WeightHistogram(
        name=name,
        unit="scale" if mapper.levels is None else "level",
        low=low,
        high=high,
        float_counts=_counts(_in_units(mapper, before / mapper.scale(before)), low, high, bins),
        hardware_aware_counts=_counts(
            _in_units(mapper, after / mapper.scale(after)), low, high, bins
        ),
        level_positions=positions,
    )


def training_point(record: EpochRecord) -> EpochPoint:
    return EpochPoint(
        phase=record.phase,
        stage=record.stage,
        epoch=record.epoch,
        loss=round(record.loss, 5),
        train_accuracy=round(record.train_accuracy, 5),
        validation_accuracy=(
            None if record.validation_accuracy is None else round(record.validation_accuracy, 5)
        ),
    )


def _in_units(mapper: WeightMapper, v: Tensor) -> Tensor:
    """w / s (or an effective weight / s) in the histogram's x units."""
    if mapper.levels is None:
        return v
    if mapper.offset:
        return (v + 1.0) * 0.5 * mapper.levels
    return v * mapper.levels


def _counts(x: Tensor, low: float, high: float, bins: int) -> list[int]:
    values = x.detach().double().reshape(-1).clamp(low, high)
    counts = torch.histc(values, bins=bins, min=low, max=high)
    return [int(c) for c in counts]


def _rounded(values: Tensor, digits: int = 6) -> list[float]:
    return [round(float(v), digits) for v in values]


__all__ = ["device_curves", "report_figures", "training_point", "weight_histogram"]
