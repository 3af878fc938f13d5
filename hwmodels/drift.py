"""Conductance drift of a simulated chip at a time after programming, and its compensation.

Implements "Drift over time" of docs/hardware-model.md:

- every device of a chip drifts as G(t) = G(t0) (t / t0)^(-nu), its own nu drawn once
  per chip from N(nu_mean, nu_spread^2) clipped at 0, so both devices of a differential
  pair (or a device and its reference) drift independently;
- drift acts on the programmed conductance, programming noise included; a stuck device
  does not drift (it is a broken cell that reads Gmin or Gmax whatever the time);
- the nu of chip c are drawn from that chip's own generator after its programming noise
  and faults, so the chip at t0 is exactly the chip of a study without drift, and every
  time of one study meets the same chips (the same nu);
- global drift compensation: after programming the chip reads each layer's summed
  column currents under an all-ones input, I(t0) = sum of every device's G(t0); at time
  t it reads them again and scales the layer's outputs by alpha = I(t0) / I(t). The
  scale is applied to the read-out before the ADC (as a longer read or integration
  window would), so it amplifies read noise along with the signal and the ADC keeps its
  calibrated range.

The Monte Carlo evaluation (``evaluation.chip_accuracies``) takes a ``DriftAt`` and runs
its usual loop on the drifted chips: there is no second evaluator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hwmodels.chips import perturb, programmed_pairs
from hwmodels.mapping import WeightMapper
from hwmodels.profile import DriftConfig, NoiseConfig
from hwmodels.report import ChipStatistics, DriftPoint


@dataclass(frozen=True)
class DriftAt:
    """Evaluate chips at ``time_s`` after programming, with or without compensation."""

    config: DriftConfig
    time_s: float
    compensated: bool = False

    @property
    def changes_chips(self) -> bool:
        """False when the chips read exactly as at t0 (no drift, or t = t0)."""
        return self.config.active and self.time_s > self.config.t0_s

    def decay(self, shape: torch.Size, generator: torch.Generator) -> Tensor:
        """(t / t0)^(-nu) for every device, nu ~ N(mean, spread^2) clipped at 0."""
        c = self.config
        if c.nu_spread > 0.0:
            nu = torch.randn(shape, generator=generator).mul_(c.nu_spread).add_(c.nu_mean)
        else:
            nu = torch.full(shape, c.nu_mean)
        log_ratio = math.log(self.time_s / c.t0_s)
        return nu.clamp_min_(0.0).mul_(-log_ratio).exp_()

    def chip_pairs(
        self,
        mapper: WeightMapper,
        nominal: Tensor,
        noise: NoiseConfig,
        generator: torch.Generator,
    ) -> tuple[Tensor, float]:
        """One layer of one chip at this time: device pairs (out, in, 2) and the layer's
        read-out scale alpha (1 without compensation)."""
        programmed, faults = programmed_pairs(mapper, nominal, noise, generator)
        if not self.changes_chips:
            return perturb(programmed, mapper.pair, 0.0, None, faults), 1.0
        decay = self.decay(programmed.shape, generator).to(programmed.dtype)
        drifted = perturb(programmed * decay, mapper.pair, 0.0, None, faults)
        if not self.compensated:
            return drifted, 1.0
        at_t0 = perturb(programmed, mapper.pair, 0.0, None, faults)
        return drifted, compensation_scale(at_t0, drifted)


def compensation_scale(at_t0: Tensor, at_t: Tensor) -> float:
    """alpha = I(t0) / I(t): the ratio of the layer's summed column currents under an
    all-ones input, which is all a chip can measure of its own drift."""
    now = float(at_t.double().sum())
    return float(at_t0.double().sum()) / now if now > 0.0 else 1.0


def drift_schedule(config: DriftConfig, times: list[float]) -> list[DriftAt]:
    """Every evaluation a study makes over time: each time plain, then compensated when
    the profile asks for compensation."""
    variants = (False, True) if config.compensation else (False,)
    return [DriftAt(config, t, compensated) for t in times for compensated in variants]


def drift_points(
    schedule: list[DriftAt], naive: list[ChipStatistics], aware: list[ChipStatistics]
) -> list[DriftPoint]:
    """The report's points: statistics evaluated in ``schedule`` order, grouped by time."""
    points: dict[float, dict[str, ChipStatistics]] = {}
    for at, plain, trained in zip(schedule, naive, aware, strict=True):
        suffix = "_compensated" if at.compensated else ""
        point = points.setdefault(at.time_s, {})
        point["naive" + suffix] = plain
        point["hardware_aware" + suffix] = trained
    return [DriftPoint(time_s=time, **stats) for time, stats in points.items()]


__all__ = ["DriftAt", "compensation_scale", "drift_points", "drift_schedule"]
