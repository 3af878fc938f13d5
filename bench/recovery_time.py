"""How long a job whose whole service was SIGKILLed takes to run again, at the defaults.

    HWSCORE_DATA_DIR=../shared/data .venv/bin/python bench/recovery_time.py [--rounds 2]

Starts ``hwscore serve`` (the embedded default: SQLite, SQLite broker, default recovery
settings) in a temporary state folder, submits a study, waits until it trains, kills
``serve`` with SIGKILL (its API and worker die with it), starts it again at once, and
measures the seconds from the kill until the job is ``running`` again (its attempt 2)
and until it has succeeded. The scaled-out deployment uses the same sweep and settings.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

STUDY = {
    "dataset": "mnist",
    "network": {"hidden": [32]},
    "profile": {"preset": "rram-4bit"},
    "training": {"epochs": 3, "hw_epochs": 1, "train_samples": 5000},
    "evaluation": {"chips": 4, "test_samples": 1000},
    "fresh": True,
}


def wait(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise SystemExit(f"timed out waiting for {what}")


def start_serve(port: int, state: Path, logs: Path) -> subprocess.Popen[bytes]:
    """``hwscore serve`` with its own log file, once it prints the docs URL."""
    log = logs / f"serve-{len(list(logs.glob('serve-*.log')))}.log"
    hwscore = Path(sys.executable).with_name("hwscore")
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "HWSCORE_STALE_AFTER_S",
            "HWSCORE_SWEEP_INTERVAL_S",
            "HWSCORE_HEARTBEAT_INTERVAL_S",
            "HWSCORE_MAX_ATTEMPTS",
        }
    }
    env["HWSCORE_STATE_DIR"] = str(state)
    with open(log, "wb") as out:
        serve = subprocess.Popen(
            [str(hwscore), "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    wait(lambda: b"/docs" in log.read_bytes(), 120, "hwscore serve to start")
    return serve


def one_round(api: httpx.Client, port: int, state: Path, logs: Path) -> tuple[float, float]:
    serve = start_serve(port, state, logs)
    try:
        return measure(api, port, state, logs, serve)
    finally:
        stop(serve)


def stop(serve: subprocess.Popen[bytes]) -> None:
    if serve.poll() is None:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


def measure(
    api: httpx.Client, port: int, state: Path, logs: Path, serve: subprocess.Popen[bytes]
) -> tuple[float, float]:
    """Kill ``serve`` mid-job, start it again, and time the job's way back."""
    job_id = api.post("/api/v1/jobs", json=STUDY).json()["id"]

    def job() -> dict[str, Any]:
        try:
            return dict(api.get(f"/api/v1/jobs/{job_id}").json())
        except httpx.TransportError:  # the kept-alive connection died with the old API
            return {"status": None, "attempts": None, "progress": {"fraction": 0}}

    wait(
        lambda: job()["status"] == "running" and job()["progress"]["fraction"] > 0, 120, "training"
    )
    serve.kill()
    killed_at = time.monotonic()
    serve.wait()
    restarted = start_serve(port, state, logs)
    try:
        wait(lambda: job()["status"] == "running" and job()["attempts"] == 2, 300, "run 2")
        running_again_s = time.monotonic() - killed_at
        wait(lambda: job()["status"] == "succeeded", 300, "success")
        return running_again_s, time.monotonic() - killed_at
    finally:
        stop(restarted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=10) as api,
    ):
        state, logs = Path(folder) / "state", Path(folder)
        for round_number in range(1, args.rounds + 1):
            again, done = one_round(api, args.port, state, logs)
            print(
                f"round {round_number}: running again {again:.1f} s after SIGKILL, "
                f"succeeded {done:.1f} s after it"
            )


if __name__ == "__main__":
    main()
