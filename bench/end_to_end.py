"""Jobs through the service as a user runs them: submit to ``succeeded`` (not a test).

    HWSCORE_DATA_DIR=../shared/data .venv/bin/python bench/end_to_end.py [--port 8765]

Starts ``hwscore serve`` (API and one worker on the embedded default) on a fresh state
folder, submits the README's first example job and then the default study on a preset,
one at a time, and polls each until it ends; then stops the service, starts it again on
the same state folder and runs both once more with seed 1 (so that float training is
not reused from the first round, while the compile cache on disk is). For every job it
prints the seconds from POST to the end, the engine's own phase timings (``timings_s``)
and whether the float network was reused. The first job of a fresh state folder also
compiles the engine's kernels into it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from app.core.vocabulary import TERMINAL_STATUSES

REPO_ROOT = Path(__file__).resolve().parents[1]
JOBS = "/api/v1/jobs"


def readme_example() -> dict[str, Any]:
    """The first job the README posts with curl ("A job, end to end"), as written there."""
    found = re.search(r"-d '(\{.*?\})'", (REPO_ROOT / "README.md").read_text(), re.DOTALL)
    if found is None:
        raise RuntimeError("README.md posts no job with curl -d '{...}'")
    example: dict[str, Any] = json.loads(found.group(1))
    return example


DEFAULT_STUDY: dict[str, Any] = {"dataset": "mnist", "profile": {"preset": "rram-2bit"}}
"""Every training and evaluation setting at its default."""


@contextmanager
def service(state_dir: Path, port: int) -> Iterator[httpx.Client]:
    """``hwscore serve`` on ``state_dir``, stopped (Ctrl-C, as a user would) on exit."""
    environment = {**os.environ, "HWSCORE_STATE_DIR": str(state_dir)}
    command = [str(REPO_ROOT / ".venv/bin/hwscore"), "serve", "--port", str(port)]
    log = (state_dir / "serve.log").open("ab")  # the service's own output stays out of ours
    process = subprocess.Popen(command, env=environment, cwd=REPO_ROOT, stdout=log, stderr=log)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
    try:
        deadline = time.monotonic() + 120.0
        while not _answers(client):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("hwscore serve did not come up")
            time.sleep(0.5)
        yield client
    finally:
        client.close()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
        log.close()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def run_job(client: httpx.Client, spec: dict[str, Any], seed: int) -> dict[str, Any]:
    """Submit ``spec`` with ``seed`` and poll it to the end; its times and outcome."""
    body = json.loads(json.dumps(spec))
    body.setdefault("training", {})["seed"] = seed
    started = time.monotonic()
    response = client.post(JOBS, json=body)
    response.raise_for_status()
    job_id = response.json()["id"]
    while True:
        job = client.get(f"{JOBS}/{job_id}").json()
        if job["status"] in TERMINAL_STATUSES:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    row: dict[str, Any] = {"status": job["status"], "submit_to_done_s": round(elapsed, 1)}
    if job["status"] == "succeeded":
        report = client.get(f"{JOBS}/{job_id}/result").json()
        row["timings_s"] = report["timings_s"]
        row["float_reused"] = (report.get("float_training") or {}).get("reused")
        row["hardware_aware_pct"] = round(100 * report["hardware_aware"]["mean"], 2)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8765, help="port for hwscore serve")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="hwscore-e2e-") as folder:
        state = Path(folder)
        for round_, seed in (("fresh state folder", 0), ("after a restart", 1)):
            with service(state, args.port) as client:
                jobs = (("readme_example", readme_example()), ("default", DEFAULT_STUDY))
                for name, spec in jobs:
                    row = run_job(client, spec, seed)
                    results[f"{name}, seed {seed} ({round_})"] = row
                    print(json.dumps({name: row}), file=sys.stderr)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
