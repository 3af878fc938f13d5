"""When compiling the Monte Carlo stage pays: each process's calls, compiled or eager.

    HWSCORE_DATA_DIR=../shared/data .venv/bin/python bench/stage_compile.py [--calls 8]

Runs ``--calls`` Monte Carlo calls (100 chips of rram-2bit on the 10,000 MNIST test
images: a million chip-images each, as a default study's naive or hardware-aware score)
in a new process per variant, one after the other, and prints each call's seconds:

- ``compiled_cold``: the stage compiled from the first call, on an empty compile cache
  (a fresh state folder's first worker);
- ``compiled_warm``: the same on the cache the first run filled (any later worker);
- ``eager``: the stage never compiled (``HWSCORE_COMPILE=0``);
- ``default_cold`` / ``default_warm``: the engine's rule (``mlp_forward.COMPILE_AFTER``):
  eager until the process has scored that many chip-images, then compiled.

Not a test: the machine's speed changes from minute to minute, so compare the columns
of one run, and the first call of each process with its later ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def child(calls: int, compile_now: bool) -> None:
    """In the measured process: build the net, then time each call."""
    from hwmodels import mlp_forward
    from hwmodels.datasets.loader import load_split
    from hwmodels.evaluation import chip_accuracies
    from hwmodels.network import build_float, calibrate, to_hardware
    from hwmodels.profile import get_preset
    from hwmodels.specs import NetworkSpec

    if compile_now:
        mlp_forward.COMPILE_AFTER = 0
    data_dir = Path(os.environ["HWSCORE_DATA_DIR"])
    train = load_split("mnist", "train", data_dir, limit=2_000)
    test = load_split("mnist", "test", data_dir)
    profile = get_preset("rram-2bit")
    float_net = build_float(NetworkSpec(hidden=[256, 128]), "mnist", profile, seed=0)
    net = to_hardware(float_net, profile)
    calibrate(net, train.images)
    seconds = []
    for call in range(calls):
        started = time.perf_counter()
        chip_accuracies(net, test.images, test.labels, chips=100, seed=call)
        seconds.append(round(time.perf_counter() - started, 2))
    print(json.dumps(seconds))


def measure(calls: int, compile_now: bool, cache: Path, eager: bool) -> list[float]:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    env["HWSCORE_COMPILE"] = "0" if eager else "1"
    command = [sys.executable, __file__, "--child", "--calls", str(calls)]
    command += ["--compile-now"] if compile_now else []
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    seconds: list[float] = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=8, help="Monte Carlo calls per process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compile-now", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.calls, args.compile_now)
        return 0
    with tempfile.TemporaryDirectory(prefix="stage-compile-") as folder:
        compiled, default = Path(folder) / "compiled", Path(folder) / "default"
        runs = {
            "compiled_cold": measure(args.calls, True, compiled, eager=False),
            "compiled_warm": measure(args.calls, True, compiled, eager=False),
            "eager": measure(args.calls, False, Path(folder) / "eager", eager=True),
            "default_cold": measure(args.calls, False, default, eager=False),
            "default_warm": measure(args.calls, False, default, eager=False),
        }
    totals = {name: round(sum(seconds), 1) for name, seconds in runs.items()}
    print(json.dumps({"seconds_per_call": runs, "total_s": totals}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
