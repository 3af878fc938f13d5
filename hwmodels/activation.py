"""The quantized neuron: ReLU clipped at a_max (or sigmoid), quantized to b_a bits."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hwmodels.profile import ActivationConfig
from hwmodels.ranges import percentile, range_or_raise
from hwmodels.surrogates import HARD, Mode, Uniform, quantize


class QuantizedActivation(nn.Module):
    """The neuron: ReLU clipped at a_max or sigmoid, then b_a-bit uniform quantization."""

    a_max: Tensor

    def __init__(self, config: ActivationConfig) -> None:
        super().__init__()
        self.function = config.function
        self.bits = config.bits
        self.percentile = config.clip_percentile
        self.calibrated_clip = config.function == "relu" and config.clip is None
        clip = math.nan if config.clip is None else config.clip
        self.register_buffer("a_max", torch.tensor(clip if config.function == "relu" else 1.0))
        self.mode: Mode = HARD
        self.calibrating = False

    def extra_repr(self) -> str:
        return f"function={self.function}, bits={self.bits}"

    @property
    def needs_range(self) -> bool:
        """True when the hardware clips the ReLU (fixed clip or quantized output)."""
        return self.function == "relu" and (self.bits is not None or not self.calibrated_clip)

    def quantizer(self) -> Uniform | None:
        """The output quantizer (None for float activations)."""
        if self.bits is None:
            return None
        if self.function == "sigmoid":
            return Uniform.over(0.0, 1.0, self.bits)
        return Uniform.over(0.0, range_or_raise(self.a_max, "activation clip a_max"), self.bits)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode.kind == "float":
            return torch.sigmoid(x) if self.function == "sigmoid" else torch.relu(x)
        if self.function == "sigmoid":
            x = torch.sigmoid(x)
        elif self.calibrating and self.calibrated_clip and self.bits is not None:
            top = percentile(torch.relu(x), self.percentile)
            self.a_max.fill_(max(top, 1e-6))
        quantizer = self.quantizer()
        if quantizer is not None:
            return quantize(x, quantizer, self.mode)
        if self.function == "sigmoid":
            return x
        if not self.needs_range:
            return torch.relu(x)
        return x.clamp(0.0, range_or_raise(self.a_max, "activation clip a_max"))


__all__ = ["QuantizedActivation"]
