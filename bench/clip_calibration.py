"""Where the activation clip a_max comes from, and whether learning it helps.

    HWSCORE_DATA_DIR=../shared/data .venv/bin/python bench/clip_calibration.py \
        [--datasets mnist fashion-mnist] [--hw-epochs 5 15] [--json]

The same float network (784-256-128-10, 3 float epochs on the first 20,000 training
images, 10% of them held out) is deployed on the harsh combined profile of
``bench/reproduce.py`` and trained hardware-aware with the default recipe for each
``--hw-epochs``, with its clips set three ways:

- ``hardware``: calibrated on the naive hardware network's activations (engine 4 and
  before): the offset that asymmetric pairs with a finite on/off ratio add to every
  weight inflates them;
- ``float``: calibrated on the float network's activations, then frozen;
- ``float+learned`` (the engine's default): calibrated on the float network, then
  learned with the weights (PACT with LSQ's gradient).

Scores are Monte Carlo means over 10 chips on the first 5,000 test images, printed as
one markdown row per dataset and hardware-aware epoch count, with each clip set's
first-layer a_max, so the cost of an inflated clip and the gain of learning it are read
from the same run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from reproduce import HARSH

from hwmodels.datasets.loader import load_split
from hwmodels.evaluation import accuracy, chip_accuracies, chip_statistics
from hwmodels.network import (
    HardwareNet,
    build_float,
    calibrate,
    copy_hardware,
    modes_kept,
    nominal_chip,
    to_hardware,
)
from hwmodels.pipeline import calibration_images, hold_out
from hwmodels.profile import HardwareProfile
from hwmodels.specs import NetworkSpec, TrainingSettings
from hwmodels.training import train_float, train_hardware_aware

VARIANTS = ("hardware", "float", "float+learned")


def calibrate_on_hardware(net: HardwareNet, images: torch.Tensor) -> None:
    """The old calibration: one hard pass in which each clip follows the hardware."""
    calibrate(net, images)
    with modes_kept(net), torch.no_grad():
        nominal_chip(net)
        for layer in net.hardware_layers():
            layer.calibrating = True
        for neuron in net.neurons():
            neuron.calibrating = True
        net(images[:10_000])


def score(net: HardwareNet, images: torch.Tensor, labels: torch.Tensor) -> float:
    return chip_statistics(chip_accuracies(net, images, labels, chips=10, seed=1)).mean


def run(dataset: str, hw_epochs: list[int], data_dir: Path | None) -> list[dict[str, Any]]:
    profile = HardwareProfile.model_validate(HARSH)
    train = load_split(dataset, "train", data_dir, limit=20_000, download=False)
    test = load_split(dataset, "test", data_dir, limit=5_000, download=False)
    settings = TrainingSettings(epochs=3)
    fit, held_out = hold_out(train.images, train.labels, settings.validation_fraction)
    calibration = calibration_images(fit, held_out)
    float_net = build_float(NetworkSpec(hidden=[256, 128]), dataset, profile, settings.seed)
    train_float(float_net, *fit, settings)
    float_accuracy = accuracy(float_net, test.images, test.labels)
    rows = []
    for epochs in hw_epochs:
        row: dict[str, Any] = {"dataset": dataset, "hw_epochs": epochs, "float": float_accuracy}
        clips: dict[str, dict[str, float]] = {}
        for variant in VARIANTS:
            net = to_hardware(float_net, profile)
            (calibrate_on_hardware if variant == "hardware" else calibrate)(net, calibration)
            clip = float(net.neurons()[0].a_max.detach())
            aware = copy_hardware(net)
            if variant != "float+learned":
                for neuron in aware.neurons():
                    neuron.a_max.requires_grad_(False)
            run_settings = settings.model_copy(update={"hw_epochs": epochs})
            train_hardware_aware(aware, *fit, run_settings)
            clips[variant] = {"a_max_1": clip, "naive": score(net, test.images, test.labels)}
            clips[variant]["hardware_aware"] = score(aware, test.images, test.labels)
        rows.append({**row, "clips": clips})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    header = "| dataset | hw epochs | float % | " + " | ".join(
        f"{v}: a_max layer 1, naive %, hardware-aware %" for v in VARIANTS
    )
    lines = [header + " |", "|" + "---|" * (3 + len(VARIANTS))]
    for row in rows:
        cells = [row["dataset"], str(row["hw_epochs"]), f"{100 * row['float']:.2f}"]
        for v in VARIANTS:
            r = row["clips"][v]
            cells.append(
                f"{r['a_max_1']:.2f}, {100 * r['naive']:.2f}, {100 * r['hardware_aware']:.2f}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--hw-epochs", nargs="+", type=int, default=[5, 15])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [row for d in args.datasets for row in run(d, args.hw_epochs, args.data_dir)]
    print(json.dumps(rows, indent=2) if args.json else markdown(rows))


if __name__ == "__main__":
    main()
