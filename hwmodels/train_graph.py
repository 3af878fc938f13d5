"""Hardware-aware training of a whole hardware MLP as one compiled graph.

In hardware-aware training the per-layer path (layers.py) runs a dozen small autograd
nodes per layer and step: the weight scale, the fused weight kernel and its backward,
the converters, the neuron. At MLP sizes their launches and Python overhead cost more
than the GEMMs. Here the whole forward pass (weight scale, weight look-up, programming
noise and stuck devices, DAC, ADC, read noise, learned clips) is one function of
tensors whose gradients autograd derives from two identities:

- straight-through (``ste``): ``u + (Q(u) - u).detach()``, as ``StraightThrough`` and
  ``_RoundThrough``: identity to the weights, Q(v) - v to the scale s = max |w| (which
  autograd routes to the largest weight), and LSQ's gradient to a learned clip;
- smooth surrogates (``smooth``, the annealed stages): ``g + g' (z - z.detach())`` with
  g and g' read from the surrogate's table, as ``SmoothWeight`` and ``_Interpolate``:
  g' to the weights, g(v) - v g'(v) to the scale.

torch.compile (AOTAutograd) turns forward and backward into a few fused loops around
the GEMMs. Random draws are made outside the graph, in the order the per-layer path
makes them, so both paths see the same chip.

The per-layer path stays the reference (tests compare the two, values and gradients)
and runs everything this one does not take (``takes``): analog devices, percentile or
per-column scales, straight-through weights with more than ``fused.MAX_STAIRS``
thresholds, ADCs on tiled partial sums, sigmoid neurons, CNNs, and any process where
compiling is off or has failed.
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
from hwmodels.surrogates import Mode, Uniform, unit_table
from hwmodels.weight_scale import MIN_SCALE

if TYPE_CHECKING:
    from hwmodels.network import HardwareMLP


KINDS = ("ste", "smooth")
"""The training modes the graph runs (every layer and neuron in the same one)."""

_ZERO = torch.zeros(())
"""The lower end of the DAC's and the neurons' ranges."""


class _Table(NamedTuple):
    """A smooth surrogate's interpolation table (surrogates.SmoothTable or PairTable)."""

    rows: Tensor
    """(value, slope per grid step), or a device pair's (G+, G-, slope+, slope-)."""
    numbers: Tensor
    """Grid position of z: z gain + offset, clamped to [0, last]."""


class _Converter(NamedTuple):
    """A uniform quantizer over [lo, lo + span] with ``levels`` levels (0: clip only)."""

    lo: Tensor
    span: Tensor
    levels: int
    smooth: _Table | None
    """Smooth mode: the surrogate's table in level units, and its numbers for x (gain,
    offset, last, step, lo) rounded from double precision once, as the per-layer path
    rounds them (a sharp surrogate would amplify any other rounding)."""
    learned: bool
    """``span`` is a learned clip: x / span is quantized over [0, 1], then scaled back."""


class _Layer(NamedTuple):
    """One crossbar layer's tensors for this step (None: that part is off)."""

    weight: Tensor
    bias: Tensor
    levels: Tensor
    """Straight-through: w_eff / s of each code, or (G+, G-) of each code on a noisy chip;
    smooth: the surrogate table's rows (of w_eff / s, or of the pair on a noisy chip)."""
    numbers: Tensor
    keys: Tensor | None
    """Straight-through: the stair thresholds; None for a smooth surrogate."""
    clip: bool
    """Smooth surrogate of a noisy chip: clip conductances at 0 (mapping.noise_spread)."""
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
    layers = net.hardware_layers()
    kind = layers[0].mode.kind if layers else "float"
    return (
        kind in KINDS
        and all(_takes_layer(layer, kind) for layer in layers)
        and all(_takes_neuron(neuron, kind) for neuron in net.neurons())
    )


def _takes_layer(layer: HardwareLinear, kind: str) -> bool:
    mapper = layer.mapper
    if (
        layer.mode.kind != kind
        or layer.calibrating
        or not mapper.scaler.is_max
        or layer.grid.splits_sums(layer.output_bits)
    ):
        return False
    if kind == "smooth":
        return mapper.levels is not None  # analog devices run their curve per layer
    coding = mapper.coding
    return coding is not None and coding.stairs is not None


def _takes_neuron(neuron: QuantizedActivation, kind: str) -> bool:
    return neuron.mode.kind == kind and not neuron.calibrating and neuron.function == "relu"


def forward(net: HardwareMLP, x: Tensor) -> Tensor:
    """The logits of ``net`` (callers check ``takes``), differentiable as the per-layer
    path is in the same mode."""
    layers = [_layer_inputs(layer, x.shape[0]) for layer in net.hardware_layers()]
    neurons = [_neuron_inputs(neuron) for neuron in net.neurons()]
    torch._dynamo.maybe_mark_dynamic(x, 0)  # the last, smaller batch compiles nothing new
    logits: Tensor = _graph(x, layers, neurons)
    return logits


def _layer_inputs(layer: HardwareLinear, batch: int) -> _Layer:
    """The layer's tensors, drawing its noise as ``HardwareLinear.forward`` would."""
    noise = layer.noise
    noisy = noise is not None and varies_per_chip(noise.config)
    programming = spread = stuck_at = stuck_value = read = None
    clip = False
    if noise is not None and noisy:
        spread, clip = layer.mapper.noise_spread(noise.config.programming)
        programming, faults = layer.noise_draw(noise)
        if faults is not None and faults.index.numel():
            stuck_at, stuck_value = faults.index, faults.value
            _dynamic(stuck_at, stuck_value)  # a new count every batch
    levels, numbers, keys = _weight_table(layer, noisy)
    dac = adc = None
    if layer.input_bits is not None:
        dac = _converter(_ZERO, layer.input_range, layer.input_bits, layer.mode, False)
    if layer.output_bits is not None:
        top = layer.output_range
        adc = _converter(-top, 2.0 * top, layer.output_bits, layer.mode, False)
    if noise is not None and layer.read_factor > 0.0:
        read = noise.pool.normal((batch, layer.out_features))
        _dynamic(read)  # as x: a smaller last batch compiles nothing new
    return _Layer(
        layer.weight,
        layer.bias,
        levels,
        numbers,
        keys,
        clip,
        dac,
        adc,
        programming,
        spread,
        stuck_at,
        stuck_value,
        read,
        layer.read_factor,
    )


def _weight_table(layer: HardwareLinear, noisy: bool) -> tuple[Tensor, Tensor, Tensor | None]:
    """(levels, numbers, keys) of ``_Layer`` for the layer's mode."""
    mode = layer.mode
    if mode.kind == "smooth":
        combined, pairs = layer.mapper.smooth_tables(mode.rho)
        rows, numbers = (pairs.rows, pairs.numbers) if noisy else (combined.rows, combined.numbers)
        _dynamic(rows)  # each annealing stage has its own table size
        return rows, numbers, None
    coding = layer.mapper.coding
    assert coding is not None and coding.stairs is not None
    keys, codes, numbers = coding.stairs
    return (coding.code_levels if noisy else codes), numbers, keys


def _converter(lo: Tensor, span: Tensor, bits: int | None, mode: Mode, learned: bool) -> _Converter:
    """A converter over [lo, lo + span] with ``bits`` bits (None: clip only) in ``mode``."""
    levels = 0 if bits is None else 2**bits
    if mode.kind != "smooth" or bits is None:
        return _Converter(lo, span, levels, None, learned)
    table = unit_table(levels, mode.rho)
    _dynamic(table.rows)
    if learned:
        quantizer = Uniform.over(0.0, 1.0, bits)
    else:
        quantizer = Uniform.over(float(lo), float(lo + span), bits)
    gain = table.inv_step / quantizer.step
    offset = -(quantizer.lo / quantizer.step + table.lo) * table.inv_step
    numbers = [gain, offset, table.last, quantizer.step, quantizer.lo]
    smooth = _Table(table.rows, torch.tensor(numbers, dtype=torch.float32))
    return _Converter(lo, span, levels, smooth, learned)


def _dynamic(*tensors: Tensor) -> None:
    """Compile for any length of these tensors' first dimension."""
    for tensor in tensors:
        torch._dynamo.maybe_mark_dynamic(tensor, 0)


def _neuron_inputs(neuron: QuantizedActivation) -> _Converter | None:
    """The neuron's quantizer over [0, a_max] (a learned clip keeps its gradient; the
    graph keeps it at MIN_CLIP or above), or None for a plain ReLU."""
    if neuron.bits is None and not neuron.needs_range:
        return None
    return _converter(_ZERO, neuron.a_max, neuron.bits, neuron.mode, neuron.learns_clip)


@fused.compiled
def _graph(x: Tensor, layers: list[_Layer], neurons: list[_Converter | None]) -> Tensor:
    """The forward pass of ``HardwareMLP`` in straight-through or smooth mode, as tensors."""
    for index, layer in enumerate(layers):
        if layer.dac is not None:
            x = _convert(x, layer.dac, layer.dac.span)
        weight, s = _weight(layer)
        y = F.linear(x, weight, layer.bias if layer.adc is None else None)
        if layer.read is not None:
            with torch.no_grad():
                norm = x.square().sum(dim=-1, keepdim=True).sqrt()
            y = y + layer.read * (norm * (s.detach() * layer.read_factor))
        if layer.adc is not None:
            y = _convert(y, layer.adc, layer.adc.span) + layer.bias
        x = y
        if index < len(neurons):
            neuron = neurons[index]
            if neuron is None:
                x = torch.relu(x)
            else:
                x = _convert(x, neuron, neuron.span.clamp_min(MIN_CLIP))
    return x


def _weight(layer: _Layer) -> tuple[Tensor, Tensor]:
    """(s q(w / s), s) with s = max |w|: straight-through (identity to w and Q(v) - v to
    s backward) or smooth (g'(v) to w and g(v) - v g'(v) to s)."""
    s = layer.weight.abs().amax().clamp_min(MIN_SCALE)
    v = layer.weight / s
    if layer.keys is None:
        with torch.no_grad():  # the grid position as the per-layer kernels compute it
            position = layer.weight * (layer.numbers[0] / s) + layer.numbers[1]
            if layer.spread is None:
                value, slope = _lookup(position, _Table(layer.levels, layer.numbers))
            else:
                value, slope = _noisy_surrogate(position, layer)
        factor = s if layer.spread is None else s * layer.spread[2]
        return (value + slope * (v - v.detach())) * factor, s
    with torch.no_grad():
        unit = v.clamp(-1.0, 1.0)
        if layer.spread is None:
            hard = fused.stair_unit(unit, layer.keys, layer.levels, layer.numbers)
        else:
            hard = fused.noisy_stair_unit(
                unit,
                layer.keys,
                layer.levels,
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
    assert layer.spread is not None and layer.keys is not None
    weight_at, side = layer.stuck_at // 2, layer.stuck_at % 2
    key = fused.stair_key(unit.reshape(-1)[weight_at], layer.numbers)
    code = (key.unsqueeze(-1) >= layer.keys).sum(dim=-1)
    programmed = layer.levels.reshape(-1)[2 * code + side]
    if layer.programming is not None:
        normal = layer.programming.reshape(-1)[layer.stuck_at]
        programmed = (programmed + normal * layer.spread[side]).clamp_min(0.0)
    sign = 1 - 2 * side  # G+ adds to the weight, G- subtracts
    delta = (layer.stuck_value - programmed) * sign * layer.spread[2]
    return hard.reshape(-1).index_add(0, weight_at, delta).view_as(hard)


def _noisy_surrogate(position: Tensor, layer: _Layer) -> tuple[Tensor, Tensor]:
    """(G+ - G-, its derivative in v) at each grid position of a noisy chip's surrogate
    pair: the programmed devices, each with its noise, clipped at 0 if it can matter,
    stuck ones fixed (as ``fused.noisy_smooth_weight``)."""
    normal = layer.programming
    g_p, g_n, slope_p, slope_n = _pair(position, normal, layer)
    value = g_p - g_n
    slope = (slope_p - slope_n) * layer.numbers[0]
    if layer.stuck_at is None:
        return value, slope
    assert layer.stuck_value is not None
    # The stuck devices as a sparse correction, as in _with_stuck_devices.
    weight_at, side = layer.stuck_at // 2, layer.stuck_at % 2
    normal_at = None if normal is None else normal.reshape(-1, 2)[weight_at]
    g_p, g_n, slope_p, slope_n = _pair(position.reshape(-1)[weight_at], normal_at, layer)
    first = side == 0
    sign = 1 - 2 * side  # G+ adds to the weight, G- subtracts
    g_delta = (layer.stuck_value - torch.where(first, g_p, g_n)) * sign
    slope_delta = torch.where(first, slope_p, slope_n) * (-sign * layer.numbers[0])
    value = value.reshape(-1).index_add(0, weight_at, g_delta).view_as(value)
    slope = slope.reshape(-1).index_add(0, weight_at, slope_delta).view_as(slope)
    return value, slope


def _pair(
    position: Tensor, normal: Tensor | None, layer: _Layer
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(G+, G-, slope+, slope-) per grid step of the programmed pair at each grid
    position, with programming noise (``normal``: (*position.shape, 2)) and clipping at 0."""
    assert layer.spread is not None
    cell, fraction = _cell(position, layer.numbers)
    return fused.noisy_pair(cell, fraction, layer.levels, normal, layer.spread, layer.clip)


def _cell(position: Tensor, numbers: Tensor) -> tuple[Tensor, Tensor]:
    """Table row of a grid position (clamped to the table) and the fraction within it."""
    position = torch.minimum(position.clamp_min(0.0), numbers[2])
    cell = position.to(torch.int32)
    return cell.long(), position - cell


def _lookup(position: Tensor, table: _Table) -> tuple[Tensor, Tensor]:
    """(g, g') at each grid position of a (value, slope) table, g' per unit of z (zero
    beyond the table's ends, whose cells are flat)."""
    cell, fraction = _cell(position, table.numbers)
    slope = table.rows[cell, 1]
    return table.rows[cell, 0] + fraction * slope, slope * table.numbers[0]


def _convert(x: Tensor, converter: _Converter, span: Tensor) -> Tensor:
    """The converter over [lo, lo + span], rounding or smooth."""
    smooth = converter.smooth
    if smooth is None:
        return _quantize(x, converter.lo, span, converter.levels)
    if converter.learned:
        return _smooth_quantize(x / span, smooth) * span
    return _smooth_quantize(x, smooth)


def _smooth_quantize(x: Tensor, table: _Table) -> Tensor:
    """lo + step g(x gain + offset) (``table.numbers``: gain, offset, last, step, lo),
    with gradient step g' gain to x, as ``surrogates.quantize_smooth``."""
    numbers = table.numbers
    with torch.no_grad():
        value, slope = _lookup(x * numbers[0] + numbers[1], table)
    return (value + slope * (x - x.detach())) * numbers[3] + numbers[4]


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
