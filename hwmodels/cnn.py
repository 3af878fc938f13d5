"""Networks given as layer lists (conv nets), in their float and hardware-aware forms.

Both forms walk the same resolved layer list (architectures.LayerShape) with ``walk``,
and share parameter names (``layers.<i>.weight`` / ``.bias``, i counting conv2d and
linear layers), so a warm start is a copy of the float state dict. The float net keeps
torch's conv kernels (O, C, k, k); the hardware net keeps each kernel as the crossbar's
unrolled matrix (O, C k k); each loads the other's form (conv.accept_kernel_or_matrix).

Inputs arrive flat, (N, features), as the MLP's do, and are viewed as (N, 1, side,
side) images here, so training and data loading are the same for every network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwmodels.architectures import Conv2dLayer, FlattenLayer, LayerShape, LinearLayer, PoolLayer
from hwmodels.conv import ConvGeometry, HardwareConv2d, accept_kernel_or_matrix
from hwmodels.layers import HardwareLinear, QuantizedActivation
from hwmodels.mapping import WeightMapper
from hwmodels.profile import HardwareProfile

Activation = Literal["relu", "sigmoid"]
LayerFn = Callable[[int, Tensor], Tensor]


def walk(
    shapes: Sequence[LayerShape],
    x: Tensor,
    crossbar: LayerFn,
    neuron: LayerFn,
    flatten: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Run a layer list: ``crossbar(i, x)`` for the i-th conv2d / linear layer,
    ``neuron(i, x)`` after it unless it is the last, pooling here, and ``flatten``
    (default: x.flatten(1)) where the list says so."""
    index = 0
    for shape in shapes:
        spec = shape.spec
        if isinstance(spec, Conv2dLayer | LinearLayer):
            x = crossbar(index, x)
            if shape.hidden:
                x = neuron(index, x)
            index += 1
        elif isinstance(spec, PoolLayer):
            pool = F.max_pool2d if spec.type == "maxpool" else F.avg_pool2d
            x = pool(x, spec.kernel, spec.step)
        elif isinstance(spec, FlattenLayer):
            x = x.flatten(1) if flatten is None else flatten(x)
    return x


def geometry(shape: LayerShape) -> ConvGeometry:
    spec = shape.spec
    assert isinstance(spec, Conv2dLayer)
    return ConvGeometry(shape.input_shape[0], spec.channels, spec.kernel, spec.stride, spec.padding)


def activation_sizes(shapes: Sequence[LayerShape]) -> list[int]:
    """[input features, flattened output of every conv2d / linear layer]."""
    return [math.prod(shapes[0].input_shape)] + [
        math.prod(shape.output_shape) for shape in shapes if shape.crossbar
    ]


class FloatCNN(nn.Module):
    """The float network of a layer list: nn.Conv2d and nn.Linear, ReLU or sigmoid."""

    def __init__(self, shapes: Sequence[LayerShape], activation: Activation = "relu") -> None:
        super().__init__()
        self.shapes = list(shapes)
        self.sizes = activation_sizes(shapes)
        self.activation = activation
        modules: list[nn.Module] = []
        for shape in self.shapes:
            if isinstance(shape.spec, Conv2dLayer):
                g = geometry(shape)
                conv = nn.Conv2d(g.in_channels, g.out_channels, g.kernel, g.stride, g.padding)
                accept_kernel_or_matrix(conv, "weight", g.kernel_shape)
                modules.append(conv)
            elif isinstance(shape.spec, LinearLayer):
                modules.append(nn.Linear(shape.fan_in, shape.fan_out))
        self.layers = nn.ModuleList(modules)

    def forward(self, x: Tensor) -> Tensor:
        x = x.view(x.shape[0], *self.shapes[0].input_shape)
        return walk(self.shapes, x, lambda i, h: self.layers[i](h), self._neuron)

    def _neuron(self, _index: int, x: Tensor) -> Tensor:
        return torch.sigmoid(x) if self.activation == "sigmoid" else torch.relu(x)

    def initialise(self, seed: int) -> FloatCNN:
        """He-normal weights for ReLU (Glorot-normal for sigmoid), zero biases, from a
        generator seeded with ``seed``, as the MLP."""
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in self.layers:
                assert isinstance(layer, nn.Conv2d | nn.Linear)
                if self.activation == "relu":
                    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
                else:
                    nn.init.xavier_normal_(layer.weight, generator=generator)
                assert layer.bias is not None
                layer.bias.zero_()
        return self


class HardwareCNN(nn.Module):
    """The same network on crossbars: HardwareConv2d / HardwareLinear and quantized
    neurons, one array (or tile grid) per layer; pooling and flatten are digital."""

    def __init__(self, shapes: Sequence[LayerShape], profile: HardwareProfile) -> None:
        super().__init__()
        self.shapes = list(shapes)
        self.sizes = activation_sizes(shapes)
        self.profile = profile
        self.mapper = WeightMapper(profile)
        modules: list[HardwareLinear] = []
        for shape in self.shapes:
            index = len(modules)
            if isinstance(shape.spec, Conv2dLayer):
                modules.append(HardwareConv2d(geometry(shape), profile, self.mapper, index))
            elif isinstance(shape.spec, LinearLayer):
                modules.append(
                    HardwareLinear(shape.fan_in, shape.fan_out, profile, self.mapper, index)
                )
        self.layers = nn.ModuleList(modules)
        self.activations = nn.ModuleList(
            QuantizedActivation(profile.activations) for shape in self.shapes if shape.hidden
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x.view(x.shape[0], *self.shapes[0].input_shape)
        return walk(
            self.shapes, x, lambda i, h: self.layers[i](h), lambda i, h: self.activations[i](h)
        )

    def hardware_layers(self) -> list[HardwareLinear]:
        return [layer for layer in self.layers if isinstance(layer, HardwareLinear)]

    def neurons(self) -> list[QuantizedActivation]:
        return [neuron for neuron in self.activations if isinstance(neuron, QuantizedActivation)]


__all__ = ["FloatCNN", "HardwareCNN", "activation_sizes", "geometry", "walk"]
