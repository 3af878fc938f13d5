"""The quantized neuron: ReLU clipped at a_max (or sigmoid), quantized to b_a bits.

A calibrated clip (``activations.clip`` null, ``bits`` set) is set from the float
network's activations (``network.calibrate``), never from the hardware network's: with a
finite on/off ratio and asymmetric devices every naive weight carries an offset that
inflates the hardware pre-activations, and a clip taken from them wastes most levels.
During hardware-aware training that clip is a parameter learned with the weights, as in
PACT (Choi et al. 2018) with LSQ's gradient (Esser et al. 2020): y = a Q(x / a), so
dy/da = Q(v) - v inside the range and 1 above it. A fixed clip is hardware and stays.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hwmodels.profile import ActivationConfig
from hwmodels.ranges import percentile, range_or_raise
from hwmodels.surrogates import HARD, Mode, Uniform, quantize

MIN_CLIP = 1e-6
"""The smallest a_max calibration or training may set (a range must be non-empty)."""


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
        initial = torch.tensor(clip if config.function == "relu" else 1.0)
        if self.learns_clip:
            self.a_max = nn.Parameter(initial)
        else:
            self.register_buffer("a_max", initial)
        self.mode: Mode = HARD
        self.calibrating = False

    def extra_repr(self) -> str:
        return f"function={self.function}, bits={self.bits}"

    @property
    def learns_clip(self) -> bool:
        """True for a calibrated clip in front of a quantizer: a_max is then trained."""
        return self.calibrated_clip and self.bits is not None

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
        if self.calibrating and self.learns_clip:
            self._calibrate(x)
        if self.mode.kind == "float":
            return torch.sigmoid(x) if self.function == "sigmoid" else torch.relu(x)
        if self.function == "sigmoid":
            x = torch.sigmoid(x)
        elif self.learns_clip and self.mode.kind in ("ste", "smooth"):
            return self._learned(x)
        quantizer = self.quantizer()
        if quantizer is not None:
            return quantize(x, quantizer, self.mode)
        if self.function == "sigmoid":
            return x
        if not self.needs_range:
            return torch.relu(x)
        return x.clamp(0.0, range_or_raise(self.a_max, "activation clip a_max"))

    def _calibrate(self, x: Tensor) -> None:
        """a_max at the clip percentile of the ReLU outputs this forward pass sees."""
        with torch.no_grad():
            self.a_max.fill_(max(percentile(torch.relu(x), self.percentile), MIN_CLIP))

    def _learned(self, x: Tensor) -> Tensor:
        """a Q(x / a) with Q the quantizer over [0, 1]: gradients reach x and a."""
        assert self.bits is not None
        range_or_raise(self.a_max, "activation clip a_max")
        clip = self.a_max.clamp_min(MIN_CLIP)
        return quantize(x / clip, Uniform.over(0.0, 1.0, self.bits), self.mode) * clip


__all__ = ["MIN_CLIP", "QuantizedActivation"]
