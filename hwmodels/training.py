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
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Adam

from hwmodels.chips import varies_per_chip
from hwmodels.layers import InjectedNoise, set_mode
from hwmodels.memory import keep_freed_memory
from hwmodels.network import HardwareNet
from hwmodels.profile import NoiseConfig
from hwmodels.progress import (
    CancelCheck,
    JobCancelled,
    Phase,
    ProgressCallback,
    ProgressEvent,
    never_cancel,
    no_progress,
)
from hwmodels.specs import TrainingSettings
from hwmodels.surrogates import HARD, Mode, geometric_rhos


@dataclass
class Progress:
    """Where one piece of work sits in the study: its phase and its share of the whole."""

    on_progress: ProgressCallback = no_progress
    should_cancel: CancelCheck = never_cancel
    phase: Phase = "float_training"
    start: float = 0.0
    span: float = 1.0

    def part(self, phase: Phase, start: float, span: float) -> Progress:
        """A sub-range of this one's share, in another phase."""
        return Progress(
            self.on_progress,
            self.should_cancel,
            phase,
            self.start + start * self.span,
            span * self.span,
        )

    def emit(self, kind: str, done: float, **fields: object) -> None:
        fraction = min(1.0, self.start + self.span * max(0.0, min(1.0, done)))
        self.on_progress(ProgressEvent(kind=kind, phase=self.phase, fraction=fraction, **fields))  # type: ignore[arg-type]

    def check_cancel(self) -> None:
        if self.should_cancel():
            raise JobCancelled(f"cancelled during {self.phase}")


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


@dataclass
class _Running:
    loss: float = 0.0
    correct: int = 0
    count: int = 0

    def add(self, loss: Tensor, logits: Tensor, labels: Tensor) -> None:
        size = int(labels.shape[0])
        self.loss += float(loss) * size
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
) -> tuple[Tensor, Tensor]:
    for group in optimizer.param_groups:
        group["lr"] = rate
    logits = net(images)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    optimizer.step()
    return loss.detach(), logits.detach()


def train_float(
    net: nn.Module,
    images: Tensor,
    labels: Tensor,
    settings: TrainingSettings,
    progress: Progress | None = None,
) -> list[EpochRecord]:
    """Adam on cross-entropy for ``settings.epochs`` epochs; returns one record per epoch."""
    _check_data(images, labels)
    keep_freed_memory()
    progress = progress or Progress()
    schedule = _Schedule(
        images.shape[0], settings.batch_size, torch.Generator().manual_seed(settings.seed)
    )
    optimizer = adam(net.parameters(), settings.learning_rate)
    total = settings.epochs * schedule.batches
    records: list[EpochRecord] = []
    net.train()
    done = 0
    for epoch in range(1, settings.epochs + 1):
        running = _Running()
        for batch, index in enumerate(schedule.epoch(), 1):
            progress.check_cancel()
            rate = cosine_rate(settings.learning_rate, done, total)
            loss, logits = _step(net, optimizer, images[index], labels[index], rate)
            running.add(loss, logits, labels[index])
            done += 1
            progress.emit(
                "batch",
                done / total,
                epoch=epoch,
                epochs=settings.epochs,
                batch=batch,
                batches=schedule.batches,
                loss=float(loss),
            )
        records.append(EpochRecord("float", None, None, epoch, running.mean_loss, running.accuracy))
        progress.emit(
            "epoch",
            done / total,
            epoch=epoch,
            epochs=settings.epochs,
            loss=running.mean_loss,
            accuracy=running.accuracy,
        )
    net.eval()
    return records


@dataclass(frozen=True)
class Stage:
    """One stretch of hardware-aware training in one mode."""

    index: int
    mode: Mode

    @property
    def tau(self) -> float | None:
        return self.mode.rho if self.mode.kind == "smooth" else None


def hardware_stages(settings: TrainingSettings) -> list[Stage]:
    """The strategy's stages: one STE stage, or the annealed sequence of surrogates."""
    if settings.strategy == "ste":
        return [Stage(0, Mode("ste"))]
    return [Stage(i, Mode("smooth", rho)) for i, rho in enumerate(geometric_rhos(settings.stages))]


def has_noise(noise: NoiseConfig) -> bool:
    return varies_per_chip(noise) or noise.read > 0.0


def train_hardware_aware(
    net: HardwareNet,
    images: Tensor,
    labels: Tensor,
    settings: TrainingSettings,
    progress: Progress | None = None,
) -> list[EpochRecord]:
    """Fine-tune a calibrated hardware net in place; returns the metrics rows.

    The net ends in hard mode without injected noise, ready for evaluation.
    """
    _check_data(images, labels)
    keep_freed_memory()
    progress = progress or Progress(phase="hardware_aware_training")
    epochs = settings.hw_epochs
    schedule = _Schedule(
        images.shape[0], settings.batch_size, torch.Generator().manual_seed(settings.seed + 1)
    )
    stages = hardware_stages(settings)
    total = epochs * schedule.batches
    edges = [round(i * total / len(stages)) for i in range(len(stages) + 1)]
    bounds = edges[1:-1]
    noise = None
    if settings.noise_injection and has_noise(net.profile.noise):
        noise = InjectedNoise.create(net.hardware_layers(), net.profile.noise, settings.seed + 2)
    records: list[EpochRecord] = []
    stage: Stage | None = None
    optimizer: torch.optim.Optimizer | None = None
    done = 0
    _attach_noise(net, noise)
    net.train()
    try:
        for epoch in range(1, epochs + 1):
            running = _Running()
            for batch, index in enumerate(schedule.epoch(), 1):
                progress.check_cancel()
                current = stages[bisect.bisect_right(bounds, done)]
                if current != stage:
                    if stage is not None and running.count:
                        records.append(_record(stage, epoch, running))
                        running = _Running()
                    stage = current
                    set_mode(net, stage.mode)
                    optimizer = adam(net.parameters(), settings.hw_learning_rate)
                    progress.emit(
                        "stage",
                        done / max(total, 1),
                        epoch=epoch,
                        epochs=epochs,
                        extra={"stage": stage.index, "stages": len(stages), "tau": stage.tau},
                    )
                assert optimizer is not None
                if noise is not None:
                    noise.begin_batch()
                first, last = edges[stage.index], edges[stage.index + 1]
                rate = cosine_rate(settings.hw_learning_rate, done - first, last - first)
                loss, logits = _step(net, optimizer, images[index], labels[index], rate)
                running.add(loss, logits, labels[index])
                done += 1
                progress.emit(
                    "batch",
                    done / total,
                    epoch=epoch,
                    epochs=epochs,
                    batch=batch,
                    batches=schedule.batches,
                    loss=float(loss),
                )
            if noise is not None:
                noise.pool.refresh()
            assert stage is not None
            records.append(_record(stage, epoch, running))
            progress.emit(
                "epoch",
                done / total,
                epoch=epoch,
                epochs=epochs,
                loss=running.mean_loss,
                accuracy=running.accuracy,
                extra={"stage": stage.index, "tau": stage.tau},
            )
    finally:
        _attach_noise(net, None)
        set_mode(net, HARD)
        net.eval()
    return records


def _record(stage: Stage, epoch: int, running: _Running) -> EpochRecord:
    return EpochRecord(
        "hardware_aware", stage.index, stage.tau, epoch, running.mean_loss, running.accuracy
    )


def _attach_noise(net: HardwareNet, noise: InjectedNoise | None) -> None:
    for layer in net.hardware_layers():
        layer.noise = noise


class Stopwatch:
    """Wall-clock seconds per named step, for the report's timings."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = time.perf_counter()

    def lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[name] = round(now - since, 3)
        return now

    def total(self) -> dict[str, float]:
        return {**self.seconds, "total": round(time.perf_counter() - self._started, 3)}


__all__ = [
    "EpochRecord",
    "Progress",
    "Stage",
    "Stopwatch",
    "adam",
    "hardware_stages",
    "has_noise",
    "train_float",
    "train_hardware_aware",
]
