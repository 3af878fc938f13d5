"""Simulated chips: programming noise, stuck devices and read noise follow their parameters."""

from __future__ import annotations

import math

import pytest
import torch

from hwmodels.chips import bernoulli_positions, chip_generator, chip_pairs, draw_faults
from hwmodels.layers import HardwareLinear, InjectedNoise
from hwmodels.mapping import WeightMapper
from hwmodels.profile import HardwareProfile

WEIGHTS = 100_000


def mapper(**noise: float) -> WeightMapper:
    return WeightMapper(
        HardwareProfile.model_validate(
            {
                "weights": {"bits": 4},
                "conductance": {"on_off_ratio": 10.0, "asymmetry": 0.2},
                "noise": noise,
            }
        )
    )


def mid_range_pairs() -> torch.Tensor:
    """Every device at 0.5: far from 0, so noise is never clipped."""
    return torch.full((WEIGHTS, 2), 0.5)


def test_programming_noise_has_the_specified_spread_per_device() -> None:
    m = mapper(programming=0.05)
    chip = chip_pairs(m, mid_range_pairs(), m.profile.noise, chip_generator(0, 0, 0))
    deviation = chip - 0.5
    assert float(deviation[:, 0].std()) == pytest.approx(0.05 * 0.9, rel=0.03)  # sigma (Gmax-Gmin)
    assert float(deviation[:, 1].std()) == pytest.approx(
        0.05 * 0.72, rel=0.03
    )  # negative: 0.8-0.08
    assert abs(float(deviation.mean())) < 1e-3


def test_programming_noise_is_clipped_at_zero() -> None:
    m = mapper(programming=0.5)
    chip = chip_pairs(m, torch.zeros(WEIGHTS, 2), m.profile.noise, chip_generator(0, 0, 0))
    assert float(chip.min()) == 0.0
    assert 0.4 < float((chip == 0).double().mean()) < 0.6


def test_stuck_devices_appear_at_their_rates() -> None:
    m = mapper(stuck_off=0.04, stuck_on=0.02)
    chip = chip_pairs(m, mid_range_pairs(), m.profile.noise, chip_generator(3, 1, 0))
    devices = 2 * WEIGHTS
    for column, gmin, gmax in [(0, 0.1, 1.0), (1, 0.08, 0.8)]:
        off = int(torch.isclose(chip[:, column], torch.tensor(gmin)).sum())
        on = int(torch.isclose(chip[:, column], torch.tensor(gmax)).sum())
        for count, p in [(off, 0.04), (on, 0.02)]:
            n = devices // 2
            assert abs(count - n * p) < 5 * math.sqrt(n * p * (1 - p))


def test_bernoulli_positions_are_exactly_bernoulli() -> None:
    generator = torch.Generator().manual_seed(0)
    hits = torch.zeros(1000)
    for _ in range(200):
        hits[bernoulli_positions(1000, 0.1, generator)] += 1
    assert float(hits.mean()) == pytest.approx(20.0, rel=0.03)
    assert float(hits.std()) == pytest.approx(math.sqrt(200 * 0.1 * 0.9), rel=0.1)
    assert bernoulli_positions(50, 0.0, generator).numel() == 0


def test_faults_of_several_layers_stay_within_each_layer() -> None:
    m = mapper(stuck_off=0.45)
    (faults,) = draw_faults(
        [10, 1000, 5], m.pair, m.profile.noise, torch.Generator().manual_seed(0)
    )
    for layer_faults, weights in zip(faults, [10, 1000, 5], strict=True):
        assert layer_faults is not None and layer_faults.index.numel() > 0
        assert int(layer_faults.index.max()) < 2 * weights


def test_a_block_of_chips_is_drawn_as_independent_chips() -> None:
    """Training draws the faults of many batches at once: every chip of the block has
    its own faults, each layer's within that layer, at the stuck rates asked."""
    m = mapper(stuck_off=0.04, stuck_on=0.02)
    weights = [300, 2000, 7]
    block = draw_faults(weights, m.pair, m.profile.noise, torch.Generator().manual_seed(0), 40)
    assert len(block) == 40
    for chip in block:
        for layer_faults, count in zip(chip, weights, strict=True):
            assert layer_faults is not None
            assert bool(((layer_faults.index >= 0) & (layer_faults.index < 2 * count)).all())
    first, second = block[0][1], block[1][1]
    assert first is not None and second is not None
    assert not torch.equal(first.index, second.index)
    devices = 40 * 2 * sum(weights)
    values = torch.cat([f.value for chip in block for f in chip if f is not None])
    index = torch.cat([f.index for chip in block for f in chip if f is not None])
    negative = index % 2 == 1
    highs = torch.where(negative, m.pair.negative.gmax, m.pair.positive.gmax)
    on = int((values == highs).sum())
    for count, p in [(values.numel() - on, 0.04), (on, 0.02)]:
        assert abs(count - devices * p) < 5 * math.sqrt(devices * p * (1 - p))


def test_same_seed_same_chip_other_seed_other_chip() -> None:
    m = mapper(programming=0.05, stuck_off=0.01)
    nominal = mid_range_pairs()
    first = chip_pairs(m, nominal, m.profile.noise, chip_generator(7, 4, 1))
    again = chip_pairs(m, nominal, m.profile.noise, chip_generator(7, 4, 1))
    other = chip_pairs(m, nominal, m.profile.noise, chip_generator(7, 5, 1))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_read_noise_on_a_column_has_the_specified_spread() -> None:
    profile = HardwareProfile.model_validate(
        {"weights": {"bits": 4}, "conductance": {"asymmetry": 0.2}, "noise": {"read": 0.05}}
    )
    m = WeightMapper(profile)
    layer = HardwareLinear(64, 4, profile, m)
    torch.nn.init.normal_(layer.weight, generator=torch.Generator().manual_seed(0))
    x = torch.rand(1, 64).expand(20_000, 64)
    with torch.no_grad():
        clean = layer(x)
        layer.noise = InjectedNoise.create([layer], profile.noise, seed=1)
        noisy = layer(x)
    s = float(m.scale(layer.weight))
    # sigma_r * s * sqrt(1 + (1 - a)^2) * ||x|| in weight units
    expected = 0.05 * s * math.sqrt(1 + 0.8**2) * float(x[0].norm())
    assert float((noisy - clean).std()) == pytest.approx(expected, rel=0.03)
