"""Monte Carlo forward pass for any layer list: conv nets, and MLPs with tiled ADCs.

``evaluation.chip_accuracies`` runs its chip and image chunks as always and calls this
forward instead of its MLP fast path when the net has conv layers or row tiles whose
partial sums each pass an ADC. It walks the same layer list as the module forward
(cnn.walk) with the same crossbar arithmetic (conv.conv_partials, tiling.sum_tiles), on
G chips at once:

- maps are (images, G x channels, H, W), so G chips' kernels run as one grouped
  convolution (groups = G); the first conv layer, whose input all chips share, runs
  the G stacked kernels as one ordinary convolution;
- vectors are (G, images, features), one batched matmul per layer;
- G is 1 until a layer's weights or read noise differ per chip, then the chunk's count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from hwmodels.architectures import FlattenLayer, LayerShape, LinearLayer
from hwmodels.chips import NormalPool
from hwmodels.cnn import HardwareCNN, walk
from hwmodels.conv import HardwareConv2d, conv_partials, patch_norms
from hwmodels.network import HardwareMLP, HardwareNet
from hwmodels.surrogates import HARD, quantize_hard
from hwmodels.tiling import linear_partials, sum_tiles

if TYPE_CHECKING:
    from hwmodels.evaluation import _Layer


def needs_layer_walk(net: HardwareNet) -> bool:
    """True unless the MLP fast path computes this net exactly (no conv layers, and no
    layer whose row tiles each have an ADC)."""
    return not isinstance(net, HardwareMLP) or any(
        layer.grid.splits_sums(layer.output_bits) for layer in net.hardware_layers()
    )


def layer_shapes(net: HardwareNet) -> list[LayerShape]:
    """The net's layer list (an MLP's: its linear layers on flat inputs)."""
    if isinstance(net, HardwareCNN):
        return net.shapes
    pairs = zip(net.sizes[:-1], net.sizes[1:], strict=True)
    last = len(net.sizes) - 2
    return [
        LayerShape(LinearLayer(type="linear", features=b), (a,), (b,), index < last)
        for index, (a, b) in enumerate(pairs)
    ]


def forward_chips(
    net: HardwareNet,
    layers: list[_Layer],
    weights: list[Tensor],
    x: Tensor,
    chips: int,
    dtype: torch.dtype,
    pool: NormalPool | None,
) -> Tensor:
    """Logits as (chips or 1, images, classes) for one chunk of chips and images.

    ``weights[i]``: layer i's W_eff, (chips, out, fan_in) when chips differ, else (out,
    fan_in), already in ``dtype``."""
    shapes = layer_shapes(net)
    neurons = net.neurons()
    first = shapes[0]
    h = x.view(x.shape[0], *first.input_shape) if len(first.input_shape) == 3 else x.unsqueeze(0)
    flat = next((s for s in shapes if isinstance(s.spec, FlattenLayer)), None)
    channels = flat.input_shape[0] if flat is not None else 1

    def crossbar(index: int, h: Tensor) -> Tensor:
        layer = layers[index]
        if layer.dac is not None:
            h = quantize_hard(h, layer.dac)
        if isinstance(layer.module, HardwareConv2d):
            return _conv(layer, weights[index], h, chips, dtype, pool)
        return _linear(layer, weights[index], h, chips, dtype, pool)

    def flatten(h: Tensor) -> Tensor:
        groups = h.shape[1] // channels
        return h.reshape(h.shape[0], groups, -1).transpose(0, 1)

    return walk(shapes, h, crossbar, lambda i, h: neurons[i](h), flatten)


def _conv(
    layer: _Layer,
    weight: Tensor,
    h: Tensor,
    chips: int,
    dtype: torch.dtype,
    pool: NormalPool | None,
) -> Tensor:
    """One conv layer on G chips: h (N, G C, H, W) -> (N, G' O, H', W')."""
    module = layer.module
    assert isinstance(module, HardwareConv2d)
    g, grid = module.geometry, module.grid
    groups = h.shape[1] // g.in_channels
    kernels = weight.reshape(-1, g.fan_in)
    if groups > 1 and weight.dim() == 2:
        kernels = kernels.repeat(groups, 1)
    split = grid.splits_sums(module.output_bits)
    partials = [p.float() for p in conv_partials(h.to(dtype), kernels, g, grid, split, groups)]
    n, _, height, width = partials[0].shape
    partials = [p.view(n, -1, g.out_channels, height, width) for p in partials]
    noise = None
    if pool is not None:
        norms = [m.unsqueeze(2) for m in patch_norms(h, g, grid, split, groups)]
        std = layer.scale.reshape(1, 1, -1, 1, 1) * module.read_factor
        if layer.read_gain is not None:  # drift compensation, per chip
            std = std * layer.read_gain.view(1, -1, 1, 1, 1)
        shape = (n, chips, g.out_channels, height, width)

        def noise(y: Tensor, tile: int) -> Tensor:
            return torch.addcmul(y.expand(shape), pool.normal(shape), norms[tile] * std)

    y = sum_tiles(partials, layer.adc, HARD, noise)
    y = y + layer.bias.view(1, 1, -1, 1, 1)
    return y.reshape(n, -1, height, width)


def _linear(
    layer: _Layer,
    weight: Tensor,
    h: Tensor,
    chips: int,
    dtype: torch.dtype,
    pool: NormalPool | None,
) -> Tensor:
    """One linear layer on G chips: h (G, N, in) -> (G', N, out)."""
    grid = layer.module.grid
    if grid.splits_sums(layer.module.output_bits):
        partials = linear_partials(h.to(dtype), weight, grid)
        ranges = grid.row_ranges()
    else:
        partials = [torch.matmul(h.to(dtype), weight.transpose(-1, -2))]
        ranges = [(0, h.shape[-1])]
    partials = [p.float() for p in partials]
    noise = None
    if pool is not None:
        norms = [h[..., a:b].square().sum(dim=-1, keepdim=True).sqrt_() for a, b in ranges]
        std = layer.scale.reshape(-1) * layer.module.read_factor
        if layer.read_gain is not None:  # drift compensation, per chip
            std = std * layer.read_gain
        shape = (chips, h.shape[1], weight.shape[-2])

        def noise(y: Tensor, tile: int) -> Tensor:
            return torch.addcmul(y.expand(shape), pool.normal(shape), norms[tile] * std)

    return sum_tiles(partials, layer.adc, HARD, noise) + layer.bias


__all__ = ["forward_chips", "layer_shapes", "needs_layer_walk"]
