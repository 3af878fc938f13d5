"""The Monte Carlo forward's element-wise work between two GEMMs, as one compiled loop.

After each layer's GEMM, ``evaluation._forward`` adds read noise, runs the ADC, adds the
bias, runs the neuron and the next layer's DAC, casts to the compute precision and takes
the column norms the next layer's read noise needs. Eager, that is a dozen passes over
activations of (chips, features, images); here it is one function of tensors, compiled
by ``fused.compiled`` into a loop or two, with the eager arithmetic in the same order
(``surrogates.quantize_hard_``: multiply, add, floor, clamp, multiply, add), so both give
the same chips. Without a C compiler (or with ``HWSCORE_COMPILE=0``) it runs eagerly.

Quantizers are passed as ``numbers`` tensors, not floats: each calibration has its own
ranges, and a float argument would compile the loop again for every one.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from hwmodels import fused
from hwmodels.surrogates import Uniform


def numbers(q: Uniform) -> Tensor:
    """``q`` as (1 / step, 0.5 - lo / step, n - 1, step, lo), float32 as the eager
    in-place quantizer rounds its scalars."""
    return torch.tensor([1.0 / q.step, 0.5 - q.lo / q.step, q.n - 1, q.step, q.lo])


class Neuron(NamedTuple):
    """The hard neuron after a hidden layer (``evaluation._activate_``)."""

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


class After(NamedTuple):
    """What follows one layer's GEMM, fixed for a whole Monte Carlo run."""

    adc: Tensor | None
    """``numbers`` of its ADC, or None."""
    neuron: Neuron | None
    """None after the last layer (its logits)."""
    following: Next | None
    """None after the last layer."""


def _quantize(x: Tensor, q: Tensor) -> Tensor:
    """``surrogates.quantize_hard_`` out of place, on ``numbers(q)``."""
    code = torch.minimum((x * q[0] + q[1]).floor().clamp_min(0.0), q[2])
    return code * q[3] + q[4]


def _epilogue(
    y: Tensor, noise: Tensor | None, std: Tensor | None, bias: Tensor, after: After
) -> tuple[Tensor, Tensor | None]:
    """(next layer's input, its column norms or None) from a GEMM's output ``y``
    (float32 or bfloat16): y + noise std, ADC, + bias, neuron, next DAC, cast. The last
    layer (``neuron`` and ``following`` None) gives its logits, float32."""
    adc, neuron, following = after
    y = y.float()
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
    if following.dac is not None:
        y = _quantize(y, following.dac)
    operand = y.to(following.dtype)
    if not following.norms:
        return operand, None
    # The norm of what the next GEMM multiplies (rounded to bf16 when it runs in bf16).
    rounded = operand.float()
    return operand, rounded.square().sum(dim=-2, keepdim=True).sqrt()


_compiled_epilogue = fused.compiled(_epilogue)


def epilogue(
    y: Tensor, noise: Tensor | None, std: Tensor | None, bias: Tensor, after: After
) -> tuple[Tensor, Tensor | None]:
    """``_epilogue``, compiled where the fused kernels are on. Every dimension is marked
    dynamic: chip and image chunks and layer widths vary, and each would compile anew."""
    if not fused.enabled():
        return _epilogue(y, noise, std, bias, after)
    for tensor in (y, noise, std, bias):
        if tensor is not None:
            for dim, size in enumerate(tensor.shape):
                if size > 1:
                    torch._dynamo.maybe_mark_dynamic(tensor, dim)
    return _compiled_epilogue(y, noise, std, bias, after)


__all__ = ["After", "Neuron", "Next", "epilogue", "numbers"]
