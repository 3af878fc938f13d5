"""One memory device: its programming curve, its levels, and the mismatched partner device.

Implements "One device" and the asymmetry rule of docs/hardware-model.md. Conductances
are normalised so that the nominal (positive) device has Gmax = 1; the negative device
of a differential pair (or the reference device of the offset mapping) has
Gmax- = (1 - a) Gmax+, the same on/off ratio, and non-linearity nu- = (1 + mismatch) nu.

Level conductances are tabulated once per profile (float64, L + 1 entries) so the
training and evaluation code only ever indexes small tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hwmodels.profile import ConductanceConfig, HardwareProfile

LINEAR_NU = 1e-6
"""|nu| below this is treated as a linear curve (the formula is 0/0 at nu = 0)."""


def curve(u: Tensor, nu: float) -> Tensor:
    """f(u) = (1 - exp(-nu u)) / (1 - exp(-nu)) on u in [0, 1]; f(0) = 0, f(1) = 1.

    nu > 0: early pulses move the conductance more than late ones; nu < 0 bends the
    other way; nu = 0 is the straight line f(u) = u.
    """
    if abs(nu) < LINEAR_NU:
        return u
    return torch.expm1(-nu * u) / math.expm1(-nu)


def inverse_curve(g: Tensor, nu: float) -> Tensor:
    """u with f(u) = g, for g in [0, 1]: the pulse fraction that reaches a conductance."""
    if abs(nu) < LINEAR_NU:
        return g
    return -torch.log1p(g * math.expm1(-nu)) / nu


@dataclass(frozen=True)
class Device:
    """A device type: G(u) = gmin + (gmax - gmin) f(u), u = k / L the programmed fraction."""

    gmax: float
    gmin: float
    nu: float

    @property
    def span(self) -> float:
        """Gmax - Gmin, the range that noise is relative to."""
        return self.gmax - self.gmin

    def conductance(self, u: Tensor) -> Tensor:
        """Conductance at programmed fraction u (a tensor in [0, 1])."""
        return self.gmin + self.span * curve(u, self.nu)


@dataclass(frozen=True)
class DevicePair:
    """The two device types a weight uses, and the number of programmable steps L.

    ``levels`` is L (levels k = 0..L, L = 2^bits - 1) or None for analog devices.
    """

    positive: Device
    negative: Device
    levels: int | None

    def level_conductances(self, device: Device) -> Tensor:
        """G(k / L) for k = 0..L as a float64 table (digital devices only)."""
        if self.levels is None:
            raise ValueError("analog devices have no level table (weights.bits is null)")
        u = torch.arange(self.levels + 1, dtype=torch.float64) / self.levels
        return device.conductance(u)


def device_pair(profile: HardwareProfile) -> DevicePair:
    """The positive and negative device of a profile (normalised: positive Gmax = 1)."""
    bits = profile.weights.bits
    levels = None if bits is None else 2**bits - 1
    conductance = profile.conductance
    return DevicePair(
        positive=_device(1.0, conductance, conductance.nonlinearity),
        negative=_device(
            1.0 - conductance.asymmetry,
            conductance,
            conductance.nonlinearity * (1.0 + conductance.nonlinearity_mismatch),
        ),
        levels=levels,
    )


def _device(gmax: float, conductance: ConductanceConfig, nu: float) -> Device:
    ratio = conductance.on_off_ratio
    gmin = 0.0 if ratio is None else gmax / ratio
    if gmax <= gmin:
        raise ValueError(
            f"on_off_ratio {ratio} leaves no conductance range (Gmax = Gmin); "
            "use a ratio above 1 or null for an ideal off state"
        )
    return Device(gmax=gmax, gmin=gmin, nu=nu)


__all__ = ["Device", "DevicePair", "curve", "device_pair", "inverse_curve"]
