"""The README's first command: ``hwscore serve`` runs a job with nothing else installed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.db.session import make_engine
from tests.conftest import skip_or_fail
from tests.integration.conftest import OFFLINE, TERMINAL
from tests.integration.services import child_env, child_pids, free_port, tail, wait_for

pytestmark = pytest.mark.integration

TINY_JOB = {
    "dataset": "mnist",
    "network": {"hidden": [16]},
    "profile": {"preset": "pcm-3bit"},
    "training": {"epochs": 1, "hw_epochs": 1, "strategy": "ste", "train_samples": 500},
    "evaluation": {"chips": 2, "test_samples": 200},
    "fresh": True,
}


def test_serve_runs_a_job_on_sqlite_and_stops_cleanly(tmp_path: Path, data_dir: Path) -> None:
    hwscore = _hwscore_command()
    port = free_port()
    env = {**child_env(state_dir=tmp_path / "state", data_dir=data_dir), **OFFLINE}
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen(
            [str(hwscore), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
            try:
                wait_for(lambda: b"/docs" in log_path.read_bytes(), 60, "the docs URL")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{tail(log_path)}") from None
            response = api.post("/api/v1/jobs", json=TINY_JOB)
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]

            def finished() -> dict[str, object] | None:
                job = api.get(f"/api/v1/jobs/{job_id}").json()
                return job if job["status"] in TERMINAL else None

            job = wait_for(finished, 60, "the job to finish", interval_s=0.5)
            assert job["status"] == "succeeded", f"{job}\n{tail(log_path)}"

            # A long job is running when serve is stopped: it goes back to the queue.
            long_job = {**TINY_JOB, "training": {**TINY_JOB["training"], "epochs": 100}}
            long_job["training"].pop("train_samples")
            interrupted = api.post("/api/v1/jobs", json=long_job).json()["id"]

            def running() -> bool:
                job = api.get(f"/api/v1/jobs/{interrupted}").json()
                return bool(job["status"] == "running" and job["progress"]["fraction"] > 0)

            wait_for(running, 60, "the long job to start training")

        serve.send_signal(signal.SIGINT)  # Ctrl-C
        assert serve.wait(timeout=30) == 0, tail(log_path)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    output = log_path.read_text()
    assert f"http://127.0.0.1:{port}/docs" in output
    assert "1 interrupted job(s) will run again at the next start" in output
    with closing(
        make_engine(f"sqlite:///{tmp_path / 'state' / 'hwscore.sqlite3'}").connect()
    ) as db:
        status, attempts = db.execute(
            text("SELECT status, attempts FROM jobs WHERE id = :id"), {"id": interrupted}
        ).one()
    assert (status, attempts) == ("queued", 1)
    assert (tmp_path / "state" / "hwscore.sqlite3").exists()
    assert (tmp_path / "state" / "broker.sqlite3").exists()
    # Nothing is left listening once serve has returned.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_serve_killed_with_sigkill_recovers_its_jobs_at_the_next_start(
    tmp_path: Path, data_dir: Path
) -> None:
    """A crash, not a stop: nothing is handed back; the next start's sweep takes over."""
    hwscore = _hwscore_command()
    port = free_port()
    fast = {"heartbeat_interval_s": "0.5", "stale_after_s": "3", "sweep_interval_s": "1"}
    env = {**child_env(state_dir=tmp_path / "state", data_dir=data_dir, **fast), **OFFLINE}
    argv = [str(hwscore), "serve", "--port", str(port), "--workers", "2"]
    job = {**TINY_JOB, "training": {**TINY_JOB["training"], "epochs": 4, "train_samples": 3000}}

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
        with _serving(argv, env, tmp_path / "first.log") as serve:
            finishing, cancelled = (api.post("/api/v1/jobs", json=job).json()["id"] for _ in "ab")

            def both_training() -> bool:
                jobs = [api.get(f"/api/v1/jobs/{i}").json() for i in (finishing, cancelled)]
                return all(j["status"] == "running" and j["progress"]["fraction"] > 0 for j in jobs)

            wait_for(both_training, 90, "both jobs to be training")
            serve.kill()  # SIGKILL: no hand-back; the API and workers die with it
            serve.wait()

        wait_for(lambda: not _answers(api), 10, "the old API to be gone")
        with _serving(argv, env, tmp_path / "second.log"):
            # Cancelling (its dead worker never answers) or, if the sweep already took it
            # back to the queue, cancelled at once: either way it must end cancelled.
            answer = api.post(f"/api/v1/jobs/{cancelled}/cancel")
            assert answer.json()["status"] in {"cancelling", "cancelled"}, answer.text

            def finished(job_id: str) -> dict[str, object] | None:
                state = api.get(f"/api/v1/jobs/{job_id}").json()
                return state if state["status"] in TERMINAL else None

            stopped = wait_for(lambda: finished(cancelled), 30, "the dead job's cancel")
            done = wait_for(lambda: finished(finishing), 120, "the dead job to run again")

    assert stopped["status"] == "cancelled"
    assert (done["status"], done["attempts"]) == ("succeeded", 2), tail(tmp_path / "second.log")


def test_serve_runs_jobs_after_its_idle_pool_process_is_killed(
    tmp_path: Path, data_dir: Path
) -> None:
    """The OOM killer may pick an idle pool process: its replacement must take jobs.

    billiard's blocking pool (used with the polled SQLite broker) once left the task
    pipe's lock with the killed process, and every later job stayed queued.
    """
    hwscore = _hwscore_command()
    port = free_port()
    env = {**child_env(state_dir=tmp_path / "state", data_dir=data_dir), **OFFLINE}
    log_path = tmp_path / "serve.log"
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api,
        _serving([str(hwscore), "serve", "--port", str(port)], env, log_path) as serve,
    ):
        worker = wait_for(lambda: _worker_of(serve.pid), 60, "the worker process")
        idle = wait_for(lambda: child_pids(worker), 60, "the worker's pool process")[0]
        time.sleep(3)  # let it settle into waiting for a task
        os.kill(idle, signal.SIGKILL)
        wait_for(lambda: [p for p in child_pids(worker) if p != idle], 30, "a new pool process")
        job_id = api.post("/api/v1/jobs", json=TINY_JOB).json()["id"]

        def finished() -> dict[str, object] | None:
            job = api.get(f"/api/v1/jobs/{job_id}").json()
            return job if job["status"] in TERMINAL else None

        job = wait_for(finished, 90, "the job after the kill to finish", interval_s=0.5)
    assert job["status"] == "succeeded", f"{job}\n{tail(log_path)}"


def _worker_of(serve_pid: int) -> int | None:
    """The Celery worker's main process among ``hwscore serve``'s children."""
    for pid in child_pids(serve_pid):
        if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    return None


def _hwscore_command() -> Path:
    """The installed ``hwscore`` next to this interpreter (skipped outside CI if absent)."""
    hwscore = Path(sys.executable).with_name("hwscore")
    if not hwscore.exists():
        skip_or_fail(f"the hwscore command is not installed next to {sys.executable}")
    return hwscore


@contextmanager
def _serving(
    argv: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``hwscore serve`` until the docs URL is printed; stopped with Ctrl-C at the end."""
    with open(log_path, "wb") as log:
        serve = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for(lambda: b"/docs" in log_path.read_bytes(), 90, "the docs URL")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{tail(log_path)}") from None
        yield serve
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(timeout=40)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()


def _answers(api: httpx.Client) -> bool:
    try:
        return api.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False
