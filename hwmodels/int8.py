"""Integer GEMMs for the Monte Carlo forward: int8 operands, exact int32 sums.

Every layer's input on a chip is a converter's output, an integer code c_j times a step
(the layer's DAC, or without one the quantizer of the neuron before it; the first
layer's 8-bit pixels are codes already). Only the weights need rounding: each chip's
W_ij becomes r_i q_ij with q_ij in [-ROW_LEVELS, ROW_LEVELS] and r_i = max_j |W_ij| /
ROW_LEVELS per output row, and

    y_i = r_i step (sum_j q_ij (c_j - shift) + shift sum_j q_ij),

where shift is 128 when the codes use all 8 bits (int8 holds -128..127) and 0 otherwise.
The integer sums are exact (``torch._int_mm``: VNNI instructions where the CPU has them),
so the weight rounding (at most r_i / 2 per weight) is the only difference from float32;
bench/bench_engine.py reports how far it moves the chips' accuracies.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from hwmodels.surrogates import Uniform

ROW_LEVELS = 127
"""A weight row's largest magnitude maps to this code (symmetric, so -128 is unused)."""

MAX_CODES = 256
"""Most levels an input converter may have: its codes must fit one byte."""


class Grid(NamedTuple):
    """The integer codes one layer's input comes in."""

    numbers: Tensor
    """``mlp_forward.numbers`` of the converter whose codes the GEMM takes."""
    step: float
    shift: int
    """Subtracted from every code so that it fits int8 (0 or 128)."""


class IntWeights(NamedTuple):
    """A layer's weights for a chunk of chips, rounded per output row."""

    codes: Tensor
    """int8, (chips, out, in), or (out, in) when every chip has the same weights."""
    scale: Tensor
    """float32 r_i, (chips, out) or (out,)."""
    sums: Tensor
    """float32 sum_j q_ij of each row (for the shift), same shape as ``scale``."""


def shift_for(q: Uniform) -> int:
    """The shift that puts ``q``'s codes into int8; ValueError if they cannot go there."""
    if q.lo != 0.0 or q.n > MAX_CODES:
        raise ValueError(
            f"compute_dtype int8 needs converters over [0, hi] with at most {MAX_CODES} "
            f"levels; got {q.n} levels from {q.lo:g}: use float32 or bfloat16"
        )
    return 128 if q.n > 128 else 0


def quantize_rows(weight: Tensor) -> IntWeights:
    """``weight`` (..., out, in) rounded to int8 per output row, round half to even."""
    top = weight.abs().amax(dim=-1)
    scale = torch.where(top > 0, top / ROW_LEVELS, torch.ones_like(top))
    codes = torch.round(weight / scale.unsqueeze(-1)).clamp_(-ROW_LEVELS, ROW_LEVELS)
    codes8 = codes.to(torch.int8)
    return IntWeights(codes8, scale, codes.sum(dim=-1))


def matmul(w: Tensor, h: Tensor) -> Tensor:
    """W @ h in int32 for int8 ``w`` (chips, out, in) or (out, in) and int8 ``h`` (in,
    images) or (chips, in, images), as (chips, out, images), or (out, images) when both
    are two-dimensional."""
    if h.dim() == 2:
        if w.dim() == 2:
            return torch._int_mm(w, h)
        return torch._int_mm(w.reshape(-1, w.shape[-1]), h).view(w.shape[0], w.shape[1], -1)
    out = torch.empty(h.shape[0], w.shape[-2], h.shape[-1], dtype=torch.int32)
    for chip in range(h.shape[0]):
        torch._int_mm(w[chip] if w.dim() == 3 else w, h[chip], out=out[chip])
    return out


def dequantize(w: IntWeights, grid: Grid) -> tuple[Tensor, Tensor | None]:
    """(gain, offset) such that (W @ h in int32 + offset) gain is y in float, each shaped
    (..., out, 1) to broadcast over images; offset None without a shift."""
    gain = (w.scale * grid.step).unsqueeze(-1)
    offset = None if grid.shift == 0 else (w.sums * grid.shift).unsqueeze(-1)
    return gain, offset


__all__ = [
    "MAX_CODES",
    "ROW_LEVELS",
    "Grid",
    "IntWeights",
    "dequantize",
    "matmul",
    "quantize_rows",
    "shift_for",
]
