"""Reproduce the paper's claim on MNIST and Fashion-MNIST, one non-ideality at a time.

    .venv/bin/python bench/reproduce.py [--quick] [--json] [--datasets mnist fashion-mnist]
        [--seeds 0 1] [--only combined] [--strategies annealed ste] [--chips 50]
        [--train-samples N] [--per-layer] [--precisions int8 bfloat16]

For each dataset the float 784-256-128-10 MLP is trained once; then, around a base
profile (3-bit weights, 4-bit activations, ideal devices), each non-ideality is varied
alone, and finally all together; two more rows take the harsh combined profile with stuck
devices (1% stuck at Gmin, 1% at Gmax) and with one weight scale per output column
instead of per layer. For each setting: float accuracy, naive deployment
(the float weights programmed as they are) and hardware-aware training (annealed
surrogates, and straight-through, each from the float weights), all as Monte Carlo
mean +- std over chips.

The claim under test (Obradovic et al. 2018): hardware-aware training brings a low-bit,
non-ideal network back to within about half a point of float, while naive deployment
loses several points. The last lines say whether the measured numbers support it.

Full run: the default training settings (``TrainingSettings()``: 10 float epochs and the
default hardware-aware recipe), 50 chips, whole splits, one seed (``--seeds 0 1`` for two:
each seed trains its own float network and its own hardware-aware networks; chips are
drawn with the same seeds). ``--hw-epochs`` / ``--hw-lr`` override the recipe to compare
others. ``--quick``: 10,000 training and 2,000 test images, 3 + 2 epochs, 5 chips, a
handful of settings (about 2 minutes in all). ``--train-samples N`` trains on the first N
training images only (a smoke test of chosen rows: ``--only stuck per-column
--train-samples 2000 --hw-epochs 1 --chips 2``).

Each row names its seed; ``--seeds 0 1`` gives every setting one row per seed. Rows are
selected with ``--only`` by any part of their name: ``combined`` (the two combined
profiles), ``stuck`` and ``per-column`` (the harsh profile with stuck devices, with a
per-column scale). The verdict covers every row built on a combined profile.

The combined rows are also checked against the accuracy targets of the default recipe
(``TARGETS``: mean and worst-chip drop from float, in points). ``--precisions`` scores
every network again in those Monte Carlo precisions on the same chips and reports how far
each moves the means from float32 (the rule for a faster default precision: no mean
moved by more than 0.05 points). The table, the verdict and the JSON are written by
reproduce_report.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from reproduce_report import STRATEGIES, Row, markdown, precision_lines, row_json, verdict

from hwmodels import train_graph
from hwmodels.datasets.loader import DataSplit, load_split
from hwmodels.evaluation import COMPUTE_DTYPES, accuracy, chip_accuracies, chip_statistics
from hwmodels.network import HardwareNet, build_float, calibrate, copy_hardware, to_hardware
from hwmodels.pipeline import calibration_images, hold_out
from hwmodels.profile import HardwareProfile
from hwmodels.report import ChipStatistics
from hwmodels.specs import NetworkSpec, TrainingSettings
from hwmodels.training import train_float, train_hardware_aware

BASE: dict[str, Any] = {"weights": {"bits": 3}, "activations": {"bits": 4}}
MODERATE: dict[str, Any] = {
    "weights": {"bits": 2},
    "activations": {"bits": 3},
    "conductance": {"on_off_ratio": 10.0, "nonlinearity": 2.0, "asymmetry": 0.05},
    "noise": {"programming": 0.02},
}
HARSH: dict[str, Any] = {
    "weights": {"bits": 2},
    "activations": {"bits": 3},
    "conductance": {"on_off_ratio": 10.0, "nonlinearity": 3.0, "asymmetry": 0.2},
    "noise": {"programming": 0.03},
}


def around_base(**overrides: Any) -> HardwareProfile:
    """The base profile with some groups overridden."""
    return HardwareProfile.model_validate(BASE).with_overrides(overrides)


# (setting, profile); the base itself is the first row.
SETTINGS: list[tuple[str, HardwareProfile]] = [
    ("base: 3-bit weights, 4-bit activations", around_base()),
    ("weights 1 bit", around_base(weights={"bits": 1})),
    ("weights 2 bits", around_base(weights={"bits": 2})),
    ("weights 4 bits", around_base(weights={"bits": 4})),
    ("activations 2 bits", around_base(activations={"bits": 2})),
    ("activations 3 bits", around_base(activations={"bits": 3})),
    ("on/off ratio 2", around_base(conductance={"on_off_ratio": 2.0})),
    ("on/off ratio 10", around_base(conductance={"on_off_ratio": 10.0})),
    ("on/off ratio 100", around_base(conductance={"on_off_ratio": 100.0})),
    ("non-linearity 5 (calibrated programming)", around_base(conductance={"nonlinearity": 5.0})),
    (
        "non-linearity 5 (linear programming)",
        around_base(conductance={"nonlinearity": 5.0}, weights={"programming": "linear"}),
    ),
    ("asymmetry 20%", around_base(conductance={"asymmetry": 0.2})),
    (
        "asymmetry 20%, on/off ratio 10",
        around_base(conductance={"asymmetry": 0.2, "on_off_ratio": 10.0}),
    ),
    ("programming noise 2%", around_base(noise={"programming": 0.02})),
    ("programming noise 5%", around_base(noise={"programming": 0.05})),
    (
        "combined, moderate: 2b/3b, ratio 10, nu 2, asym 5%, noise 2%",
        HardwareProfile.model_validate(MODERATE),
    ),
    (
        "combined, harsh: 2b/3b, ratio 10, nu 3, asym 20%, noise 3%",
        HardwareProfile.model_validate(HARSH),
    ),
    # The harsh profile with stuck devices, and with a per-column scale; named without
    # "combined" or "harsh", so that --only combined / harsh select what they did before.
    (
        "stuck devices: 2b/3b, ratio 10, nu 3, asym 20%, noise 3%, stuck 1% off, 1% on",
        HardwareProfile.model_validate(HARSH).with_overrides(
            {"noise": {"stuck_off": 0.01, "stuck_on": 0.01}}
        ),
    ),
    (
        "per-column scale: 2b/3b, ratio 10, nu 3, asym 20%, noise 3%, scale per column",
        HardwareProfile.model_validate(HARSH).with_overrides({"weights": {"scale": "per_column"}}),
    ),
]
QUICK = {
    "base: 3-bit weights, 4-bit activations",
    "weights 2 bits",
    "asymmetry 20%, on/off ratio 10",
    "programming noise 5%",
    "combined, moderate: 2b/3b, ratio 10, nu 2, asym 5%, noise 2%",
    "combined, harsh: 2b/3b, ratio 10, nu 3, asym 20%, noise 3%",
}


def run_dataset(
    name: str,
    quick: bool,
    data_dir: Path | None,
    chips: int,
    only: list[str],
    log: Any,
    seed: int = 0,
    strategies: tuple[str, ...] = STRATEGIES,
    recipe: dict[str, Any] | None = None,
    train_samples: int | None = None,
    precisions: tuple[str, ...] = (),
) -> list[Row]:
    limit = train_samples or (10_000 if quick else None)
    train = load_split(name, "train", data_dir, limit=limit)
    test = load_split(name, "test", data_dir, limit=2_000 if quick else None)
    settings = TrainingSettings(seed=seed)
    if quick:
        settings = settings.model_copy(update={"epochs": 3, "hw_epochs": 2})
    settings = settings.model_copy(update=recipe or {})
    base = around_base()
    started = time.perf_counter()
    float_net = build_float(NetworkSpec(hidden=[256, 128]), name, base, settings.seed)
    fit, held_out = hold_out(train.images, train.labels, settings.validation_fraction)
    train_float(float_net, *fit, settings)
    float_accuracy = accuracy(float_net, test.images, test.labels)
    log(
        f"{name} seed {seed}: float {100 * float_accuracy:.2f}% "
        f"({time.perf_counter() - started:.0f} s; hw_epochs {settings.hw_epochs}, "
        f"hw_learning_rate {settings.hw_learning_rate})"
    )
    rows = []
    for setting, profile in SETTINGS:
        if (quick and setting not in QUICK) or (only and not any(o in setting for o in only)):
            continue
        started = time.perf_counter()
        naive_net = to_hardware(float_net, profile)
        calibrate(naive_net, calibration_images(fit, held_out))
        naive, moved = score(naive_net, test, chips, precisions)
        moves = {"naive": moved}
        aware = {}
        for strategy in strategies:
            aware_net = copy_hardware(naive_net)
            run = settings.model_copy(update={"strategy": strategy})
            train_hardware_aware(aware_net, *fit, run)
            aware[strategy], moves[strategy] = score(aware_net, test, chips, precisions)
        seconds = time.perf_counter() - started
        row = Row(name, setting, seed, float_accuracy, naive, aware, seconds, moves)
        rows.append(row)
        scores = ", ".join(
            f"{s} {100 * a.mean:.2f}% (worst {100 * a.worst:.2f}%)" for s, a in aware.items()
        )
        log(f"  {setting}: naive {100 * naive.mean:.2f}%, {scores} ({row.seconds:.0f} s)")
    return rows


def score(
    net: HardwareNet, test: DataSplit, chips: int, precisions: tuple[str, ...]
) -> tuple[ChipStatistics, dict[str, float]]:
    """Chip statistics in float32, and how far each of ``precisions`` moves their mean
    on the same chips (points)."""
    exact = chip_accuracies(net, test.images, test.labels, chips=chips, seed=1)
    moved = {}
    for name in precisions:
        dtype = COMPUTE_DTYPES[name]
        other = chip_accuracies(
            net, test.images, test.labels, chips=chips, seed=1, compute_dtype=dtype
        )
        moved[name] = 100 * (sum(other) - sum(exact)) / chips
    return chip_statistics(exact), moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small subsets, few settings")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--chips", type=int, default=None, help="chips per evaluation")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--hw-epochs", type=int, default=None, help="override the default")
    parser.add_argument("--hw-lr", type=float, default=None, help="override the default")
    parser.add_argument(
        "--train-samples", type=int, default=None, help="train on the first N images only"
    )
    parser.add_argument(
        "--only", nargs="+", default=[], help="run only settings whose name contains one of these"
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=[name for name in COMPUTE_DTYPES if name != "float32"],
        default=[],
        help="also score every network in these Monte Carlo precisions, on the same chips",
    )
    parser.add_argument(
        "--per-layer",
        action="store_true",
        help="train on the per-layer path, the compiled whole-network graph off (to compare)",
    )
    args = parser.parse_args(argv)
    if args.per_layer:
        train_graph.takes = lambda net: False
    chips = args.chips or (5 if args.quick else 50)
    recipe: dict[str, Any] = {}
    if args.hw_epochs is not None:
        recipe["hw_epochs"] = args.hw_epochs
    if args.hw_lr is not None:
        recipe["hw_learning_rate"] = args.hw_lr

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    strategies = tuple(s for s in STRATEGIES if s in args.strategies)
    rows = [
        row
        for name in args.datasets
        for seed in args.seeds
        for row in run_dataset(
            name,
            args.quick,
            args.data_dir,
            chips,
            args.only,
            log,
            seed,
            strategies,
            recipe,
            args.train_samples,
            tuple(args.precisions),
        )
    ]
    if args.json:
        document = {
            "quick": args.quick,
            "train_samples": args.train_samples,
            "rows": [row_json(r) for r in rows],
            "verdict": verdict(rows),
            "precisions": precision_lines(rows),
        }
        print(json.dumps(document))
    else:
        print(markdown(rows))
        print()
        print("\n".join(verdict(rows) + precision_lines(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
