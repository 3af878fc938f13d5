"""Crossbar tiling: a weight matrix larger than one array is split into tiles.

With arrays of R rows and C columns (``profile.array``), a layer's (unrolled) weight
matrix of fan_in rows and fan_out columns needs ceil(fan_in / R) x ceil(fan_out / C)
arrays. Tile (t, u) holds rows [t R, (t + 1) R) of columns [u C, (u + 1) C); it sums
its own rows only, so output column j of the layer is

    y_j = sum_t ADC( sum_{i in rows t} x_i w_ij + read noise of tile t ) + b_j

the partial sums of the row tiles passing the ADC one by one before they are added
digitally. Splitting the columns changes nothing numerically (each column lives in one
tile), and without an ADC neither does splitting the rows (read noise of independent
tiles adds up to the untiled column's variance): the engine then runs the layer
untiled and tiling only sets the array count. With an ADC and more than one row tile,
every forward pass (calibration, training in every mode, evaluation) sums tile by tile,
so hardware-aware training sees the tiling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hwmodels.profile import ArrayConfig
from hwmodels.ranges import percentile as take_percentile
from hwmodels.surrogates import Mode, Uniform, quantize

if TYPE_CHECKING:
    from hwmodels.layers import HardwareLinear

NoiseFn = Callable[[Tensor, int], Tensor]
"""Adds read noise to the partial sum of row tile t: (partial, t) -> noisy partial."""


@dataclass(frozen=True)
class TileGrid:
    """How one layer's weight matrix is cut into arrays."""

    fan_in: int
    fan_out: int
    rows: int | None = None
    columns: int | None = None

    @classmethod
    def for_layer(cls, array: ArrayConfig | None, fan_in: int, fan_out: int) -> TileGrid:
        if array is None:
            return cls(fan_in, fan_out)
        return cls(fan_in, fan_out, array.rows, array.columns)

    @property
    def row_tiles(self) -> int:
        return 1 if self.rows is None else -(-self.fan_in // self.rows)

    @property
    def column_tiles(self) -> int:
        return 1 if self.columns is None else -(-self.fan_out // self.columns)

    @property
    def arrays(self) -> int:
        """Crossbar arrays the layer occupies."""
        return self.row_tiles * self.column_tiles

    def row_ranges(self) -> list[tuple[int, int]]:
        """[start, stop) of the weight rows of every row tile."""
        step = self.fan_in if self.rows is None else self.rows
        return [(start, min(start + step, self.fan_in)) for start in range(0, self.fan_in, step)]

    def splits_sums(self, output_bits: int | None) -> bool:
        """True when the tiles' partial sums must be computed apart (an ADC on each)."""
        return output_bits is not None and self.row_tiles > 1


def sum_tiles(
    partials: list[Tensor], adc: Uniform | None, mode: Mode, noise: NoiseFn | None
) -> Tensor:
    """Each row tile's partial sum plus its read noise, through the ADC, added up."""
    total: Tensor | None = None
    for tile, partial in enumerate(partials):
        y = partial if noise is None else noise(partial, tile)
        if adc is not None:
            y = quantize(y, adc, mode)
        total = y if total is None else total + y
    if total is None:
        raise ValueError("a layer needs at least one tile")
    return total


def linear_partials(x: Tensor, weight: Tensor, grid: TileGrid) -> list[Tensor]:
    """x W^T of every row tile: x (..., fan_in), weight (..., fan_out, fan_in)."""
    return [
        torch.matmul(x[..., start:stop], weight[..., start:stop].transpose(-1, -2))
        for start, stop in grid.row_ranges()
    ]


def tiled_linear(layer: HardwareLinear, x: Tensor, weight: Tensor) -> Tensor:
    """A HardwareLinear whose row tiles each have an ADC, in the layer's current mode."""
    partials = linear_partials(x, weight, layer.grid)

    def norms() -> list[Tensor]:
        return [
            x[..., start:stop].detach().square().sum(dim=-1, keepdim=True).sqrt_()
            for start, stop in layer.grid.row_ranges()
        ]

    return finish_tiles(layer, partials, norms, (-1,))


def finish_tiles(
    layer: HardwareLinear,
    partials: list[Tensor],
    norms: Callable[[], list[Tensor]],
    column_shape: tuple[int, ...],
) -> Tensor:
    """Read noise, ADC (calibrated here when the layer calibrates) and bias on the row
    tiles' partial sums of a crossbar layer (module forward: training, calibration and
    single-chip evaluation). ``norms()``: ||x|| over each tile's rows, shaped to broadcast
    against the partial sums; ``column_shape`` shapes the per-column scale likewise."""
    if layer.calibrating and layer.output_bits is not None:
        calibrate_output_range(layer.output_range, partials, layer.output_percentile)
    noise = None
    if layer.noise is not None and layer.read_factor > 0.0:
        pool = layer.noise.pool
        with torch.no_grad():
            scale = layer.current_scale().reshape(column_shape) * layer.read_factor
        tile_norms = norms()

        def noise(y: Tensor, tile: int) -> Tensor:
            return y + pool.normal(tuple(y.shape)) * (tile_norms[tile] * scale)

    y = sum_tiles(partials, layer.adc(), layer.mode, noise)
    return y + layer.bias.reshape(column_shape)


def calibrate_output_range(range_buffer: Tensor, partials: list[Tensor], percentile: float) -> None:
    """The ADC range: the percentile of |partial sum| over all tiles (the untiled layer:
    of |x W^T|, as before tiling existed)."""
    flat = torch.cat([partial.detach().abs().reshape(-1) for partial in partials])
    range_buffer.fill_(max(take_percentile(flat, percentile), 1e-12))


__all__ = [
    "NoiseFn",
    "TileGrid",
    "calibrate_output_range",
    "finish_tiles",
    "linear_partials",
    "sum_tiles",
    "tiled_linear",
]
