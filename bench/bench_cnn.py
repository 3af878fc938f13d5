"""LeNet-5 on real MNIST: float, naive and hardware-aware accuracy on a low-bit noisy
profile with 256 x 256 crossbar tiles, and what a hardware-aware epoch costs.

    .venv/bin/python bench/bench_cnn.py [--json] [--data-dir DIR] [--train-samples 12000]

Budgeted for a few minutes on 2 cores, so it uses a subset (flags below):
- accuracy: one run_study (the service's own path) of LeNet-5 trained ``--epochs`` float
  epochs and ``--hw-epochs`` STE hardware-aware epochs on the first
  ``--train-samples`` training images, scored on the first ``--test-samples`` test
  images over ``--chips`` simulated chips of PROFILE (mean and std over chips);
- speed: one float epoch and one hardware-aware epoch (STE, noise injection) on the
  first ``--time-samples`` training images, interleaved ``--repeats`` times so both run
  under the same load; the ratio is of their medians.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from hwmodels.datasets.loader import load_split
from hwmodels.network import build_float, calibrate, to_hardware
from hwmodels.pipeline import run_study
from hwmodels.profile import HardwareProfile
from hwmodels.specs import NetworkSpec, StudySpec, TrainingSettings
from hwmodels.training import train_float, train_hardware_aware

PROFILE: dict[str, Any] = {
    "name": "bench-cnn-low-bit-tiled",
    "weights": {"bits": 2},
    "activations": {"bits": 3},
    "converters": {"output_bits": 4},
    "conductance": {"on_off_ratio": 10.0, "asymmetry": 0.05},
    "noise": {"programming": 0.03, "read": 0.01},
    "array": {"rows": 256, "columns": 256},
}
LENET = NetworkSpec(architecture="lenet5")


def accuracy_run(args: argparse.Namespace) -> dict[str, Any]:
    spec = StudySpec.model_validate(
        {
            "network": {"architecture": "lenet5"},
            "profile": PROFILE,
            "training": {
                "epochs": args.epochs,
                "hw_epochs": args.hw_epochs,
                "train_samples": args.train_samples,
            },
            "evaluation": {"chips": args.chips, "test_samples": args.test_samples},
        }
    )
    report = run_study(spec, data_dir=args.data_dir, allow_download=False).report
    return {
        "float_pct": round(100 * report.float_accuracy, 2),
        "naive_pct": round(100 * report.naive.mean, 2),
        "naive_std_pp": round(100 * report.naive.std, 2),
        "hardware_aware_pct": round(100 * report.hardware_aware.mean, 2),
        "hardware_aware_std_pp": round(100 * report.hardware_aware.std, 2),
        "arrays_per_layer": [layer.arrays for layer in report.layers],
        "timings_s": report.timings_s,
    }


def epoch_ratio(args: argparse.Namespace) -> dict[str, Any]:
    train = load_split("mnist", "train", args.data_dir, limit=args.time_samples, download=False)
    profile = HardwareProfile.model_validate(PROFILE)
    net = build_float(LENET, "mnist", profile, seed=0)
    settings = TrainingSettings(epochs=1, hw_epochs=1)
    train_float(net, train.images, train.labels, settings)  # warm-up, and trained weights
    hardware = to_hardware(net, profile)
    calibrate(hardware, train.images)
    floats, hws = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        train_float(copy.deepcopy(net), train.images, train.labels, settings)
        floats.append(time.perf_counter() - start)
        start = time.perf_counter()
        train_hardware_aware(copy.deepcopy(hardware), train.images, train.labels, settings)
        hws.append(time.perf_counter() - start)
    return {
        "float_epoch_s": [round(s, 2) for s in floats],
        "hwa_epoch_s": [round(s, 2) for s in hws],
        "hwa_over_float": round(statistics.median(hws) / statistics.median(floats), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("HWSCORE_DATA_DIR"))
    parser.add_argument("--train-samples", type=int, default=12_000)
    parser.add_argument("--test-samples", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hw-epochs", type=int, default=2)
    parser.add_argument("--chips", type=int, default=20)
    parser.add_argument("--time-samples", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    result = {
        "threads": torch.get_num_threads(),
        "load_before": round(load_before, 2),
        **accuracy_run(args),
        **epoch_ratio(args),
        "load_after": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
