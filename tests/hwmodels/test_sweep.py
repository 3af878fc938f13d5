"""The evaluate-mode sweep engine on a slice of real MNIST, and the grid it is given."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from hwmodels.profile import get_preset
from hwmodels.progress import JobCancelled, ProgressEvent
from hwmodels.specs import StudySpec
from hwmodels.sweep import run_evaluation_sweep
from hwmodels.sweep_spec import PointValueError, SweepEvaluationReport, build_points

BASE = get_preset("rram-4bit")
SPEC = StudySpec.model_validate(
    {
        "network": {"hidden": [32]},
        "profile": BASE.model_dump(),
        "training": {"epochs": 1, "hw_epochs": 1, "train_samples": 1000, "batch_size": 64},
        "evaluation": {"chips": 3, "test_samples": 300},
    }
)


def test_the_grid_is_every_combination_as_named_profiles() -> None:
    points = build_points(BASE, [("weight_bits", [2, 4]), ("programming_noise", [0.0, 0.1])])
    assert [p.values for p in points] == [
        {"weight_bits": 2, "programming_noise": 0.0},
        {"weight_bits": 2, "programming_noise": 0.1},
        {"weight_bits": 4, "programming_noise": 0.0},
        {"weight_bits": 4, "programming_noise": 0.1},
    ]
    assert points[1].profile.weights.bits == 2 and points[1].profile.noise.programming == 0.1
    assert points[1].profile.conductance == BASE.conductance  # the rest is the base's
    assert points[1].profile.name == "rram-4bit weight_bits=2, programming_noise=0.1"
    with pytest.raises(PointValueError, match=r"weights\.bits") as refused:
        build_points(BASE, [("weight_bits", [4, 9])])
    assert (refused.value.axis, refused.value.position) == (0, 1)


def test_evaluation_sweep_repeats_the_base_study_at_its_own_values(data_dir: Path) -> None:
    noise = [0.0, BASE.noise.programming, 0.3]
    events: list[ProgressEvent] = []
    result = run_evaluation_sweep(
        SPEC,
        build_points(BASE, [("programming_noise", noise)]),
        data_dir=data_dir,
        on_progress=events.append,
        allow_download=False,
    )
    report = result.report
    assert isinstance(report, SweepEvaluationReport)
    assert [p.values["programming_noise"] for p in report.sweep_points] == noise
    at_base = report.sweep_points[1]
    assert at_base.naive_mean == report.naive.mean  # the same network on the same chips
    assert at_base.hardware_aware_mean == report.hardware_aware.mean
    fractions = [event.fraction for event in events]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(fractions)) and fractions[-1] == 1.0
    assert [e.phase for e in events].count("done") == 1
    assert b"sweep_points" in result.artifacts["report.json"]


def test_evaluation_sweep_stops_when_cancelled(data_dir: Path) -> None:
    calls = iter(range(10_000))
    with pytest.raises(JobCancelled):
        run_evaluation_sweep(
            SPEC,
            build_points(BASE, [("programming_noise", [0.0, 0.1])]),
            data_dir=data_dir,
            should_cancel=lambda: next(calls) > 40,
            allow_download=False,
        )
