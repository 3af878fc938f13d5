"""The engine's command line (hwmodels.cli): presets, input errors, spec building, output."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwmodels.cli import (
    ProgressBar,
    build_spec,
    format_duration,
    format_report,
    main,
    parse_overrides,
    register,
)
from hwmodels.profile import PRESETS, HardwareProfile
from hwmodels.progress import ProgressEvent
from hwmodels.report import ChipStatistics, RobustnessReport
from hwmodels.specs import EvaluationSettings, TrainingSettings
from tests.conftest import REPO_ROOT


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_module_import_stays_torch_free_and_runs_as_a_program() -> None:
    check = "import sys, hwmodels.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", check], check=True, cwd=REPO_ROOT)
    listed = subprocess.run(
        [sys.executable, "-m", "hwmodels", "profiles", "--json"],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert [p["name"] for p in json.loads(listed.stdout)] == list(PRESETS)


def test_profiles_table_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert set(PRESETS) <= set(rows)
    assert rows["rram-2bit"][1:6] == ["2", "10", "3", "0.03/0.01", "0.7%"]
    assert rows["ideal"][1:4] == ["float", "inf", "0"]


def test_profiles_json_is_the_full_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "--json"]) == 0
    profiles = [HardwareProfile.model_validate(p) for p in json.loads(capsys.readouterr().out)]
    assert profiles == list(PRESETS.values())


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--preset", "rram-9bit"], "unknown hardware preset 'rram-9bit'; valid presets: fefet"),
        (["--preset", "pcm-3bit", "--set", "noize.read=0.1"], "noize: unknown field"),
        (["--set", "noise.programming=2"], "noise.programming: Input should be less than"),
        (["--set", "noise.programming"], "--set expects FIELD=VALUE"),
        (["--hidden", "4096", "2048"], "parameters on mnist; the limit is 5,000,000"),
        (["--hidden", "0"], "--hidden: every hidden width must be between 1 and 8192"),
        (["--epochs", "0"], "--epochs: Input should be greater than or equal to 1"),
        (["--chips", "100000"], "--chips: Input should be less than or equal to 1000"),
        (["--dataset", "kmnist"], "unknown dataset 'kmnist'"),
        (["--profile-file", "/nonexistent/p.json"], "cannot read --profile-file"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("hwscore train: error: ")
    assert expected in captured.err and captured.err.count("\n") == 1


def test_set_values_are_typed() -> None:
    overrides = parse_overrides(
        [
            "noise.programming=0.05",
            "weights.bits=null",
            "activations.function=sigmoid",
            "a.b.c=true",
        ]
    )
    assert overrides == {
        "noise": {"programming": 0.05},
        "weights": {"bits": None},
        "activations": {"function": "sigmoid"},
        "a": {"b": {"c": True}},
    }


def test_spec_from_arguments_keeps_spec_defaults() -> None:
    args = _parse(
        "train", "--dataset", "emnist-letters", "--hidden", "64", "--preset", "rram-2bit",
        "--set", "noise.programming=0.05", "--epochs", "3", "--strategy", "ste",
        "--chips", "7", "--train-samples", "1000", "--no-noise-injection",
    )  # fmt: skip
    spec = build_spec(args)
    assert spec.dataset == "emnist-letters" and spec.network.layer_sizes(spec.dataset) == [
        784,
        64,
        26,
    ]
    assert spec.profile.name == "rram-2bit+overrides"
    assert spec.profile.noise.programming == 0.05
    assert spec.profile.weights.bits == PRESETS["rram-2bit"].weights.bits
    assert (spec.training.epochs, spec.training.strategy, spec.training.train_samples) == (
        3,
        "ste",
        1000,
    )
    assert spec.training.noise_injection is False
    assert spec.training.hw_epochs == TrainingSettings().hw_epochs
    assert spec.evaluation == EvaluationSettings(chips=7)


def test_profile_file_is_used_with_set_and_must_be_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chip.json"
    path.write_text(
        json.dumps({"name": "lab-chip", "weights": {"bits": 3}, "noise": {"read": 0.02}})
    )
    spec = build_spec(_parse("train", "--profile-file", str(path), "--set", "noise.read=0.04"))
    assert (spec.profile.weights.bits, spec.profile.noise.read) == (3, 0.04)
    path.write_text("{not json")
    assert main(["train", "--profile-file", str(path)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize("profile_file", ["chip.json", "/nonexistent/p.json"])
def test_preset_with_profile_file_is_a_conflict_before_the_file_is_read(
    profile_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--preset", "ideal", "--profile-file", profile_file]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "argument --profile-file: not allowed with argument --preset" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--epochs", "abc"], "argument --epochs: invalid int value: 'abc'"),
        (["train", "--strategy", "magic"], "argument --strategy: invalid choice: 'magic'"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["trian"], "argument COMMAND: invalid choice: 'trian'"),
    ],
)
def test_usage_errors_are_one_line_too(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("python -m hwmodels")
    assert expected in captured.err and "--help)" in captured.err
    assert "usage:" not in captured.err


def _stats(accuracies: list[float]) -> ChipStatistics:
    mean = sum(accuracies) / len(accuracies)
    return ChipStatistics(
        chips=len(accuracies), mean=mean, std=0.01, worst=min(accuracies),
        p5=min(accuracies), best=max(accuracies), accuracies=accuracies,
    )  # fmt: skip


def test_result_table_shows_every_figure() -> None:
    report = RobustnessReport(
        dataset="mnist", layer_sizes=[784, 32, 10], parameters=25_450,
        profile=PRESETS["rram-2bit"], training=TrainingSettings(), evaluation=EvaluationSettings(),
        float_accuracy=0.97, naive=_stats([0.50, 0.60]), hardware_aware=_stats([0.94, 0.96]),
        naive_drop_pp=42.0, hardware_aware_drop_pp=2.0, recovered_fraction=40 / 42,
        layers=[], timings_s={},
    )  # fmt: skip
    lines = format_report(report).splitlines()
    assert lines[0].startswith("mnist  784-32-10 (25,450 parameters)  profile rram-2bit  2 chips")
    assert lines[2].split() == ["float", "97.00%"]
    assert lines[3].split() == ["naive", "55.00%", "1.00%", "50.00%", "50.00%", "42.00"]
    assert lines[4].split() == ["hardware-aware", "95.00%", "1.00%", "94.00%", "94.00%", "2.00"]
    assert lines[5] == "recovered: 95% of the naive loss"


def test_progress_without_terminal_prints_phases_and_epochs(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w+") as stream:
        bar = ProgressBar(stream)
        bar(ProgressEvent(kind="phase", phase="float_training", fraction=0.05))
        bar(ProgressEvent(kind="batch", phase="float_training", fraction=0.06, batch=1, batches=9))
        bar(
            ProgressEvent(
                kind="epoch", phase="float_training", fraction=0.1, epoch=1, epochs=2, loss=0.5
            )
        )
        bar.close()
        stream.seek(0)
        lines = stream.read().splitlines()
    assert lines == ["[  5%] float training", "[ 10%] float training  epoch 1/2  loss 0.5000"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_estimates_the_time_left_from_the_pace_it_saw(tmp_path: Path) -> None:
    clock = FakeClock()
    with (tmp_path / "log").open("w+") as stream:
        bar = ProgressBar(stream, clock=clock)
        bar.show(0.20, "float training")  # a wait that joins a job already 20% done
        clock.now += 1.0
        bar.show(0.25, "float training")  # too early to tell
        clock.now += 9.0
        bar.show(0.40, "float training")  # 20 points in 10 s: 60 points take 30 s
        clock.now += 150.0
        bar.show(0.50, "hardware aware training")  # 30 points in 160 s: 50 take 267 s
        stream.seek(0)
        lines = stream.read().splitlines()
    assert lines == [
        "[ 20%] float training",
        "[ 25%] float training",
        "[ 40%] float training  ETA 30s",
        "[ 50%] hardware aware training  ETA 4m27s",
    ]


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.4, "0s"), (59.4, "59s"), (61, "1m01s"), (3725, "1h02m")]
)
def test_durations_are_short(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown
