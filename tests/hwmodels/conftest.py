"""Shared fixtures of the engine tests: a real MNIST subset and a float net trained once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from hwmodels.datasets.loader import load_split
from hwmodels.network import FloatMLP, build_float
from hwmodels.profile import HardwareProfile
from hwmodels.specs import NetworkSpec, TrainingSettings
from hwmodels.training import train_float

TRAIN_SAMPLES = 6000
TEST_SAMPLES = 2000
SMALL_NET = NetworkSpec(hidden=[128, 64])


@dataclass(frozen=True)
class Subset:
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


@pytest.fixture(scope="session")
def mnist_subset(data_dir: Path) -> Subset:
    """The first 6,000 training and 2,000 test images of real MNIST."""
    train = load_split("mnist", "train", data_dir, limit=TRAIN_SAMPLES, download=False)
    test = load_split("mnist", "test", data_dir, limit=TEST_SAMPLES, download=False)
    return Subset(train.images, train.labels, test.images, test.labels)


@pytest.fixture(scope="session")
def trained_float(mnist_subset: Subset) -> FloatMLP:
    """784-128-64-10 trained 10 epochs on the subset (about 1 s)."""
    net = build_float(SMALL_NET, "mnist", HardwareProfile(), seed=0)
    train_float(
        net, mnist_subset.train_images, mnist_subset.train_labels, TrainingSettings(epochs=10)
    )
    return net


def random_mlp(sizes: list[int], seed: int = 0) -> FloatMLP:
    return FloatMLP(sizes).initialise(seed)
