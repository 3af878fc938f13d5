"""Fused forward kernels of the hardware weight transform, compiled by torch.compile.

The weight transform (level or surrogate look-up, curve, pair, noise, faults) runs on
every weight at every training step. In eager PyTorch it is a dozen passes over the
weight matrix, each a separate kernel launch with its own temporaries; compiled, each
variant below is one loop over the weights. Every kernel here has an eager twin (the
autograd functions in ``weight_functions.py`` with ``surrogates.py`` and
``level_coding.py``) that stays the reference: the tests compare the two, values and
gradients, on every profile family.

The kernels compute forward values and the local derivative the backward pass needs;
``weight_functions.FusedWeight`` runs them as one autograd node whose backward stays
eager (one multiply, two dot products for the scale's gradient: ATen's reductions beat
the generated ones), so gradients agree with the eager path to float rounding (which may
put a weight in the neighbouring cell of a fine surrogate table). Fused: the hard weights
of straight-through training (for up to ``MAX_STAIRS`` thresholds a chain of selects,
no gather), the noise-free surrogate and the noisy surrogate pairs (noise, clipping at
0, stuck devices). The scale s is computed before the kernel (its eager reductions are
cheaper than a generated arg-max) and passed in. Each device of a pair is its own
expression: a trailing pair dimension of size 2 would defeat the vectorised loop.

Compiling needs a C compiler (inductor). It is on by default where one is found and off
with ``HWSCORE_COMPILE=0``; if compiling fails the engine warns once and stays eager.
Compiled code is cached on disk (``TORCHINDUCTOR_CACHE_DIR``; workers point it into the
state dir), so a new process only re-traces. A kernel is compiled for the first shape it
meets, then once more with dynamic shapes for all the others.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_state: dict[str, bool] = {}


def enabled() -> bool:
    """True when the fused kernels are used (HWSCORE_COMPILE not 0, a C compiler found,
    and no earlier compile failure in this process)."""
    if "enabled" not in _state:
        wanted = os.environ.get("HWSCORE_COMPILE", "1").strip().lower() not in ("0", "false", "no")
        _state["enabled"] = wanted and compiler_found()
    return _state["enabled"]


def compiler_found() -> bool:
    """True when a C compiler is on PATH (torch.compile's CPU code needs one)."""
    return any(shutil.which(name) for name in ("cc", "gcc", "clang"))


def set_enabled(value: bool) -> None:
    """Turn the fused kernels on or off for this process (tests compare both paths)."""
    _state["enabled"] = value


RECOMPILE_LIMIT = 64
"""Compiled variants kept per kernel (shapes, profiles) before dynamo stops compiling."""


def compiled(function: F) -> F:
    """torch.compile ``function`` lazily; on any compile error fall back to eager for
    the rest of the process (results are the same, only slower)."""
    built: list[Callable[..., Any]] = []

    def run(*args: Any) -> Any:
        if not built:
            # A worker meets many network shapes, each a variant of the same function:
            # past dynamo's limit (8) it would quietly run them eagerly.
            limit = torch._dynamo.config.recompile_limit
            torch._dynamo.config.recompile_limit = max(limit, RECOMPILE_LIMIT)
            built.append(torch.compile(function, fullgraph=True))
        try:
            return built[0](*args)
        except Exception as error:  # any inductor failure: stay correct, go eager
            log.warning("torch.compile failed (%s); using eager kernels", error)
            set_enabled(False)
            return function(*args)

    return run  # type: ignore[return-value]


class Transform(NamedTuple):
    """What a fused forward kernel gives its autograd function."""

    result: Tensor
    """w_eff."""
    derivative: Tensor | None
    """d w_eff / d position per grid step (smooth), None for straight-through."""
    gain: float
    """Grid steps per unit of v times w_eff per unit of table value (smooth)."""


def grid(gain: float, offset: float, last: float) -> Tensor:
    """A table's grid numbers as one tensor: passed as floats, every new table (each
    annealing stage has its own) would compile the kernels again."""
    return torch.tensor([gain, offset, last], dtype=torch.float32)


def _cell(x: Tensor, s: Tensor, numbers: Tensor) -> tuple[Tensor, Tensor]:
    """Table row and fraction within it of x / s (``numbers``: ``grid(gain, offset, last)``)."""
    position = torch.minimum((x * (numbers[0] / s) + numbers[1]).clamp_min(0.0), numbers[2])
    cell = position.to(torch.int32)
    return cell.long(), position - cell


@compiled
def hard_weight(weight: Tensor, s: Tensor, table: Tensor, numbers: Tensor, uniform: bool) -> Tensor:
    """s Q(w / s).

    ``uniform``: code floor(v slope + shift) into ``table`` (w_eff / s per code;
    ``numbers``: slope, shift); else LevelFinder's cells (rows: w_eff below, step,
    threshold inside, 0; ``numbers[0]``: cells per unit of v)."""
    v = (weight / s).clamp(-1.0, 1.0)
    if uniform:
        code = (v * numbers[0] + numbers[1]).floor().to(torch.int64)
        return table[code] * s
    cell = ((v + 1.0) * numbers[0]).floor().to(torch.int64)
    crossed = (v >= table[cell, 2]).to(weight.dtype)
    return (table[cell, 0] + crossed * table[cell, 1]) * s


MAX_STAIRS = 32
"""Up to this many thresholds the hard weight is a chain of selects (vectorised, no
gather); beyond, a table look-up."""


@compiled
def stair_weight(
    weight: Tensor, s: Tensor, keys: Tensor, values: Tensor, numbers: Tensor
) -> Tensor:
    """s Q(w / s) as a chain of selects (``stair_unit``)."""
    return stair_unit((weight / s).clamp(-1.0, 1.0), keys, values, numbers) * s


def stair_unit(v: Tensor, keys: Tensor, values: Tensor, numbers: Tensor) -> Tensor:
    """Q(v): the code counts the ``keys`` at or below the key of v (v itself, or for
    uniform thresholds floor(v slope + shift) with ``numbers``: slope, shift, uniform
    flag); ``values``: w_eff / s of each code. Plain tensor code, compiled by its callers."""
    key = stair_key(v, numbers)
    out = torch.zeros_like(v) + values[0]
    for j in range(keys.shape[0]):
        out = torch.where(key >= keys[j], values[j + 1], out)
    return out


def stair_key(v: Tensor, numbers: Tensor) -> Tensor:
    """What the thresholds are compared with: v, or floor(v slope + shift) for uniform ones."""
    return torch.where(numbers[2] > 0, (v * numbers[0] + numbers[1]).floor(), v)


@compiled
def noisy_stair_weight(
    weight: Tensor,
    s: Tensor,
    keys: Tensor,
    levels: Tensor,
    numbers: Tensor,
    normal: Tensor | None,
    spread: Tensor,
    stuck: Tensor | None,
) -> Tensor:
    """``stair_weight`` of a noisy chip (``noisy_stair_unit``)."""
    v = (weight / s).clamp(-1.0, 1.0)
    return noisy_stair_unit(v, keys, levels, numbers, normal, spread, stuck) * s


def noisy_stair_unit(
    v: Tensor,
    keys: Tensor,
    levels: Tensor,
    numbers: Tensor,
    normal: Tensor | None,
    spread: Tensor,
    stuck: Tensor | None,
) -> Tensor:
    """``stair_unit`` of a noisy chip: each code's programmed (G+, G-) (``levels``:
    (codes, 2)) plus programming noise (clipped at 0), stuck devices (NaN-padded as in
    ``noisy_smooth_weight``), Q(v) = norm (G+ - G-)."""
    key = stair_key(v, numbers)
    g_p = torch.zeros_like(v) + levels[0, 0]
    g_n = torch.zeros_like(v) + levels[0, 1]
    for j in range(keys.shape[0]):
        crossed = key >= keys[j]
        g_p = torch.where(crossed, levels[j + 1, 0], g_p)
        g_n = torch.where(crossed, levels[j + 1, 1], g_n)
    if normal is not None:
        g_p = (g_p + normal[..., 0] * spread[0]).clamp_min(0.0)
        g_n = (g_n + normal[..., 1] * spread[1]).clamp_min(0.0)
    if stuck is not None:
        g_p = torch.where(torch.isnan(stuck[..., 0]), g_p, stuck[..., 0])
        g_n = torch.where(torch.isnan(stuck[..., 1]), g_n, stuck[..., 1])
    return (g_p - g_n) * spread[2]


@compiled
def smooth_weight(
    weight: Tensor, s: Tensor, table: Tensor, numbers: Tensor
) -> tuple[Tensor, Tensor]:
    """(s q(w / s), slope per grid step) from a SmoothTable's rows (value, slope)."""
    cell, fraction = _cell(weight, s, numbers)
    slope = table[cell, 1]
    return (table[cell, 0] + fraction * slope) * s, slope


def noisy_pair(
    cell: Tensor,
    fraction: Tensor,
    table: Tensor,
    normal: Tensor | None,
    spread: Tensor,
    clip: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(G+, G-, slope+, slope-) of the programmed pair at each table cell and fraction
    (``table``: a PairTable's rows), with programming noise (``normal``: (*cell.shape,
    2)) and, if ``clip``, conductances clipped at 0 (no slope there). Plain tensor code,
    compiled by its callers."""
    slope_p, slope_n = table[cell, 2], table[cell, 3]
    g_p = table[cell, 0] + fraction * slope_p
    g_n = table[cell, 1] + fraction * slope_n
    if normal is not None:
        g_p = g_p + normal[..., 0] * spread[0]
        g_n = g_n + normal[..., 1] * spread[1]
    if clip:
        slope_p = slope_p * (g_p > 0)
        slope_n = slope_n * (g_n > 0)
        g_p, g_n = g_p.clamp_min(0.0), g_n.clamp_min(0.0)
    return g_p, g_n, slope_p, slope_n


@compiled
def noisy_smooth_weight(
    weight: Tensor,
    s: Tensor,
    table: Tensor,
    normal: Tensor | None,
    spread: Tensor,
    numbers: Tensor,
    clip: bool,
    stuck: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """(w_eff, d w_eff / d position) of a noisy device pair from a PairTable's
    rows (G+, G-, slope+, slope-): look-up, programming noise (``normal``: (*w.shape, 2)),
    clipping at 0, stuck devices (``stuck``: each stuck device's conductance, NaN for
    the others; a stuck device has no gradient). Each device is its own expression (no
    trailing pair dimension), so the generated loop runs once over the weights."""
    cell, fraction = _cell(weight, s, numbers)
    g_p, g_n, slope_p, slope_n = noisy_pair(cell, fraction, table, normal, spread, clip)
    if stuck is not None:
        free_p, free_n = torch.isnan(stuck[..., 0]), torch.isnan(stuck[..., 1])
        g_p = torch.where(free_p, g_p, stuck[..., 0])
        g_n = torch.where(free_n, g_n, stuck[..., 1])
        slope_p, slope_n = slope_p * free_p, slope_n * free_n
    return (g_p - g_n) * (s * spread[2]), slope_p - slope_n


__all__ = [
    "Transform",
    "compiled",
    "enabled",
    "grid",
    "hard_weight",
    "noisy_pair",
    "noisy_smooth_weight",
    "noisy_stair_unit",
    "noisy_stair_weight",
    "set_enabled",
    "smooth_weight",
    "stair_key",
    "stair_unit",
    "stair_weight",
]
