"""An evaluate-mode robustness sweep: train once, then score that network on many chips.

``run_evaluation_sweep(spec, points)`` runs the base study with ``run_study`` (float and
hardware-aware training on the base profile, its full report and artifacts), then
deploys the same two trained networks on the hardware of every point and scores them
over simulated chips. Nothing is trained again: this measures how robust one trained
model is to hardware it was not trained for.

Each point is deployed as the pipeline deploys the base profile: the naive network is
the float weights on the point's chip with its ranges (activation clip, DAC, ADC)
calibrated on the held-out training images; the hardware-aware network keeps the DAC and
ADC ranges and takes the hardware-aware weights and learned activation clips, exactly as
``run_study`` fine-tunes a calibrated copy. So at the base profile's own values a point
repeats the base study's numbers.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import torch

from hwmodels.cost import estimate_cost
from hwmodels.datasets.loader import load_split
from hwmodels.evaluation import COMPUTE_DTYPES, chip_accuracies, chip_statistics
from hwmodels.float_cache import FloatCache
from hwmodels.network import (
    HardwareNet,
    build_float,
    build_hardware,
    calibrate,
    copy_hardware,
    copy_learned_clips,
    load_float_weights,
    to_float,
)
from hwmodels.pipeline import (
    CALIBRATION_SAMPLES,
    StudyResult,
    calibration_images,
    hold_out,
    run_study,
)
from hwmodels.progress import (
    CancelCheck,
    JobCancelled,
    Phase,
    ProgressCallback,
    ProgressEvent,
    never_cancel,
    no_progress,
)
from hwmodels.report import ChipStatistics
from hwmodels.specs import StudySpec
from hwmodels.sweep_spec import PointResult, SweepEvaluationReport, SweepPoint

BASE_SHARE_FLOOR = 0.3
"""At least this share of the progress bar is the base study (training dominates)."""


def run_evaluation_sweep(
    spec: StudySpec,
    points: Sequence[SweepPoint],
    *,
    data_dir: Path | None = None,
    on_progress: ProgressCallback = no_progress,
    should_cancel: CancelCheck = never_cancel,
    allow_download: bool | None = None,
    float_cache: FloatCache | None = None,
) -> StudyResult:
    """Run the base study, then evaluate its two networks on every point (see module doc).

    The same callbacks as ``run_study``: progress fractions cover the whole sweep, and
    JobCancelled is raised between chip chunks once ``should_cancel`` answers True.
    ``float_cache`` is handed to the base study (its float training may be reused).
    """
    base_share = _base_share(spec, len(points))

    def base_progress(event: ProgressEvent) -> None:
        if event.phase != "done":  # the sweep is not done when its base study is
            on_progress(_rescaled(event, 0.0, base_share))

    base = run_study(
        spec,
        data_dir=data_dir,
        on_progress=base_progress,
        should_cancel=should_cancel,
        allow_download=allow_download,
        float_cache=float_cache,
    )
    train = load_split(
        spec.dataset, "train", data_dir, limit=spec.training.train_samples, download=allow_download
    )
    test = load_split(
        spec.dataset, "test", data_dir, limit=spec.evaluation.test_samples, download=allow_download
    )
    fit, held_out = hold_out(train.images, train.labels, spec.training.validation_fraction)
    calibration = calibration_images(fit, held_out)
    float_net = build_float(spec.network, spec.dataset, spec.profile, spec.training.seed)
    float_net.load_state_dict(_state(base.artifacts["float_weights.pt"]))
    trained = build_hardware(spec.network, spec.dataset, spec.profile)
    trained.load_state_dict(_state(base.artifacts["hw_weights.pt"]))
    aware_weights = to_float(trained)

    scorer = _Scorer(spec, test.images, test.labels, on_progress, should_cancel, len(points))
    results = []
    span = (1.0 - base_share) / max(len(points), 1)
    for number, point in enumerate(points):
        start = base_share + number * span
        naive_net = build_hardware(spec.network, spec.dataset, point.profile)
        load_float_weights(naive_net, float_net)
        calibrate(naive_net, calibration, CALIBRATION_SAMPLES)
        aware_net = load_float_weights(copy_hardware(naive_net), aware_weights)
        copy_learned_clips(aware_net, trained)
        half = span / 2
        naive = scorer.score(naive_net, point, "naive_evaluation", start, half)
        aware = scorer.score(aware_net, point, "hardware_aware_evaluation", start + half, half)
        results.append(
            PointResult(
                index=point.index,
                values=point.values,
                naive_mean=naive.mean,
                naive_std=naive.std,
                hardware_aware_mean=aware.mean,
                hardware_aware_std=aware.std,
                chips=naive.chips,
            )
        )
    report = SweepEvaluationReport(**base.report.model_dump(), sweep_points=results)
    artifacts = dict(base.artifacts)
    artifacts["report.json"] = report.model_dump_json(indent=2).encode()
    on_progress(ProgressEvent(kind="phase", phase="done", fraction=1.0))
    return StudyResult(report=report, artifacts=artifacts)


class _Scorer:
    """Scores networks over the study's simulated chips, reporting progress per point."""

    def __init__(
        self,
        spec: StudySpec,
        images: torch.Tensor,
        labels: torch.Tensor,
        on_progress: ProgressCallback,
        should_cancel: CancelCheck,
        points: int,
    ) -> None:
        self.spec, self.images, self.labels = spec, images, labels
        self.on_progress, self.should_cancel, self.points = on_progress, should_cancel, points

    def score(
        self, net: HardwareNet, point: SweepPoint, phase: Phase, start: float, span: float
    ) -> ChipStatistics:
        """Accuracy over chips; progress moves from ``start`` over ``span`` of the bar."""
        chips = self.spec.evaluation.chips
        where = {"point": point.index + 1, "points": self.points}

        def on_chips(done: int) -> None:
            fraction = start + span * done / chips
            extra = {"chips": done, "of": chips, **where}
            self.on_progress(ProgressEvent("chips", phase, fraction, extra=extra))

        if self.should_cancel():
            raise JobCancelled("cancelled")
        self.on_progress(ProgressEvent("phase", phase, start, extra=where))
        accuracies = chip_accuracies(
            net,
            self.images,
            self.labels,
            chips=chips,
            seed=self.spec.training.seed,
            compute_dtype=COMPUTE_DTYPES[self.spec.evaluation.compute_dtype],
            on_chips=on_chips,
            should_cancel=self.should_cancel,
        )
        return chip_statistics(accuracies)


def _base_share(spec: StudySpec, points: int) -> float:
    """The base study's share of the progress bar, from the engine's cost model."""
    cost = estimate_cost(spec)
    base = cost.total
    evaluation = next(part.passes for part in cost.parts if part.name == "chip evaluation")
    total = base + 2 * points * evaluation
    return max(BASE_SHARE_FLOOR, base / total) if total else 1.0


def _rescaled(event: ProgressEvent, start: float, span: float) -> ProgressEvent:
    """The base study's event, its fraction mapped into [start, start + span]."""
    return dataclasses.replace(event, fraction=start + span * event.fraction)


def _state(content: bytes) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(io.BytesIO(content), weights_only=True)
    return state


__all__ = ["run_evaluation_sweep"]
