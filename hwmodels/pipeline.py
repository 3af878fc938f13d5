"""One robustness study, end to end: the function a worker or the CLI calls.

run_study(spec) builds the hardware model first (device curves, level tables, the
hardware-aware net), so a profile the engine cannot simulate fails before any data is
loaded or trained on. Then it loads the data, trains the float net, deploys it naively
on simulated chips (float weights programmed as they are, activation ranges calibrated
on training data), fine-tunes it hardware-aware, evaluates that on the same simulated
chips, and returns the report with its artifacts (names and media types in
report.ARTIFACTS).

With ``float_weights`` (a state dict in hwscore's names, see weights_check.py) the float
training is skipped: those weights are the float net, measured in float and deployed as
they are; ``spec.start_from`` names them, and ``training.epochs`` is then unused.
With a ``float_cache`` (float_cache.py) a study without given weights takes its float
net from the cache when one with the same key is stored (float training rows included),
and stores the one it trains otherwise; ``report.float_training`` says which.

Raises JobCancelled when should_cancel() answers True (checked between batches and chip
chunks) and DatasetUnavailableError when the dataset's files are missing and cannot be
fetched. On an ideal profile, or with hw_epochs = 0, there is nothing to learn: the
hardware-aware net is the naive one and its statistics are the naive statistics.

With ``evaluation.drift_times_s`` each evaluation phase also scores its network on the
same chips at every time (and compensated, when the profile asks), through the same
Monte Carlo loop; hardware-aware training itself sees the chip at t0 only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from hwmodels.artifacts import device_levels, hardware_aware_safetensors, metrics_csv, state_bytes
from hwmodels.datasets.loader import load_split
from hwmodels.drift import DriftAt, drift_points, drift_schedule
from hwmodels.evaluation import COMPUTE_DTYPES, accuracy, chip_accuracies, chip_statistics
from hwmodels.figure_data import report_figures
from hwmodels.float_cache import FloatCache, float_training_key
from hwmodels.network import (
    HardwareNet,
    build_float,
    build_hardware,
    calibrate,
    copy_hardware,
    load_float_weights,
)
from hwmodels.progress import (
    CancelCheck,
    JobCancelled,
    Phase,
    Progress,
    ProgressCallback,
    ProgressEvent,
    never_cancel,
    no_progress,
)
from hwmodels.report import ChipStatistics, FloatTraining, RobustnessReport, recovered_fraction
from hwmodels.specs import StudySpec
from hwmodels.training import (
    Validation,
    train_float,
    train_hardware_aware,
)

CALIBRATION_SAMPLES = 10_000


@dataclass(frozen=True)
class StudyResult:
    """The report and the artifacts' bytes, keyed by the names in report.ARTIFACTS."""

    report: RobustnessReport
    artifacts: dict[str, bytes]


def run_study(
    spec: StudySpec,
    *,
    data_dir: Path | None = None,
    on_progress: ProgressCallback = no_progress,
    should_cancel: CancelCheck = never_cancel,
    allow_download: bool | None = None,
    float_weights: Mapping[str, torch.Tensor] | None = None,
    float_cache: FloatCache | None = None,
) -> StudyResult:
    """Run one study; see the module docstring for the steps.

    ``allow_download``: whether missing dataset files may be fetched from the public
    mirrors; None leaves it to $HWSCORE_DOWNLOAD_DATASETS (default yes, for the command
    line). A service passes its own setting explicitly.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    cached = float_cache.load(spec) if float_cache is not None and float_weights is None else None
    plan = _Plan(spec, trains_float=float_weights is None and cached is None)
    progress = Progress(on_progress, should_cancel)
    # Before anything costly: every check the engine makes of the profile happens here.
    naive_net = build_hardware(spec.network, spec.dataset, spec.profile)

    clock = time.perf_counter()
    _phase(progress, plan, "loading_data")
    train = load_split(
        spec.dataset, "train", data_dir, limit=spec.training.train_samples, download=allow_download
    )
    test = load_split(
        spec.dataset, "test", data_dir, limit=spec.evaluation.test_samples, download=allow_download
    )
    fit, held_out = hold_out(train.images, train.labels, spec.training.validation_fraction)
    timings["load_data"] = _since(clock)
    _cancel_check(should_cancel)

    clock = time.perf_counter()
    _phase(progress, plan, "float_training")
    float_net = build_float(spec.network, spec.dataset, spec.profile, spec.training.seed)
    if cached is not None:
        float_net.load_state_dict(cached.weights)
        records = list(cached.records)
    elif float_weights is None:
        records = train_float(
            float_net, *fit, spec.training, plan.part(progress, "float_training"), held_out
        )
        if float_cache is not None:
            float_cache.store(spec, float_net.state_dict(), records)
    else:
        float_net.load_state_dict(dict(float_weights))  # strict: names and shapes checked
        records = []
    float_accuracy = accuracy(float_net, test.images, test.labels)
    timings["float_training"] = _since(clock)

    clock = time.perf_counter()
    _phase(progress, plan, "naive_evaluation")
    load_float_weights(naive_net, float_net)
    calibrate(naive_net, calibration_images(fit, held_out), CALIBRATION_SAMPLES)
    # The confusion matrix is the hardware-aware model's: the naive one's when they are one.
    confusion = torch.zeros(naive_net.sizes[-1], naive_net.sizes[-1], dtype=torch.long)
    naive, naive_over_time = _evaluate(
        naive_net,
        test.images,
        test.labels,
        spec,
        plan.part(progress, "naive_evaluation"),
        plan.drift,
        None if plan.trains_hardware_aware else confusion,
    )
    timings["naive_evaluation"] = _since(clock)

    clock = time.perf_counter()
    _phase(progress, plan, "hardware_aware_training")
    hw_net = copy_hardware(naive_net)
    if plan.trains_hardware_aware:
        records += train_hardware_aware(
            hw_net, *fit, spec.training, plan.part(progress, "hardware_aware_training"), held_out
        )
    timings["hardware_aware_training"] = _since(clock)

    clock = time.perf_counter()
    _phase(progress, plan, "hardware_aware_evaluation")
    if plan.trains_hardware_aware:
        hardware_aware, aware_over_time = _evaluate(
            hw_net,
            test.images,
            test.labels,
            spec,
            plan.part(progress, "hardware_aware_evaluation"),
            plan.drift,
            confusion,
        )
    else:
        hardware_aware, aware_over_time = naive, naive_over_time
    timings["hardware_aware_evaluation"] = _since(clock)
    timings["total"] = _since(started)

    report = _report(spec, hw_net, float_accuracy, naive, hardware_aware, timings)
    report.figures = report_figures(naive_net, hw_net, confusion, records)
    report.float_training = FloatTraining(
        reused=cached is not None,
        key=None if float_weights is not None else float_training_key(spec),
    )
    if spec.evaluation.drift_times_s is not None:
        report.drift = drift_points(plan.drift, naive_over_time, aware_over_time)
    artifacts = {
        "float_weights.pt": state_bytes(float_net),
        "hw_weights.pt": state_bytes(hw_net),
        "hw_weights.safetensors": hardware_aware_safetensors(hw_net),
        "device_levels.npz": device_levels(hw_net),
        "metrics.csv": metrics_csv(records),
        "report.json": report.model_dump_json(indent=2).encode(),
    }
    on_progress(ProgressEvent(kind="phase", phase="done", fraction=1.0))
    return StudyResult(report=report, artifacts=artifacts)


def hold_out(images: Tensor, labels: Tensor, fraction: float) -> tuple[Validation, Validation]:
    """(training, validation): the last ``fraction`` of the training split is held out
    for calibration and the per-epoch validation accuracy; training never sees it."""
    held = round(fraction * labels.shape[0])
    cut = labels.shape[0] - held
    return (images[:cut], labels[:cut]), (images[cut:], labels[cut:])


def calibration_images(fit: Validation, held_out: Validation) -> Tensor:
    """The held-out images, or the training images when nothing is held out."""
    return held_out[0] if held_out[1].numel() else fit[0]


class _Plan:
    """Each phase's share of the whole study, from a rough cost model (for progress)."""

    def __init__(self, spec: StudySpec, trains_float: bool = True) -> None:
        profile, training = spec.profile, spec.training
        self.trains_hardware_aware = not profile.is_ideal and training.hw_epochs > 0
        train_n = spec.samples("train")
        test_n = spec.samples("test")
        chips = spec.evaluation.chips
        self.drift = drift_schedule(profile.drift, spec.evaluation.drift_times_s or [])
        noisy = profile.noise.programming > 0 or profile.noise.read > 0 or profile.drift.active
        eval_cost = (1 + len(self.drift)) * test_n * (chips if noisy else 1) / 6.0
        cost: dict[Phase, float] = {
            "loading_data": 0.02 * train_n,
            "float_training": training.epochs * train_n if trains_float else 0.0,
            "naive_evaluation": eval_cost + CALIBRATION_SAMPLES / 3,
            "hardware_aware_training": (
                1.7 * training.hw_epochs * train_n if self.trains_hardware_aware else 0.0
            ),
            "hardware_aware_evaluation": eval_cost if self.trains_hardware_aware else 0.0,
        }
        total = sum(cost.values())
        self.start: dict[Phase, float] = {}
        self.span: dict[Phase, float] = {}
        position = 0.0
        for phase, value in cost.items():
            self.start[phase] = position
            self.span[phase] = value / total
            position += value / total

    def part(self, progress: Progress, phase: Phase) -> Progress:
        return progress.part(phase, self.start[phase], self.span[phase])


def _phase(progress: Progress, plan: _Plan, phase: Phase) -> None:
    progress.on_progress(ProgressEvent(kind="phase", phase=phase, fraction=plan.start[phase]))


def _cancel_check(should_cancel: CancelCheck) -> None:
    if should_cancel():
        raise JobCancelled("cancelled")


def _evaluate(
    net: HardwareNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: StudySpec,
    progress: Progress,
    schedule: list[DriftAt],
    confusion: torch.Tensor | None,
) -> tuple[ChipStatistics, list[ChipStatistics]]:
    """Statistics at t0 (with the confusion counts), then at each point of ``schedule``."""
    share = 1.0 / (1 + len(schedule))
    at_t0 = _chips(net, images, labels, spec, progress.part(progress.phase, 0.0, share), confusion)
    over_time = [
        _chips(
            net,
            images,
            labels,
            spec,
            progress.part(progress.phase, (1 + index) * share, share),
            drift=at,
        )
        for index, at in enumerate(schedule)
    ]
    return at_t0, over_time


def _chips(
    net: HardwareNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: StudySpec,
    part: Progress,
    confusion: torch.Tensor | None = None,
    drift: DriftAt | None = None,
) -> ChipStatistics:
    chips = spec.evaluation.chips

    def on_chips(done: int) -> None:
        part.emit("chips", done / chips, extra={"chips": done, "of": chips})

    accuracies = chip_accuracies(
        net,
        images,
        labels,
        chips=chips,
        seed=spec.training.seed,
        compute_dtype=COMPUTE_DTYPES[spec.evaluation.compute_dtype],
        on_chips=on_chips,
        should_cancel=part.should_cancel,
        confusion=confusion,
        drift=drift,
    )
    return chip_statistics(accuracies)


def _report(
    spec: StudySpec,
    net: HardwareNet,
    float_accuracy: float,
    naive: ChipStatistics,
    hardware_aware: ChipStatistics,
    timings: dict[str, float],
) -> RobustnessReport:
    naive_drop = 100.0 * (float_accuracy - naive.mean)
    aware_drop = 100.0 * (float_accuracy - hardware_aware.mean)
    layers = [
        net.mapper.layer_statistics(f"layer{index + 1}", layer.weight.detach()).model_copy(
            update={"arrays": layer.grid.arrays}
        )
        for index, layer in enumerate(net.hardware_layers())
    ]
    return RobustnessReport(
        dataset=spec.dataset,
        layer_sizes=net.sizes,
        parameters=spec.network.parameter_count(spec.dataset),
        profile=spec.profile,
        training=spec.training,
        evaluation=spec.evaluation,
        float_accuracy=float_accuracy,
        naive=naive,
        hardware_aware=hardware_aware,
        naive_drop_pp=naive_drop,
        hardware_aware_drop_pp=aware_drop,
        recovered_fraction=recovered_fraction(naive_drop, aware_drop),
        layers=layers,
        timings_s={key: round(value, 3) for key, value in timings.items()},
    )


def _since(clock: float) -> float:
    return time.perf_counter() - clock


__all__ = ["StudyResult", "calibration_images", "hold_out", "run_study"]
