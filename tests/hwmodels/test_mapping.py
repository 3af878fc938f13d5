"""Weights to levels and back: scales, programming policies, differential and offset pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from hwmodels.layers import set_mode
from hwmodels.mapping import WeightMapper
from hwmodels.network import calibrate, to_hardware
from hwmodels.profile import IDEAL, HardwareProfile
from hwmodels.surrogates import HARD

from .conftest import random_mlp


def mapper(**groups: Any) -> WeightMapper:
    return WeightMapper(HardwareProfile.model_validate(groups))


def effective(m: WeightMapper, values: list[float], scale: float = 1.0) -> list[float]:
    """w_eff of a layer whose largest |w| is ``scale`` (so s = scale)."""
    weight = torch.tensor([[*values, scale]])
    s = m.scale(weight)
    w_eff = m.nominal_effective(weight / s, HARD) * s
    return [float(v) for v in w_eff[0, :-1]]


def test_ideal_profile_reproduces_the_float_network_bit_for_bit() -> None:
    net = random_mlp([784, 64, 32, 10])
    x = torch.rand(300, 784)
    hardware = to_hardware(net, IDEAL)
    calibrate(hardware, x)
    set_mode(hardware, HARD)
    assert torch.equal(hardware(x), net(x))


def test_asymmetry_and_finite_ratio_give_the_specified_weights() -> None:
    # L = 3, r = 10, a = 0.2: G+ in {0.1, 0.4, 0.7, 1.0}, G- in {0.08, 0.32, 0.56, 0.8}
    m = mapper(weights={"bits": 2}, conductance={"on_off_ratio": 10.0, "asymmetry": 0.2})
    s = 0.6
    got = effective(m, [0.0, s / 3, -s / 3, -s], scale=s)
    span = 0.9  # Gmax+ - Gmin+
    expected = [
        s * (0.1 - 0.08) / span,  # w = 0 reads the offset s (Gmin+ - Gmin-) / (Gmax+ - Gmin+)
        s * (0.4 - 0.08) / span,
        s * (0.1 - 0.32) / span,
        s * (0.1 - 0.8) / span,
    ]
    assert got == pytest.approx(expected, rel=1e-5)


def test_without_asymmetry_zero_stays_zero_and_full_scale_is_exact() -> None:
    m = mapper(weights={"bits": 3}, conductance={"on_off_ratio": 5.0})
    assert effective(m, [0.0, -1.0], scale=1.0) == pytest.approx([0.0, -1.0], abs=1e-6)


def test_linear_programming_lets_the_curve_distort_and_calibrated_corrects_it() -> None:
    groups = {"conductance": {"nonlinearity": 3.0}}
    linear = mapper(weights={"bits": 4, "programming": "linear"}, **groups)
    calibrated = mapper(weights={"bits": 4, "programming": "calibrated"}, **groups)
    target = 0.4
    (distorted,) = effective(linear, [target])
    (corrected,) = effective(calibrated, [target])
    f = (1 - np.exp(-3.0 * 6 / 15)) / (1 - np.exp(-3.0))  # round(0.4 * 15) = 6
    assert distorted == pytest.approx(f, rel=1e-5)  # about 0.72: far from 0.4
    assert abs(corrected - target) < abs(distorted - target)
    levels = calibrated.pair.level_conductances(calibrated.pair.positive)
    assert abs(corrected - target) <= float((levels - target).abs().min()) + 1e-6


def test_offset_mapping_reads_against_a_mid_range_reference() -> None:
    m = mapper(weights={"bits": 2, "mapping": "offset"})
    # one device at level round(3 (w/s + 1) / 2), w_eff = 2 s (G - 1/2)
    assert effective(m, [1.0, 0.0, -1.0]) == pytest.approx([1.0, 1 / 3, -1.0], abs=1e-6)
    skewed = mapper(weights={"bits": 2, "mapping": "offset"}, conductance={"asymmetry": 0.2})
    # the reference sits at 0.4 instead of 0.5: every weight moves by 2 * 0.1
    assert effective(skewed, [1.0, -1.0]) == pytest.approx([1.2, -0.8], abs=1e-6)


@pytest.mark.parametrize(
    "weights",
    [
        {"bits": 2},
        {"bits": 8},
        {"bits": 4, "mapping": "offset"},
        {"bits": 3, "programming": "linear"},
        {"bits": 6, "mapping": "offset", "programming": "linear"},
    ],
)
@pytest.mark.parametrize("nu", [0.0, 3.0, -2.0])
def test_fast_level_codes_match_the_reference_staircase(weights: dict[str, Any], nu: float) -> None:
    m = mapper(weights=weights, conductance={"nonlinearity": nu, "on_off_ratio": 20.0})
    v = torch.rand(50_000, generator=torch.Generator().manual_seed(1)) * 2.4 - 1.2
    reference = m.stair_effective.hard(v.clamp(-1, 1))
    for fast in (m.code_effective[m.codes(v).long()], m.nominal_effective(v, HARD)):
        mismatched = int(((fast.double() - reference).abs() > 1e-6).sum())
        assert mismatched <= 2  # float32 ties with float64 thresholds only


def test_scale_is_a_percentile_per_layer_or_per_column() -> None:
    weight = torch.arange(1.0, 101.0).reshape(4, 25)
    assert float(mapper(weights={"bits": 2}).scale(weight)) == 100.0
    clipped = mapper(weights={"bits": 2, "scale_percentile": 90.0})
    assert float(clipped.scale(weight)) == 90.0
    columns = mapper(weights={"bits": 2, "scale": "per_column"}).scale(weight)
    assert columns.flatten().tolist() == [25.0, 50.0, 75.0, 100.0]


def test_programmed_levels_export_as_uint8_with_statistics() -> None:
    m = mapper(weights={"bits": 2})
    weight = torch.tensor([[0.9, -0.3, 0.0], [-0.9, 0.31, 0.6]])
    programmed = m.program(weight)
    assert programmed.negative is not None
    assert programmed.positive.dtype == np.uint8
    assert programmed.positive.tolist() == [[3, 0, 0], [0, 1, 2]]
    assert programmed.negative.tolist() == [[0, 1, 0], [3, 0, 0]]
    stats = m.layer_statistics("layer1", weight)
    assert stats.levels == 4
    assert stats.fan_in == 3 and stats.fan_out == 2
    assert sum(stats.level_histogram) == 2 * weight.numel()
    assert stats.clipped_fraction == 0.0
    assert 0 < stats.mean_abs_error < 0.2
