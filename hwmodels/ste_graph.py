"""Straight-through training of a whole hardware MLP as one compiled graph.

In straight-through training the per-layer path (layers.py) runs a dozen small autograd
nodes per layer and step: the weight scale, the fused weight kernel and its backward,
the converters, the neuron. At MLP sizes their launches and Python overhead cost more
than the GEMMs. Here the whole forward pass (weight scale, stair look-up, programming
noise and stuck devices, DAC, ADC, read noise, learned clips) is one function of
tensors, written with straight-through identities (``u + (Q(u) - u).detach()``) so that
autograd derives the gradients of ``StraightThrough`` and ``_RoundThrough``: identity
to the weights, Q(v) - v to the scale s = max |w| (which autograd routes to the largest
weight), and LSQ's gradient to a learned clip. torch.compile (AOTAutograd) turns forward
and backward into a few fused loops around the GEMMs. Random draws are made outside
the graph, in the order the per-layer path makes them, so both paths see the same chip.

The per-layer path stays the reference (tests compare the two, values and gradients)
and runs everything this one does not take (``takes``): annealed surrogates, analog
devices, percentile or per-column scales, more than ``fused.MAX_STAIRS`` thresholds,
ADCs on tiled partial sums, sigmoid neurons, CNNs, and any process where compiling is
off or has failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hwmodels import fused
from hwmodels.activation import MIN_CLIP, QuantizedActivation
from hwmodels.chips import varies_per_chip
from hwmodels.layers import HardwareLinear
from hwmodels.weight_scale import MIN_SCALE

if TYPE_CHECKING:
    from hwmodels.network import HardwareMLP


_ZERO = torch.zeros(())
"""The lower end of the DAC's and the neurons' ranges."""


class _Converter(NamedTuple):
    """A uniform quantizer over [lo, lo + span] with ``levels`` levels (0: clip only)."""

    lo: Tensor
    span: Tensor
    levels: int


class _Layer(NamedTuple):
    """One crossbar layer's tensors for this step (None: that part is off)."""

    weight: Tensor
    bias: Tensor
    keys: Tensor
    codes: Tensor
    """w_eff / s of each code, or (G+, G-) of each code on a noisy chip."""
    numbers: Tensor
    dac: _Converter | None
    adc: _Converter | None
    programming: Tensor | None
    """N(0, 1) per device, (out, in, 2)."""
    spread: Tensor | None
    """sigma span+, sigma span-, norm (mapping.noise_spread)."""
    stuck_at: Tensor | None
    """Flat indices of the stuck devices in the (out, in, 2) device array."""
    stuck_value: Tensor | None
    """The conductance each of them is stuck at."""
    read: Tensor | None
    """N(0, 1) per output, scaled by s ||x|| read_factor."""
    read_factor: float


def takes(net: HardwareMLP) -> bool:
    """True when this step of ``net`` can run as one compiled graph."""
    if not (fused.enabled() and torch.is_grad_enabled() and net.training):
        return False
    return all(_takes_layer(layer) for layer in net.hardware_layers()) and all(
        _takes_neuron(neuron) for neuron in net.neurons()
    )


def _takes_layer(layer: HardwareLinear) -> bool:
    mapper = layer.mapper
    coding = mapper.coding
    return (
        layer.mode.kind == "ste"
        and not layer.calibrating
        and coding is not None
        and coding.stairs is not None
        and mapper.scaler.is_max
        and not layer.grid.splits_sums(layer.output_bits)
    )


def _takes_neuron(neuron: QuantizedActivation) -> bool:
    return neuron.mode.kind == "ste" and not neuron.calibrating and neuron.function == "relu"


def forward(net: HardwareMLP, x: Tensor) -> Tensor:
    """The logits of ``net`` (callers check ``takes``), differentiable as the per-layer
    path is in straight-through mode."""
    layers = [_layer_inputs(layer, x.shape[0]) for layer in net.hardware_layers()]
    neurons = [_neuron_inputs(neuron) for neuron in net.neurons()]
    torch._dynamo.maybe_mark_dynamic(x, 0)  # the last, smaller batch compiles nothing new
    logits: Tensor = _graph(x, layers, neurons)
    return logits


def _layer_inputs(layer: HardwareLinear, batch: int) -> _Layer:
    """The layer's tensors, drawing its noise as ``HardwareLinear.forward`` would."""
    coding = layer.mapper.coding
    assert coding is not None and coding.stairs is not None
    keys, codes, numbers = coding.stairs
    noise = layer.noise
    programming = spread = stuck_at = stuck_value = read = None
    if noise is not None and varies_per_chip(noise.config):
        codes = coding.code_levels
        spread = layer.mapper.noise_spread(noise.config.programming)[0]
        programming, faults = layer.noise_draw(noise)
        if faults is not None and faults.index.numel():
            stuck_at, stuck_value = faults.index, faults.value
            torch._dynamo.maybe_mark_dynamic(stuck_at, 0)  # a new count every batch
            torch._dynamo.maybe_mark_dynamic(stuck_value, 0)
    dac = adc = None
    if layer.input_bits is not None:
        dac = _Converter(_ZERO, layer.input_range, 2**layer.input_bits)
    if layer.output_bits is not None:
        top = layer.output_range
        adc = _Converter(-top, 2.0 * top, 2**layer.output_bits)
    if noise is not None and layer.read_factor > 0.0:
        read = noise.pool.normal((batch, layer.out_features))
    return _Layer(
        layer.weight,
        layer.bias,
        keys,
        codes,
        numbers,
        dac,
        adc,
        programming,
        spread,
        stuck_at,
        stuck_value,
        read,
        layer.read_factor,
    )


def _neuron_inputs(neuron: QuantizedActivation) -> _Converter | None:
    """The neuron's quantizer over [0, a_max] (a learned clip keeps its gradient; the
    graph keeps it at MIN_CLIP or above), or None for a plain ReLU."""
    if neuron.bits is None and not neuron.needs_range:
        return None
    levels = 0 if neuron.bits is None else 2**neuron.bits
    return _Converter(_ZERO, neuron.a_max, levels)


@fused.compiled
def _graph(x: Tensor, layers: list[_Layer], neurons: list[_Converter | None]) -> Tensor:
    """The forward pass of ``HardwareMLP`` in straight-through mode, as tensors only."""
    for index, layer in enumerate(layers):
        if layer.dac is not None:
            x = _quantize(x, *layer.dac)
        weight, s = _weight(layer)
        y = F.linear(x, weight, layer.bias if layer.adc is None else None)
        if layer.read is not None:
            with torch.no_grad():
                norm = x.square().sum(dim=-1, keepdim=True).sqrt()
            y = y + layer.read * (norm * (s.detach() * layer.read_factor))
        if layer.adc is not None:
            y = _quantize(y, *layer.adc) + layer.bias
        x = y
        if index < len(neurons):
            neuron = neurons[index]
            if neuron is None:
                x = torch.relu(x)
            else:
                x = _quantize(x, neuron.lo, neuron.span.clamp_min(MIN_CLIP), neuron.levels)
    return x


def _weight(layer: _Layer) -> tuple[Tensor, Tensor]:
    """(s Q(w / s), s): identity to w and Q(v) - v to s = max |w| backward."""
    s = layer.weight.abs().amax().clamp_min(MIN_SCALE)
    v = layer.weight / s
    with torch.no_grad():
        unit = v.clamp(-1.0, 1.0)
        if layer.spread is None:
            hard = fused.stair_unit(unit, layer.keys, layer.codes, layer.numbers)
        else:
            hard = fused.noisy_stair_unit(
                unit,
                layer.keys,
                layer.codes,
                layer.numbers,
                layer.programming,
                layer.spread,
                None,
            )
            if layer.stuck_at is not None:
                hard = _with_stuck_devices(hard, unit, layer)
        step = hard - v
    return s * (v + step), s


def _with_stuck_devices(hard: Tensor, unit: Tensor, layer: _Layer) -> Tensor:
    """``hard`` (Q(v) of the programmed chip) with its stuck devices: each one's
    difference from its programmed conductance, in weight units, added to its weight.
    About one device in a hundred is stuck, so this sparse correction reads far less
    than a dense (out, in, 2) array of stuck values would."""
    assert layer.stuck_at is not None and layer.stuck_value is not None
    assert layer.spread is not None
    weight_at, side = layer.stuck_at // 2, layer.stuck_at % 2
    key = fused.stair_key(unit.reshape(-1)[weight_at], layer.numbers)
    code = (key.unsqueeze(-1) >= layer.keys).sum(dim=-1)
    programmed = layer.codes.reshape(-1)[2 * code + side]
    if layer.programming is not None:
        normal = layer.programming.reshape(-1)[layer.stuck_at]
        programmed = (programmed + normal * layer.spread[side]).clamp_min(0.0)
    sign = 1 - 2 * side  # G+ adds to the weight, G- subtracts
    delta = (layer.stuck_value - programmed) * sign * layer.spread[2]
    return hard.reshape(-1).index_add(0, weight_at, delta).view_as(hard)


def _quantize(x: Tensor, lo: Tensor, span: Tensor, levels: int) -> Tensor:
    """lo + span Q((x - lo) / span) with Q rounding to ``levels`` levels on [0, 1] (ties
    up), and the straight-through gradient: 1 to x inside the range, 0 outside, and to a
    span that requires it (a learned clip) Q(u) - u inside, 1 above."""
    u = ((x - lo) / span).clamp(0.0, 1.0)
    if levels:
        top = levels - 1
        with torch.no_grad():
            step = (u * top + 0.5).floor().clamp(0, top) / top - u
        u = u + step
    return lo + span * u
