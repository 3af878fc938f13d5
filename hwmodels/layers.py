"""The crossbar layer: ``HardwareLinear`` replaces ``nn.Linear``.

Optional DAC on its inputs, weights stored as device pairs (mapping.py), optional read
noise and ADC on its output columns, a digital bias. The neuron after it is
``activation.QuantizedActivation``.

Both run in one of four modes (surrogates.Mode): ``float`` (exactly the float network),
``hard`` (the hardware, for evaluation), ``ste`` and ``smooth`` (for training). The
weight transform runs once per forward call for the whole matrix, as one autograd
function per layer (weight_functions.py; forward compiled where ``fused.py`` says so).

The weight scale s (a percentile of |w|, mapping.py) is part of the hardware function
w_eff = s q(w / s), so in training its gradient is kept: smooth mode differentiates
q(v) - v q'(v) exactly; straight-through mode uses Q(v) - v (as LSQ, Esser et al. 2020).
It reaches the weight that defines s, which lets training shrink an outlier that would
otherwise leave most weights on the lowest levels.

Ranges (a_max when not fixed, DAC and ADC ranges) are calibrated on training data by
``network.calibrate`` (ranges.py). Reading of the reference model: with bits null and no
fixed clip the neuron is a plain ReLU (float software does not clip), so the ideal
profile is bit-for-bit the float network.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwmodels import fused
from hwmodels.activation import QuantizedActivation
from hwmodels.chips import (
    Faults,
    NormalPool,
    draw_faults,
    perturb,
    read_noise_factor,
    varies_per_chip,
)
from hwmodels.device import DevicePair
from hwmodels.mapping import WeightMapper
from hwmodels.profile import HardwareProfile, NoiseConfig
from hwmodels.ranges import NotCalibratedError, percentile, range_or_raise
from hwmodels.surrogates import FLOAT, HARD, Mode, Uniform, quantize
from hwmodels.tiling import TileGrid, tiled_linear
from hwmodels.weight_functions import (
    FusedWeight,
    NoisySmoothWeight,
    SmoothWeight,
    StraightThrough,
    fused_noisy,
    fused_noisy_hard,
    fused_smooth,
)

FAULT_BATCHES = 32
"""Training batches whose stuck devices are drawn in one go."""


@dataclass
class InjectedNoise:
    """Noise drawn during training: programming noise and faults afresh for every batch,
    read noise per inference. Shared by all layers of a net.

    ``begin_batch`` starts a new draw. Faults are drawn for ``FAULT_BATCHES`` batches
    and all layers at once (one generator call instead of one per batch, layer and
    device): a batch's small tensor operations would otherwise cost more than its
    arithmetic.
    """

    config: NoiseConfig
    pool: NormalPool
    generator: torch.Generator
    weights: list[int]
    pair: DevicePair
    _faults: list[Faults | None] | None = None
    _drawn: list[list[Faults | None]] = field(default_factory=list)

    @classmethod
    def create(cls, layers: list[HardwareLinear], config: NoiseConfig, seed: int) -> InjectedNoise:
        generator = torch.Generator().manual_seed(seed)
        return cls(
            config=config,
            pool=NormalPool(generator),
            generator=generator,
            weights=[layer.weight.numel() for layer in layers],
            pair=layers[0].mapper.pair,
        )

    def begin_batch(self) -> None:
        """Forget the current draw: the next forward pass meets a fresh chip."""
        self._faults = None

    def faults(self, layer: int) -> Faults | None:
        if self._faults is None:
            if not self._drawn:
                block = draw_faults(
                    self.weights, self.pair, self.config, self.generator, FAULT_BATCHES
                )
                self._drawn = block[::-1]  # popped from the end: first batch first
            self._faults = self._drawn.pop()
        return self._faults[layer]


class HardwareLinear(nn.Module):
    """y = ADC(DAC(x) W_eff^T + read noise) + b, with W_eff what the devices really hold."""

    input_range: Tensor
    output_range: Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        profile: HardwareProfile,
        mapper: WeightMapper,
        index: int = 0,
    ) -> None:
        super().__init__()
        self.index = index
        """Position in the network (which layer's faults to take from InjectedNoise)."""
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.mapper = mapper
        self.input_bits = profile.converters.input_bits
        self.output_bits = profile.converters.output_bits
        self.output_percentile = profile.converters.output_percentile
        self.read_factor = read_noise_factor(mapper, profile.noise)
        self.grid = TileGrid.for_layer(profile.array, in_features, out_features)
        """How the weight matrix is cut into crossbar arrays (tiling.py)."""
        self.register_buffer("input_range", torch.tensor(math.nan))
        self.register_buffer("output_range", torch.tensor(math.nan))
        self.mode: Mode = HARD
        self.noise: InjectedNoise | None = None
        self.calibrating = False
        self._scale: Tensor | None = None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    # --- converters ------------------------------------------------------------------

    def dac(self) -> Uniform | None:
        if self.input_bits is None:
            return None
        return Uniform.over(
            0.0, range_or_raise(self.input_range, "DAC input range"), self.input_bits
        )

    def adc(self) -> Uniform | None:
        if self.output_bits is None:
            return None
        top = range_or_raise(self.output_range, "ADC output range")
        return Uniform.over(-top, top, self.output_bits)

    # --- weights ---------------------------------------------------------------------

    def scale(self) -> Tensor:
        """The weight scale s of the current weights (per layer () or per column (out, 1))."""
        return self.mapper.scale(self.weight)

    def current_scale(self) -> Tensor:
        """s of the weights this forward pass uses (effective_weight computes it once; the
        read noise needs it too), without gradient."""
        if self._scale is None:
            self._scale = self.mapper.scale(self.weight.detach())
        return self._scale

    def effective_weight(self) -> Tensor:
        """W_eff in the current mode, with injected device noise if any (one draw)."""
        self._scale = None
        noise = self.noise
        if noise is not None and not varies_per_chip(noise.config):
            noise = None
        kind = self.mode.kind
        if kind == "float" or (self.mapper.identity and noise is None):
            return self.weight
        if self.mapper.levels is None and kind != "ste":
            return self._analog_weight(noise)
        if kind == "smooth":
            return self._smooth_weight(noise)
        return self._hard_weight(noise)

    def _fused(self, run: Callable[[Tensor, Tensor], fused.Transform], clips: bool) -> Tensor:
        """The weight transform as one compiled forward kernel and one autograd node."""
        s, source = self._tracked_scale(track=True)
        result: Tensor = FusedWeight.apply(self.weight, run, s, source, clips)  # type: ignore[no-untyped-call]
        return result

    def _tracked_scale(self, track: bool) -> tuple[Tensor, Tensor | None]:
        """s and, when training moves it, the flat indices of the weights defining it (the
        fused functions route the gradient of s to them)."""
        if track and self.weight.requires_grad and torch.is_grad_enabled():
            s, source = self.mapper.scale_source(self.weight)
        else:
            s, source = self.mapper.scale(self.weight), None
        self._scale = s.detach()
        return s, source

    def _analog_weight(self, noise: InjectedNoise | None) -> Tensor:
        """Analog devices, hard or smooth: the differentiable curve (autograd)."""
        mapper = self.mapper
        s = mapper.scale(self.weight, track=self.mode.kind == "smooth")
        self._scale = s.detach()
        pairs = mapper.analog_pairs(self.weight / s)
        if noise is not None:
            normal, faults = self.noise_draw(noise)
            pairs = perturb(pairs, mapper.pair, noise.config.programming, normal, faults)
        return mapper.effective_from_pairs(pairs) * s

    def _smooth_weight(self, noise: InjectedNoise | None) -> Tensor:
        """Digital devices, annealed surrogate: one table look-up (noisy: of both devices)."""
        mapper = self.mapper
        combined, table = mapper.smooth_tables(self.mode.rho)
        sigma = 0.0 if noise is None else noise.config.programming
        normal, faults = (None, None) if noise is None else self.noise_draw(noise)
        if fused.enabled():
            if noise is None:
                return self._fused(lambda w, s: fused_smooth(w, s, combined), False)
            return self._fused(
                lambda w, s: fused_noisy(w, s, table, mapper, sigma, normal, faults), False
            )
        s, source = self._tracked_scale(track=True)
        if noise is None:
            smooth: Tensor = SmoothWeight.apply(self.weight, s, source, combined)  # type: ignore[no-untyped-call]
            return smooth
        result: Tensor = NoisySmoothWeight.apply(  # type: ignore[no-untyped-call]
            self.weight, s, source, table, mapper, sigma, normal, faults
        )
        return result

    def _hard_weight(self, noise: InjectedNoise | None) -> Tensor:
        """Digital hard weights (evaluation), or straight-through training through them."""
        mapper, ste = self.mapper, self.mode.kind == "ste"
        coding = mapper.coding
        clips = mapper.percentile < 100.0
        if ste and coding is not None and coding.kernel and fused.enabled():
            if noise is None:
                return self._fused(coding.hard_weight, clips)
            if coding.stairs is not None:
                sigma = noise.config.programming
                normal, faults = self.noise_draw(noise)
                return self._fused(
                    lambda w, s: fused_noisy_hard(w, s, mapper, sigma, normal, faults), clips
                )
        s, source = self._tracked_scale(track=ste)
        with torch.no_grad():
            if noise is None:
                hard = mapper.hard_weight(self.weight, s, compiled=ste)
            else:
                normal, faults = self.noise_draw(noise)
                pairs = mapper.nominal_pairs(self.weight / s)
                pairs = perturb(pairs, mapper.pair, noise.config.programming, normal, faults)
                hard = mapper.effective_from_pairs(pairs) * s
        if not ste:
            return hard
        through: Tensor = StraightThrough.apply(self.weight, hard, s, source, clips)  # type: ignore[no-untyped-call]
        return through

    def noise_draw(self, noise: InjectedNoise) -> tuple[Tensor | None, Faults | None]:
        """This layer's share of the batch's chip: N(0, 1) per device and stuck devices."""
        normal = None
        if noise.config.programming > 0.0:
            normal = noise.pool.normal((*self.weight.shape, 2))
        return normal, noise.faults(self.index)

    # --- forward ---------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        if self.mode.kind == "float":
            return F.linear(x, self.weight, self.bias)
        if self.calibrating and self.input_bits is not None:
            self.input_range.fill_(float(x.detach().max().clamp_min(1e-12)))
        dac = self.dac()
        if dac is not None:
            x = quantize(x, dac, self.mode)
        weight = self.effective_weight()
        if self.grid.splits_sums(self.output_bits):
            return tiled_linear(self, x, weight)
        y = F.linear(x, weight, self.bias) if self.output_bits is None else F.linear(x, weight)
        if self.noise is not None and self.read_factor > 0.0:
            y = y + self._read_noise(x, y.shape)
        if self.output_bits is not None:
            if self.calibrating:
                top = percentile(y.abs(), self.output_percentile)
                self.output_range.fill_(max(top, 1e-12))
            adc = self.adc()
            assert adc is not None
            y = quantize(y, adc, self.mode) + self.bias
        return y

    def _read_noise(self, x: Tensor, shape: torch.Size) -> Tensor:
        assert self.noise is not None
        with torch.no_grad():
            norm = x.detach().square().sum(dim=-1, keepdim=True).sqrt_()
            scale = self.current_scale().reshape(-1)
            std = norm * (scale * self.read_factor)
            return self.noise.pool.normal(tuple(shape)) * std


def set_mode(module: nn.Module, mode: Mode) -> None:
    """Put every hardware-aware submodule in ``mode``."""
    for child in module.modules():
        if isinstance(child, HardwareLinear | QuantizedActivation):
            child.mode = mode


__all__ = [
    "FLOAT",
    "HARD",
    "HardwareLinear",
    "InjectedNoise",
    "NotCalibratedError",
    "QuantizedActivation",
    "percentile",
    "set_mode",
]
