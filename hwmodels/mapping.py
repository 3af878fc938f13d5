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

``WeightMapper`` is the facade the layers use; each job has its own module: the scale
(weight_scale.py), level codes and the hard weight (level_coding.py), smooth surrogate
tables (smooth_tables.py), export and statistics (mapping_export.py). Analog devices
(bits null) use the curve directly (here).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hwmodels import fused
from hwmodels.device import DevicePair, device_pair, inverse_curve
from hwmodels.level_coding import LevelCoding
from hwmodels.mapping_export import ProgrammedLayer, conductance_tables, layer_statistics, program
from hwmodels.profile import HardwareProfile
from hwmodels.report import LayerMapping
from hwmodels.smooth_tables import SmoothTables
from hwmodels.surrogates import Mode, PairTable, SmoothTable, Staircase
from hwmodels.weight_scale import MIN_SCALE, WeightScale, add_scale_gradient

CLIP_SIGMAS = 6.0
"""Training skips the clipping of noisy conductances at 0 when Gmin is this many noise
standard deviations above it (probability below 1e-9 per device)."""


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


class WeightMapper:
    """Everything about weight storage that depends only on the profile, built once."""

    def __init__(self, profile: HardwareProfile) -> None:
        self.profile = profile
        self.pair: DevicePair = device_pair(profile)
        self.levels = self.pair.levels
        self.offset = profile.weights.mapping == "offset"
        self.per_column = profile.weights.scale == "per_column"
        self.percentile = profile.weights.scale_percentile
        self.scaler = WeightScale(self.per_column, self.percentile)
        self.identity = weight_path_is_identity(profile)
        self.calibrated = profile.weights.programming == "calibrated"
        self.kappa = 2.0 if self.offset else 1.0
        self.norm = self.kappa / self.pair.positive.span
        """w_eff / s per unit of conductance difference."""
        self.reference = self._reference_conductance()
        self._spreads: dict[float, tuple[Tensor, bool]] = {}
        self.coding: LevelCoding | None = None
        self._smooth: SmoothTables | None = None
        if self.levels is not None:
            self.coding = LevelCoding(
                self.pair, self.offset, self.calibrated, self.norm, self.reference
            )
            self._smooth = SmoothTables(self.coding)

    # --- scale (weight_scale.py) -------------------------------------------------------

    def scale(self, weight: Tensor, track: bool = False) -> Tensor:
        """s = the configured percentile of |w| (per layer: shape (); per column: (out, 1)).

        ``track``: keep the gradient of s with respect to the weight that defines it (the
        largest, or the percentile's), so that training can move the scale too.
        """
        return self.scaler(weight, track)

    def scale_source(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        """s (no gradient) and the flat indices of the weights that define it."""
        return self.scaler.source(weight)

    # --- nominal levels (level_coding.py) ------------------------------------------------

    @property
    def code_effective(self) -> Tensor:
        """w_eff / s of every code (digital only)."""
        return self._coding().code_effective

    @property
    def stair_effective(self) -> Staircase:
        """The hard w_eff / s staircase over v (digital only)."""
        return self._coding().stair_effective

    def codes(self, v: Tensor) -> Tensor:
        """int32 code of each weight's device pair, from v = w / s (digital only)."""
        return self._coding().codes(v)

    def nominal_pairs(self, v: Tensor) -> Tensor:
        """Programmed (G+, G-) of every weight as (*v.shape, 2), from v = w / s (no gradient).

        Digital devices: the levels' conductances (one packed look-up); analog: the curve.
        """
        with torch.no_grad():
            if self.coding is None:
                return self.analog_pairs(v)
            return self.coding.pairs(v)

    def nominal_effective(self, v: Tensor, mode: Mode) -> Tensor:
        """w_eff / s of a nominal chip (one table look-up per weight)."""
        if self.coding is None:
            return self.effective_from_pairs(self.analog_pairs(v))
        if mode.kind == "smooth":
            combined, _ = self.smooth_tables(mode.rho)
            return combined(v)
        with torch.no_grad():
            return self.coding.effective(v)

    def hard_weight(self, weight: Tensor, s: Tensor, compiled: bool = False) -> Tensor:
        """s Q(w / s) of a nominal chip; ``compiled``: by a fused kernel where enabled
        (fused.py), for training, which calls it at every step."""
        with torch.no_grad():
            coding = self.coding
            if coding is not None and coding.kernel is not None and compiled and fused.enabled():
                return coding.hard_weight(weight, s).result
            return self.nominal_effective(weight / s, Mode("hard")) * s

    def effective_from_pairs(self, pairs: Tensor) -> Tensor:
        """w_eff / s for device pairs (..., 2), e.g. after noise and faults."""
        return (pairs[..., 0] - pairs[..., 1]) * self.norm

    def analog_pairs(self, v: Tensor) -> Tensor:
        """(G+, G-) of analog devices programmed for v = w / s (differentiable)."""
        positive, negative = self.pair.positive, self.pair.negative
        clipped = v.clamp(-1.0, 1.0)
        if self.offset:
            u = self.programmed_fraction((clipped + 1.0) * 0.5)
            return torch.stack([positive.conductance(u), torch.full_like(v, self.reference)], -1)
        u = self.programmed_fraction(clipped.abs())
        return torch.stack(
            [positive.conductance(u * (clipped > 0)), negative.conductance(u * (clipped < 0))], -1
        )

    def noise_spread(self, sigma: float) -> tuple[Tensor, bool]:
        """For fused kernels: (sigma span+, sigma span-, norm) as one tensor, and whether
        clipping noisy conductances at 0 can matter (Gmin within CLIP_SIGMAS noise standard
        deviations of 0; a rarer event is skipped). Built once per sigma."""
        found = self._spreads.get(sigma)
        if found is None:
            positive, negative = self.pair.positive, self.pair.negative
            spread = torch.tensor([sigma * positive.span, sigma * negative.span, self.norm])
            clip = sigma > 0.0 and min(positive.gmin, negative.gmin) < (
                CLIP_SIGMAS * sigma * positive.span
            )
            found = self._spreads[sigma] = (spread, clip)
        return found

    def programmed_fraction(self, m: Tensor) -> Tensor:
        """Analog devices: the pulse fraction u the programmer applies for target m."""
        return inverse_curve(m, self.pair.positive.nu) if self.calibrated else m

    # --- smooth surrogate (smooth_tables.py) ---------------------------------------------

    def smooth_tables(self, rho: float) -> tuple[SmoothTable, PairTable]:
        """Interpolation tables over v in [-1, 1], tau = rho * spacing: w_eff / s, and the
        device pair (G+, G-). Flat beyond [-1, 1], the clipping of |w| at s."""
        if self._smooth is None:
            raise ValueError("analog weights (bits null) have no level staircase")
        return self._smooth(rho)

    # --- export and statistics (mapping_export.py) ---------------------------------------

    def program(self, weight: Tensor) -> ProgrammedLayer:
        """The nominal programming of a weight matrix (levels, scale, w_eff)."""
        return program(self, weight)

    def layer_statistics(self, name: str, weight: Tensor) -> LayerMapping:
        """report.LayerMapping of one layer's nominal programming."""
        return layer_statistics(self, name, weight)

    def conductance_tables(self) -> dict[str, np.ndarray]:
        """Level conductance tables (float64) of the devices, for the artifact."""
        return conductance_tables(self)

    # --- internals ------------------------------------------------------------------

    def _coding(self) -> LevelCoding:
        if self.coding is None:
            raise ValueError("analog weights (bits null) have no level codes")
        return self.coding

    def _reference_conductance(self) -> float:
        positive, negative = self.pair.positive, self.pair.negative
        target = torch.tensor(0.5, dtype=torch.float64)
        u_ref = inverse_curve(target, positive.nu) if self.calibrated else target
        return float(negative.conductance(u_ref))


__all__ = [
    "CLIP_SIGMAS",
    "MIN_SCALE",
    "ProgrammedLayer",
    "WeightMapper",
    "add_scale_gradient",
    "weight_path_is_identity",
]
