"""Accuracy over time after programming on real MNIST: naive and hardware-aware, with and
without global drift compensation, on a PCM-like profile with conductance drift.

    .venv/bin/python bench/bench_drift.py [--json] [--data-dir DIR] [--chips 20]

One run_study (the service's own path) on a budget of a few minutes on 2 cores: the
784-256-128-10 MLP trained ``--epochs`` float epochs and ``--hw-epochs`` STE
hardware-aware epochs on the training set (or its first ``--train-samples`` images),
scored on the test set (or its first ``--test-samples``) over ``--chips`` simulated
chips at t0 and at each of TIMES. The profile is the pcm-3bit preset with drift
nu ~ N(0.05, 0.02^2) per device (``--nu-mean``, ``--nu-spread``), t0 = 1 s, compensation
on.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from hwmodels.pipeline import run_study
from hwmodels.profile import get_preset
from hwmodels.report import ChipStatistics
from hwmodels.specs import StudySpec

TIMES = [1.0, 3600.0, 86400.0, 2592000.0, 31536000.0]
LABELS = ["1 s", "1 h", "1 day", "30 days", "1 year"]


def study(args: argparse.Namespace) -> StudySpec:
    drift = {"nu_mean": args.nu_mean, "nu_spread": args.nu_spread, "compensation": True}
    profile = get_preset("pcm-3bit").with_overrides({"name": "pcm-3bit+drift", "drift": drift})
    return StudySpec.model_validate(
        {
            "network": {"hidden": [256, 128]},
            "profile": profile.model_dump(),
            "training": {
                "epochs": args.epochs,
                "hw_epochs": args.hw_epochs,
                "train_samples": args.train_samples,
                "seed": args.seed,
            },
            "evaluation": {
                "chips": args.chips,
                "test_samples": args.test_samples,
                "drift_times_s": TIMES,
            },
        }
    )


def pct(stats: ChipStatistics | None) -> str:
    return "—" if stats is None else f"{100 * stats.mean:.2f} ± {100 * stats.std:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("HWSCORE_DATA_DIR"))
    parser.add_argument("--train-samples", type=int, default=None)
    parser.add_argument("--test-samples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hw-epochs", type=int, default=3)
    parser.add_argument("--chips", type=int, default=20)
    parser.add_argument("--nu-mean", type=float, default=0.05)
    parser.add_argument("--nu-spread", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    report = run_study(study(args), data_dir=args.data_dir, allow_download=False).report
    seconds = time.perf_counter() - started
    assert report.drift is not None
    print(f"float {100 * report.float_accuracy:.2f}%  ({seconds:.0f} s, load {load:.1f})")
    print("| time | naive % | hardware-aware % | naive, compensated % | hw-aware, compensated % |")
    print("|---|---|---|---|---|")
    for label, point in zip(LABELS, report.drift, strict=True):
        print(
            f"| {label} | {pct(point.naive)} | {pct(point.hardware_aware)} | "
            f"{pct(point.naive_compensated)} | {pct(point.hardware_aware_compensated)} |"
        )
    if args.json:
        keys = ("naive", "hardware_aware", "naive_compensated", "hardware_aware_compensated")
        rows = [
            {"time_s": p.time_s}
            | {k: None if getattr(p, k) is None else getattr(p, k).mean for k in keys}
            | {k + "_std": None if getattr(p, k) is None else getattr(p, k).std for k in keys}
            for p in report.drift
        ]
        result: dict[str, Any] = {
            "float": report.float_accuracy,
            "seconds": round(seconds, 1),
            "load_before": load,
            "timings_s": report.timings_s,
            "drift": rows,
        }
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
