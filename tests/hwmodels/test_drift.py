"""Conductance drift: the power law per device, stuck devices left alone, compensation,
chips drawn per seed, and accuracy over time on real MNIST (flat without drift, falling
with it, partly recovered by compensation)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from hwmodels.chips import chip_generator, chip_pairs, programmed_pairs
from hwmodels.cost import estimate_cost
from hwmodels.drift import DriftAt
from hwmodels.evaluation import chip_weights
from hwmodels.mapping import WeightMapper
from hwmodels.network import calibrate, to_hardware
from hwmodels.pipeline import run_study
from hwmodels.profile import PRESETS, DriftConfig, HardwareProfile
from hwmodels.specs import StudySpec

from .conftest import Subset

WEIGHTS = 50_000
YEAR = 31_536_000.0
PCM = DriftConfig(nu_mean=0.05, nu_spread=0.02)


def mapper(**noise: float) -> WeightMapper:
    return WeightMapper(
        HardwareProfile.model_validate(
            {"weights": {"bits": 4}, "conductance": {"on_off_ratio": 10.0}, "noise": noise}
        )
    )


def mid_range() -> torch.Tensor:
    return torch.full((WEIGHTS, 2), 0.5)


def test_each_device_decays_as_a_power_law_of_time_with_its_own_nu() -> None:
    m = mapper()
    noise = m.profile.noise
    at_t0, _ = DriftAt(PCM, 1.0).chip_pairs(m, mid_range(), noise, chip_generator(0, 0, 0))
    pairs = {}
    for time in (1e3, 1e6):
        pairs[time], gain = DriftAt(PCM, time).chip_pairs(
            m, mid_range(), m.profile.noise, chip_generator(0, 0, 0)
        )
        assert gain == 1.0  # no compensation asked for
    nu = -torch.log(pairs[1e6] / at_t0) / math.log(1e6)
    nu_later = -torch.log(pairs[1e3] / at_t0) / math.log(1e3)
    assert torch.allclose(nu, nu_later, atol=1e-4)  # the same nu at every time
    assert float(nu.mean()) == pytest.approx(0.05, abs=0.002)  # clipping at 0 lifts it a little
    assert float(nu.std()) == pytest.approx(0.02, abs=0.002)
    assert float(nu.min()) == 0.0  # clipped, never negative
    positive, negative = nu[:, 0], nu[:, 1]  # the two devices of a pair drift independently
    assert abs(float(torch.corrcoef(torch.stack([positive, negative]))[0, 1])) < 0.03


def test_the_chip_at_t0_is_the_chip_without_drift() -> None:
    m = mapper(programming=0.05, stuck_off=0.01, stuck_on=0.01)
    plain = chip_pairs(m, mid_range(), m.profile.noise, chip_generator(4, 2, 1))
    at_t0, gain = DriftAt(PCM, 1.0, compensated=True).chip_pairs(
        m, mid_range(), m.profile.noise, chip_generator(4, 2, 1)
    )
    assert torch.equal(plain, at_t0) and gain == 1.0


def test_stuck_devices_do_not_drift_and_every_other_device_does() -> None:
    m = mapper(programming=0.02, stuck_off=0.02, stuck_on=0.02)
    drift = DriftAt(DriftConfig(nu_mean=0.05), YEAR)
    _, faults = programmed_pairs(m, mid_range(), m.profile.noise, chip_generator(1, 0, 0))
    assert faults is not None
    at_t0 = chip_pairs(m, mid_range(), m.profile.noise, chip_generator(1, 0, 0)).reshape(-1)
    later, _ = drift.chip_pairs(m, mid_range(), m.profile.noise, chip_generator(1, 0, 0))
    later = later.reshape(-1)
    stuck = torch.zeros_like(later, dtype=torch.bool)
    stuck[faults.index] = True
    assert torch.equal(later[stuck], at_t0[stuck])
    ratio = later[~stuck] / at_t0[~stuck]
    assert torch.allclose(ratio, torch.full_like(ratio, YEAR**-0.05), rtol=1e-5)


def test_compensation_undoes_a_uniform_decay_exactly() -> None:
    m = mapper(programming=0.03)
    drift = DriftAt(DriftConfig(nu_mean=0.05, compensation=True), 3600.0, compensated=True)
    at_t0 = chip_pairs(m, mid_range(), m.profile.noise, chip_generator(0, 0, 0))
    later, gain = drift.chip_pairs(m, mid_range(), m.profile.noise, chip_generator(0, 0, 0))
    assert gain == pytest.approx(3600.0**0.05, rel=1e-6)
    assert torch.allclose(later * gain, at_t0, rtol=1e-5)


def test_nu_is_drawn_per_chip_and_deterministic_by_seed(
    trained_float: torch.nn.Module, mnist_subset: Subset
) -> None:
    profile = HardwareProfile.model_validate({"weights": {"bits": 3}, "drift": PCM.model_dump()})
    net = to_hardware(trained_float, profile)  # type: ignore[arg-type]
    calibrate(net, mnist_subset.train_images[:1000])
    day = DriftAt(profile.drift, 86400.0)
    first = chip_weights(net, chip=0, seed=5, drift=day)
    assert all(torch.equal(a, b) for a, b in zip(first, chip_weights(net, 0, 5, day), strict=True))
    assert not torch.equal(first[0], chip_weights(net, 1, 5, day)[0])  # another chip
    assert not torch.equal(first[0], chip_weights(net, 0, 6, day)[0])  # another seed
    at_t0 = chip_weights(net, 0, 5)
    assert not torch.equal(first[0], at_t0[0])


def test_default_drift_leaves_profile_and_spec_dumps_unchanged() -> None:
    for profile in PRESETS.values():
        assert "drift" not in profile.model_dump() and profile.drift == DriftConfig()
    assert "drift_times_s" not in StudySpec().model_dump()["evaluation"]
    with_drift = PRESETS["pcm-3bit"].with_overrides({"drift": {"nu_mean": 0.05}})
    assert with_drift.model_dump()["drift"]["nu_mean"] == 0.05 and not with_drift.is_ideal


def test_the_cost_counts_one_evaluation_per_time_and_two_with_compensation() -> None:
    base: dict[str, Any] = {"evaluation": {"chips": 10, "drift_times_s": [1, 10, 100]}}
    plain = StudySpec.model_validate({**base, "profile": {"drift": {"nu_mean": 0.05}}})
    compensated = StudySpec.model_validate(
        {**base, "profile": {"drift": {"nu_mean": 0.05, "compensation": True}}}
    )
    at_t0 = estimate_cost(StudySpec.model_validate({"evaluation": {"chips": 10}})).parts[2]
    assert estimate_cost(plain).parts[2].passes == 4 * at_t0.passes
    assert estimate_cost(compensated).parts[2].passes == 7 * at_t0.passes
    assert "7 evaluations" in estimate_cost(compensated).parts[2].detail


def _study(drift: dict[str, Any] | None, hw_epochs: int) -> StudySpec:
    profile: dict[str, Any] = {
        "weights": {"bits": 3},
        "conductance": {"on_off_ratio": 100.0},
        "activations": {"bits": 4},
        "noise": {"programming": 0.02, "read": 0.01},
    }
    if drift is not None:
        profile["drift"] = drift
    return StudySpec.model_validate(
        {
            "network": {"hidden": [64]},
            "profile": profile,
            # Explicit, so a change of the default recipe does not move these numbers.
            "training": {
                "epochs": 3,
                "hw_epochs": hw_epochs,
                "hw_learning_rate": 5e-4,
                "train_samples": 6000,
            },
            "evaluation": {"chips": 4, "test_samples": 1000, "drift_times_s": [1, 3600, YEAR]},
        }
    )


def test_without_drift_accuracy_is_the_same_at_every_time(data_dir: Path) -> None:
    report = run_study(_study(None, hw_epochs=0), data_dir=data_dir).report
    assert report.drift is not None and [p.time_s for p in report.drift] == [1, 3600, YEAR]
    for point in report.drift:
        assert point.naive == report.naive and point.hardware_aware == report.hardware_aware
        assert point.naive_compensated is None


def test_drift_lowers_accuracy_over_time_and_compensation_wins_part_back(data_dir: Path) -> None:
    drift = {"nu_mean": 0.06, "nu_spread": 0.01, "compensation": True}
    report = run_study(_study(drift, hw_epochs=1), data_dir=data_dir).report
    assert report.drift is not None
    start, hour, year = report.drift
    assert start.naive == report.naive and start.hardware_aware == report.hardware_aware
    for model in ("naive", "hardware_aware"):
        at_t0 = getattr(report, model).mean
        plain = [getattr(p, model).mean for p in (start, hour, year)]
        compensated = getattr(year, model + "_compensated").mean
        assert plain[0] > plain[1] > plain[2] and at_t0 - plain[2] > 0.02, (model, plain)
        assert compensated > plain[2] + 0.005, (model, compensated, plain)
