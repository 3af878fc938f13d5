"""The weight scale s of a layer: a percentile of |w|, per layer or per output column.

s is part of the hardware function w_eff = s q(w / s), so training keeps its gradient
and routes it to the weight(s) that define it (LSQ style, Esser et al. 2020). The
default (per layer, 100th percentile: s = max |w|) has fast paths, and the fused
kernels (fused.py) compute it inside the weight transform itself.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MIN_SCALE = 1e-12
"""Smallest scale: an all-zero layer still divides by something."""


class WeightScale:
    """s = the ``percentile`` of |w|, per layer (shape ()) or per column ((out, 1))."""

    def __init__(self, per_column: bool, percentile: float) -> None:
        self.per_column = per_column
        self.percentile = percentile

    @property
    def is_max(self) -> bool:
        """True for the default s = max |w| over the layer (what fused kernels compute)."""
        return not self.per_column and self.percentile >= 100.0

    def __call__(self, weight: Tensor, track: bool = False) -> Tensor:
        """s of ``weight``; ``track``: keep its gradient to the weight that defines it."""
        if track and weight.requires_grad:
            s, source = self.source(weight)
            top: Tensor = _Picked.apply(weight, source)  # type: ignore[no-untyped-call]
            return top.clamp_min(MIN_SCALE).view(s.shape)
        if self.is_max:
            with torch.no_grad():
                low, high = torch.aminmax(weight)
            return torch.maximum(high, -low).clamp_min(MIN_SCALE)
        return self.source(weight)[0]

    def source(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        """s (no gradient) and the flat indices of the weights that define it (one per
        layer or per column): fused training functions route dL/ds to those weights
        themselves (``add_scale_gradient``) instead of through a separate autograd node."""
        with torch.no_grad():
            if self.is_max:
                index = _largest_index(weight)
                s = weight.reshape(-1).index_select(0, index).abs_()
                return s.clamp_min_(MIN_SCALE).reshape(()), index
            rows = weight.shape[0] if self.per_column else 1
            magnitude = weight.abs().reshape(rows, -1)
            if self.percentile >= 100.0:
                values, indices = magnitude.max(dim=1, keepdim=True)
            else:
                count = magnitude.shape[1]
                rank = min(count, max(1, math.ceil(self.percentile / 100 * count)))
                values, indices = magnitude.kthvalue(rank, dim=1, keepdim=True)
            starts = torch.arange(rows).unsqueeze(1) * magnitude.shape[1]
            s = values.clamp_min_(MIN_SCALE)
            return (s if self.per_column else s.reshape(())), (indices + starts).reshape(-1)


def add_scale_gradient(
    grad_weight: Tensor, grad_s: Tensor, weight: Tensor, source: Tensor
) -> Tensor:
    """grad_weight plus dL/ds routed to the weights that define s = |w[source]| (in place).

    The same gradient ``WeightScale(track=True)`` gives through its own node (zero where
    s was clamped at MIN_SCALE), without a full-size zero matrix per layer and step.
    """
    picked = weight.detach().reshape(-1).index_select(0, source)
    routed = grad_s.reshape(-1) * picked.sign() * (picked.abs() >= MIN_SCALE)
    grad_weight.view(-1).index_add_(0, source, routed)
    return grad_weight


def _largest_index(weight: Tensor) -> Tensor:
    """Flat index of a largest |w|, found row-wise (vectorised min/max per row, then two
    short argmaxes): a flat argmax over the matrix is slower on CPU."""
    rows = weight.reshape(weight.shape[0], -1)
    high, low = rows.amax(dim=1), rows.amin(dim=1)  # aminmax(dim=1) is slower
    row = int(torch.maximum(high, -low).argmax())
    column = int(rows[row].abs().argmax())
    return torch.tensor([row * rows.shape[1] + column])


class _Picked(torch.autograd.Function):
    """|w| at given flat indices; the gradient flows to those elements only (not through
    a mask over the whole matrix, as autograd's max would)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, weight: Tensor, index: Tensor) -> Tensor:
        picked = weight.detach().reshape(-1).index_select(0, index)
        ctx.save_for_backward(index, picked.sign())
        ctx.shape = weight.shape  # type: ignore[attr-defined]
        return picked.abs()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        index, sign = ctx.saved_tensors  # type: ignore[attr-defined]
        shape = ctx.shape  # type: ignore[attr-defined]
        result = torch.zeros(shape, dtype=grad.dtype).reshape(-1)
        result.index_add_(0, index, grad.reshape(-1) * sign)
        return result.view(shape), None


__all__ = ["MIN_SCALE", "WeightScale", "add_scale_gradient"]
