"""Simulated chip instances: programming noise, stuck devices and read noise.

Implements "Noise and faults" of docs/hardware-model.md, all relative to each device's
own range Gmax - Gmin:

- programming noise: G + sigma_p (Gmax - Gmin) N(0, 1), clipped at 0, fixed per chip;
- stuck devices: each device independently stuck at Gmin with probability p_off or at
  Gmax with probability p_on (after programming noise, so a stuck device reads exactly
  its stuck value); fixed per chip;
- read noise: per inference, on each output column, with std
  sigma_r * sqrt(sum_i x_i^2) per device of the pair. In weight units (multiplied by
  s * kappa / (Gmax+ - Gmin+)) that is sigma_r * s * kappa * sqrt(1 + (1 - a)^2) * ||x||.
  In offset mapping the pair is the device and its per-weight reference device.

A layer's devices are held as one (out, in, 2) array: [..., 0] the positive device of
each weight, [..., 1] its negative (or, in offset mapping, reference) device.

Chips for Monte Carlo evaluation are drawn from one generator per (seed, chip, layer),
so chip c is the same chip whatever the chunking, chip count or other layers.

Stuck positions are sampled exactly and cheaply: the gaps between stuck devices of a
Bernoulli(p) sequence are geometric, so only about n p random numbers are needed.

Training noise and read noise use a ``NormalPool``: windows at random offsets into a
pool of iid N(0, 1) numbers, because torch's generator (one core, a few hundred million a second)
would otherwise cost more than the forward pass. Departure from the reference model:
each window is an exact iid draw, but windows of different batches or inferences may
overlap (the same numbers, shifted onto other devices). Programming noise of Monte
Carlo chips is drawn fresh (no pool).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hwmodels.device import DevicePair
from hwmodels.mapping import WeightMapper
from hwmodels.profile import NoiseConfig

DEFAULT_POOL = 2**22


@dataclass(frozen=True)
class Faults:
    """Stuck devices of one layer: flat indices into its (out, in, 2) device array and the
    conductance each is stuck at (Gmin or Gmax of that device type)."""

    index: Tensor
    value: Tensor


def chip_generator(seed: int, chip: int, layer: int) -> torch.Generator:
    """An independent generator for one layer of one chip (well-mixed seeds)."""
    state = np.random.SeedSequence([seed, chip, layer]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def bernoulli_positions(count: int, p: float, generator: torch.Generator) -> Tensor:
    """Sorted indices in [0, count), each included independently with probability p."""
    if p <= 0.0 or count == 0:
        return torch.zeros(0, dtype=torch.long)
    if p >= 1.0:
        return torch.arange(count)
    log_q = math.log1p(-p)
    expected = count * p
    chunk = int(expected + 6.0 * math.sqrt(expected) + 16)
    pieces: list[Tensor] = []
    start = -1
    while True:
        u = 1.0 - torch.rand(chunk, generator=generator, dtype=torch.float64)  # (0, 1]
        gaps = (torch.log(u) / log_q).floor_().long() + 1
        positions = start + gaps.cumsum(0)
        pieces.append(positions)
        start = int(positions[-1])
        if start >= count:
            break
    positions = torch.cat(pieces)
    return positions[positions < count]


def draw_faults(
    weights: list[int],
    pair: DevicePair,
    noise: NoiseConfig,
    generator: torch.Generator,
    chips: int = 1,
) -> list[list[Faults | None]]:
    """Stuck devices of several layers of ``chips`` chips at once (``weights``: weight
    count of each layer); result[c][l] is layer l of chip c.

    Layer l's devices are the flat (out, in, 2) array: index 2 i is the positive device
    of weight i, 2 i + 1 its negative (or reference) device. All layers of all chips are
    one Bernoulli sequence, drawn with one generator call, so a block of chips costs
    about as many tensor operations as one (training draws a block of batches at once).
    """
    p_stuck = noise.stuck_off + noise.stuck_on
    if p_stuck <= 0.0:
        return [[None] * len(weights) for _ in range(chips)]
    counts = [2 * n for n in weights]
    per_chip = sum(counts)
    stuck = bernoulli_positions(chips * per_chip, p_stuck, generator)
    on = torch.rand(stuck.numel(), generator=generator, dtype=torch.float64) < (
        noise.stuck_on / p_stuck
    )
    starts = [
        chip * per_chip + int(offset)
        for chip in range(chips)
        for offset in np.cumsum([0, *counts[:-1]])
    ]
    boundaries = torch.tensor([*starts, chips * per_chip], dtype=torch.long)
    owner = torch.searchsorted(boundaries, stuck, right=True) - 1
    index = stuck - boundaries[owner]
    conductances = torch.tensor(  # [stuck on][device of the pair]
        [pair.positive.gmin, pair.negative.gmin, pair.positive.gmax, pair.negative.gmax],
        dtype=torch.float32,
    )
    value = conductances[2 * on.long() + index % 2]
    cuts = torch.searchsorted(stuck, boundaries).tolist()
    layers = len(weights)
    return [
        [
            Faults(index=index[cuts[k] : cuts[k + 1]], value=value[cuts[k] : cuts[k + 1]])
            for k in range(chip * layers, (chip + 1) * layers)
        ]
        for chip in range(chips)
    ]


def perturb(
    pairs: Tensor, pair: DevicePair, sigma: float, normal: Tensor | None, faults: Faults | None
) -> Tensor:
    """Device pairs (..., 2) after programming noise (clipped at 0) and stuck faults.

    Out of place and differentiable where a device is neither clipped nor stuck.
    """
    result = pairs
    if sigma > 0.0 and normal is not None:
        spread = torch.tensor(
            [sigma * pair.positive.span, sigma * pair.negative.span], dtype=pairs.dtype
        )
        result = torch.addcmul(result, normal, spread).clamp_min(0.0)
    if faults is not None and faults.index.numel():
        flat = result.reshape(-1).index_put((faults.index,), faults.value.to(pairs.dtype))
        result = flat.view(pairs.shape)
    return result


def varies_per_chip(noise: NoiseConfig) -> bool:
    """True when two chips of the same design differ (programming noise or faults)."""
    return noise.programming > 0.0 or noise.stuck_off > 0.0 or noise.stuck_on > 0.0


def read_noise_factor(mapper: WeightMapper, noise: NoiseConfig) -> float:
    """Read-noise std per unit of s * ||x|| on one output column (0 when off)."""
    if noise.read <= 0.0:
        return 0.0
    ratio = mapper.pair.negative.span / mapper.pair.positive.span
    return noise.read * mapper.kappa * math.sqrt(1.0 + ratio**2)


def chip_pairs(
    mapper: WeightMapper, nominal: Tensor, noise: NoiseConfig, generator: torch.Generator
) -> Tensor:
    """One layer of one chip: nominal device pairs (out, in, 2) + programming noise + faults."""
    programmed, faults = programmed_pairs(mapper, nominal, noise, generator)
    return perturb(programmed, mapper.pair, 0.0, None, faults)


def programmed_pairs(
    mapper: WeightMapper, nominal: Tensor, noise: NoiseConfig, generator: torch.Generator
) -> tuple[Tensor, Faults | None]:
    """One layer of one chip before its faults are applied: the pairs with programming
    noise, and the stuck devices (drift.py drifts the former, never the latter)."""
    normal = None
    if noise.programming > 0.0:
        normal = torch.randn(nominal.shape, generator=generator, dtype=nominal.dtype)
    ((faults,),) = draw_faults([nominal.numel() // 2], mapper.pair, noise, generator)
    return perturb(nominal, mapper.pair, noise.programming, normal, None), faults


class NormalPool:
    """Cheap N(0, 1) draws: windows at random offsets into a pool of iid normals."""

    def __init__(self, generator: torch.Generator, size: int = DEFAULT_POOL) -> None:
        self.generator = generator
        self.size = size
        self.pool = torch.randn(size, generator=generator)

    def refresh(self) -> None:
        """Draw a new pool (e.g. once per epoch)."""
        self.pool = torch.randn(self.size, generator=self.generator)

    def normal(self, shape: tuple[int, ...]) -> Tensor:
        """A tensor of iid N(0, 1) of the given shape (a view into the pool: do not modify)."""
        count = math.prod(shape)
        if 4 * count > self.size:
            self.size = 1 << (4 * count - 1).bit_length()
            self.refresh()
        start = int(torch.randint(0, self.size - count + 1, (1,), generator=self.generator))
        return self.pool[start : start + count].view(shape)


__all__ = [
    "Faults",
    "NormalPool",
    "bernoulli_positions",
    "chip_generator",
    "chip_pairs",
    "draw_faults",
    "perturb",
    "programmed_pairs",
    "read_noise_factor",
    "varies_per_chip",
]
