"""Staircases and their differentiable stand-ins: hard, straight-through, smooth(tau).

Every discrete choice the hardware makes (which device level, which activation, DAC or
ADC code) is a staircase: value(x) = base + sum_j step_j * [x >= t_j]. Training needs a
gradient through it, in one of two ways (docs/hardware-model.md, "Training through it"):

- ``ste``: the forward pass is the hard staircase; the backward pass treats the rounding
  as the identity (inside the clipping range; outside it the gradient is zero);
- ``smooth``: the staircase becomes q_tau(x) = base + sum_j step_j * sigmoid((x - t_j) / tau),
  t_j midway between levels, with tau a fraction ``rho`` of the level spacing.

Cost: the smooth staircase depends only on x (its thresholds and steps are fixed by the
profile), so for a given tau it is tabulated once on a fine grid and then evaluated by
linear interpolation: one packed (value, slope) look-up per element whatever the number
of levels. The table is built with the windowed sum the brief asks for: for each grid point only the
thresholds within 20 tau contribute a sigmoid, those further below count as whole steps
and those further above as nothing (sigmoid(-20) = 2e-9). Departure from the reference
model: interpolation error, bounded by the grid step h <= tau / 8, is at most ~0.2% of
one step (and zero at tau -> 0, where the table is the hard staircase up to one grid cell).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import torch
from torch import Tensor

ModeKind = Literal["float", "hard", "ste", "smooth"]

SIGMOID_CUTOFF = 20.0
"""Sigmoids further than this many tau from x are taken as exactly 0 or 1."""
GRID_PER_TAU = 8
"""Table points per tau: linear interpolation of a sigmoid at h = tau/8 errs < 0.2% of a step."""
MAX_GRID = 2**20 + 1
"""Upper bound on table size (4 MiB); very sharp, very fine staircases use coarser grids."""


@dataclass(frozen=True)
class Mode:
    """How a hardware-aware module computes: float, hard, straight-through or smooth.

    ``rho`` is tau as a fraction of each staircase's level spacing (smooth mode only).
    """

    kind: ModeKind = "hard"
    rho: float = 0.0

    def __post_init__(self) -> None:
        if self.kind == "smooth" and not self.rho > 0:
            raise ValueError("smooth mode needs rho > 0 (tau as a fraction of the level spacing)")


FLOAT = Mode("float")
HARD = Mode("hard")
STE = Mode("ste")


@dataclass(frozen=True)
class Staircase:
    """value(x) = base + sum_j heights[j] * [x >= thresholds[j]], thresholds sorted ascending.

    Heights may be negative (a device whose conductance falls as x rises). Ties (x exactly
    on a threshold, a measure-zero event for trained weights) count as crossed.
    """

    thresholds: Tensor
    heights: Tensor
    base: float

    def __post_init__(self) -> None:
        if self.thresholds.shape != self.heights.shape or self.thresholds.ndim != 1:
            raise ValueError("thresholds and heights must be 1-D tensors of the same length")
        if self.thresholds.numel() > 1 and bool((self.thresholds.diff() < 0).any()):
            raise ValueError("staircase thresholds must be sorted ascending")

    def hard(self, x: Tensor) -> Tensor:
        """The exact staircase (reference implementation, float64)."""
        x64 = x.to(torch.float64)
        crossed = torch.searchsorted(self.thresholds, x64.reshape(-1), right=True)
        prefix = torch.cat([torch.zeros(1, dtype=torch.float64), self.heights.cumsum(0)])
        return (self.base + prefix[crossed]).reshape(x.shape)

    def smooth(self, x: Tensor, tau: float) -> Tensor:
        """base + sum_j heights_j * sigmoid((x - t_j) / tau), float64, windowed.

        Only thresholds within SIGMOID_CUTOFF * tau of x get a sigmoid; the ones further
        below are counted as whole steps (a prefix sum) and the ones further above as 0.
        """
        x64 = x.to(torch.float64).reshape(-1)
        t = self.thresholds
        prefix = torch.cat([torch.zeros(1, dtype=torch.float64), self.heights.cumsum(0)])
        reach = SIGMOID_CUTOFF * tau
        first = torch.searchsorted(t, x64 - reach)
        last = torch.searchsorted(t, x64 + reach)
        width = int((last - first).max().item()) if x64.numel() else 0
        out = self.base + prefix[first]
        if width > 0:
            offsets = torch.arange(width)
            index = first.unsqueeze(1) + offsets
            inside = index < last.unsqueeze(1)
            index = index.clamp(max=t.numel() - 1)
            z = (x64.unsqueeze(1) - t[index]) / tau
            out = out + (self.heights[index] * torch.sigmoid(z) * inside).sum(1)
        return out.reshape(x.shape)

    def tabulate(self, tau: float, lo: float, hi: float) -> SmoothTable:
        """The smooth staircase on [lo, hi] as an interpolation table (built once per tau)."""
        if not hi > lo:
            raise ValueError("table range must have hi > lo")
        points = min(MAX_GRID, max(257, math.ceil((hi - lo) * GRID_PER_TAU / tau) + 1))
        grid = torch.linspace(lo, hi, points, dtype=torch.float64)
        chunks = [grid[i : i + 65536] for i in range(0, points, 65536)]
        values = torch.cat([self.smooth(chunk, tau) for chunk in chunks])
        return SmoothTable.from_values(values, lo, hi)


def _cells(
    x: Tensor, gain: Tensor | float, offset: Tensor | float, last: float
) -> tuple[Tensor, Tensor]:
    """Grid cell (flat int32) and fraction within it of position x * gain + offset.

    The position is clamped to [0, last] first, so truncation to int32 is the floor.
    """
    position = torch.mul(x, gain).add_(offset).clamp_(0.0, last)
    cell = position.to(torch.int32)
    return cell.reshape(-1), position.sub_(cell)


@dataclass(frozen=True)
class SmoothTable:
    """A function sampled on a uniform grid, evaluated by linear interpolation.

    Differentiable in x: the slope is that of the interpolant. The grid is padded with one
    flat cell at each end, so inputs beyond [lo, hi] get the end value and zero gradient.
    Each entry holds (value, slope) packed in 8 bytes, so one look-up fetches both: a
    forward pass is a handful of element-wise passes and one int32 gather; the backward
    pass is one multiply (a custom autograd function: this runs on every weight, every
    step).
    """

    lo: float
    inv_step: float
    last: float
    values: Tensor = field(repr=False)
    slopes: Tensor = field(repr=False)
    packed: Tensor = field(repr=False)

    @classmethod
    def from_values(cls, values: Tensor, lo: float, hi: float) -> SmoothTable:
        points = values.numel()
        step = (hi - lo) / (points - 1)
        padded = torch.cat([values[:1], values, values[-1:]]).to(torch.float32)
        slopes = torch.cat([padded.diff(), torch.zeros(1, dtype=padded.dtype)])
        return cls(
            lo=lo - step,
            inv_step=1.0 / step,
            last=float(padded.numel() - 1),
            values=padded,
            slopes=slopes,
            packed=pack_pairs(padded, slopes),
        )

    @cached_property
    def rows(self) -> Tensor:
        """The packed table as (entries, 2) float32 rows (value, slope), for fused kernels."""
        return self.packed.view(torch.float32).view(-1, 2)

    @cached_property
    def numbers(self) -> Tensor:
        """(gain, offset, last) of the grid as one tensor, for fused kernels (floats would
        compile them again for every table)."""
        return grid_numbers(self.lo, self.inv_step, self.last)

    def lookup(
        self, x: Tensor, scale: Tensor | float = 1.0, lo: float = 0.0
    ) -> tuple[Tensor, Tensor]:
        """(g((x - lo) / scale), slope per grid step), no autograd (for fused functions)."""
        gain = self.inv_step / scale
        index, fraction = _cells(x, gain, -(lo / scale + self.lo) * self.inv_step, self.last)
        pair = self.packed.index_select(0, index).view(torch.float32).view(*x.shape, 2)
        slope = pair[..., 1]
        return torch.addcmul(pair[..., 0], fraction, slope), slope

    def __call__(
        self, x: Tensor, scale: Tensor | float = 1.0, lo: float = 0.0, step: Tensor | float = 1.0
    ) -> Tensor:
        """lo + step * g((x - lo) / scale) in one autograd node (quantizers use
        scale = step = their level spacing)."""
        result: Tensor = _Interpolate.apply(x, self, scale, lo, step)  # type: ignore[no-untyped-call]
        return result


class _Interpolate(torch.autograd.Function):
    """y = lo + step * (values[i] + frac * slopes[i]) at position (x - lo) / scale."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: Tensor,
        table: SmoothTable,
        scale: Tensor | float,
        lo: float,
        step: Tensor | float,
    ) -> Tensor:
        result, slope = table.lookup(x, scale, lo)
        if not (isinstance(step, float) and step == 1.0):
            result.mul_(step)
        if lo != 0.0:
            result.add_(lo)
        ctx.save_for_backward(slope)
        ctx.gain = table.inv_step / scale * step  # type: ignore[attr-defined]
        return result

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor, None, None, None, None]:
        (slope,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return torch.mul(grad, slope).mul_(ctx.gain), None, None, None, None  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PairTable:
    """Two tabulated functions on the same grid (a device pair's G+ and G-), packed as
    (value+, value-, slope+, slope-) in 16 bytes, so a single look-up fetches all four.
    No autograd: callers build their own backward."""

    lo: float
    inv_step: float
    last: float
    packed: Tensor = field(repr=False)

    @classmethod
    def pack(cls, first: SmoothTable, second: SmoothTable) -> PairTable:
        if (first.lo, first.inv_step, first.last) != (second.lo, second.inv_step, second.last):
            raise ValueError("a pair table needs two tables on the same grid")
        quads = torch.stack([first.values, second.values, first.slopes, second.slopes], dim=-1)
        return cls(
            lo=first.lo,
            inv_step=first.inv_step,
            last=first.last,
            packed=quads.contiguous().view(torch.complex128).reshape(-1),
        )

    @cached_property
    def rows(self) -> Tensor:
        """The packed table as (entries, 4) float32 rows (G+, G-, slope+, slope-)."""
        return self.packed.view(torch.float32).view(-1, 4)

    @cached_property
    def numbers(self) -> Tensor:
        """(gain, offset, last) of the grid as one tensor, for fused kernels."""
        return grid_numbers(self.lo, self.inv_step, self.last)

    def lookup(self, x: Tensor, scale: Tensor | float) -> tuple[Tensor, Tensor]:
        """(values, slopes) at x / scale, each shaped (*x.shape, 2); slopes per grid step.

        ``values`` is a new contiguous tensor; ``slopes`` a view into the fetched entries.
        """
        index, fraction = _cells(x, self.inv_step / scale, -self.lo * self.inv_step, self.last)
        quads = self.packed.index_select(0, index).view(torch.float32).view(*x.shape, 4)
        slopes = quads[..., 2:]
        return torch.addcmul(quads[..., :2], fraction.unsqueeze(-1), slopes), slopes


def grid_numbers(lo: float, inv_step: float, last: float) -> Tensor:
    """A grid's position numbers: position = x / s * inv_step - lo * inv_step in [0, last]."""
    return torch.tensor([inv_step, -lo * inv_step, last], dtype=torch.float32)


def pack_pairs(first: Tensor, second: Tensor) -> Tensor:
    """Interleave two float32 tables into one float64-typed table (8 bytes per entry)."""
    return torch.stack([first, second], dim=-1).contiguous().view(torch.float64).reshape(-1)


# --- Uniform quantizers (activations, DAC, ADC) -------------------------------------


@dataclass(frozen=True)
class Uniform:
    """n levels lo, lo + step, ..., lo + (n - 1) step; inputs beyond them clip."""

    lo: float
    step: float
    n: int

    @property
    def hi(self) -> float:
        return self.lo + self.step * (self.n - 1)

    @classmethod
    def over(cls, lo: float, hi: float, bits: int) -> Uniform:
        """2^bits levels spread uniformly over [lo, hi]."""
        if not hi > lo:
            raise ValueError(f"quantizer range must be non-empty, got [{lo}, {hi}]")
        n = 2**bits
        return cls(lo=lo, step=(hi - lo) / (n - 1), n=n)


def quantize_hard(x: Tensor, q: Uniform) -> Tensor:
    """lo + step * clamp(round(u), 0, n - 1) with u = (x - lo) / step; ties round up."""
    return quantize_hard_(x.detach().clone(), q)


def quantize_hard_(x: Tensor, q: Uniform) -> Tensor:
    """In-place ``quantize_hard`` for evaluation buffers (no autograd)."""
    x.mul_(1.0 / q.step).add_(0.5 - q.lo / q.step).floor_().clamp_(0, q.n - 1)
    return x.mul_(q.step).add_(q.lo)


def quantize_ste(x: Tensor, q: Uniform) -> Tensor:
    """Hard forward; backward identity inside [lo, hi], zero outside (clipped inputs)."""
    result: Tensor = _RoundThrough.apply(x, q)  # type: ignore[no-untyped-call]
    return result


class _RoundThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, q: Uniform) -> Tensor:
        ctx.save_for_backward(x)
        ctx.bounds = (q.lo, q.hi)  # type: ignore[attr-defined]
        return quantize_hard_(x.clone(), q)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        lo, hi = ctx.bounds  # type: ignore[attr-defined]
        return grad * ((x >= lo) & (x <= hi)), None


_UNIT_TABLES: dict[tuple[int, float], SmoothTable] = {}


def unit_table(n: int, rho: float) -> SmoothTable:
    """The smooth staircase of a uniform quantizer in level units (thresholds j - 1/2).

    Shared by every quantizer with n levels: x is mapped to u = (x - lo) / step first.
    """
    key = (n, rho)
    table = _UNIT_TABLES.get(key)
    if table is None:
        thresholds = torch.arange(1, n, dtype=torch.float64) - 0.5
        stair = Staircase(thresholds, torch.ones(n - 1, dtype=torch.float64), 0.0)
        reach = SIGMOID_CUTOFF * rho
        table = stair.tabulate(rho, -0.5 - reach, n - 0.5 + reach)
        if len(_UNIT_TABLES) > 64:
            _UNIT_TABLES.clear()
        _UNIT_TABLES[key] = table
    return table


def quantize_smooth(x: Tensor, q: Uniform, rho: float) -> Tensor:
    """Sum-of-sigmoids quantizer, tau = rho * step."""
    return unit_table(q.n, rho)(x, q.step, q.lo, q.step)


def quantize(x: Tensor, q: Uniform, mode: Mode) -> Tensor:
    """The quantizer in the given mode (float mode: clip only, no rounding)."""
    if mode.kind == "float":
        return x.clamp(q.lo, q.hi)
    if mode.kind == "hard":
        return quantize_hard(x, q)
    if mode.kind == "ste":
        return quantize_ste(x, q)
    return quantize_smooth(x, q, mode.rho)


def geometric_rhos(stages: int, start: float = 1.0, end: float = 0.01) -> list[float]:
    """tau / spacing for each annealing stage: from ``start`` down to ``end`` geometrically.

    One stage uses ``end`` (the sharpest surrogate, closest to the hard model).
    """
    if stages < 1:
        raise ValueError("annealing needs at least one stage")
    if stages == 1:
        return [end]
    ratio = (end / start) ** (1.0 / (stages - 1))
    return [start * ratio**i for i in range(stages)]


__all__ = [
    "FLOAT",
    "HARD",
    "STE",
    "Mode",
    "PairTable",
    "SmoothTable",
    "Staircase",
    "Uniform",
    "geometric_rhos",
    "grid_numbers",
    "pack_pairs",
    "quantize",
    "quantize_hard",
    "quantize_hard_",
    "quantize_smooth",
    "quantize_ste",
    "unit_table",
]
