"""Real faults, real processes: SIGKILLed workers and a Redis that loses its queue.

Each test runs its own stack (a fresh PostgreSQL database, a worker and the API as
processes) with recovery timings shrunk from minutes to seconds, so a dead worker's job
is noticed in about 4 s instead of about a minute. The rules are the defaults' rules.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db.models import Artifact, JobEvent
from app.db.session import make_engine, upgrade_database
from hwmodels.report import ARTIFACTS
from tests.integration.conftest import OFFLINE, TERMINAL, wait_for_worker, wait_until_up
from tests.integration.services import (
    child_env,
    child_pids,
    free_port,
    fresh_postgres_database,
    private_redis,
    running_process,
    tail,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAST_RECOVERY = {
    "heartbeat_interval_s": "0.5",
    "stale_after_s": "3",
    "sweep_interval_s": "1",
    "max_jobs_in_flight_per_key": "20",  # the loop submits faster than jobs finish
}
KILL_ROUNDS = 5
"""Rounds of submit, wait until the newest job trains, SIGKILL the worker, start another."""


def short_job(seed: int) -> dict[str, Any]:
    """A real MNIST study of a few seconds on 2 cores: long enough to be killed mid-run."""
    return {
        "dataset": "mnist",
        "network": {"hidden": [32]},
        "profile": {"preset": "rram-4bit"},
        "training": {"epochs": 2, "hw_epochs": 1, "train_samples": 3000, "seed": seed},
        "evaluation": {"chips": 4, "test_samples": 1000},
        "fresh": True,
    }


@dataclass
class FaultStack:
    """The API and a worker that the test can kill and start again."""

    api: httpx.Client
    sessions: sessionmaker[Session]
    worker_env: dict[str, str]
    broker_url: str
    logs: Path
    worker: subprocess.Popen[bytes] | None = None
    workers_started: int = 0
    _exits: ExitStack = field(default_factory=ExitStack)

    def start_worker(self) -> None:
        self.workers_started += 1
        node = f"fault-{self.workers_started}-{secrets.token_hex(2)}@localhost"
        log = self.logs / f"worker-{self.workers_started}.log"
        argv = [sys.executable, "-m", "app.cli", "worker", f"--name={node}"]
        self.worker = self._exits.enter_context(running_process(argv, self.worker_env, log))
        wait_for_worker(Settings(broker_url=self.broker_url), node, self.worker, log)

    def kill_worker(self) -> None:
        """SIGKILL the worker's whole process group: main process and pool child."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait()

    def kill_pool_child(self) -> None:
        """SIGKILL only the process running the job, as the out-of-memory killer does."""
        assert self.worker is not None
        children = child_pids(self.worker.pid)
        assert children, "the worker has no pool process"
        for child in children:
            os.kill(child, signal.SIGKILL)

    def submit(self, body: dict[str, Any]) -> str:
        response = self.api.post("/api/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def training_job(self, job_ids: list[str]) -> str | None:
        """The id of a job that is running and has made progress, if any."""
        for job_id in job_ids:
            job = self.job(job_id)
            if job["status"] == "running" and job["progress"]["fraction"] > 0:
                return job_id
        return None

    def wait_all_terminal(self, job_ids: list[str], timeout_s: float) -> list[dict[str, Any]]:
        def finished() -> list[dict[str, Any]] | None:
            jobs = [self.job(job_id) for job_id in job_ids]
            return jobs if all(job["status"] in TERMINAL for job in jobs) else None

        try:
            return list(wait_for(finished, timeout_s, "every job to finish", interval_s=0.5))
        except AssertionError as exc:
            states = {job_id: self.job(job_id)["status"] for job_id in job_ids}
            latest = self.logs / f"worker-{self.workers_started}.log"
            raise AssertionError(f"{exc}: {states}\n{tail(latest)}") from None

    def assert_written_once(self, job_id: str) -> None:
        """At most one success event and one artifact set, whatever was redelivered."""
        with self.sessions() as session:
            successes = session.scalar(
                select(func.count())
                .select_from(JobEvent)
                .where(
                    JobEvent.job_id == job_id, JobEvent.data["status"].as_string() == "succeeded"
                )
            )
            artifacts = session.scalar(
                select(func.count()).select_from(Artifact).where(Artifact.job_id == job_id)
            )
        if self.job(job_id)["status"] == "succeeded":
            assert (successes, artifacts) == (1, len(ARTIFACTS)), job_id
        else:
            assert (successes, artifacts) == (0, 0), job_id


@contextmanager
def fault_stack(
    tmp_path: Path, data_dir: Path, broker_url: str, **settings: str
) -> Iterator[FaultStack]:
    with fresh_postgres_database("hwscore_fault") as database_url, ExitStack() as exits:
        upgrade_database(database_url)
        env = child_env(
            database_url=database_url,
            broker_url=broker_url,
            data_dir=data_dir,
            state_dir=tmp_path,
            **{**FAST_RECOVERY, **settings},
        )
        port = free_port()
        api_argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
        api_process = exits.enter_context(running_process(api_argv, env, tmp_path / "api.log"))
        client = exits.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
        wait_until_up(client, api_process, tmp_path / "api.log")
        engine = make_engine(database_url)
        exits.callback(engine.dispose)
        stack = FaultStack(
            api=client,
            sessions=sessionmaker(bind=engine, expire_on_commit=False),
            worker_env={**env, **OFFLINE},
            broker_url=broker_url,
            logs=tmp_path,
        )
        with stack._exits:
            stack.start_worker()
            yield stack


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Any]:
    with private_redis(tmp_path) as server:
        yield server


def test_a_worker_sigkilled_mid_job_round_after_round_loses_no_job(
    tmp_path: Path, data_dir: Path, redis_server: Any
) -> None:
    with fault_stack(tmp_path, data_dir, redis_server.url) as stack:
        jobs: list[str] = []
        for _ in range(KILL_ROUNDS):
            # Each round kills the newest job's first run (one job runs at a time, so
            # the job killed last round is not running then: it is queued or done).
            jobs.append(stack.submit(short_job(seed=len(jobs))))
            wait_for(lambda: stack.training_job(jobs[-1:]), 90, "the new job to be training")
            stack.kill_worker()
            stack.start_worker()

        finished = stack.wait_all_terminal(jobs, timeout_s=240)
        for job_id in jobs:
            stack.assert_written_once(job_id)
        # Nothing is left in flight to count against the key's cap.
        listed = stack.api.get("/api/v1/jobs", params={"limit": 100}).json()["items"]
        assert len(listed) == len(jobs)
        assert all(job["status"] in TERMINAL for job in listed)

    # Killed once each, every job ran again and succeeded on its second attempt.
    assert [(job["status"], job["attempts"]) for job in finished] == [("succeeded", 2)] * len(jobs)


def test_a_job_that_kills_its_worker_every_time_fails_worker_lost(
    tmp_path: Path, data_dir: Path, redis_server: Any
) -> None:
    with fault_stack(tmp_path, data_dir, redis_server.url, max_attempts="2") as stack:
        cursed = stack.submit(short_job(seed=100))
        for attempt in (1, 2):

            def training_attempt(expected: int = attempt) -> bool:
                job = stack.job(cursed)
                return bool(job["status"] == "running" and job["attempts"] == expected)

            wait_for(training_attempt, 60, f"attempt {attempt} to run")
            if attempt == 1:  # the whole worker dies (a machine or container lost)
                stack.kill_worker()
                stack.start_worker()
            else:  # only the job's process dies; Celery redelivers, the claim refuses it
                stack.kill_pool_child()

        failed = stack.wait_all_terminal([cursed], timeout_s=60)[0]
        stack.assert_written_once(cursed)

    assert (failed["status"], failed["error"]["code"], failed["attempts"]) == (
        "failed",
        "worker_lost",
        2,
    )
    assert "stopped responding on each of its 2 runs" in failed["error"]["message"]


def test_redis_restarted_without_its_queue_loses_no_job_and_runs_none_twice(
    tmp_path: Path, data_dir: Path, redis_server: Any
) -> None:
    with fault_stack(tmp_path, data_dir, redis_server.url) as stack:
        jobs = [stack.submit(short_job(seed=200 + n)) for n in range(3)]
        wait_for(lambda: stack.training_job(jobs), 60, "the first job to be training")

        redis_server.stop()  # the queued messages die with it
        jobs.append(stack.submit(short_job(seed=210)))  # accepted while the broker is down
        time.sleep(2)
        redis_server.start()

        finished = stack.wait_all_terminal(jobs, timeout_s=180)
        for job_id in jobs:
            stack.assert_written_once(job_id)

    assert [job["status"] for job in finished] == ["succeeded"] * 4, finished
    assert [job["attempts"] for job in finished] == [1] * 4
