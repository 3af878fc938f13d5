"""Float training and hardware-aware fine-tuning (straight-through or annealed surrogates).

The whole split sits in memory as tensors; an epoch is one random permutation of it,
cut into batches by index (no data loader, no per-sample Python). Randomness comes from
generators seeded with ``settings.seed``: same seed, same weights. The learning rate
follows a cosine from its setting down to 0: over the whole float phase, over the whole
STE phase, and over each annealing stage (each stage is its own run, warm-started).

Hardware-aware training starts from the float weights and runs ``hw_epochs`` epochs:

- ``ste``: the hard hardware model forward, rounding treated as identity backward;
- ``annealed`` (Obradovic et al. 2018): ``stages`` stages of smooth surrogates with tau
  shrinking geometrically from the level spacing to 1/100 of it, each stage starting from
  the previous one's weights with a fresh Adam and its own cosine schedule. The epochs
  are split evenly across the stages in batches, so a stage may end inside an epoch (the
  metrics then get one row per epoch and stage).

With ``noise_injection`` every batch sees a fresh draw of programming noise and stuck
devices, and read noise, as a chip would.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Adam

from hwmodels.chips import varies_per_chip
from hwmodels.evaluation import accuracy
from hwmodels.layers import InjectedNoise, set_mode
from hwmodels.memory import keep_freed_memory
from hwmodels.network import HardwareNet, modes_kept, nominal_chip
from hwmodels.profile import NoiseConfig
from hwmodels.progress import Progress
from hwmodels.specs import TrainingSettings
from hwmodels.surrogates import HARD, Mode, geometric_rhos


@dataclass(frozen=True)
class EpochRecord:
    """One row of metrics.csv: a training epoch (or the part of it spent in one stage)."""

    phase: str
    stage: int | None
    tau: float | None
    """tau as a fraction of the level spacing (annealed stages only)."""
    epoch: int
    loss: float
    train_accuracy: float
    validation_accuracy: float | None = None
    """On the held-out split after the epoch (the nominal chip for hardware-aware rows)."""


@dataclass
class _Running:
    loss: float = 0.0
    correct: int = 0
    count: int = 0

    def add(self, loss: float, logits: Tensor, labels: Tensor) -> None:
        size = int(labels.shape[0])
        self.loss += loss * size
        self.correct += int((logits.argmax(dim=1) == labels).sum())
        self.count += size

    @property
    def mean_loss(self) -> float:
        return self.loss / max(self.count, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.count, 1)


@dataclass
class _Schedule:
    """Batches of an epoch drawn by index permutation from a seeded generator."""

    samples: int
    batch_size: int
    generator: torch.Generator = field(default_factory=torch.Generator)

    @property
    def batches(self) -> int:
        return -(-self.samples // self.batch_size)

    def epoch(self) -> Iterator[Tensor]:
        order = torch.randperm(self.samples, generator=self.generator)
        for start in range(0, self.samples, self.batch_size):
            yield order[start : start + self.batch_size]


def _check_data(images: Tensor, labels: Tensor) -> None:
    if images.ndim != 2 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"expected images (N, features) and labels (N,), got {tuple(images.shape)} "
            f"and {tuple(labels.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError("no training samples")


def cosine_rate(peak: float, done: int, total: int) -> float:
    """Learning rate after ``done`` of ``total`` batches: peak * (1 + cos(pi done/total)) / 2."""
    return peak * 0.5 * (1.0 + math.cos(math.pi * done / max(total, 1)))


def adam(parameters: Iterable[nn.Parameter], rate: float, fused: bool | None = None) -> Adam:
    """Adam, fused where torch supports it (one kernel for all parameters instead of a
    Python loop over them: the step is a large share of a small MLP's batch).

    ``fused=None`` picks fused when every parameter is a floating-point CPU or GPU tensor.
    """
    params = list(parameters)
    if fused is None:
        fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return Adam(params, lr=rate, fused=fused)


def _step(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: Tensor,
    labels: Tensor,
    rate: float,
) -> tuple[float, Tensor]:
    for group in optimizer.param_groups:
        group["lr"] = rate
    logits = net(images)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    optimizer.step()
    return float(loss.detach()), logits.detach()


Validation = tuple[Tensor, Tensor]
"""Held-out training images and labels, scored after every epoch (never the test set)."""


@dataclass(frozen=True)
class Stage:
    """One stretch of training in one mode, over batches [first, last) of the run.

    ``mode`` None is float training. Each stage starts a fresh Adam and its own cosine.
    """

    index: int
    mode: Mode | None
    first: int
    last: int

    @property
    def tau(self) -> float | None:
        if self.mode is None or self.mode.kind != "smooth":
            return None
        return self.mode.rho

    @property
    def label(self) -> int | None:
        """The stage number of the metrics rows (None for float training)."""
        return None if self.mode is None else self.index


def hardware_stages(settings: TrainingSettings, total: int) -> list[Stage]:
    """The strategy's stages over ``total`` batches: one STE stage, or the annealed
    sequence of surrogates, the batches split evenly between them."""
    modes = (
        [Mode("ste")]
        if settings.strategy == "ste"
        else [Mode("smooth", rho) for rho in geometric_rhos(settings.stages)]
    )
    edges = [round(i * total / len(modes)) for i in range(len(modes) + 1)]
    return [Stage(i, mode, edges[i], edges[i + 1]) for i, mode in enumerate(modes)]


def has_noise(noise: NoiseConfig) -> bool:
    return varies_per_chip(noise) or noise.read > 0.0


@dataclass
class _Run:
    """What differs between float and hardware-aware training; ``_train`` is the loop."""

    phase: str
    epochs: int
    rate: float
    seed: int
    stages: Callable[[int], list[Stage]]
    """The stages over the run's total batch count."""
    noise: InjectedNoise | None = None


def train_float(
    net: nn.Module,
    images: Tensor,
    labels: Tensor,
    settings: TrainingSettings,
    progress: Progress | None = None,
    validation: Validation | None = None,
) -> list[EpochRecord]:
    """Adam on cross-entropy for ``settings.epochs`` epochs; returns one record per epoch."""
    run = _Run(
        "float",
        settings.epochs,
        settings.learning_rate,
        settings.seed,
        lambda total: [Stage(0, None, 0, total)],
    )
    return _train(net, images, labels, settings, run, progress or Progress(), validation)


def train_hardware_aware(
    net: HardwareNet,
    images: Tensor,
    labels: Tensor,
    settings: TrainingSettings,
    progress: Progress | None = None,
    validation: Validation | None = None,
) -> list[EpochRecord]:
    """Fine-tune a calibrated hardware net in place (weights and learned clips); returns
    the metrics rows. The net ends in hard mode without injected noise, ready for
    evaluation."""
    noise = None
    if settings.noise_injection and has_noise(net.profile.noise):
        noise = InjectedNoise.create(net.hardware_layers(), net.profile.noise, settings.seed + 2)
    run = _Run(
        "hardware_aware",
        settings.hw_epochs,
        settings.hw_learning_rate,
        settings.seed + 1,
        lambda total: hardware_stages(settings, total),
        noise,
    )
    _attach_noise(net, noise)
    try:
        progress = progress or Progress(phase="hardware_aware_training")
        return _train(net, images, labels, settings, run, progress, validation)
    finally:
        _attach_noise(net, None)
        set_mode(net, HARD)
        net.eval()


def _train(
    net: nn.Module,
    images: Tensor,
    labels: Tensor,
    settings: TrainingSettings,
    run: _Run,
    progress: Progress,
    validation: Validation | None,
) -> list[EpochRecord]:
    """The training loop both phases share: seeded batches, a cosine per stage, progress,
    cancel checks, one metrics row per epoch (and per stage ending inside one)."""
    _check_data(images, labels)
    keep_freed_memory()
    schedule = _Schedule(
        images.shape[0], settings.batch_size, torch.Generator().manual_seed(run.seed)
    )
    total = run.epochs * schedule.batches
    stages = run.stages(total)
    bounds = [stage.first for stage in stages[1:]]
    records: list[EpochRecord] = []
    stage: Stage | None = None
    optimizer: torch.optim.Optimizer | None = None
    done = 0
    net.train()
    for epoch in range(1, run.epochs + 1):
        running = _Running()
        for batch, index in enumerate(schedule.epoch(), 1):
            progress.check_cancel()
            current = stages[bisect.bisect_right(bounds, done)]
            if current != stage:
                if stage is not None and running.count:
                    records.append(_record(run, stage, epoch, running, None))
                    running = _Running()
                stage = current
                optimizer = _start_stage(net, stage, run, len(stages), progress, done, total, epoch)
            assert optimizer is not None
            if run.noise is not None:
                run.noise.begin_batch()
            rate = cosine_rate(run.rate, done - stage.first, stage.last - stage.first)
            # index_select copies whole rows: several times faster than images[index].
            batch_labels = labels.index_select(0, index)
            loss, logits = _step(net, optimizer, images.index_select(0, index), batch_labels, rate)
            running.add(loss, logits, batch_labels)
            done += 1
            progress.emit(
                "batch",
                done / total,
                epoch=epoch,
                epochs=run.epochs,
                batch=batch,
                batches=schedule.batches,
                loss=loss,
            )
        if run.noise is not None:
            run.noise.pool.refresh()
        assert stage is not None
        checked = _validation_accuracy(net, validation)
        records.append(_record(run, stage, epoch, running, checked))
        extra = {} if stage.mode is None else {"stage": stage.index, "tau": stage.tau}
        progress.emit(
            "epoch",
            done / total,
            epoch=epoch,
            epochs=run.epochs,
            loss=running.mean_loss,
            accuracy=running.accuracy,
            extra=extra or None,
        )
    net.eval()
    return records


def _start_stage(
    net: nn.Module,
    stage: Stage,
    run: _Run,
    stages: int,
    progress: Progress,
    done: int,
    total: int,
    epoch: int,
) -> torch.optim.Optimizer:
    """Put the net in the stage's mode; a fresh Adam for it."""
    if stage.mode is not None:
        set_mode(net, stage.mode)
        progress.emit(
            "stage",
            done / max(total, 1),
            epoch=epoch,
            epochs=run.epochs,
            extra={"stage": stage.index, "stages": stages, "tau": stage.tau},
        )
    return adam(net.parameters(), run.rate)


def _validation_accuracy(net: nn.Module, validation: Validation | None) -> float | None:
    """Accuracy on the held-out images; a hardware net is scored on the nominal chip
    (hard mode, no injected noise), then put back as it was."""
    if validation is None or validation[1].numel() == 0:
        return None
    with modes_kept(net):
        nominal_chip(net)
        return accuracy(net, *validation)


def _record(
    run: _Run, stage: Stage, epoch: int, running: _Running, validation: float | None
) -> EpochRecord:
    return EpochRecord(
        run.phase,
        stage.label,
        stage.tau,
        epoch,
        running.mean_loss,
        running.accuracy,
        validation,
    )


def _attach_noise(net: HardwareNet, noise: InjectedNoise | None) -> None:
    for layer in net.hardware_layers():
        layer.noise = noise


__all__ = [
    "EpochRecord",
    "Progress",
    "Stage",
    "adam",
    "hardware_stages",
    "has_noise",
    "train_float",
    "train_hardware_aware",
]
