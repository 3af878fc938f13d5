"""A convolution on the crossbar: the kernel stored as its unrolled weight matrix.

A conv layer with C input channels, k x k kernels and O output channels is the matrix
W of O columns and C k k rows (row index c k k + i k + j, torch's kernel order) applied
at every output position to the input patch unrolled the same way (im2col):
y[o, p] = sum_r W[o, r] patch_p[r]. The crossbar holds that matrix, so the layer is a
HardwareLinear of fan_in C k k: the same device mapping, weight transform, programming
noise, faults, training modes and per-column scale. Its forward is F.conv2d with the
effective kernel W_eff reshaped to (O, C, k, k), the same sums as the im2col GEMM
without materialising the patches. Read noise per output column and position has std
sigma s ||patch_p|| (the patch is the column's input vector); the ADC acts on every
position's column sum, per row tile when the matrix spans several arrays (tiling.py).

The same functions serve the Monte Carlo evaluation, which stacks G chips' kernels and
runs them as one grouped convolution (``groups = G``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwmodels.layers import HardwareLinear
from hwmodels.mapping import WeightMapper
from hwmodels.profile import HardwareProfile
from hwmodels.surrogates import quantize
from hwmodels.tiling import TileGrid, finish_tiles


@dataclass(frozen=True)
class ConvGeometry:
    """Channels, square kernel, stride and zero padding of one convolution."""

    in_channels: int
    out_channels: int
    kernel: int
    stride: int = 1
    padding: int = 0

    @property
    def kernel_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels, self.kernel, self.kernel)

    @property
    def fan_in(self) -> int:
        return self.in_channels * self.kernel**2


def conv_partials(
    x: Tensor, weight: Tensor, geometry: ConvGeometry, grid: TileGrid, split: bool, groups: int = 1
) -> list[Tensor]:
    """The conv's column sums, one tensor per row tile (one in all when not ``split``).

    x: (N, groups C, H, W); weight: (groups O, C k k) unrolled. Returns (N, groups O, H',
    W') each. A row tile that starts or ends inside a channel's k x k block keeps only its
    own rows of that block (the others are masked to zero)."""
    k, channels = geometry.kernel, geometry.in_channels
    kernel = weight.reshape(-1, channels, k, k)
    if not split:
        return [F.conv2d(x, kernel, None, geometry.stride, geometry.padding, groups=groups)]
    partials = []
    for first, last, mask in _tile_blocks(geometry, grid, kernel.dtype):
        part = kernel[:, first:last] * mask
        inputs = _channels(x, groups, channels, first, last)
        partials.append(
            F.conv2d(inputs, part, None, geometry.stride, geometry.padding, groups=groups)
        )
    return partials


def patch_norms(
    x: Tensor, geometry: ConvGeometry, grid: TileGrid, split: bool, groups: int = 1
) -> list[Tensor]:
    """||patch|| over each row tile's rows at every output position: (N, groups, H', W')."""
    k, channels = geometry.kernel, geometry.in_channels
    squares = x.detach().square()
    if not split:
        ones = torch.ones(groups, channels, k, k, dtype=x.dtype)
        blocks = [(0, channels, ones)]
    else:
        blocks = [
            (first, last, mask.expand(groups, -1, -1, -1))
            for first, last, mask in _tile_blocks(geometry, grid, x.dtype)
        ]
    return [
        F.conv2d(
            _channels(squares, groups, channels, first, last),
            ones,
            None,
            geometry.stride,
            geometry.padding,
            groups=groups,
        ).sqrt_()
        for first, last, ones in blocks
    ]


def _tile_blocks(
    geometry: ConvGeometry, grid: TileGrid, dtype: torch.dtype
) -> list[tuple[int, int, Tensor]]:
    """Per row tile: the input channels it touches [first, last) and a (1, last - first,
    k, k) mask of its rows within them."""
    block = geometry.kernel**2
    blocks = []
    for start, stop in grid.row_ranges():
        first, last = start // block, -(-stop // block)
        rows = torch.arange(first * block, last * block)
        mask = ((rows >= start) & (rows < stop)).to(dtype)
        blocks.append((first, last, mask.view(1, last - first, geometry.kernel, geometry.kernel)))
    return blocks


def _channels(x: Tensor, groups: int, channels: int, first: int, last: int) -> Tensor:
    """Input channels [first, last) of every group of x (N, groups C, H, W)."""
    if first == 0 and last == channels:
        return x
    n, _, height, width = x.shape
    grouped = x.view(n, groups, channels, height, width)[:, :, first:last]
    return grouped.reshape(n, groups * (last - first), height, width)


def accept_kernel_or_matrix(module: nn.Module, name: str, shape: tuple[int, ...]) -> None:
    """Let ``module`` load its parameter ``name`` from a state dict that holds it either as
    a conv kernel (O, C, k, k) or as the unrolled crossbar matrix (O, C k k): the float net
    keeps torch's kernels, the hardware net the crossbar's matrix."""

    def reshape(_module: nn.Module, state: Mapping[str, Any], prefix: str, *_args: object) -> None:
        key = prefix + name
        value = state.get(key)
        if isinstance(value, Tensor) and value.numel() == math.prod(shape):
            state[key] = value.reshape(shape)  # type: ignore[index]

    module.register_load_state_dict_pre_hook(reshape)  # type: ignore[no-untyped-call]


class HardwareConv2d(HardwareLinear):
    """A conv layer on the crossbar: weight (O, C k k), forward F.conv2d(W_eff as kernel)."""

    def __init__(
        self, geometry: ConvGeometry, profile: HardwareProfile, mapper: WeightMapper, index: int = 0
    ) -> None:
        super().__init__(geometry.fan_in, geometry.out_channels, profile, mapper, index)
        self.geometry = geometry
        accept_kernel_or_matrix(self, "weight", (geometry.out_channels, geometry.fan_in))

    def extra_repr(self) -> str:
        g = self.geometry
        return (
            f"{g.in_channels}, {g.out_channels}, kernel={g.kernel}, stride={g.stride}, "
            f"padding={g.padding}, crossbar={self.in_features}x{self.out_features}"
        )

    def forward(self, x: Tensor) -> Tensor:
        g = self.geometry
        if self.mode.kind == "float":
            kernel = self.weight.view(g.kernel_shape)
            return F.conv2d(x, kernel, self.bias, g.stride, g.padding)
        if self.calibrating and self.input_bits is not None:
            self.input_range.fill_(float(x.detach().max().clamp_min(1e-12)))
        dac = self.dac()
        if dac is not None:
            x = quantize(x, dac, self.mode)
        split = self.grid.splits_sums(self.output_bits)
        partials = conv_partials(x, self.effective_weight(), g, self.grid, split)
        return finish_tiles(self, partials, lambda: patch_norms(x, g, self.grid, split), (-1, 1, 1))


__all__ = [
    "ConvGeometry",
    "HardwareConv2d",
    "accept_kernel_or_matrix",
    "conv_partials",
    "patch_norms",
]
