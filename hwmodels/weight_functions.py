"""The weight transform's autograd functions: one node per layer and training step.

Each computes w_eff = s q(w / s) for the whole matrix in its forward pass and routes the
gradient of the scale s (part of the hardware function) back to the weights that define
it (``source``; None keeps s fixed), as LSQ does (Esser et al. 2020).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from hwmodels import fused
from hwmodels.chips import Faults
from hwmodels.mapping import CLIP_SIGMAS, WeightMapper, add_scale_gradient
from hwmodels.surrogates import PairTable, SmoothTable


class StraightThrough(torch.autograd.Function):
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


def _add_scale_gradient(
    grad: Tensor,
    result: Tensor,
    grad_weight: Tensor,
    weight: Tensor,
    s: Tensor,
    source: Tensor | None,
) -> None:
    """Add dL/ds to grad_weight (in place) at the weights defining s, if s is tracked."""
    if source is not None:
        grad_s = _scale_gradient(grad, result, grad_weight, weight, s)
        add_scale_gradient(grad_weight, grad_s, weight, source)


class SmoothWeight(torch.autograd.Function):
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
        _add_scale_gradient(grad, result, grad_weight, weight, s, source)
        return grad_weight, None, None, None


class NoisySmoothWeight(torch.autograd.Function):
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
        _add_scale_gradient(grad, result, grad_weight, weight, s, source)
        return grad_weight, None, None, None, None, None, None, None


class FusedWeight(torch.autograd.Function):
    """A weight transform whose forward is one compiled kernel (fused.py: look-up, curve,
    pair, noise, faults), with one autograd node per layer and step.

    ``run(weight, s)`` gives a ``fused.Transform``: w_eff and, for smooth surrogates, the
    derivative per grid step (None: straight-through). Backward is eager (dot products
    and one multiply are faster in ATen than generated code here): the derivative (or
    identity inside the clipping range), plus the scale's gradient routed to the weights
    that define s (``source``, None keeps s fixed), as in the eager functions above.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        weight: Tensor,
        run: Callable[[Tensor, Tensor], fused.Transform],
        s: Tensor,
        source: Tensor | None,
        clips: bool,
    ) -> Tensor:
        out = run(weight.detach(), s)
        derivative = out.derivative
        if derivative is None:
            derivative = torch.ones(0)
            inside = weight.abs() <= s if clips else torch.ones(0, dtype=torch.bool)
        else:
            inside = torch.ones(0, dtype=torch.bool)
        ctx.save_for_backward(weight, out.result, s, inside, derivative)
        ctx.source = source  # type: ignore[attr-defined]
        ctx.gain = out.gain  # type: ignore[attr-defined]
        return out.result

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor, None, None, None, None]:
        weight, result, s, inside, derivative = ctx.saved_tensors  # type: ignore[attr-defined]
        source = ctx.source  # type: ignore[attr-defined]
        if derivative.numel():
            grad_weight = torch.mul(grad, derivative).mul_(ctx.gain)  # type: ignore[attr-defined]
        elif inside.numel():
            grad_weight = grad * inside
        else:
            grad_weight = grad.clone() if source is not None else grad
        _add_scale_gradient(grad, result, grad_weight, weight, s, source)
        return grad_weight, None, None, None, None


_STUCK: dict[tuple[int, ...], Tensor] = {}


def stuck_buffer(faults: Faults | None, shape: tuple[int, ...]) -> Tensor | None:
    """A (*shape, 2) tensor of NaN holding each stuck device's conductance, or None
    without faults. Kept per shape and reset by ``release_stuck`` (no full-size fill
    per step)."""
    if faults is None or not faults.index.numel():
        return None
    buffer = _STUCK.get(shape)
    if buffer is None:
        buffer = _STUCK.setdefault(shape, torch.full((*shape, 2), math.nan))
    buffer.view(-1).index_put_((faults.index,), faults.value)
    return buffer


def release_stuck(buffer: Tensor | None, faults: Faults | None) -> None:
    """Put NaN back where ``stuck_buffer`` wrote the faults."""
    if buffer is not None and faults is not None:
        buffer.view(-1).index_fill_(0, faults.index, math.nan)


def fused_noisy_hard(
    weight: Tensor,
    s: Tensor,
    mapper: WeightMapper,
    sigma: float,
    normal: Tensor | None,
    faults: Faults | None,
) -> fused.Transform:
    """Hard weights of a noisy chip (straight-through training with noise injection) as
    one compiled kernel; callers check ``mapper.coding.stairs`` first."""
    coding = mapper.coding
    assert coding is not None and coding.stairs is not None
    keys, _, numbers = coding.stairs
    spread, _ = mapper.noise_spread(sigma)
    stuck = stuck_buffer(faults, tuple(weight.shape))
    try:
        hard = fused.noisy_stair_weight(
            weight.detach(),
            s,
            keys,
            coding.code_levels,
            numbers,
            normal if sigma > 0.0 else None,
            spread,
            stuck,
        )
    finally:
        release_stuck(stuck, faults)
    return fused.Transform(hard, None, 1.0)


def fused_smooth(weight: Tensor, s: Tensor, table: SmoothTable) -> fused.Transform:
    """The noise-free surrogate as one compiled kernel."""
    result, slope = fused.smooth_weight(weight.detach(), s, table.rows, table.numbers)
    return fused.Transform(result, slope, table.inv_step)


def fused_noisy(
    weight: Tensor,
    s: Tensor,
    table: PairTable,
    mapper: WeightMapper,
    sigma: float,
    normal: Tensor | None,
    faults: Faults | None,
) -> fused.Transform:
    """The noisy surrogate pairs as one compiled kernel."""
    spread, clip = mapper.noise_spread(sigma)
    stuck = stuck_buffer(faults, tuple(weight.shape))
    try:
        result, derivative = fused.noisy_smooth_weight(
            weight.detach(),
            s,
            table.rows,
            normal if sigma > 0.0 else None,
            spread,
            table.numbers,
            clip,
            stuck,
        )
    finally:
        release_stuck(stuck, faults)
    return fused.Transform(result, derivative, table.inv_step * mapper.norm)


__all__ = [
    "CLIP_SIGMAS",
    "FusedWeight",
    "NoisySmoothWeight",
    "SmoothWeight",
    "StraightThrough",
    "fused_noisy",
    "fused_noisy_hard",
    "fused_smooth",
]
