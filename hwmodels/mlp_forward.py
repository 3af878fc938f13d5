"""Monte Carlo forward of an MLP, many chips at once: the GEMMs and the stage between them.

``evaluation.chip_accuracies`` draws each chunk of chips and calls ``forward`` for every
chunk of images (``chip_forward`` instead for conv nets and tiled ADCs). ``prepare``
sets up what no chip changes: the first layer's operands (pixels in use, DAC, transposed,
in the compute precision, with their column norms; made once per call where the test
set is small enough to keep them) and each layer's converter and neuron settings.

After each layer's GEMM ``epilogue`` adds read noise, runs the ADC, adds the bias, runs
the neuron and the next layer's DAC, casts to the compute precision and takes the column
norms the next layer's read noise needs. Eager, that is a dozen passes over activations
of (chips, features, images); here it is one function of tensors, compiled by
``fused.compiled`` into a loop or two, with the eager arithmetic in the same order
(``surrogates.quantize_hard_``: multiply, add, floor, clamp, multiply, add), so both give
the same chips. Without a C compiler (or with ``HWSCORE_COMPILE=0``) it runs eagerly.
Compiling it, or loading it from the compile cache in a new process, costs as much as
the eager stage loses over millions of chip-images, so a process runs it eagerly until
its calls add up to ``COMPILE_AFTER`` chip-images (``compiles_stage``).

In int8 (int8.py) every GEMM multiplies integer codes: the first layer's are made by
``Operands``, each later layer's by the epilogue before it (``Next.codes``), which also
turns the int32 sums back into values with their rows' gain and offset.

Quantizers are passed as ``numbers`` tensors, not floats: each calibration has its own
ranges, and a float argument would compile the loop again for every one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from hwmodels import fused, int8
from hwmodels.activation import QuantizedActivation
from hwmodels.chips import NormalPool
from hwmodels.network import HardwareNet
from hwmodels.surrogates import Uniform, quantize_hard_

if TYPE_CHECKING:
    from hwmodels.evaluation import _Layer


def numbers(q: Uniform) -> Tensor:
    """``q`` as (1 / step, 0.5 - lo / step, n - 1, step, lo), float32 as the eager
    in-place quantizer rounds its scalars."""
    return torch.tensor([1.0 / q.step, 0.5 - q.lo / q.step, q.n - 1, q.step, q.lo])


class Neuron(NamedTuple):
    """The neuron after a hidden layer, as ``QuantizedActivation.forward`` in hard mode."""

    sigmoid: bool
    quantizer: Tensor | None
    """``numbers`` of its quantizer, or None."""
    clip: Tensor | None
    """A ReLU's upper clip a_max (no quantizer), or None for a plain ReLU."""


class Next(NamedTuple):
    """What the next layer takes: its DAC and whether its read noise needs column norms."""

    dac: Tensor | None
    norms: bool
    dtype: torch.dtype
    codes: Tensor | None = None
    """int8: ``numbers`` of the converter whose integer codes the next GEMM takes."""
    shift: int = 0
    """int8: subtracted from those codes (``int8.Grid.shift``)."""


class After(NamedTuple):
    """What follows one layer's GEMM, fixed for a whole Monte Carlo run."""

    adc: Tensor | None
    """``numbers`` of its ADC, or None."""
    neuron: Neuron | None
    """None after the last layer (its logits)."""
    following: Next | None
    """None after the last layer."""


def _code(x: Tensor, q: Tensor) -> Tensor:
    """The integer code (as float) ``surrogates.quantize_hard_`` gives x, on ``numbers(q)``."""
    return torch.minimum((x * q[0] + q[1]).floor().clamp_min(0.0), q[2])


def _quantize(x: Tensor, q: Tensor) -> Tensor:
    """``surrogates.quantize_hard_`` out of place, on ``numbers(q)``."""
    return _code(x, q) * q[3] + q[4]


def _epilogue(
    y: Tensor,
    noise: Tensor | None,
    std: Tensor | None,
    bias: Tensor,
    after: After,
    gain: Tensor | None = None,
    offset: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """(next layer's input, its column norms or None) from a GEMM's output ``y``
    (float32, bfloat16, or int32 with its ``int8.dequantize`` gain and offset): y + noise
    std, ADC, + bias, neuron, next DAC, cast. The last layer (``neuron`` and
    ``following`` None) gives its logits, float32."""
    adc, neuron, following = after
    y = y.float()
    if gain is not None:
        y = (y if offset is None else y + offset) * gain
    if noise is not None:
        assert std is not None
        y = y + noise * std
    if adc is not None:
        y = _quantize(y, adc)
    y = y + bias
    if neuron is not None:
        if neuron.sigmoid:
            y = torch.sigmoid(y)
        if neuron.quantizer is not None:
            y = _quantize(y, neuron.quantizer)
        elif neuron.clip is not None:
            y = torch.minimum(y.clamp_min(0.0), neuron.clip)
        elif not neuron.sigmoid:
            y = torch.relu(y)
    if following is None:
        return y, None
    if following.codes is not None:
        return _int8_operand(y, following)
    if following.dac is not None:
        y = _quantize(y, following.dac)
    operand = y.to(following.dtype)
    if not following.norms:
        return operand, None
    # The norm of what the next GEMM multiplies (rounded to bf16 when it runs in bf16).
    rounded = operand.float()
    return operand, rounded.square().sum(dim=-2, keepdim=True).sqrt()


def _int8_operand(y: Tensor, following: Next) -> tuple[Tensor, Tensor | None]:
    """The next GEMM's int8 operand (its converter's codes, shifted) and the column norms
    of the values those codes stand for (the converters start at 0: value = code step)."""
    assert following.codes is not None
    code = _code(y, following.codes)  # a quantized neuron's own codes come back unchanged
    operand = (code - following.shift).to(torch.int8)
    if not following.norms:
        return operand, None
    return operand, code.square().sum(dim=-2, keepdim=True).sqrt() * following.codes[3]


_compiled_epilogue = fused.compiled(_epilogue)

COMPILE_AFTER = 4_000_000
"""Chip-images (chips times test images) at which a process compiles the stage: about
the work over which the eager stage loses what compiling costs (bench/stage_compile.py;
README, "when the stage compiles"). Renting until the rent would reach the price of
buying (the ski-rental rule) never takes much more than twice the better choice's time,
whether a process goes on to score little (a short study, ``hwscore train``) or much (a
worker serving many jobs). 0: compile from the first call."""

_scored_eagerly = [0]
"""Chip-images this process has scored with the eager stage; ``COMPILE_AFTER`` once it
has compiled it."""


def compiles_stage(chip_images: int) -> bool:
    """Whether a Monte Carlo call scoring ``chip_images`` runs the compiled stage: where
    the fused kernels are on and this call's work and the eager work before it reach
    ``COMPILE_AFTER`` (a large call compiles at once); from then on every call does."""
    if not fused.enabled():
        return False
    if _scored_eagerly[0] + chip_images >= COMPILE_AFTER:
        _scored_eagerly[0] = COMPILE_AFTER
        return True
    _scored_eagerly[0] += chip_images
    return False


def epilogue(
    y: Tensor,
    noise: Tensor | None,
    std: Tensor | None,
    bias: Tensor,
    after: After,
    gain: Tensor | None = None,
    offset: Tensor | None = None,
    compiled: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """``_epilogue``, compiled if ``compiled``. Every dimension is marked dynamic: chip
    and image chunks and layer widths vary, and each would compile anew."""
    if not compiled:
        return _epilogue(y, noise, std, bias, after, gain, offset)
    for tensor in (y, noise, std, bias, gain, offset):
        if tensor is not None:
            for dim, size in enumerate(tensor.shape):
                if size > 1:
                    torch._dynamo.maybe_mark_dynamic(tensor, dim)
    return _compiled_epilogue(y, noise, std, bias, after, gain, offset)


KEPT_OPERAND_BYTES = 64 << 20
"""The first layer's operands of a whole test set are kept for every chip chunk up to
this size (MNIST's 10,000 test images: 29 MB); larger test sets are not copied whole but
made again, chunk by chunk, for every chunk of chips."""


class Operands:
    """The first layer's operand of each image chunk: the pixels in use, DAC, transposed
    to (features, images), in the compute precision (int8: the codes of ``grid``), with its
    column norms (None without read noise). Made on first use, and kept while the whole
    set fits KEPT_OPERAND_BYTES."""

    def __init__(
        self,
        images: Tensor,
        columns: Tensor | None,
        batch: int,
        dac: Uniform | None,
        dtype: torch.dtype,
        noisy: bool,
        grid: int8.Grid | None = None,
    ) -> None:
        self.images, self.columns, self.batch = images, columns, batch
        self.dac, self.dtype, self.noisy, self.grid = dac, dtype, noisy, grid
        width = images.shape[1] if columns is None else columns.numel()
        self.keep = images.shape[0] * width * 4 <= KEPT_OPERAND_BYTES
        self._kept: dict[int, tuple[Tensor, Tensor | None]] = {}

    def __getitem__(self, chunk: int) -> tuple[Tensor, Tensor | None]:
        if chunk in self._kept:
            return self._kept[chunk]
        x = self.images[chunk * self.batch : (chunk + 1) * self.batch]
        if self.columns is not None:
            x = x.index_select(1, self.columns)
        h = x.t().clone(memory_format=torch.contiguous_format)  # the DAC works in place
        if self.grid is not None:  # int8: the codes, and the values they stand for
            h = _code(h, self.grid.numbers)
            operand = (h - self.grid.shift).to(torch.int8)
            h = h * self.grid.step
        else:
            if self.dac is not None:
                quantize_hard_(h, self.dac)
            operand = h = h.to(self.dtype)
        norm = None
        if self.noisy:
            norm = h.float().square().sum(dim=0, keepdim=True).sqrt()
        if self.keep:
            self._kept[chunk] = (operand, norm)
        return operand, norm


class Prepared(NamedTuple):
    """A Monte Carlo run's work that no chip changes: the first layer's operands, and
    what follows each layer's GEMM."""

    inputs: Operands
    after: list[After]
    grids: list[int8.Grid] | None
    """int8: the codes each layer's input comes in; None in float precisions."""
    compiled: bool
    """The stage between GEMMs runs compiled (``compiles_stage``)."""


def prepare(
    net: HardwareNet,
    layers: list[_Layer],
    images: Tensor,
    columns: Tensor | None,
    batch: int,
    dtype: torch.dtype,
    noisy: bool,
    chips: int,
) -> Prepared:
    """``Prepared`` for ``chips`` chips on ``images`` cut into chunks of ``batch``
    (``columns``: the pixels in use, None for all; ``noisy``: read noise, so column norms
    are needed)."""
    grids = _int8_grids(net, layers, images) if dtype == torch.int8 else None
    first = None if grids is None else grids[0]
    inputs = Operands(images, columns, batch, layers[0].dac, dtype, noisy, first)
    neurons = net.neurons()
    after: list[After] = []
    for index, layer in enumerate(layers):
        adc = None if layer.adc is None else numbers(layer.adc)
        if index == len(layers) - 1:
            after.append(After(adc, None, None))
            continue
        dac = layers[index + 1].dac
        following = Next(None if dac is None else numbers(dac), noisy, dtype)
        if grids is not None:
            grid = grids[index + 1]
            following = following._replace(codes=grid.numbers, shift=grid.shift)
        after.append(After(adc, _neuron(neurons[index]), following))
    compiled = compiles_stage(chips * images.shape[0])
    return Prepared(inputs, after, grids, compiled)


PIXELS = Uniform.over(0.0, 1.0, 8)
"""The datasets' images: 8-bit pixels scaled to [0, 1]."""


def _int8_grids(net: HardwareNet, layers: list[_Layer], images: Tensor) -> list[int8.Grid]:
    """The codes of each layer's input: its DAC's, else the neuron's before it, else
    (first layer) the 8-bit pixels; ValueError where an input is not on such a grid."""
    neurons = net.neurons()
    grids = []
    for index, layer in enumerate(layers):
        q = layer.dac
        if q is None and index == 0:
            pixels = images * (PIXELS.n - 1)
            if bool(((pixels - pixels.round()).abs() > 1e-3).any()) or bool((images < 0).any()):
                raise ValueError(
                    "compute_dtype int8 needs 8-bit images or a DAC on the first layer "
                    "(profile.converters.input_bits): use float32 or bfloat16"
                )
            q = PIXELS
        elif q is None:
            q = neurons[index - 1].quantizer()
        if q is None:
            raise ValueError(
                "compute_dtype int8 needs every layer's input quantized: set "
                "profile.activations.bits or profile.converters.input_bits, or use float32"
            )
        grids.append(int8.Grid(numbers(q), q.step, int8.shift_for(q)))
    return grids


def _neuron(neuron: QuantizedActivation) -> Neuron:
    """A hidden layer's neuron in hard mode, as ``QuantizedActivation.forward``."""
    quantizer = neuron.quantizer()
    clip = None
    if quantizer is None and neuron.function == "relu" and neuron.needs_range:
        clip = torch.tensor(float(neuron.a_max.detach()))
    coded = None if quantizer is None else numbers(quantizer)
    return Neuron(neuron.function == "sigmoid", coded, clip)


def forward(
    layers: list[_Layer],
    weights: Sequence[Tensor | int8.IntWeights],
    prepared: Prepared,
    chunk: int,
    chips: int,
    pool: NormalPool | None,
) -> Tensor:
    """Logits as (chips or 1, images, classes) for one chunk of chips and images.

    Activations are kept as (chips, features, images), so every layer is W @ h with no
    transposes (GEMM kernels are slow on two transposed operands; see the README); the
    logits come back as a transposed view. Between GEMMs: ``epilogue``; in int8 the GEMMs
    are ``int8.matmul`` and the epilogue dequantizes their int32 sums.
    """
    h, norm = prepared.inputs[chunk]
    for index, layer in enumerate(layers):
        w = weights[index]
        gain = offset = None
        if isinstance(w, int8.IntWeights):
            assert prepared.grids is not None
            gain, offset = int8.dequantize(w, prepared.grids[index])
            w = w.codes
        y = gemm(w, h)
        noise = std = None
        if pool is not None:
            assert norm is not None
            std = _read_std(norm, layer)
            noise = pool.normal((chips, y.shape[-2], y.shape[-1]))
        bias = layer.bias.view(-1, 1)
        after = prepared.after[index]
        h, norm = epilogue(y, noise, std, bias, after, gain, offset, prepared.compiled)
    return h.transpose(-1, -2)


def gemm(w: Tensor, h: Tensor) -> Tensor:
    """W @ h for chips' weights (chips, out, in) or shared ones (out, in) and inputs (in,
    images) or per chip (chips, in, images): one GEMM over the stacked weights where the
    inputs are shared; int8 operands give exact int32 sums (``int8.matmul``)."""
    if w.dtype == torch.int8:
        return int8.matmul(w, h)
    if w.dim() == 3 and h.dim() == 2:
        return (w.reshape(-1, w.shape[-1]) @ h).view(w.shape[0], w.shape[1], -1)
    return torch.matmul(w, h)


def _read_std(norm: Tensor, layer: _Layer) -> Tensor:
    """sigma_r * kappa * sqrt(1 + (1 - a)^2) * s * ||x||, broadcast over the outputs."""
    scale = layer.scale.reshape(-1) * layer.module.read_factor
    std = norm * scale.reshape(-1, 1)  # (..., out or 1, images): per column or per layer
    if layer.read_gain is not None:
        std = std * layer.read_gain
    return std


__all__ = ["After", "Neuron", "Next", "Prepared", "epilogue", "forward", "numbers", "prepare"]
