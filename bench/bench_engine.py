"""How fast the engine trains and scores, on full MNIST with the 784-256-128-10 MLP.

    .venv/bin/python bench/bench_engine.py [--json] [--chips 100] [--data-dir DIR]

Measures (seconds unless named otherwise):
- float_epoch_s: one float epoch at batch 128 (best of ``--repeats``, interleaved with
  the hardware-aware epochs so that all run under the same load);
- hwa_epoch_s / hwa_ste_epoch_s: one hardware-aware epoch (annealed surrogates / STE)
  on a low-bit non-ideal profile without noise (2-bit weights, 3-bit activations,
  on/off 10, non-linearity 2, asymmetry 0.1); hwa_ste_noisy_epoch_s (the default
  recipe: STE with noise injection) and hwa_noisy_epoch_s (annealed with noise
  injection) on the rram-2bit preset; each also as a ratio to the float epoch;
- mc100_s / mc100_bf16_s / mc100_int8_s: Monte Carlo over ``--chips`` chips of
  rram-4bit (programming and read noise, stuck devices, 4-bit activations) on the 10,000
  test images, in float32, bfloat16 (only where oneDNN has bfloat16 kernels: CPUs with
  AVX-512) and int8 (integer codes times weights rounded per row, int8.py), and how far
  each moves the mean accuracy and the most-moved chip from float32, in percentage
  points; mc100_floor_s / mc100_bf16_floor_s / mc100_int8_floor_s: the bare GEMMs of
  the same shapes, chunks and precision, timed in the same rounds, and
  mc100_over_floor, ..., the ratios (best of ``--repeats`` each);
- peak_rss_mb, the load average while it ran (other processes slow it down) and the
  CPU's vector instructions as torch sees them (cpu_capability);
- hwa_layers_epoch_s, hwa_ste_layers_epoch_s, ...: each hardware-aware epoch on the
  per-layer path (``train_graph`` off), and hwa_graph_speedup, hwa_ste_graph_speedup,
  ... (per-layer time / graph time);
- with ``--eager-too``: the same epochs with the engine's fused paths off (Adam unfused,
  the weight transform eager: the engine before they were added), interleaved in the
  same rounds, as ``*_eager_*`` and ``*_speedup`` (eager time / fused time); and the
  Monte Carlo runs with the stage between GEMMs eager (mc100_eager_s, mc100_speedup,
  and the same for bfloat16), which must score the very same chips.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from hwmodels import fused, mlp_forward, train_graph, training
from hwmodels.datasets.loader import load_split
from hwmodels.evaluation import (
    DEFAULT_MEMORY_MB,
    _chip_chunk,
    _image_chunk,
    accuracy,
    chip_accuracies,
)
from hwmodels.network import (
    FloatMLP,
    HardwareNet,
    build_float,
    calibrate,
    copy_hardware,
    to_hardware,
)
from hwmodels.profile import HardwareProfile, get_preset
from hwmodels.specs import NetworkSpec, TrainingSettings
from hwmodels.training import train_float, train_hardware_aware

LOW_BIT = HardwareProfile.model_validate(
    {
        "name": "bench-low-bit",
        "weights": {"bits": 2},
        "activations": {"bits": 3},
        "conductance": {"on_off_ratio": 10.0, "nonlinearity": 2.0, "asymmetry": 0.1},
    }
)


def timed(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def hwa_run(
    net: FloatMLP,
    profile: HardwareProfile,
    images: torch.Tensor,
    labels: torch.Tensor,
    **settings: Any,
) -> Any:
    """A function running one hardware-aware epoch from the calibrated float weights."""
    hardware = to_hardware(net, profile)
    calibrate(hardware, images)
    run = TrainingSettings(hw_epochs=1, **settings)
    return lambda: train_hardware_aware(copy_hardware(hardware), images, labels, run)


@contextmanager
def eager_engine() -> Iterator[None]:
    """The engine without its fused paths: unfused Adam, eager weight transform."""
    enabled, adam = fused.enabled(), training.adam
    fused.set_enabled(False)
    training.adam = functools.partial(adam, fused=False)
    try:
        yield
    finally:
        training.adam = adam
        fused.set_enabled(enabled)


def per_layer(action: Callable[[], Any]) -> Callable[[], Any]:
    """``action`` with hardware-aware training on the per-layer path (no whole graph)."""

    def run() -> Any:
        takes = train_graph.takes
        train_graph.takes = lambda net: False
        try:
            return action()
        finally:
            train_graph.takes = takes

    return run


def eager(action: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with eager_engine():
            return action()

    return run


def gemm_floor(net: HardwareNet, images: torch.Tensor, chips: int, dtype: torch.dtype) -> float:
    """Seconds the bare GEMMs of ``chip_accuracies`` take: the same chip and image chunks,
    shapes and precision (first layer one GEMM of the stacked weights over the pixels
    in use, later layers batched matmuls, each W @ h), on random operands, nothing else."""
    chunk = _chip_chunk(net, chips, DEFAULT_MEMORY_MB, per_chip=True)
    batch = _image_chunk(net, chunk, DEFAULT_MEMORY_MB)
    active = int((images != 0).any(dim=0).sum())
    sizes = [active, *net.sizes[1:]]
    total = 0.0
    for first in range(0, chips, chunk):
        count = min(chunk, chips - first)
        weights = [_operand((count, b, a), dtype) for a, b in itertools.pairwise(sizes)]
        for start in range(0, images.shape[0], batch):
            columns = min(batch, images.shape[0] - start)
            inputs = [_operand((active, columns), dtype)]
            inputs += [_operand((count, a, columns), dtype) for a in sizes[1:-1]]
            began = time.perf_counter()
            for w, x in zip(weights, inputs, strict=True):
                mlp_forward.gemm(w, x)
            total += time.perf_counter() - began
    return total


def _operand(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.int8:
        return torch.randint(-127, 128, shape, dtype=torch.int8)
    return torch.randn(shape).to(dtype)


def monte_carlo(
    net: HardwareNet,
    images: torch.Tensor,
    labels: torch.Tensor,
    chips: int,
    repeats: int,
    eager_too: bool = False,
) -> dict[str, Any]:
    """The Monte Carlo rows: float32, and bfloat16 where oneDNN runs it (CPUs with AVX-512;
    on others its GEMMs run a reference loop, many times slower than float32); with
    ``eager_too`` each also with the compiled stage between GEMMs off (mlp_forward)."""
    kinds = [("mc100_s", "", torch.float32), ("mc100_int8_s", "_int8", torch.int8)]
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        kinds.append(("mc100_bf16_s", "_bf16", torch.bfloat16))
    accuracies: dict[str, list[float]] = {}
    times: dict[str, float] = {}

    def score(key: str, dtype: torch.dtype) -> None:
        start = time.perf_counter()
        accuracies[key] = chip_accuracies(
            net, images, labels, chips=chips, seed=0, compute_dtype=dtype
        )
        times[key] = min(times.get(key, math.inf), time.perf_counter() - start)

    for _ in range(repeats):  # interleaved with their floors, best of each
        for key, _suffix, dtype in kinds:
            score(key, dtype)
            if eager_too:
                with eager_engine():
                    score(f"{key}_eager", dtype)
            floor = gemm_floor(net, images, chips, dtype)
            times[f"{key}_floor"] = min(times.get(f"{key}_floor", math.inf), floor)
    results: dict[str, Any] = {}
    for key, suffix, _dtype in kinds:
        results[key] = round(times[key], 3)
        results[f"mc100{suffix}_floor_s"] = round(times[f"{key}_floor"], 3)
        results[f"mc100{suffix}_over_floor"] = round(times[key] / times[f"{key}_floor"], 2)
        if eager_too:
            assert accuracies[f"{key}_eager"] == accuracies[key], "eager scored other chips"
            results[f"mc100{suffix}_eager_s"] = round(times[f"{key}_eager"], 3)
            results[f"mc100{suffix}_speedup"] = round(times[f"{key}_eager"] / times[key], 2)
    results["mc_mean_accuracy_fp32"] = round(sum(accuracies["mc100_s"]) / chips, 5)
    results.update(_against_fp32(accuracies["mc100_s"], accuracies["mc100_int8_s"], "int8"))
    if "mc100_bf16_s" not in accuracies:
        results["mc100_bf16"] = "not measured: oneDNN has no bfloat16 kernels for this CPU"
        return results
    results.update(_against_fp32(accuracies["mc100_s"], accuracies["mc100_bf16_s"], "bf16"))
    return results


def _against_fp32(fp32: list[float], other: list[float], name: str) -> dict[str, float]:
    """How far a precision moves the mean and the most-moved chip, in points."""
    mean32, mean = sum(fp32) / len(fp32), sum(other) / len(other)
    worst = max(abs(a - b) for a, b in zip(fp32, other, strict=True))
    return {
        f"mc_mean_accuracy_{name}": round(mean, 5),
        f"{name}_minus_fp32_pp": round(100 * (mean - mean32), 3),
        f"{name}_worst_chip_diff_pp": round(100 * worst, 3),
    }


def run(
    chips: int, data_dir: Path | None, repeats: int = 2, eager_too: bool = False
) -> dict[str, Any]:
    load_before = os.getloadavg()
    # The compiled stage's steady state, from the first call (bench/stage_compile.py
    # measures what a new process pays before it).
    mlp_forward.COMPILE_AFTER = 0
    train = load_split("mnist", "train", data_dir)
    test = load_split("mnist", "test", data_dir)
    net = build_float(NetworkSpec(hidden=[256, 128]), "mnist", LOW_BIT, seed=0)
    one_epoch = TrainingSettings(epochs=1)
    train_float(net, train.images, train.labels, one_epoch)
    float_accuracy = accuracy(net, test.images, test.labels)
    runs = {
        "float": lambda: train_float(net, train.images, train.labels, one_epoch),
        "hwa": hwa_run(net, LOW_BIT, train.images, train.labels, strategy="annealed"),
        "hwa_ste": hwa_run(net, LOW_BIT, train.images, train.labels, strategy="ste"),
        "hwa_ste_noisy": hwa_run(
            net, get_preset("rram-2bit"), train.images, train.labels, strategy="ste"
        ),
        "hwa_noisy": hwa_run(
            net, get_preset("rram-2bit"), train.images, train.labels, strategy="annealed"
        ),
    }
    if eager_too:
        runs.update({f"{name}_eager": eager(action) for name, action in list(runs.items())})
    hardware_aware = ("hwa", "hwa_ste", "hwa_ste_noisy", "hwa_noisy")
    runs.update({f"{name}_layers": per_layer(runs[name]) for name in hardware_aware})
    # Interleaved and repeated, so that the ratios compare epochs run under the same load.
    best = {name: min(timed(action) for _ in range(1)) for name, action in runs.items()}
    for _ in range(repeats - 1):
        for name, action in runs.items():
            best[name] = min(best[name], timed(action))
    results: dict[str, Any] = {"float_epoch_s": round(best["float"], 3)}
    for name in hardware_aware:
        results[f"{name}_epoch_s"] = round(best[name], 3)
        results[f"{name}_over_float_epoch"] = round(best[name] / best["float"], 2)
    for name in hardware_aware:
        results[f"{name}_layers_epoch_s"] = round(best[f"{name}_layers"], 3)
        results[f"{name}_graph_speedup"] = round(best[f"{name}_layers"] / best[name], 2)
    if eager_too:
        results["float_eager_epoch_s"] = round(best["float_eager"], 3)
        for name in ("float", "hwa", "hwa_ste", "hwa_ste_noisy", "hwa_noisy"):
            if name != "float":
                results[f"{name}_eager_epoch_s"] = round(best[f"{name}_eager"], 3)
                ratio = best[f"{name}_eager"] / best["float_eager"]
                results[f"{name}_eager_over_float_eager_epoch"] = round(ratio, 2)
            results[f"{name}_speedup"] = round(best[f"{name}_eager"] / best[name], 2)

    noisy = to_hardware(net, get_preset("rram-4bit"))
    calibrate(noisy, train.images)
    results.update(monte_carlo(noisy, test.images, test.labels, chips, repeats, eager_too))
    results.update(
        {
            "chips": chips,
            "float_accuracy_after_1_epoch": round(float_accuracy, 4),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--chips", type=int, default=100, help="chips in the Monte Carlo run")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding mnist/")
    parser.add_argument("--repeats", type=int, default=2, help="epochs timed per kind (best)")
    parser.add_argument(
        "--eager-too", action="store_true", help="also time the engine without its fused paths"
    )
    args = parser.parse_args(argv)
    results = run(args.chips, args.data_dir, args.repeats, args.eager_too)
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:32s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
