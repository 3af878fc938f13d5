"""Ranges the hardware needs (a_max, DAC and ADC ranges) and how they are read.

A range is a buffer that starts as NaN and is set by calibration (``network.calibrate``);
reading one that was never set raises ``NotCalibratedError`` with what to call.
"""

from __future__ import annotations

import math

from torch import Tensor


class NotCalibratedError(RuntimeError):
    """A range (a_max, DAC or ADC) is needed but was never calibrated."""


def percentile(x: Tensor, p: float) -> float:
    """The p-th percentile (nearest rank) of all elements of x."""
    flat = x.detach().reshape(-1)
    if flat.numel() == 0:
        raise ValueError("cannot take a percentile of an empty tensor")
    if p >= 100.0:
        return float(flat.max())
    rank = min(flat.numel(), max(1, math.ceil(p / 100.0 * flat.numel())))
    return float(flat.kthvalue(rank).values)


def range_or_raise(value: Tensor, what: str) -> float:
    number = float(value.detach())
    if math.isnan(number):
        raise NotCalibratedError(
            f"{what} is not calibrated: call hwmodels.network.calibrate(net, train_images) "
            "before running the hardware model"
        )
    return number


__all__ = ["NotCalibratedError", "percentile", "range_or_raise"]
