"""The device model: levels, the conductance curve, Gmin from the ratio, the asymmetric pair."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from hwmodels.device import curve, device_pair, inverse_curve
from hwmodels.profile import ConductanceConfig, HardwareProfile


def profile(**conductance: float | None) -> HardwareProfile:
    return HardwareProfile.model_validate({"weights": {"bits": 3}, "conductance": conductance})


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_levels_count_is_two_to_the_bits(bits: int) -> None:
    pair = device_pair(HardwareProfile.model_validate({"weights": {"bits": bits}}))
    assert pair.levels == 2**bits - 1
    assert pair.level_conductances(pair.positive).numel() == 2**bits


@pytest.mark.parametrize("nu", [-5.0, -1.0, 0.0, 0.5, 3.0, 10.0])
def test_curve_is_monotonic_from_zero_to_one(nu: float) -> None:
    u = torch.linspace(0, 1, 1001, dtype=torch.float64)
    f = curve(u, nu)
    assert f[0] == pytest.approx(0.0, abs=1e-12)
    assert f[-1] == pytest.approx(1.0, abs=1e-12)
    assert bool((f.diff() > 0).all())
    assert torch.allclose(inverse_curve(f, nu), u, atol=1e-9)


def test_positive_nonlinearity_moves_early_pulses_more() -> None:
    u = torch.tensor([0.25], dtype=torch.float64)
    assert float(curve(u, 3.0)) > 0.25 > float(curve(u, -3.0))


def test_gmin_follows_the_on_off_ratio_and_gmax_is_normalised() -> None:
    pair = device_pair(profile(on_off_ratio=10.0))
    assert pair.positive.gmax == 1.0
    assert pair.positive.gmin == pytest.approx(0.1)
    ideal = device_pair(profile(on_off_ratio=None))
    assert ideal.positive.gmin == 0.0


def test_asymmetry_scales_the_negative_device_with_the_same_ratio() -> None:
    pair = device_pair(profile(on_off_ratio=10.0, asymmetry=0.2))
    assert pair.negative.gmax == pytest.approx(0.8)
    assert pair.negative.gmin == pytest.approx(0.08)
    levels = pair.level_conductances(pair.negative)
    assert float(levels[0]) == pytest.approx(0.08)
    assert float(levels[-1]) == pytest.approx(0.8)


def test_nonlinearity_mismatch_bends_only_the_negative_device() -> None:
    pair = device_pair(profile(nonlinearity=2.0, nonlinearity_mismatch=0.5))
    assert pair.positive.nu == pytest.approx(2.0)
    assert pair.negative.nu == pytest.approx(3.0)


def test_a_ratio_of_one_is_rejected_by_the_profile_and_by_the_engine() -> None:
    with pytest.raises(ValidationError, match="greater than 1"):
        profile(on_off_ratio=1.0)
    unchecked = HardwareProfile().model_copy(
        update={"conductance": ConductanceConfig.model_construct(on_off_ratio=1.0)}
    )
    with pytest.raises(ValueError, match="no conductance range"):
        device_pair(unchecked)


@pytest.mark.parametrize(
    "bad",
    [
        {"weights": {"bits": 0}},
        {"conductance": {"asymmetry": 1.0}},
        {"conductance": {"on_off_ratio": 0.5}},
        {"noise": {"stuck_off": 0.3, "stuck_on": 0.3}},
        {"weights": {"bitz": 2}},
    ],
)
def test_bad_profiles_are_rejected(bad: dict[str, dict[str, float]]) -> None:
    with pytest.raises(ValidationError):
        HardwareProfile.model_validate(bad)
