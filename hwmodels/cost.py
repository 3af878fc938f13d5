"""What a study will cost, estimated from its spec alone (no torch), before it runs.

A service checks the estimate at submit against a budget derived from its time limit,
so a job that cannot finish in time is refused at once, with the knob to lower, instead
of failing hours later. The unit is the *parameter-sample pass*: one sample through every
weight and bias of the network once (about one multiply-accumulate per parameter). A
study costs

    training samples x (epochs + hw_epochs) x parameters
        + chips x test samples x parameters x evaluations

(training counts forward, backward and hardware transform as one pass per sample and
epoch; the Monte Carlo counts one pass per chip and test image, and ``evaluations`` is 1
plus one per drift time, two per time with drift compensation). The constant below turns
passes into seconds; it carries the factors the formula leaves out.

A conv net reuses each weight at every output position, so its "parameters" in the
formula are its multiply-accumulates per sample (bias additions included, which for an
MLP is exactly its parameter count), those of conv layers weighted by
CONV_WORK_FACTOR.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.architectures import Conv2dLayer
from hwmodels.specs import StudySpec

PASSES_PER_SECOND = 2_000_000_000
"""Parameter-sample passes per second that this engine sustains over a whole study on a
2-core CPU, on the conservative side: the rate of its slowest kind of work (hardware-aware
training with noise injection, about three forward passes' worth of arithmetic per
sample plus the hardware transform per batch), with a margin for a machine shared with
other work. A study estimated at N passes should therefore finish within
N / PASSES_PER_SECOND seconds; a time limit of T seconds allows T * PASSES_PER_SECOND."""

CONV_WORK_FACTOR = 10
"""A conv layer's multiply-accumulate costs this many GEMM ones on a CPU: with few
channels the convolutions (and their backward passes, pooling and patch copies) run far
below the matrix-multiply rate that PASSES_PER_SECOND stands for. Measured with
bench/bench_cnn.py (README), rounded up."""


def work_per_sample(spec: StudySpec) -> int:
    """Passes per sample: parameters of an MLP; weighted multiply-accumulates of a conv net."""
    return sum(
        shape.work * (CONV_WORK_FACTOR if isinstance(shape.spec, Conv2dLayer) else 1)
        for shape in spec.network.shapes(spec.dataset)
    )


@dataclass(frozen=True)
class CostPart:
    """One term of the estimate, with the fields that make it smaller."""

    name: str
    passes: int
    detail: str
    knobs: tuple[str, str]
    """Dotted request fields that lower this part, most direct first (every part also
    shrinks with the network)."""


@dataclass(frozen=True)
class StudyCost:
    """The estimate of one study, by part."""

    parts: tuple[CostPart, ...]
    mlp: bool = True

    @property
    def total(self) -> int:
        return sum(part.passes for part in self.parts)

    @property
    def largest(self) -> CostPart:
        return max(self.parts, key=lambda part: part.passes)


def estimate_cost(spec: StudySpec) -> StudyCost:
    """The cost of a study in parameter-sample passes (see the module docstring)."""
    parameters = work_per_sample(spec)
    train, test = spec.samples("train"), spec.samples("test")
    training, chips = spec.training, spec.evaluation.chips
    evaluations = drift_evaluations(spec)
    repeats = f" x {evaluations} evaluations (t0 and drift times)" if evaluations > 1 else ""
    size = (
        f"{parameters:,} parameters"
        if spec.network.is_mlp
        else f"{parameters:,} weighted multiply-accumulates per sample"
    )
    return StudyCost(
        parts=(
            CostPart(
                "float training",
                0 if spec.start_from is not None else train * training.epochs * parameters,
                "none: the study starts from given weights"
                if spec.start_from is not None
                else f"{train:,} training samples x {training.epochs} epochs x {size}",
                ("training.epochs", "training.train_samples"),
            ),
            CostPart(
                "hardware-aware training",
                train * training.hw_epochs * parameters,
                f"{train:,} training samples x {training.hw_epochs} hw_epochs x {size}",
                ("training.hw_epochs", "training.train_samples"),
            ),
            CostPart(
                "chip evaluation",
                chips * test * parameters * evaluations,
                f"{chips} chips x {test:,} test samples x {size}{repeats}",
                ("evaluation.chips", "evaluation.test_samples"),
            ),
        ),
        mlp=spec.network.is_mlp,
    )


def drift_evaluations(spec: StudySpec) -> int:
    """Monte Carlo evaluations of each network: t0, then each drift time (twice with
    compensation, as drift.drift_schedule runs them)."""
    times = len(spec.evaluation.drift_times_s or [])
    return 1 + times * (2 if spec.profile.drift.compensation else 1)


def budget_for(seconds: float) -> int:
    """The largest cost that should finish within ``seconds`` on this engine."""
    return int(seconds * PASSES_PER_SECOND)


def over_budget(cost: StudyCost, budget: int) -> str | None:
    """None when the study fits the budget, else a message naming what to lower."""
    if cost.total <= budget:
        return None
    part = cost.largest
    smaller = "narrower network.hidden layers" if cost.mlp else "fewer network channels"
    lower = f"lower {part.knobs[0]} or {part.knobs[1]}, or use {smaller}"
    return (
        f"this study would take about {_duration(cost.total)} of work ({cost.total:.2g} "
        f"parameter-sample passes), over this server's budget of {_duration(budget)} "
        f"({budget:.2g}); the largest part is {part.name} ({part.detail}): {lower}"
    )


def _duration(passes: int) -> str:
    """Passes as the time they take at PASSES_PER_SECOND, in minutes or hours."""
    seconds = passes / PASSES_PER_SECOND
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


__all__ = [
    "CONV_WORK_FACTOR",
    "PASSES_PER_SECOND",
    "CostPart",
    "StudyCost",
    "budget_for",
    "drift_evaluations",
    "estimate_cost",
    "over_budget",
    "work_per_sample",
]
