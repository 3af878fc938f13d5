"""Fused forward kernels of the hardware weight transform, compiled by torch.compile.

The weight transform (scale, level or surrogate look-up, curve, pair, noise, faults) runs
on every weight at every training step. In eager PyTorch it is a dozen passes over the
weight matrix, each a separate kernel launch with its own temporaries; compiled, each
variant below is one loop over the weights. Every kernel here has an eager twin (the
code in ``layers.py``, ``surrogates.py`` and ``mapping.py``) that stays the reference:
the tests compare the two, values and gradients.

The kernels only compute forward values and the local derivative the backward pass
needs; the autograd functions in ``layers.py`` keep their backward (one multiply plus
the scale gradient), so gradients agree with the eager path to float rounding (which may
put a weight in the neighbouring cell of a fine surrogate table). Fused: the hard
weights of straight-through training, and the noisy surrogate pairs (noise, clipping at
0, stuck devices). The noise-free surrogate stays eager: it is one packed gather
already, which the generated code does not beat.

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
from typing import Any, TypeVar

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
        compiler = any(shutil.which(name) for name in ("cc", "gcc", "clang"))
        _state["enabled"] = wanted and compiler
    return _state["enabled"]


def set_enabled(value: bool) -> None:
    """Turn the fused kernels on or off for this process (tests compare both paths)."""
    _state["enabled"] = value


def _compiled(function: F) -> F:
    """torch.compile ``function`` lazily; on any compile error fall back to eager for
    the rest of the process (results are the same, only slower)."""
    compiled: list[Callable[..., Any]] = []

    def run(*args: Any) -> Any:
        if not compiled:
            compiled.append(torch.compile(function, fullgraph=True))
        try:
            return compiled[0](*args)
        except Exception as error:  # any inductor failure: stay correct, go eager
            log.warning("torch.compile failed (%s); using eager kernels", error)
            set_enabled(False)
            return function(*args)

    return run  # type: ignore[return-value]


def grid(gain: float, offset: float, last: float, norm: float = 1.0) -> Tensor:
    """A table's grid numbers as one tensor: passed as floats, every new table (each
    annealing stage has its own) would compile the kernels again."""
    return torch.tensor([gain, offset, last, norm], dtype=torch.float32)


def _interpolate(x: Tensor, scale: Tensor, table: Tensor, numbers: Tensor) -> tuple[Tensor, Tensor]:
    """Rows of ``table`` (entries, 2k: k values then k slopes) at position x / scale:
    (values, slopes), each (*x.shape, k), values linearly interpolated. ``numbers``:
    ``grid(gain, offset, last)``."""
    gain = numbers[0] / scale
    position = torch.minimum((x * gain + numbers[1]).clamp_min(0.0), numbers[2])
    cell = position.to(torch.int32)
    fraction = (position - cell).unsqueeze(-1)
    entries = table[cell.long()]
    half = table.shape[1] // 2
    slopes = entries[..., half:]
    return entries[..., :half] + fraction * slopes, slopes


def _noisy_pairs(
    weight: Tensor,
    s: Tensor,
    table: Tensor,
    normal: Tensor,
    spread: Tensor,
    numbers: Tensor,
    clip: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    values, slopes = _interpolate(weight, s, table, numbers)
    pairs = values + normal * spread
    if clip:
        slopes = slopes * (pairs > 0)
        pairs = pairs.clamp_min(0.0)
    return pairs, slopes, s * numbers[3]


@_compiled
def noisy_smooth_weight(
    weight: Tensor,
    s: Tensor,
    table: Tensor,
    normal: Tensor,
    spread: Tensor,
    numbers: Tensor,
    clip: bool,
) -> tuple[Tensor, Tensor]:
    """(w_eff, d w_eff / d position) of a noisy device pair from a PairTable's rows
    (G+, G-, slope+, slope-): look-up, programming noise, clipping at 0."""
    pairs, slopes, factor = _noisy_pairs(weight, s, table, normal, spread, numbers, clip)
    return (pairs[..., 0] - pairs[..., 1]) * factor, slopes[..., 0] - slopes[..., 1]


@_compiled
def stuck_smooth_weight(
    weight: Tensor,
    s: Tensor,
    table: Tensor,
    normal: Tensor,
    spread: Tensor,
    numbers: Tensor,
    clip: bool,
    stuck: Tensor,
) -> tuple[Tensor, Tensor]:
    """``noisy_smooth_weight`` with stuck devices: ``stuck`` (*weight.shape, 2) holds each
    stuck device's conductance and NaN for the others; a stuck device has no gradient."""
    pairs, slopes, factor = _noisy_pairs(weight, s, table, normal, spread, numbers, clip)
    free = torch.isnan(stuck)
    pairs = torch.where(free, pairs, stuck)
    slopes = slopes * free
    return (pairs[..., 0] - pairs[..., 1]) * factor, slopes[..., 0] - slopes[..., 1]


@_compiled
def hard_weight_cells(weight: Tensor, s: Tensor, table: Tensor, numbers: Tensor) -> Tensor:
    """s Q(w / s) with LevelFinder's cells (w_eff below, step, threshold inside, 0);
    ``numbers[0]``: cells per unit of v."""
    v = (weight / s).clamp(-1.0, 1.0)
    cell = ((v + 1.0) * numbers[0]).floor().to(torch.int64)
    entries = table[cell]
    crossed = (v >= entries[..., 2]).to(weight.dtype)
    return (entries[..., 0] + crossed * entries[..., 1]) * s


@_compiled
def hard_weight_uniform(weight: Tensor, s: Tensor, table: Tensor, numbers: Tensor) -> Tensor:
    """s Q(w / s) with uniform thresholds: code floor(v slope + shift) into w_eff / s
    (``numbers``: slope, shift)."""
    v = (weight / s).clamp(-1.0, 1.0)
    code = (v * numbers[0] + numbers[1]).floor().to(torch.int64)
    return table[code] * s


__all__ = [
    "enabled",
    "grid",
    "hard_weight_cells",
    "hard_weight_uniform",
    "noisy_smooth_weight",
    "set_enabled",
    "stuck_smooth_weight",
]
