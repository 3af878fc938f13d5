"""End to end: `train --json` on a small MNIST subset through the real pipeline."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from hwmodels.cli import main
from hwmodels.datasets.catalog import DATASETS
from hwmodels.report import ARTIFACTS, RobustnessReport
from tests.datasets.helpers import OFFLINE_MIRROR


def test_train_json_on_a_small_mnist_subset(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "artifacts"
    argv = [
        "train", "--dataset", "mnist", "--hidden", "32", "--preset", "rram-2bit",
        "--set", "noise.programming=0.05", "--epochs", "1", "--hw-epochs", "1", "--stages", "1",
        "--chips", "3", "--train-samples", "2000", "--test-samples", "500", "--batch-size", "100",
        "--lr", "0.01",
        "--data-dir", str(data_dir), "--out", str(out), "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    report = RobustnessReport.model_validate_json(captured.out)  # stdout holds only the JSON
    assert report.dataset == "mnist" and report.layer_sizes == [784, 32, 10]
    assert report.profile.name == "rram-2bit+overrides" and report.profile.noise.programming == 0.05
    assert report.evaluation.chips == 3 and len(report.hardware_aware.accuracies) == 3
    assert report.float_accuracy > 0.5, "1 epoch on 2000 images must beat chance by far"
    assert sorted(p.name for p in out.iterdir()) == sorted(ARTIFACTS)
    assert json.loads((out / "report.json").read_text()) == json.loads(captured.out)
    assert "artifacts written to" in captured.err


def test_train_without_data_exits_1_and_says_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    offline = replace(DATASETS["mnist"], mirrors=(OFFLINE_MIRROR,))
    monkeypatch.setitem(DATASETS, "mnist", offline)
    argv = ["train", "--hidden", "8", "--data-dir", str(tmp_path), "--quiet", "--json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("hwscore train: error: dataset 'mnist' is missing 2 file(s)")
    assert f"Put the files in {tmp_path / 'mnist'}" in captured.err
