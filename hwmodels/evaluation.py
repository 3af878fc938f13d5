"""Accuracy of a network: float, and Monte Carlo over simulated chips of a profile.

Chips are evaluated many at a time, not one by one: for a chunk of C chips every layer's
weights are stacked, the first layer runs as one GEMM of the stacked (C * out, in)
weights against the images, later layers as one batched matmul. Activations are kept
as (chips, features, images) so no transposes are needed. Input pixels that are zero in
every evaluated image are dropped from the first GEMM (exact: they add nothing). This
module draws the chips and counts their hits; the forward pass is mlp_forward.py's (conv
nets and tiled ADCs: chip_forward.py's).

``compute_dtype`` float32 (default) is exact to float rounding; bfloat16 rounds weights
and activations for the GEMMs only (element-wise work stays float32), faster on CPUs
with bf16 instructions; int8 multiplies the converters' integer codes by each chip's
weights rounded to int8 per row (int8.py), exact but for that rounding, for MLPs whose
every layer input is quantized (bench/bench_engine.py measures all three).

Chip c is drawn from generators seeded by (seed, c, layer): the same seed gives the same
chips whatever the chunking, and a naive and a hardware-aware net evaluated with the same
seed meet the same random draws. Read noise comes from a NormalPool (see chips.py).

``drift`` evaluates the same chips at a time after programming (drift.py): every chip
then goes through the per-chip path, its devices drifted, and with compensation each
layer's W_eff and read noise are scaled by that chip's read-out scale.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from hwmodels import mlp_forward
from hwmodels.chip_forward import forward_chips, needs_layer_walk
from hwmodels.chips import NormalPool, chip_generator, varies_per_chip
from hwmodels.drift import DriftAt
from hwmodels.int8 import IntWeights, quantize_rows
from hwmodels.layers import HardwareLinear, set_mode
from hwmodels.memory import keep_freed_memory
from hwmodels.network import HardwareNet
from hwmodels.progress import CancelCheck, JobCancelled, never_cancel
from hwmodels.report import ChipStatistics
from hwmodels.surrogates import HARD, Uniform

ChipsDone = Callable[[int], None]

DEFAULT_MEMORY_MB = 512
MAX_CHIP_CHUNK = 32
MAX_TENSOR_BYTES = 16 << 20
GEMM_COLUMNS = 16
"""Image chunks are a multiple of this many columns: the GEMM kernels run much slower
on a ragged column count than on a multiple of their vector width."""
COMPUTE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "int8": torch.int8}
"""The Monte Carlo GEMMs' precisions by the names a spec gives them (``specs.ComputeDtype``)."""


@torch.no_grad()
def accuracy(net: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 8192) -> float:
    """Top-1 accuracy of ``net`` as it is (float net, or hardware net in its current mode)."""
    was_training = net.training
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            logits = net(images[start : start + batch_size])
            correct += int((logits.argmax(dim=1) == labels[start : start + batch_size]).sum())
    net.train(was_training)
    return correct / max(int(labels.shape[0]), 1)


def chip_statistics(accuracies: list[float]) -> ChipStatistics:
    """Mean, std (sample, ddof=1), worst, 5th percentile and best over chips."""
    values = np.asarray(accuracies, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no chips were evaluated")
    return ChipStatistics(
        chips=int(values.size),
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if values.size > 1 and np.ptp(values) > 0 else 0.0,
        worst=float(values.min()),
        p5=float(np.percentile(values, 5)),
        best=float(values.max()),
        accuracies=[float(v) for v in values],
    )


@dataclass
class _Layer:
    """What the batched forward needs of one HardwareLinear."""

    module: HardwareLinear
    scale: Tensor
    bias: Tensor
    dac: Uniform | None
    adc: Uniform | None
    nominal: Tensor | None  # device pairs (out, in, 2) when chips differ
    weight: Tensor | None  # shared W_eff when chips do not differ
    read_gain: Tensor | None = None  # (chips, 1, 1) drift compensation of the chunk


def chip_weights(
    net: HardwareNet, chip: int, seed: int, drift: DriftAt | None = None
) -> list[Tensor]:
    """W_eff of every layer of one simulated chip (for inspection and tests)."""
    layers = _plan(net, _varies(net, drift))
    return [
        _chip_weight(net, layer, index, chip, seed, drift)[0] for index, layer in enumerate(layers)
    ]


def _varies(net: HardwareNet, drift: DriftAt | None) -> bool:
    """True when each chip needs its own weights (noise, faults or drift)."""
    return varies_per_chip(net.profile.noise) or (drift is not None and drift.changes_chips)


@torch.no_grad()
def chip_accuracies(
    net: HardwareNet,
    images: Tensor,
    labels: Tensor,
    *,
    chips: int,
    seed: int = 0,
    compute_dtype: torch.dtype = torch.float32,
    on_chips: ChipsDone | None = None,
    should_cancel: CancelCheck = never_cancel,
    memory_mb: int = DEFAULT_MEMORY_MB,
    confusion: Tensor | None = None,
    drift: DriftAt | None = None,
) -> list[float]:
    """Accuracy of each of ``chips`` simulated chips of a calibrated hardware net.

    ``confusion``: a (classes, classes) int64 tensor to which the counts
    [true class, predicted class] of every chip are added (for the report's figure).
    ``drift``: the chips at a time after programming (None: at t0).
    """
    if chips < 1:
        raise ValueError("evaluate at least one chip")
    if compute_dtype not in COMPUTE_DTYPES.values():
        raise ValueError("compute_dtype must be torch.float32, torch.bfloat16 or torch.int8")
    keep_freed_memory()
    noise = net.profile.noise
    per_chip = _varies(net, drift)
    set_mode(net, HARD)
    if not per_chip and noise.read <= 0.0:
        value = accuracy(net, images, labels)  # every chip is the same, and exact
        if confusion is not None:
            _add_confusion(confusion, labels, _predict(net, images), chips)
        if on_chips is not None:
            on_chips(chips)
        return [value] * chips
    layers = _plan(net, per_chip)
    walk = needs_layer_walk(net)  # conv layers or tiled ADCs: chip_forward.py
    if walk and compute_dtype == torch.int8:
        raise ValueError("compute_dtype int8 runs MLPs without tiled ADCs only: use float32")
    active = (images != 0).any(dim=0)
    columns = None if walk or bool(active.all()) else active.nonzero().squeeze(1)
    chunk = _chip_chunk(net, chips, memory_mb, per_chip)
    batch = _image_chunk(net, chunk, memory_mb)
    pool = NormalPool(torch.Generator().manual_seed(seed + 7_919)) if noise.read > 0 else None
    prepared = None
    if not walk:
        noisy = pool is not None
        prepared = mlp_forward.prepare(
            net, layers, images, columns, batch, compute_dtype, noisy, chips
        )
    correct = torch.zeros(chips, dtype=torch.long)
    for first in range(0, chips, chunk):
        if should_cancel():
            raise JobCancelled("cancelled during chip evaluation")
        count = min(chunk, chips - first)
        weights = []
        for index, layer in enumerate(layers):
            kept = columns if index == 0 else None
            if per_chip:
                stacked, gains = _chip_weights(
                    net, layer, index, range(first, first + count), seed, drift, kept, compute_dtype
                )
                if drift is not None and drift.compensated:
                    layer.read_gain = torch.tensor(gains).view(-1, 1, 1)
            else:
                assert layer.weight is not None
                shared = layer.weight if kept is None else layer.weight.index_select(-1, kept)
                stacked = _in_precision(shared.contiguous(), compute_dtype)
            weights.append(stacked)
        for start in range(0, images.shape[0], batch):
            if should_cancel():
                raise JobCancelled("cancelled during chip evaluation")
            if prepared is None:
                x = images[start : start + batch]
                floats = cast(list[Tensor], weights)  # int8 was refused for this path
                logits = forward_chips(net, layers, floats, x, count, compute_dtype, pool)
            else:
                chunk_index = start // batch
                logits = mlp_forward.forward(layers, weights, prepared, chunk_index, count, pool)
            predicted = logits.argmax(dim=-1)
            hits = predicted == labels[start : start + batch]
            if confusion is not None:
                copies = count // predicted.shape[0] if predicted.dim() == 2 else count
                _add_confusion(confusion, labels[start : start + batch], predicted, copies)
            correct[first : first + count] += hits.reshape(-1, hits.shape[-1]).sum(dim=-1)
        if on_chips is not None:
            on_chips(first + count)
    total = max(int(labels.shape[0]), 1)
    return [int(c) / total for c in correct]


@torch.no_grad()
def _predict(net: nn.Module, images: Tensor, batch_size: int = 8192) -> Tensor:
    """Predicted classes of ``net`` as it is (eval mode)."""
    was_training = net.training
    net.eval()
    predicted = torch.cat(
        [
            net(images[i : i + batch_size]).argmax(dim=1)
            for i in range(0, images.shape[0], batch_size)
        ]
    )
    net.train(was_training)
    return predicted


def _add_confusion(confusion: Tensor, labels: Tensor, predicted: Tensor, copies: int = 1) -> None:
    """Add counts [true, predicted] (predicted may carry a leading chips dimension)."""
    classes = confusion.shape[0]
    codes = (labels.long() * classes + predicted.long()).reshape(-1)
    counts = torch.bincount(codes, minlength=classes * classes).view(classes, classes)
    confusion += counts * copies


def _plan(net: HardwareNet, per_chip: bool) -> list[_Layer]:
    plans = []
    for module in net.hardware_layers():
        weight = module.weight.detach()
        s = module.mapper.scale(weight)
        nominal = None
        shared = None
        if per_chip:
            nominal = module.mapper.nominal_pairs(weight / s)
        else:
            module.mode = HARD
            shared = module.effective_weight().detach()
        plans.append(
            _Layer(module, s, module.bias.detach(), module.dac(), module.adc(), nominal, shared)
        )
    return plans


def _chip_weights(
    net: HardwareNet,
    layer: _Layer,
    index: int,
    chips: range,
    seed: int,
    drift: DriftAt | None,
    columns: Tensor | None,
    dtype: torch.dtype,
) -> tuple[Tensor | IntWeights, list[float]]:
    """W_eff of one layer for ``chips``, stacked as (chips, out, in) in ``dtype`` (int8:
    rounded per row) with only ``columns`` of the inputs (None: all), and each chip's
    drift compensation gain.

    torch's normal generator runs on one core and the draws are a large share of the
    Monte Carlo time; every chip has its own generator, so drawing chips in parallel
    threads gives exactly the same chips. Each thread writes its chip straight into the
    stacked tensor (no separate stack, column selection and cast passes).
    """
    out, width = layer.module.weight.shape[0], layer.module.weight.shape[1]
    width = width if columns is None else columns.numel()
    codes = torch.empty(len(chips), out, width, dtype=dtype)
    stacked: Tensor | IntWeights = codes
    if dtype == torch.int8:
        stacked = IntWeights(codes, torch.empty(len(chips), out), torch.empty(len(chips), out))

    def draw(position: int) -> float:
        chip_weight, gain = _chip_weight(net, layer, index, chips[position], seed, drift)
        if columns is not None:
            chip_weight = chip_weight.index_select(-1, columns)
        if isinstance(stacked, IntWeights):
            for into, part in zip(stacked, quantize_rows(chip_weight), strict=True):
                into[position].copy_(part)
        else:
            stacked[position].copy_(chip_weight)
        return gain

    threads = min(torch.get_num_threads(), len(chips))
    if threads <= 1:
        return stacked, [draw(position) for position in range(len(chips))]
    with ThreadPoolExecutor(threads) as pool:
        return stacked, list(pool.map(draw, range(len(chips))))


def _in_precision(weight: Tensor, dtype: torch.dtype) -> Tensor | IntWeights:
    """``weight`` for GEMMs in ``dtype``: cast, or (int8) rounded per row."""
    return quantize_rows(weight) if dtype == torch.int8 else weight.to(dtype)


def _chip_weight(
    net: HardwareNet, layer: _Layer, index: int, chip: int, seed: int, drift: DriftAt | None
) -> tuple[Tensor, float]:
    """W_eff of one layer of one chip, and its drift compensation scale (1 without)."""
    if layer.nominal is None:
        assert layer.weight is not None
        return layer.weight, 1.0
    mapper = layer.module.mapper
    generator = chip_generator(seed, chip, index)
    at = drift or DriftAt(net.profile.drift, net.profile.drift.t0_s)
    pairs, gain = at.chip_pairs(mapper, layer.nominal, net.profile.noise, generator)
    scale = layer.scale * gain if gain != 1.0 else layer.scale
    return mapper.effective_from_pairs(pairs) * scale, gain


def _chip_chunk(net: HardwareNet, chips: int, memory_mb: int, per_chip: bool) -> int:
    """Chips per chunk: within half the memory budget, at most MAX_CHIP_CHUNK, balanced."""
    largest = MAX_CHIP_CHUNK
    if per_chip:
        per_chip_bytes = 16 * sum(layer.weight.numel() for layer in net.hardware_layers())
        largest = max(1, min(largest, (memory_mb << 19) // per_chip_bytes))
    chunks = -(-chips // largest)
    return -(-chips // chunks)


def _image_chunk(net: HardwareNet, chips: int, memory_mb: int) -> int:
    """Images per chunk: within the memory budget, and no activation tensor above
    MAX_TENSOR_BYTES, so that the allocator reuses freed blocks instead of mapping fresh
    pages for every tensor (page faults cost more than the arithmetic here)."""
    widths = sum(net.sizes[1:])
    budget = (memory_mb << 19) // (16 * chips * widths)
    largest = MAX_TENSOR_BYTES // (4 * chips * max(net.sizes[1:]))
    images = int(max(64, min(4096, budget, largest)))
    return images - images % GEMM_COLUMNS


__all__ = ["accuracy", "chip_accuracies", "chip_statistics", "chip_weights"]
