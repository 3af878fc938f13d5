"""Weights to device levels and back: scale, programming policy, differential or offset pair.

Implements "A weight" of docs/hardware-model.md. With v = w / s (s per layer or per
output column, a percentile of |w|) clipped to [-1, 1]:

- differential: m = |v|; the device on w's side is programmed to level k(m), the other
  one stays at level 0; w_eff = s (G+ - G-) / (Gmax+ - Gmin+).
- offset: one device at level k((v + 1) / 2), read against a reference device; the
  reference is a trimmed (analog) device of the negative type programmed, by the same
  policy, to the target 1/2: G_ref = Gmin- + (Gmax- - Gmin-) f-(u_ref) with u_ref = 1/2
  (linear) or f+^-1(1/2) (calibrated). Because one device spans the whole [-s, s] range,
  w_eff = 2 s (G - G_ref) / (Gmax+ - Gmin+). (The reference model leaves the factor and
  the reference's programming implicit; this is our reading.)

Level choice k(m): ``linear`` k = round(m L); ``calibrated`` the level whose f(k / L) is
nearest m (thresholds midway between f values). Ties, a measure-zero event for trained
weights, go towards +infinity in v (computed in float32). The programmer uses the
nominal (positive) curve for every device: it does not know the negative device's
asymmetry or curve mismatch.

Each weight's pair of levels is one integer *code* (differential: L + sign(v) k, in
0..2L; offset: k in 0..L), so the nominal hardware weight of a layer is one look-up in a
small table: w_eff = s * table[code]. Analog devices (bits null) use the curve directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hwmodels import fused
from hwmodels.device import DevicePair, curve, device_pair, inverse_curve
from hwmodels.profile import HardwareProfile
from hwmodels.report import LayerMapping
from hwmodels.surrogates import Mode, PairTable, SmoothTable, Staircase, pack_pairs

MIN_SCALE = 1e-12


def weight_path_is_identity(profile: HardwareProfile) -> bool:
    """True when mapping weights to devices and back is exactly w (analog, ideal devices).

    Then the hardware layer skips the transform, so the forward pass is bit-for-bit the
    float one. Programming noise and faults are not part of this test (see chips.py).
    """
    weights, conductance = profile.weights, profile.conductance
    return (
        weights.bits is None
        and weights.scale_percentile == 100.0
        and conductance.on_off_ratio is None
        and conductance.asymmetry == 0.0
        and conductance.nonlinearity == 0.0
    )


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


class WeightMapper:
    """Everything about weight storage that depends only on the profile, built once."""

    def __init__(self, profile: HardwareProfile) -> None:
        self.profile = profile
        self.pair: DevicePair = device_pair(profile)
        self.levels = self.pair.levels
        self.offset = profile.weights.mapping == "offset"
        self.per_column = profile.weights.scale == "per_column"
        self.percentile = profile.weights.scale_percentile
        self.identity = weight_path_is_identity(profile)
        self.calibrated = profile.weights.programming == "calibrated"
        positive, _negative = self.pair.positive, self.pair.negative
        self.kappa = 2.0 if self.offset else 1.0
        self.norm = self.kappa / positive.span
        """w_eff / s per unit of conductance difference."""
        self.reference = self._reference_conductance()
        self._smooth_tables: dict[float, tuple[SmoothTable, PairTable]] = {}
        if self.levels is not None:
            self._build_level_tables()

    # --- scale -------------------------------------------------------------------

    def scale(self, weight: Tensor, track: bool = False) -> Tensor:
        """s = the configured percentile of |w| (per layer: shape (); per column: (out, 1)).

        ``track``: keep the gradient of s with respect to the weight that defines it (the
        largest, or the percentile's), so that training can move the scale too.
        """
        if track and weight.requires_grad:
            s, source = self.scale_source(weight)
            top: Tensor = _Picked.apply(weight, source)  # type: ignore[no-untyped-call]
            return top.clamp_min(MIN_SCALE).view(s.shape)
        if not self.per_column and self.percentile >= 100.0:  # the default: fast path
            with torch.no_grad():
                low, high = torch.aminmax(weight)
            return torch.maximum(high, -low).clamp_min(MIN_SCALE)
        return self.scale_source(weight)[0]

    def scale_source(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        """s (no gradient) and the flat indices of the weights that define it (one per
        layer or per column): fused training functions route dL/ds to those weights
        themselves (``add_scale_gradient``) instead of through a separate autograd node."""
        with torch.no_grad():
            if not self.per_column and self.percentile >= 100.0:  # the default: fast path
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

    # --- nominal levels ------------------------------------------------------------

    def codes(self, v: Tensor) -> Tensor:
        """int32 code of each weight's device pair, from v = w / s (digital only).

        A code counts the level thresholds at or below v (ties go towards +infinity in v,
        a measure-zero event for trained weights).
        """
        levels = self._digital_levels()
        clipped = v.clamp(-1.0, 1.0)
        if self.uniform_thresholds:
            slope, shift = (levels / 2, levels / 2 + 0.5) if self.offset else (levels, levels + 0.5)
            return clipped.mul_(slope).add_(shift).floor_().to(torch.int32)
        return self.finder(clipped)

    def nominal_pairs(self, v: Tensor) -> Tensor:
        """Programmed (G+, G-) of every weight as (*v.shape, 2), from v = w / s (no gradient).

        Digital devices: the levels' conductances (one packed look-up); analog: the curve.
        """
        with torch.no_grad():
            if self.levels is None:
                return self.analog_pairs(v)
            code = self.codes(v).reshape(-1)
            packed = self.code_pairs.index_select(0, code)
            return packed.view(torch.float32).view(*v.shape, 2)

    def nominal_effective(self, v: Tensor, mode: Mode) -> Tensor:
        """w_eff / s of a nominal chip (one table look-up per weight)."""
        if self.levels is None:
            return self.effective_from_pairs(self.analog_pairs(v))
        if mode.kind == "smooth":
            combined, _ = self.smooth_tables(mode.rho)
            return combined(v)
        with torch.no_grad():
            if not self.uniform_thresholds:
                return self.finder.effective(v.clamp(-1.0, 1.0))
            return self.code_effective.index_select(0, self.codes(v).reshape(-1)).view(v.shape)

    def hard_weight(self, weight: Tensor, s: Tensor, compiled: bool = False) -> Tensor:
        """s Q(w / s) of a nominal chip; ``compiled``: by a fused kernel where enabled
        (fused.py), for training, which calls it at every step."""
        with torch.no_grad():
            if self.levels is None or not (compiled and fused.enabled()):
                return self.nominal_effective(weight / s, Mode("hard")) * s
            if self.uniform_thresholds:
                levels = self.levels
                slope, shift = (
                    (levels / 2, levels / 2 + 0.5) if self.offset else (levels, levels + 0.5)
                )
                numbers = fused.grid(slope, shift, 0.0)
                return fused.hard_weight_uniform(weight.detach(), s, self.code_effective, numbers)
            if self.finder.cells == 0:
                return self.nominal_effective(weight / s, Mode("hard")) * s
            table = self.finder.packed.view(torch.float32).view(-1, 4)
            numbers = fused.grid(self.finder.gain, 0.0, 0.0)
            return fused.hard_weight_cells(weight.detach(), s, table, numbers)

    def effective_from_pairs(self, pairs: Tensor) -> Tensor:
        """w_eff / s for device pairs (..., 2), e.g. after noise and faults."""
        return (pairs[..., 0] - pairs[..., 1]) * self.norm

    def analog_pairs(self, v: Tensor) -> Tensor:
        """(G+, G-) of analog devices programmed for v = w / s (differentiable)."""
        positive, negative = self.pair.positive, self.pair.negative
        clipped = v.clamp(-1.0, 1.0)
        if self.offset:
            u = self._programmed_fraction((clipped + 1.0) * 0.5)
            return torch.stack([positive.conductance(u), torch.full_like(v, self.reference)], -1)
        u = self._programmed_fraction(clipped.abs())
        return torch.stack(
            [positive.conductance(u * (clipped > 0)), negative.conductance(u * (clipped < 0))], -1
        )

    # --- smooth surrogate -------------------------------------------------------------

    def smooth_tables(self, rho: float) -> tuple[SmoothTable, PairTable]:
        """Interpolation tables over v in [-1, 1], tau = rho * spacing: w_eff / s, and the
        device pair (G+, G-). Flat beyond [-1, 1], the clipping of |w| at s."""
        tables = self._smooth_tables.get(rho)
        if tables is None:
            tau = rho * self.v_spacing
            combined = self.stair_effective.tabulate(tau, -1.0, 1.0)
            pair = PairTable.pack(
                self.stair_positive.tabulate(tau, -1.0, 1.0),
                self.stair_negative.tabulate(tau, -1.0, 1.0),
            )
            if len(self._smooth_tables) > 16:
                self._smooth_tables.clear()
            tables = (combined, pair)
            self._smooth_tables[rho] = tables
        return tables

    # --- export and statistics -----------------------------------------------------------

    def program(self, weight: Tensor) -> ProgrammedLayer:
        """The nominal programming of a weight matrix (levels, scale, w_eff)."""
        with torch.no_grad():
            s = self.scale(weight)
            v = weight / s
            effective = self.nominal_effective(v, Mode("hard")) * s
            if self.levels is None:
                fractions = self._analog_fractions(v)
                return ProgrammedLayer(s, fractions[0], fractions[1], effective)
            code = self.codes(v)
            if self.offset:
                return ProgrammedLayer(s, _uint8(code), None, effective)
            positive = (code - self.levels).clamp_(min=0)
            negative = (self.levels - code).clamp_(min=0)
            return ProgrammedLayer(s, _uint8(positive), _uint8(negative), effective)

    def layer_statistics(self, name: str, weight: Tensor) -> LayerMapping:
        """report.LayerMapping of one layer's nominal programming."""
        programmed = self.program(weight)
        with torch.no_grad():
            s = programmed.scale
            clipped = float((weight.abs() > s).double().mean())
            error = float(((weight - programmed.effective).abs() / s).double().mean())
        histogram: list[int] = []
        if self.levels is not None:
            counts = np.bincount(programmed.positive.ravel(), minlength=self.levels + 1)
            if programmed.negative is not None:
                counts = counts + np.bincount(
                    programmed.negative.ravel(), minlength=self.levels + 1
                )
            histogram = [int(c) for c in counts]
        return LayerMapping(
            name=name,
            fan_in=int(weight.shape[1]),
            fan_out=int(weight.shape[0]),
            scale=float(s.double().mean()),
            levels=None if self.levels is None else self.levels + 1,
            clipped_fraction=clipped,
            mean_abs_error=error,
            level_histogram=histogram,
        )

    def conductance_tables(self) -> dict[str, np.ndarray]:
        """Level conductance tables (float64) of the devices, for the artifact."""
        if self.levels is None:
            return {}
        tables = {"positive_conductance": self.pair.level_conductances(self.pair.positive).numpy()}
        if self.offset:
            tables["reference_conductance"] = np.array([self.reference])
        else:
            tables["negative_conductance"] = self.pair.level_conductances(
                self.pair.negative
            ).numpy()
        return tables

    # --- internals ------------------------------------------------------------------

    def _digital_levels(self) -> int:
        if self.levels is None:
            raise ValueError("analog weights (bits null) have no level codes")
        return self.levels

    def _reference_conductance(self) -> float:
        positive, negative = self.pair.positive, self.pair.negative
        target = torch.tensor(0.5, dtype=torch.float64)
        u_ref = inverse_curve(target, positive.nu) if self.calibrated else target
        return float(negative.conductance(u_ref))

    def _build_level_tables(self) -> None:
        levels = self._digital_levels()
        positive = self.pair.level_conductances(self.pair.positive)
        negative = self.pair.level_conductances(self.pair.negative)
        nominal_f = curve(
            torch.arange(levels + 1, dtype=torch.float64) / levels, self.pair.positive.nu
        )
        self.uniform_thresholds = not self.calibrated or abs(self.pair.positive.nu) < 1e-6
        if self.uniform_thresholds:
            thresholds = (torch.arange(1, levels + 1, dtype=torch.float64) - 0.5) / levels
        else:
            thresholds = (nominal_f[:-1] + nominal_f[1:]) / 2
        self.thresholds = thresholds
        positive_steps, negative_steps = positive.diff(), negative.diff()
        if self.offset:
            code_positive = positive
            code_negative = torch.full_like(positive, self.reference)
            self.v_spacing = 2.0 / levels
            self.stair_positive = Staircase(2 * thresholds - 1, positive_steps, float(positive[0]))
            self.stair_negative = Staircase(
                torch.zeros(0, dtype=torch.float64),
                torch.zeros(0, dtype=torch.float64),
                self.reference,
            )
        else:
            k = torch.arange(-levels, levels + 1)
            code_positive = positive[k.clamp(min=0)]
            code_negative = negative[(-k).clamp(min=0)]
            self.v_spacing = 1.0 / levels
            self.stair_positive = Staircase(thresholds, positive_steps, float(positive[0]))
            self.stair_negative = Staircase(
                -thresholds.flip(0), -negative_steps.flip(0), float(negative[-1])
            )
        self.stair_effective = _difference(self.stair_positive, self.stair_negative, self.norm)
        self.code_pairs = pack_pairs(code_positive.float(), code_negative.float())
        self.code_effective = ((code_positive - code_negative) * self.norm).float()
        if not self.uniform_thresholds:
            self.finder = LevelFinder(self.stair_effective.thresholds, self.code_effective)

    def _programmed_fraction(self, m: Tensor) -> Tensor:
        """Analog devices: the pulse fraction u the programmer applies for target m."""
        return inverse_curve(m, self.pair.positive.nu) if self.calibrated else m

    def _analog_fractions(self, v: Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Analog export: programmed fractions u (float32) instead of integer levels."""
        clipped = v.clamp(-1.0, 1.0)
        if self.offset:
            return self._programmed_fraction((clipped + 1.0) * 0.5).numpy().astype(np.float32), None
        u = self._programmed_fraction(clipped.abs())
        return (
            (u * (clipped > 0)).numpy().astype(np.float32),
            (u * (clipped < 0)).numpy().astype(np.float32),
        )


def add_scale_gradient(
    grad_weight: Tensor, grad_s: Tensor, weight: Tensor, source: Tensor
) -> Tensor:
    """grad_weight plus dL/ds routed to the weights that define s = |w[source]| (in place).

    The same gradient ``scale(track=True)`` gives through its own node (zero where s was
    clamped at MIN_SCALE), without a full-size zero matrix per layer and step.
    """
    picked = weight.detach().reshape(-1).index_select(0, source)
    routed = grad_s.reshape(-1) * picked.sign() * (picked.abs() >= MIN_SCALE)
    grad_weight.view(-1).index_add_(0, source, routed)
    return grad_weight


def _largest_index(weight: Tensor) -> Tensor:
    """Flat index of a largest |w|, found row-wise (vectorised min/max per row, then two
    short argmaxes): a flat argmax over the matrix is several times slower on CPU."""
    rows = weight.reshape(weight.shape[0], -1)
    high, low = rows.amax(dim=1), rows.amin(dim=1)  # aminmax(dim=1) is 10x slower
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


class LevelFinder:
    """Code = number of thresholds <= v, for arbitrary sorted thresholds in [-1, 1].

    A uniform grid of cells, each holding at most one threshold, turns the search into
    small-table look-ups and one comparison per weight (torch.searchsorted is ten times
    slower here). Each cell stores (code below, threshold inside) and, for the hard
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


def _uint8(levels: Tensor) -> np.ndarray:
    return levels.to(torch.uint8).numpy()


__all__ = ["ProgrammedLayer", "WeightMapper", "add_scale_gradient", "weight_path_is_identity"]
