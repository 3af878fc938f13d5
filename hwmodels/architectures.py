"""Networks as lists of layers, and their shapes worked out by arithmetic (no torch).

A network is a sequence of ``conv2d``, ``maxpool`` / ``avgpool``, ``flatten`` and
``linear`` layers. Every conv2d and linear layer but the last is followed by the
profile's neuron (ReLU or sigmoid, quantized as the profile says); the last one gives the
logits. The API validates a spec with ``plan_layers`` before any job is queued, so a
shape that cannot work (a kernel larger than its input, a linear layer on an unflattened
map, a wrong class count) is refused at submit with the layer it concerns, not found by
torch hours later in a worker.

Each conv2d layer is stored on the crossbar as its unrolled weight matrix: kernel x
kernel x input channels rows, output channels columns (docs/hardware-model.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from hwmodels.profile import StrictModel

MAX_LAYERS = 32
MAX_CHANNELS = 1024
MAX_KERNEL = 11
MAX_FEATURES = 8192


class Conv2dLayer(StrictModel):
    """A square 2-D convolution; its neuron follows unless it is the last layer."""

    type: Literal["conv2d"]
    channels: int = Field(ge=1, le=MAX_CHANNELS, description="Output channels.")
    kernel: int = Field(ge=1, le=MAX_KERNEL, description="Kernel height = width.")
    stride: int = Field(default=1, ge=1, le=MAX_KERNEL)
    padding: int = Field(default=0, ge=0, le=MAX_KERNEL, description="Zeros on every side.")


class PoolLayer(StrictModel):
    """Max or average pooling over square windows (digital, after the neuron)."""

    type: Literal["maxpool", "avgpool"]
    kernel: int = Field(default=2, ge=1, le=MAX_KERNEL)
    stride: int | None = Field(default=None, ge=1, le=MAX_KERNEL, description="null = kernel.")

    @property
    def step(self) -> int:
        return self.kernel if self.stride is None else self.stride


class FlattenLayer(StrictModel):
    """Channels x height x width to one feature vector (needed before a linear layer)."""

    type: Literal["flatten"]


class LinearLayer(StrictModel):
    """A fully connected layer; the last layer of a network must be one."""

    type: Literal["linear"]
    features: int | None = Field(
        default=None,
        ge=1,
        le=MAX_FEATURES,
        description="Output features; null only for the last layer (= the class count).",
    )


LayerSpec = Annotated[
    Conv2dLayer | PoolLayer | FlattenLayer | LinearLayer, Field(discriminator="type")
]
ArchitectureName = Literal["lenet5", "mlp-256-128"]


def _linear(features: int | None = None) -> LinearLayer:
    return LinearLayer(type="linear", features=features)


ARCHITECTURES: dict[str, list[LayerSpec]] = {
    # LeNet-5 as usually run on 28 x 28 digits: padding 2 on the first conv stands in
    # for the original 32 x 32 input; max pooling and ReLU neurons.
    "lenet5": [
        Conv2dLayer(type="conv2d", channels=6, kernel=5, padding=2),
        PoolLayer(type="maxpool", kernel=2),
        Conv2dLayer(type="conv2d", channels=16, kernel=5),
        PoolLayer(type="maxpool", kernel=2),
        FlattenLayer(type="flatten"),
        _linear(120),
        _linear(84),
        _linear(),
    ],
    # The default `hidden` network, by name.
    "mlp-256-128": [FlattenLayer(type="flatten"), _linear(256), _linear(128), _linear()],
}


@dataclass(frozen=True)
class LayerShape:
    """One layer with its shapes resolved: what the engine builds and the cost counts."""

    spec: LayerSpec
    input_shape: tuple[int, ...]
    """(channels, height, width) for maps, (features,) after flatten."""
    output_shape: tuple[int, ...]
    hidden: bool
    """conv2d / linear followed by a neuron (every one but the last)."""

    @property
    def crossbar(self) -> bool:
        """True for layers whose weights sit on the crossbar (conv2d and linear)."""
        return isinstance(self.spec, Conv2dLayer | LinearLayer)

    @property
    def fan_in(self) -> int:
        """Rows of the layer's (unrolled) weight matrix."""
        if isinstance(self.spec, Conv2dLayer):
            return self.input_shape[0] * self.spec.kernel**2
        return self.input_shape[0] if isinstance(self.spec, LinearLayer) else 0

    @property
    def fan_out(self) -> int:
        """Columns of the weight matrix: output channels or features."""
        return self.output_shape[0] if self.crossbar else 0

    @property
    def positions(self) -> int:
        """Output positions the weight matrix is applied at (1 for linear layers)."""
        return math.prod(self.output_shape[1:]) if isinstance(self.spec, Conv2dLayer) else 1

    @property
    def parameters(self) -> int:
        return self.fan_in * self.fan_out + self.fan_out

    @property
    def work(self) -> int:
        """Multiply-accumulates per sample, bias additions included (= parameters for a
        linear layer, so an MLP's cost is its parameter count as before)."""
        return self.positions * self.parameters


def plan_layers(
    layers: list[LayerSpec], input_shape: tuple[int, int, int], classes: int
) -> list[LayerShape]:
    """Resolve every layer's shapes; raise ValueError naming the layer that cannot work."""
    if not 1 <= len(layers) <= MAX_LAYERS:
        raise ValueError(f"network.layers must hold between 1 and {MAX_LAYERS} layers")
    last_crossbar = max(
        (i for i, layer in enumerate(layers) if isinstance(layer, Conv2dLayer | LinearLayer)),
        default=-1,
    )
    if last_crossbar != len(layers) - 1 or not isinstance(layers[-1], LinearLayer):
        raise ValueError("network.layers must end with a linear layer (it gives the logits)")
    shape: tuple[int, ...] = input_shape
    plans = []
    for index, layer in enumerate(layers):
        where = f"network.layers[{index}] ({layer.type})"
        output = _output_shape(layer, shape, where, classes, index == len(layers) - 1)
        plans.append(LayerShape(layer, shape, output, index < last_crossbar))
        shape = output
    return plans


def _output_shape(
    layer: LayerSpec, shape: tuple[int, ...], where: str, classes: int, last: bool
) -> tuple[int, ...]:
    if isinstance(layer, LinearLayer):
        if len(shape) != 1:
            raise ValueError(
                f'{where} gets a {_shape_text(shape)} map: insert {{"type": "flatten"}} '
                "before the first linear layer"
            )
        if last and layer.features not in (None, classes):
            raise ValueError(
                f"{where} is the output layer: its features must be the dataset's "
                f"{classes} classes (or null), got {layer.features}"
            )
        if not last and layer.features is None:
            raise ValueError(f"{where}: features may be null only in the last layer")
        return (classes if last else int(layer.features or 0),)
    if len(shape) != 3:
        raise ValueError(f"{where} needs a channels x height x width map, but gets a flat vector")
    channels, height, width = shape
    if isinstance(layer, FlattenLayer):
        return (channels * height * width,)
    if isinstance(layer, Conv2dLayer):
        kernel, stride, padding = layer.kernel, layer.stride, layer.padding
        out_channels = layer.channels
    else:
        kernel, stride, padding = layer.kernel, layer.step, 0
        out_channels = channels
    if padding >= kernel:
        raise ValueError(f"{where}: padding {padding} must be less than the kernel {kernel}")
    sides = [(side + 2 * padding - kernel) // stride + 1 for side in (height, width)]
    if min(height, width) + 2 * padding < kernel:
        raise ValueError(
            f"{where}: its {kernel} x {kernel} kernel does not fit the "
            f"{_shape_text(shape)} input (padding {padding}): use a smaller kernel or "
            "fewer pooling layers before it"
        )
    return (out_channels, *sides)


def _shape_text(shape: tuple[int, ...]) -> str:
    return " x ".join(str(size) for size in shape)


def mlp_layers(hidden: list[int]) -> list[LayerSpec]:
    """The `hidden` shorthand as a layer list."""
    return [FlattenLayer(type="flatten"), *(_linear(width) for width in hidden), _linear()]


def is_mlp(layers: list[LayerSpec]) -> bool:
    """True for flatten + linear layers only: the engine runs those as its MLP."""
    return isinstance(layers[0], FlattenLayer) and all(
        isinstance(layer, LinearLayer) for layer in layers[1:]
    )


__all__ = [
    "ARCHITECTURES",
    "ArchitectureName",
    "Conv2dLayer",
    "FlattenLayer",
    "LayerShape",
    "LayerSpec",
    "LinearLayer",
    "PoolLayer",
    "is_mlp",
    "mlp_layers",
    "plan_layers",
]
