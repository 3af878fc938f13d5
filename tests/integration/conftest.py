"""The whole service for real: PostgreSQL, Redis, a Celery worker and the API, as processes.

One stack per test session (starting it costs seconds): a fresh PostgreSQL database,
Redis db 13 flushed, ``hwscore worker`` and uvicorn as subprocesses with HWSCORE_*
pointing at them. Tests talk to it over HTTP like any client.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db.session import make_engine, upgrade_database
from tests.integration.services import (
    child_env,
    flushed_redis,
    free_port,
    fresh_postgres_database,
    running_process,
    tail,
    wait_for,
)
from workers.celery_app import make_celery

TERMINAL = {"succeeded", "failed", "cancelled"}
# The test worker never downloads: a dataset that is not on disk must fail at once.
OFFLINE = {"HWSCORE_DOWNLOAD_DATASETS": "false"}


@dataclass
class Stack:
    api: httpx.Client
    sessions: sessionmaker[Session]
    worker_log: Path
    api_log: Path

    def submit(self, **spec: Any) -> dict[str, Any]:
        response = self.api.post("/api/v1/jobs", json={"fresh": True, **spec})
        assert response.status_code == 202, response.text
        return dict(response.json())

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_status(self, job_id: str, statuses: set[str], timeout_s: float) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] in statuses else None

        try:
            return dict(wait_for(reached, timeout_s, f"job {job_id} to reach {statuses}"))
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; job is {self.job(job_id)['status']}\n"
                f"--- worker log ---\n{tail(self.worker_log)}"
            ) from None

    def events(self, job_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/jobs/{job_id}/events")
        assert response.status_code == 200, response.text
        return list(response.json()["events"])


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("stack")
    broker_url = flushed_redis()
    with fresh_postgres_database() as database_url:
        upgrade_database(database_url)
        env = child_env(
            database_url=database_url,
            broker_url=broker_url,
            data_dir=data_dir,
            state_dir=logs,
            host="127.0.0.1",
        )
        node = f"it-{secrets.token_hex(3)}@localhost"
        worker_argv = [sys.executable, "-m", "app.cli", "worker", f"--name={node}"]
        port = free_port()
        api_argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
        engine = make_engine(database_url)
        with (
            running_process(worker_argv, {**env, **OFFLINE}, logs / "worker.log") as worker,
            running_process(api_argv, env, logs / "api.log") as api_process,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
        ):
            wait_until_up(client, api_process, logs / "api.log")
            wait_for_worker(Settings(broker_url=broker_url), node, worker, logs / "worker.log")
            yield Stack(
                api=client,
                sessions=sessionmaker(bind=engine, expire_on_commit=False),
                worker_log=logs / "worker.log",
                api_log=logs / "api.log",
            )
        engine.dispose()


def wait_until_up(client: httpx.Client, process: Any, log: Path) -> None:
    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the API exited at start-up:\n{tail(log)}")
        try:
            return client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, 60, "the API to answer /healthz")


def wait_for_worker(settings: Settings, node: str, process: Any, log: Path) -> None:
    celery = make_celery(settings)

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the worker exited at start-up:\n{tail(log)}")
        return bool(celery.control.ping(destination=[node], timeout=1.0))

    try:
        wait_for(answers, 90, f"worker {node} to answer a ping", interval_s=0.5)
    finally:
        celery.close()
