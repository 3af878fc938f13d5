"""Hardware-aware torch modules: a crossbar layer and a quantized neuron.

``HardwareLinear`` replaces ``nn.Linear``: optional DAC on its inputs, weights stored as
device pairs (mapping.py), optional read noise and ADC on its output columns, a digital
bias. ``QuantizedActivation`` is the neuron: ReLU clipped at a_max (or sigmoid),
quantized uniformly to b_a bits.

Both run in one of four modes (surrogates.Mode): ``float`` (exactly the float network),
``hard`` (the hardware, for evaluation), ``ste`` and ``smooth`` (for training). The
weight transform runs once per forward call for the whole matrix, as one fused autograd
function per layer (its forward compiled where ``fused.py`` says so).

The weight scale s (a percentile of |w|, mapping.py) is part of the hardware function
w_eff = s q(w / s), so in training its gradient is kept: smooth mode differentiates
q(v) - v q'(v) exactly; straight-through mode uses Q(v) - v (as LSQ, Esser et al. 2020).
It reaches the weight that defines s, which lets training shrink an outlier that would
otherwise leave most weights on the lowest levels (annealed training, 1-bit devices on
MNIST: 63% without, 80% with; measured during development).

Ranges (a_max when not fixed, DAC and ADC ranges) are calibrated on training data by
``network.calibrate``: a hard forward pass in which each module sets its range from what
it sees (a_max and the ADC range at the activations' ``clip_percentile``, the DAC range
at the input maximum). Reading of the reference model: with bits null and no fixed clip
the neuron is a plain ReLU (float software does not clip), so the ideal profile is
bit-for-bit the float network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hwmodels import fused
from hwmodels.chips import (
    Faults,
    NormalPool,
    draw_faults,
    perturb,
    read_noise_factor,
    varies_per_chip,
)
from hwmodels.device import DevicePair
from hwmodels.mapping import WeightMapper, add_scale_gradient
from hwmodels.profile import ActivationConfig, HardwareProfile, NoiseConfig
from hwmodels.surrogates import FLOAT, HARD, Mode, PairTable, SmoothTable, Uniform, quantize
from hwmodels.tiling import TileGrid, tiled_linear

CLIP_SIGMAS = 6.0
"""Training skips the clipping of noisy conductances at 0 when Gmin is this many noise
standard deviations above it (probability below 1e-9 per device)."""


class NotCalibratedError(RuntimeError):
    """A range (a_max, DAC or ADC) is needed but was never calibrated."""


@dataclass
class InjectedNoise:
    """Noise drawn during training: programming noise and faults afresh for every batch,
    read noise per inference. Shared by all layers of a net.

    ``begin_batch`` starts a new draw; the faults of all layers are then drawn together
    (one generator call instead of one per layer and device).
    """

    config: NoiseConfig
    pool: NormalPool
    generator: torch.Generator
    weights: list[int]
    pair: DevicePair
    _faults: list[Faults | None] | None = None

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
            self._faults = draw_faults(self.weights, self.pair, self.config, self.generator)
        return self._faults[layer]


def percentile(x: Tensor, p: float) -> float:
    """The p-th percentile (nearest rank) of all elements of x."""
    flat = x.detach().reshape(-1)
    if flat.numel() == 0:
        raise ValueError("cannot take a percentile of an empty tensor")
    if p >= 100.0:
        return float(flat.max())
    rank = min(flat.numel(), max(1, math.ceil(p / 100.0 * flat.numel())))
    return float(flat.kthvalue(rank).values)


def _range_or_raise(value: Tensor, what: str) -> float:
    number = float(value)
    if math.isnan(number):
        raise NotCalibratedError(
            f"{what} is not calibrated: call hwmodels.network.calibrate(net, train_images) "
            "before running the hardware model"
        )
    return number


class _StraightThrough(torch.autograd.Function):
    """Forward: the hardware weight s Q(w / s). Backward: identity to w inside the
    clipping range (zero where |w| > s), and, LSQ-style, Q(v) - v to the scale s (Q(v)
    where clipped), routed to the weights that define s (``source``, or None to keep s
    fixed)."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        weight: Tensor,
        hard: Tensor,
        s: Tensor,
        source: Tensor | None,
        clips: bool,
    ) -> Tensor:
        inside = weight.abs() <= s if clips else torch.ones(0, dtype=torch.bool)
        ctx.save_for_backward(weight, hard, s, inside)
        ctx.source = source  # type: ignore[attr-defined]
        return hard.clone()

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor, None, None, None, None]:
        weight, hard, s, inside = ctx.saved_tensors  # type: ignore[attr-defined]
        source = ctx.source  # type: ignore[attr-defined]
        clips = inside.numel() > 0
        grad_weight = grad * inside if clips else grad
        if source is not None:
            linear = weight * inside if clips else weight
            grad_s = _scale_gradient(grad, hard, grad, linear, s)
            if not clips:
                grad_weight = grad_weight.clone()  # grad itself must stay as it is
            add_scale_gradient(grad_weight, grad_s, weight, source)
        return grad_weight, None, None, None, None


def _scale_gradient(
    grad: Tensor, result: Tensor, grad_weight: Tensor, weight: Tensor, s: Tensor
) -> Tensor:
    """dL/ds for w_eff = s q(w / s): sum of grad (q - v q') = (grad . w_eff - grad_w . w) / s,
    as dot products (no (out, in) temporaries), per layer () or per column (out, 1)."""
    if s.dim() == 0:
        dots = torch.dot(grad.reshape(-1), result.reshape(-1)) - torch.dot(
            grad_weight.reshape(-1), weight.reshape(-1)
        )
        return dots / s
    rows: Tensor = torch.linalg.vecdot(grad, result, dim=1)
    rows = rows - torch.linalg.vecdot(grad_weight, weight, dim=1)
    return rows.unsqueeze(1) / s


class _SmoothWeight(torch.autograd.Function):
    """w_eff = s q(w / s) with q the smooth surrogate of w_eff / s (one table look-up).

    Gradients: dw_eff/dw = q'(v); dw_eff/ds = q(v) - v q'(v), routed to the weights that
    define s (``source``; None keeps s fixed), so the scale, part of the hardware
    function, learns too. One autograd node per layer and step, scale included.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        weight: Tensor,
        s: Tensor,
        source: Tensor | None,
        table: SmoothTable,
    ) -> Tensor:
        values, slopes = table.lookup(weight, s)
        result = values.mul_(s)
        ctx.save_for_backward(weight, s, result, slopes)
        ctx.source = source  # type: ignore[attr-defined]
        ctx.inv_step = table.inv_step  # type: ignore[attr-defined]
        return result

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor, None, None, None]:
        weight, s, result, slopes = ctx.saved_tensors  # type: ignore[attr-defined]
        source = ctx.source  # type: ignore[attr-defined]
        grad_weight = torch.mul(grad, slopes).mul_(ctx.inv_step)  # type: ignore[attr-defined]
        if source is not None:
            grad_s = _scale_gradient(grad, result, grad_weight, weight, s)
            add_scale_gradient(grad_weight, grad_s, weight, source)
        return grad_weight, None, None, None


class _NoisySmoothWeight(torch.autograd.Function):
    """Smooth-surrogate weights with injected noise, fused: one packed look-up of both
    devices, noise, clipping at 0, faults, and w_eff = s * norm * (G+ - G-); backward is
    one multiply (zero for clipped or stuck devices)."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        weight: Tensor,
        s: Tensor,
        source: Tensor | None,
        table: PairTable,
        mapper: WeightMapper,
        sigma: float,
        normal: Tensor | None,
        faults: Faults | None,
    ) -> Tensor:
        if fused.enabled() and sigma > 0.0 and normal is not None:
            result, derivative = _fused_noisy(weight, s, table, mapper, sigma, normal, faults)
            ctx.save_for_backward(weight, s, result, derivative)
            ctx.source = source  # type: ignore[attr-defined]
            ctx.gain = table.inv_step * mapper.norm  # type: ignore[attr-defined]
            return result
        pairs, slopes = table.lookup(weight, s)
        if sigma > 0.0 and normal is not None:
            positive, negative = mapper.pair.positive, mapper.pair.negative
            pairs.addcmul_(normal, torch.tensor([sigma * positive.span, sigma * negative.span]))
            if min(positive.gmin, negative.gmin) < CLIP_SIGMAS * sigma * positive.span:
                pairs.clamp_min_(0.0)  # else clipping at 0 is a > 6 sigma event: skip it
                slopes = slopes * (pairs > 0)
        if faults is not None and faults.index.numel():
            slopes = slopes.contiguous()
            pairs.view(-1).index_put_((faults.index,), faults.value)
            slopes.view(-1).index_fill_(0, faults.index, 0.0)
        result = (pairs[..., 0] - pairs[..., 1]).mul_(s * mapper.norm)
        ctx.save_for_backward(weight, s, result, slopes[..., 0] - slopes[..., 1])
        ctx.source = source  # type: ignore[attr-defined]
        ctx.gain = table.inv_step * mapper.norm  # type: ignore[attr-defined]
        return result

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor, None, None, None, None, None, None, None]:
        weight, s, result, derivative = ctx.saved_tensors  # type: ignore[attr-defined]
        source = ctx.source  # type: ignore[attr-defined]
        grad_weight = torch.mul(grad, derivative).mul_(ctx.gain)  # type: ignore[attr-defined]
        if source is not None:
            grad_s = _scale_gradient(grad, result, grad_weight, weight, s)
            add_scale_gradient(grad_weight, grad_s, weight, source)
        return grad_weight, None, None, None, None, None, None, None


def _fused_noisy(
    weight: Tensor,
    s: Tensor,
    table: PairTable,
    mapper: WeightMapper,
    sigma: float,
    normal: Tensor,
    faults: Faults | None,
) -> tuple[Tensor, Tensor]:
    """``_NoisySmoothWeight``'s forward as one compiled kernel: (w_eff, derivative)."""
    positive, negative = mapper.pair.positive, mapper.pair.negative
    spread = torch.tensor([sigma * positive.span, sigma * negative.span])
    clip = min(positive.gmin, negative.gmin) < CLIP_SIGMAS * sigma * positive.span
    rows = table.packed.view(torch.float32).view(-1, 4)
    numbers = fused.grid(table.inv_step, -table.lo * table.inv_step, table.last, mapper.norm)
    weight = weight.detach()
    if faults is None or not faults.index.numel():
        return fused.noisy_smooth_weight(weight, s, rows, normal, spread, numbers, clip)
    stuck = torch.full((*weight.shape, 2), math.nan)
    stuck.view(-1).index_put_((faults.index,), faults.value)
    return fused.stuck_smooth_weight(weight, s, rows, normal, spread, numbers, clip, stuck)


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
        self.output_percentile = profile.activations.clip_percentile
        self.read_factor = read_noise_factor(mapper, profile.noise)
        self.grid = TileGrid.for_layer(profile.array, in_features, out_features)
        """How the weight matrix is cut into crossbar arrays (tiling.py)."""
        self.register_buffer("input_range", torch.tensor(math.nan))
        self.register_buffer("output_range", torch.tensor(math.nan))
        self.mode: Mode = HARD
        self.noise: InjectedNoise | None = None
        self.calibrating = False

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    # --- converters ------------------------------------------------------------------

    def dac(self) -> Uniform | None:
        if self.input_bits is None:
            return None
        return Uniform.over(
            0.0, _range_or_raise(self.input_range, "DAC input range"), self.input_bits
        )

    def adc(self) -> Uniform | None:
        if self.output_bits is None:
            return None
        top = _range_or_raise(self.output_range, "ADC output range")
        return Uniform.over(-top, top, self.output_bits)

    # --- weights ---------------------------------------------------------------------

    def scale(self) -> Tensor:
        """The weight scale s of the current weights (per layer () or per column (out, 1))."""
        return self.mapper.scale(self.weight)

    def effective_weight(self) -> Tensor:
        """W_eff in the current mode, with injected device noise if any (one draw)."""
        mapper, mode = self.mapper, self.mode
        noise = (
            self.noise if self.noise is not None and varies_per_chip(self.noise.config) else None
        )
        if mode.kind == "float" or (mapper.identity and noise is None):
            return self.weight
        digital = mapper.levels is not None
        track = mode.kind in ("smooth", "ste")
        if mode.kind != "ste" and not digital:  # analog hard or smooth: differentiable curve
            s = mapper.scale(self.weight, track=track)
            pairs = mapper.analog_pairs(self.weight / s)
            if noise is not None:
                normal, faults = self._noise_draw(noise)
                pairs = perturb(pairs, mapper.pair, noise.config.programming, normal, faults)
            return mapper.effective_from_pairs(pairs) * s
        # The fused functions below route the gradient of s to the weights defining it.
        source = None
        if track and self.weight.requires_grad and torch.is_grad_enabled():
            s, source = mapper.scale_source(self.weight)
        else:
            s = mapper.scale(self.weight)
        if mode.kind == "smooth":
            combined, table = mapper.smooth_tables(mode.rho)
            if noise is None:
                smooth: Tensor = _SmoothWeight.apply(self.weight, s, source, combined)  # type: ignore[no-untyped-call]
                return smooth
            normal, faults = self._noise_draw(noise)
            result: Tensor = _NoisySmoothWeight.apply(  # type: ignore[no-untyped-call]
                self.weight, s, source, table, mapper, noise.config.programming, normal, faults
            )
            return result
        with torch.no_grad():
            if noise is None:
                hard = mapper.hard_weight(self.weight, s, compiled=track)
            else:
                v = self.weight / s
                normal, faults = self._noise_draw(noise)
                pairs = perturb(
                    mapper.nominal_pairs(v), mapper.pair, noise.config.programming, normal, faults
                )
                hard = mapper.effective_from_pairs(pairs) * s
        if mode.kind == "hard":
            return hard
        clips = mapper.percentile < 100.0
        through: Tensor = _StraightThrough.apply(self.weight, hard, s, source, clips)  # type: ignore[no-untyped-call]
        return through

    def _noise_draw(self, noise: InjectedNoise) -> tuple[Tensor | None, Faults | None]:
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
            scale = self.mapper.scale(self.weight).reshape(-1)
            std = norm * (scale * self.read_factor)
            return self.noise.pool.normal(tuple(shape)) * std


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
        return Uniform.over(0.0, _range_or_raise(self.a_max, "activation clip a_max"), self.bits)

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
        return x.clamp(0.0, _range_or_raise(self.a_max, "activation clip a_max"))


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
