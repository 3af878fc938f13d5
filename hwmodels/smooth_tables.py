"""Smooth surrogates of a profile's weight staircases, tabulated once per tau.

Annealed training replaces the level staircase by a sum of sigmoids with tau = rho *
level spacing (surrogates.py); each stage has its own rho, so the tables of the last
few rho are kept.
"""

from __future__ import annotations

from hwmodels.level_coding import LevelCoding
from hwmodels.surrogates import PairTable, SmoothTable

MAX_CACHED = 16


class SmoothTables:
    """Interpolation tables over v in [-1, 1] of one digital profile, per rho."""

    def __init__(self, coding: LevelCoding) -> None:
        self.coding = coding
        self._tables: dict[float, tuple[SmoothTable, PairTable]] = {}

    def __call__(self, rho: float) -> tuple[SmoothTable, PairTable]:
        """w_eff / s, and the device pair (G+, G-), with tau = rho * spacing. Flat beyond
        [-1, 1], the clipping of |w| at s."""
        tables = self._tables.get(rho)
        if tables is None:
            coding = self.coding
            tau = rho * coding.v_spacing
            combined = coding.stair_effective.tabulate(tau, -1.0, 1.0)
            pair = PairTable.pack(
                coding.stair_positive.tabulate(tau, -1.0, 1.0),
                coding.stair_negative.tabulate(tau, -1.0, 1.0),
            )
            if len(self._tables) > MAX_CACHED:
                self._tables.clear()
            tables = (combined, pair)
            self._tables[rho] = tables
        return tables


__all__ = ["SmoothTables"]
