"""Training on real MNIST: float accuracy, hardware-aware beats naive, seeds, progress, cancel."""

from __future__ import annotations

import pytest
import torch

from hwmodels.evaluation import accuracy, chip_accuracies
from hwmodels.network import FloatMLP, build_float, calibrate, copy_hardware, to_hardware
from hwmodels.profile import HardwareProfile
from hwmodels.progress import JobCancelled, Progress, ProgressEvent
from hwmodels.specs import TrainingSettings
from hwmodels.training import train_float, train_hardware_aware

from .conftest import SMALL_NET, Subset

# 2-bit weights (3 levels per device), 3-bit activations, on/off ratio 10: a real loss.
LOW_BIT = HardwareProfile.model_validate(
    {
        "weights": {"bits": 2},
        "activations": {"bits": 3},
        "conductance": {"on_off_ratio": 10.0, "asymmetry": 0.1},
        "noise": {"programming": 0.02},
    }
)


def test_float_training_on_a_real_mnist_subset(
    trained_float: FloatMLP, mnist_subset: Subset
) -> None:
    value = accuracy(trained_float, mnist_subset.test_images, mnist_subset.test_labels)
    assert value > 0.90  # 784-128-64-10, 10 epochs on 6k images: about 0.92


@pytest.mark.parametrize("strategy", ["annealed", "ste"])
def test_hardware_aware_training_beats_naive_deployment(
    trained_float: FloatMLP, mnist_subset: Subset, strategy: str
) -> None:
    naive = to_hardware(trained_float, LOW_BIT)
    calibrate(naive, mnist_subset.train_images)
    aware = copy_hardware(naive)
    settings = TrainingSettings(hw_epochs=3, strategy=strategy, stages=3)
    train_hardware_aware(aware, mnist_subset.train_images, mnist_subset.train_labels, settings)
    images, labels = mnist_subset.test_images, mnist_subset.test_labels
    before = sum(chip_accuracies(naive, images, labels, chips=3)) / 3
    after = sum(chip_accuracies(aware, images, labels, chips=3)) / 3
    float_accuracy = accuracy(trained_float, images, labels)
    assert float_accuracy - before > 0.1  # naive deployment loses many points (about 27)
    recovered = (after - before) / (float_accuracy - before)
    assert recovered > 0.7  # 3 short epochs on 6k images win back about 85% of them


def test_same_seed_same_weights(mnist_subset: Subset) -> None:
    images, labels = mnist_subset.train_images[:1000], mnist_subset.train_labels[:1000]
    settings = TrainingSettings(epochs=1, hw_epochs=1, stages=2, seed=5)

    def run() -> list[torch.Tensor]:
        net = build_float(SMALL_NET, "mnist", LOW_BIT, settings.seed)
        train_float(net, images, labels, settings)
        hardware = to_hardware(net, LOW_BIT)
        calibrate(hardware, images)
        train_hardware_aware(hardware, images, labels, settings)
        return [p.detach().clone() for p in hardware.parameters()]

    first, second = run(), run()
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_progress_events_and_cancellation(mnist_subset: Subset) -> None:
    images, labels = mnist_subset.train_images[:512], mnist_subset.train_labels[:512]
    events: list[ProgressEvent] = []
    net = build_float(SMALL_NET, "mnist", LOW_BIT, 0)
    records = train_float(net, images, labels, TrainingSettings(epochs=2), Progress(events.append))
    assert [r.epoch for r in records] == [1, 2]
    assert [e.kind for e in events].count("epoch") == 2
    assert [e.kind for e in events].count("batch") == 2 * 4
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)

    calls = 0

    def cancel_on_third_batch() -> bool:
        nonlocal calls
        calls += 1
        return calls >= 3

    with pytest.raises(JobCancelled):
        train_float(
            net,
            images,
            labels,
            TrainingSettings(epochs=2),
            Progress(should_cancel=cancel_on_third_batch),
        )
    assert calls == 3


def test_annealing_stages_split_the_epochs(mnist_subset: Subset, trained_float: FloatMLP) -> None:
    images, labels = mnist_subset.train_images[:1024], mnist_subset.train_labels[:1024]
    hardware = to_hardware(trained_float, LOW_BIT)
    calibrate(hardware, images)
    events: list[ProgressEvent] = []
    records = train_hardware_aware(
        hardware,
        images,
        labels,
        TrainingSettings(hw_epochs=2, strategy="annealed", stages=4),
        Progress(events.append, phase="hardware_aware_training"),
    )
    assert [r.stage for r in records] == [0, 1, 2, 3]
    taus = [r.tau for r in records]
    assert taus[0] == pytest.approx(1.0) and taus[-1] == pytest.approx(0.01)
    assert [e.extra["stage"] for e in events if e.kind == "stage"] == [0, 1, 2, 3]
    assert hardware.layers[0].mode.kind == "hard"  # ready for evaluation
