"""run_study end to end on a small slice of real MNIST: report, artifacts, progress, cancel."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from hwmodels.datasets.catalog import DOWNLOAD_ENV
from hwmodels.datasets.errors import DatasetUnavailableError
from hwmodels.network import FloatMLP, HardwareMLP
from hwmodels.pipeline import calibration_images, hold_out, run_study
from hwmodels.profile import ConductanceConfig, get_preset
from hwmodels.progress import JobCancelled, ProgressEvent
from hwmodels.report import ARTIFACTS, RobustnessReport
from hwmodels.specs import StudySpec


def small_spec(preset: str) -> StudySpec:
    return StudySpec.model_validate(
        {
            "network": {"hidden": [64, 32]},
            "profile": get_preset(preset).model_dump(),
            "training": {
                "epochs": 2,
                "hw_epochs": 2,
                "strategy": "annealed",
                "stages": 2,
                "train_samples": 3000,
            },
            "evaluation": {"chips": 4, "test_samples": 1000},
        }
    )


def _check_figure_data(report: RobustnessReport) -> None:
    """The report page's data agrees with the report's own numbers."""
    figures = report.figures
    assert figures is not None
    confusion = np.asarray(figures.confusion)
    assert confusion.shape == (10, 10) and confusion.sum() == 4 * 1000  # chips x images
    # The same chips as the statistics: the diagonal is the mean accuracy.
    assert np.trace(confusion) / confusion.sum() == pytest.approx(report.hardware_aware.mean)
    for layer, histogram in zip(report.layers, figures.weights, strict=True):
        weights = layer.fan_in * layer.fan_out
        assert sum(histogram.float_counts) == sum(histogram.hardware_aware_counts) == weights
        assert histogram.unit == "level" and len(histogram.level_positions) == 7  # 2L + 1
    assert len(figures.device.level_u) == 4  # 2-bit devices
    assert figures.device.positive[0] < figures.device.positive[-1] == 1.0
    assert [point.phase for point in figures.training] == ["float"] * 2 + ["hardware_aware"] * 2
    assert all(0.0 < (point.validation_accuracy or 0.0) <= 1.0 for point in figures.training)
    assert len(report.model_dump_json()) < 40_000


def test_a_study_produces_its_report_and_every_artifact(data_dir: Path) -> None:
    events: list[ProgressEvent] = []
    result = run_study(small_spec("rram-2bit"), data_dir=data_dir, on_progress=events.append)
    report = result.report
    assert set(result.artifacts) == set(ARTIFACTS)
    assert RobustnessReport.model_validate_json(result.artifacts["report.json"]) == report
    assert report.naive.chips == report.hardware_aware.chips == 4
    assert report.naive_drop_pp == pytest.approx(100 * (report.float_accuracy - report.naive.mean))
    assert report.hardware_aware.mean > report.naive.mean
    assert [layer.name for layer in report.layers] == ["layer1", "layer2", "layer3"]
    assert set(report.timings_s) >= {"float_training", "hardware_aware_training", "total"}

    rows = list(csv.DictReader(io.StringIO(result.artifacts["metrics.csv"].decode())))
    assert [r["phase"] for r in rows] == ["float"] * 2 + ["hardware_aware"] * 2
    _check_figure_data(report)
    assert [r["stage"] for r in rows[2:]] == ["0", "1"]
    # Every epoch is scored on the 300 held-out training images (10% of 3,000).
    assert all(0.1 < float(r["validation_accuracy"]) <= 1.0 for r in rows)
    counts = [float(r["validation_accuracy"]) * 300 for r in rows]
    assert all(abs(count - round(count)) < 1e-3 for count in counts)

    levels = np.load(io.BytesIO(result.artifacts["device_levels.npz"]), allow_pickle=False)
    assert levels["layer1_positive"].dtype == np.uint8
    assert levels["layer1_positive"].shape == (64, 784)
    assert int(levels["layer1_positive"].max()) <= 3
    assert "rram-2bit" in str(levels["profile_json"])

    float_net = FloatMLP([784, 64, 32, 10])
    float_net.load_state_dict(torch.load(io.BytesIO(result.artifacts["float_weights.pt"])))
    hw_net = HardwareMLP([784, 64, 32, 10], report.profile)
    hw_net.load_state_dict(torch.load(io.BytesIO(result.artifacts["hw_weights.pt"])))
    assert float(hw_net.neurons()[0].a_max) > 0

    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions)
    assert events[-1].phase == "done" and events[-1].fraction == 1.0
    phases = [e.phase for e in events if e.kind == "phase"]
    assert phases == [
        "loading_data",
        "float_training",
        "naive_evaluation",
        "hardware_aware_training",
        "hardware_aware_evaluation",
        "done",
    ]


def test_an_ideal_profile_skips_hardware_aware_training(data_dir: Path) -> None:
    result = run_study(small_spec("ideal"), data_dir=data_dir)
    report = result.report
    assert report.naive.mean == report.float_accuracy
    assert report.hardware_aware == report.naive
    assert report.recovered_fraction is None
    rows = result.artifacts["metrics.csv"].decode().splitlines()
    assert all(not row.startswith("hardware_aware") for row in rows)


def test_a_study_stops_when_cancelled(data_dir: Path) -> None:
    checks = 0

    def cancel_soon() -> bool:
        nonlocal checks
        checks += 1
        return checks > 5

    with pytest.raises(JobCancelled):
        run_study(small_spec("rram-2bit"), data_dir=data_dir, should_cancel=cancel_soon)


def test_a_profile_the_engine_rejects_fails_before_any_data_or_training(tmp_path: Path) -> None:
    """The hardware model is built first: a bad profile costs no training run."""
    flat = ConductanceConfig.model_construct(
        on_off_ratio=1.0, nonlinearity=0.0, asymmetry=0.0, nonlinearity_mismatch=0.0
    )  # skips the validator that refuses it, as a stale stored spec would
    profile = get_preset("rram-2bit").model_copy(update={"conductance": flat})
    spec = small_spec("rram-2bit").model_copy(update={"profile": profile})
    events: list[ProgressEvent] = []
    with pytest.raises(ValueError, match=r"on_off_ratio 1\.0 leaves no conductance range"):
        run_study(spec, data_dir=tmp_path, on_progress=events.append, allow_download=False)
    assert not [event for event in events if event.phase == "float_training"]
    assert events == []  # not even the data was loaded (tmp_path holds none)


def test_allow_download_overrides_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DOWNLOAD_ENV, "true")
    with pytest.raises(DatasetUnavailableError, match="downloads are turned off"):
        run_study(small_spec("ideal"), data_dir=tmp_path, allow_download=False)


def test_the_validation_split_is_the_tail_of_the_training_images() -> None:
    images, labels = torch.arange(40.0).reshape(20, 2), torch.arange(20)
    (fit_images, fit_labels), (held_images, held_labels) = hold_out(images, labels, 0.1)
    assert fit_labels.tolist() == list(range(18)) and held_labels.tolist() == [18, 19]
    assert torch.equal(torch.cat([fit_images, held_images]), images)
    assert torch.equal(
        calibration_images((fit_images, fit_labels), (held_images, held_labels)), held_images
    )
    nothing_held = hold_out(images, labels, 0.0)
    assert nothing_held[1][1].numel() == 0
    assert torch.equal(calibration_images(*nothing_held), images)


HARSH = {
    "weights": {"bits": 2},
    "activations": {"bits": 3},
    "conductance": {"on_off_ratio": 10.0, "nonlinearity": 3.0, "asymmetry": 0.2},
    "noise": {"programming": 0.03},
}
"""The harsh combined profile of bench/reproduce.py."""


def test_the_default_recipe_recovers_the_harsh_profile_on_real_mnist(
    compiled_engine: None, data_dir: Path
) -> None:
    """Default training settings but for the budget: naive deployment loses most of the
    float accuracy, hardware-aware training wins nearly all of it back (on the compiled
    engine, as a worker runs it)."""
    spec = StudySpec.model_validate(
        {
            "network": {"hidden": [128, 64]},
            "profile": HARSH,
            "training": {"epochs": 4, "hw_epochs": 4, "train_samples": 6000},
            "evaluation": {"chips": 5, "test_samples": 2000},
        }
    )
    report = run_study(spec, data_dir=data_dir).report
    assert report.naive_drop_pp > 20.0
    assert report.hardware_aware_drop_pp < 1.5
    assert report.float_accuracy - report.hardware_aware.worst < 0.02
