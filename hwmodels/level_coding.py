"""Level coding of digital devices: which level pair a weight gets, as one integer code.

Each weight's pair of levels is one integer *code* (differential: L + sign(v) k, in
0..2L; offset: k in 0..L), so the nominal hardware weight of a layer is one look-up in a
small table: w_eff = s * table[code]. A code counts the level thresholds at or below
v = w / s (ties go towards +infinity in v, a measure-zero event for trained weights).

Thresholds: ``linear`` programming (or a linear curve) puts them midway between levels
(uniform); ``calibrated`` midway between the nominal curve's f(k / L) values, found by
``LevelFinder``. The same thresholds, with each device's conductance steps, define the
staircases that smooth_tables.py turns into surrogates.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hwmodels import fused
from hwmodels.device import DevicePair, curve
from hwmodels.surrogates import Staircase, pack_pairs


class LevelCoding:
    """Codes, code tables and staircases of one digital profile, built once."""

    def __init__(
        self, pair: DevicePair, offset: bool, calibrated: bool, norm: float, reference: float
    ) -> None:
        assert pair.levels is not None
        levels = pair.levels
        self.levels = levels
        self.offset = offset
        positive = pair.level_conductances(pair.positive)
        negative = pair.level_conductances(pair.negative)
        nominal_f = curve(torch.arange(levels + 1, dtype=torch.float64) / levels, pair.positive.nu)
        self.uniform_thresholds = not calibrated or abs(pair.positive.nu) < 1e-6
        if self.uniform_thresholds:
            thresholds = (torch.arange(1, levels + 1, dtype=torch.float64) - 0.5) / levels
        else:
            thresholds = (nominal_f[:-1] + nominal_f[1:]) / 2
        self.thresholds = thresholds
        steps = positive.diff(), negative.diff()
        if offset:
            code_positive = positive
            code_negative = torch.full_like(positive, reference)
            self.v_spacing = 2.0 / levels
            self.stair_positive = Staircase(2 * thresholds - 1, steps[0], float(positive[0]))
            empty = torch.zeros(0, dtype=torch.float64)
            self.stair_negative = Staircase(empty, empty, reference)
        else:
            k = torch.arange(-levels, levels + 1)
            code_positive = positive[k.clamp(min=0)]
            code_negative = negative[(-k).clamp(min=0)]
            self.v_spacing = 1.0 / levels
            self.stair_positive = Staircase(thresholds, steps[0], float(positive[0]))
            self.stair_negative = Staircase(
                -thresholds.flip(0), -steps[1].flip(0), float(negative[-1])
            )
        self.stair_effective = _difference(self.stair_positive, self.stair_negative, norm)
        self.code_pairs = pack_pairs(code_positive.float(), code_negative.float())
        self.code_levels = torch.stack([code_positive, code_negative], -1).float()
        """(G+, G-) of every code, (codes, 2) float32."""
        self.code_effective = ((code_positive - code_negative) * norm).float()
        self.finder: LevelFinder | None = None
        self.stairs: tuple[Tensor, Tensor, Tensor] | None = None
        if not self.uniform_thresholds:
            self.finder = LevelFinder(self.stair_effective.thresholds, self.code_effective)
        self.kernel = self._kernel_arguments()
        """(table, numbers, uniform) for ``fused.hard_weight``, or None (no grid)."""

    def _slope_shift(self) -> tuple[float, float]:
        levels = self.levels
        return (levels / 2, levels / 2 + 0.5) if self.offset else (levels, levels + 0.5)

    def codes(self, v: Tensor) -> Tensor:
        """int32 code of each weight's device pair, from v = w / s."""
        clipped = v.clamp(-1.0, 1.0)
        if self.finder is None:
            slope, shift = self._slope_shift()
            return clipped.mul_(slope).add_(shift).floor_().to(torch.int32)
        return self.finder(clipped)

    def pairs(self, v: Tensor) -> Tensor:
        """Programmed (G+, G-) of every weight as (*v.shape, 2) (one packed look-up)."""
        code = self.codes(v).reshape(-1)
        return self.code_pairs.index_select(0, code).view(torch.float32).view(*v.shape, 2)

    def effective(self, v: Tensor) -> Tensor:
        """w_eff / s of the nominal chip (one table look-up per weight)."""
        if self.finder is not None:
            return self.finder.effective(v.clamp(-1.0, 1.0))
        return self.code_effective.index_select(0, self.codes(v).reshape(-1)).view(v.shape)

    def _kernel_arguments(self) -> tuple[Tensor, Tensor, bool] | None:
        count = self.code_effective.numel() - 1
        if count <= fused.MAX_STAIRS:
            self.stairs = self._stair_arguments()
        if self.finder is None:
            slope, shift = self._slope_shift()
            return self.code_effective, fused.grid(slope, shift, 0.0), True
        if self.finder.cells == 0:
            return None
        table = self.finder.packed.view(torch.float32).view(-1, 4)
        return table, fused.grid(self.finder.gain, 0.0, 0.0), False

    def _stair_arguments(self) -> tuple[Tensor, Tensor, Tensor]:
        """(keys, values, numbers) of ``fused.stair_weight``: the codes' float32
        thresholds (what LevelFinder compares), or for uniform thresholds the integer
        codes 1..n compared with floor(v slope + shift), as ``codes`` computes them."""
        count = self.code_effective.numel() - 1
        if self.finder is None:
            slope, shift = self._slope_shift()
            keys = torch.arange(1, count + 1, dtype=torch.float32)
            return keys, self.code_effective, fused.grid(slope, shift, 1.0)
        keys = self.stair_effective.thresholds.float()
        return keys, self.code_effective, fused.grid(0.0, 0.0, 0.0)

    def hard_weight(self, weight: Tensor, s: Tensor) -> fused.Transform:
        """s Q(w / s) by a fused kernel (callers check ``kernel`` first)."""
        assert self.kernel is not None
        if self.stairs is not None:
            keys, values, numbers = self.stairs
            hard = fused.stair_weight(weight.detach(), s, keys, values, numbers)
        else:
            table, numbers, uniform = self.kernel
            hard = fused.hard_weight(weight.detach(), s, table, numbers, uniform)
        return fused.Transform(hard, None, 1.0)


class LevelFinder:
    """Code = number of thresholds <= v, for arbitrary sorted thresholds in [-1, 1].

    A uniform grid of cells, each holding at most one threshold, turns the search into
    small-table look-ups and one comparison per weight (cheaper than torch.searchsorted).
    Each cell stores (code below, threshold inside) and, for the hard
    weight, (w_eff / s below, step to the code above, threshold) packed in 16 bytes, so
    one look-up does. Falls back to searchsorted if the thresholds are too close for a
    grid of at most MAX_CELLS cells.
    """

    MAX_CELLS = 2**22

    def __init__(self, thresholds: Tensor, code_values: Tensor) -> None:
        self.thresholds = thresholds
        self.code_values = code_values
        gaps = thresholds.diff()
        smallest = float(gaps.min()) if gaps.numel() else 2.0
        cells = max(1024, math.ceil(2.0 / smallest) + 1) if smallest > 0 else self.MAX_CELLS + 1
        self.cells = 0
        while cells <= self.MAX_CELLS:
            if self._build(cells):
                self.cells = cells
                break
            cells += 1

    def _build(self, cells: int) -> bool:
        edges = torch.linspace(-1.0, 1.0, cells + 1, dtype=torch.float64)
        width = 2.0 / cells
        nearest = torch.searchsorted(edges, self.thresholds).clamp(max=cells)
        distance = torch.minimum(
            (edges[nearest] - self.thresholds).abs(),
            (edges[(nearest - 1).clamp(min=0)] - self.thresholds).abs(),
        )
        if bool((distance < 1e-3 * width).any()):
            return False  # a threshold sits on a cell edge: float32 rounding could misplace v
        counts = torch.searchsorted(self.thresholds, edges[:-1], right=True)
        inside = torch.full((cells,), math.inf, dtype=torch.float64)
        cell_of = ((self.thresholds + 1.0) / width).floor().long().clamp(0, cells - 1)
        inside[cell_of] = self.thresholds
        low = torch.cat([counts, counts[-1:]])
        self.low = low.to(torch.int32)
        self.inside = torch.cat([inside, inside[-1:]]).float()
        self.gain = cells / 2.0
        below = self.code_values[low]
        above = self.code_values[(low + 1).clamp(max=self.code_values.numel() - 1)]
        quads = torch.stack([below, above - below, self.inside, torch.zeros_like(below)], -1)
        self.packed = quads.contiguous().view(torch.complex128).reshape(-1)
        return True

    def _cell(self, v: Tensor) -> Tensor:
        return (v + 1.0).mul_(self.gain).floor_().to(torch.int32).reshape(-1)

    def __call__(self, v: Tensor) -> Tensor:
        """int32 codes of v in [-1, 1] (already clipped)."""
        if self.cells == 0:
            flat = v.reshape(-1).to(torch.float64)
            found = torch.searchsorted(self.thresholds, flat, right=True)
            return found.to(torch.int32).view(v.shape)
        cell = self._cell(v)
        low = self.low.index_select(0, cell)
        crossed = v.reshape(-1) >= self.inside.index_select(0, cell)
        return low.add_(crossed.to(torch.int32)).view(v.shape)

    def effective(self, v: Tensor) -> Tensor:
        """code_values[code of v] for v in [-1, 1] (one packed look-up)."""
        if self.cells == 0:
            return self.code_values.index_select(0, self(v).reshape(-1)).view(v.shape)
        quads = self.packed.index_select(0, self._cell(v)).view(torch.float32).view(*v.shape, 4)
        crossed = (v >= quads[..., 2]).to(torch.float32)
        return torch.addcmul(quads[..., 0], crossed, quads[..., 1])


def _difference(positive: Staircase, negative: Staircase, norm: float) -> Staircase:
    """norm * (positive - negative) as one staircase (thresholds merged)."""
    thresholds = torch.cat([positive.thresholds, negative.thresholds])
    heights = torch.cat([positive.heights, -negative.heights]) * norm
    order = thresholds.argsort(stable=True)
    return Staircase(thresholds[order], heights[order], norm * (positive.base - negative.base))


__all__ = ["LevelCoding", "LevelFinder"]
