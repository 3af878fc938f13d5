"""PostgreSQL goes away under load: 503 + Retry-After, kept connections, recovery, no loss.

A private PostgreSQL (never the shared one) and Redis, and the API as a plain uvicorn
process; one keep-alive httpx client polls and submits while the database is stopped for
about ten seconds and started again.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.db.session import upgrade_database
from tests.integration.services import (
    child_env,
    free_port,
    private_postgres,
    private_redis,
    running_process,
    tail,
    wait_for,
)

JOBS = "/api/v1/jobs"
OUTAGE_S = 10.0
STUDY = {
    "network": {"hidden": [16]},
    "profile": {"preset": "rram-4bit"},
    "training": {"epochs": 1, "hw_epochs": 1},
    "evaluation": {"chips": 2},
    "fresh": True,
}


@dataclass
class Traffic:
    """What the client saw: answers by status, the connections used, accepted job ids."""

    statuses: list[int] = field(default_factory=list)
    local_addresses: set[tuple[str, int]] = field(default_factory=set)
    accepted: list[str] = field(default_factory=list)

    def record(self, response: httpx.Response) -> None:
        assert response.status_code in {200, 202, 503}, response.text
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) > 0, response.headers
            assert "Traceback" not in response.text and "psycopg" not in response.text
        if response.request.method == "POST" and response.status_code == 202:
            self.accepted.append(response.json()["id"])
        stream = response.extensions["network_stream"]
        self.local_addresses.add(stream.get_extra_info("client_addr"))
        self.statuses.append(response.status_code)

    def round(self, client: httpx.Client) -> None:
        """One submit and one poll of the latest accepted job."""
        self.record(client.post(JOBS, json=STUDY))
        if self.accepted:
            self.record(client.get(f"{JOBS}/{self.accepted[-1]}"))


def test_a_database_outage_is_503_with_retry_after_then_recovers_by_itself(
    tmp_path: Path,
) -> None:
    with private_postgres() as database, private_redis(tmp_path) as broker:
        upgrade_database(database.url)
        env = child_env(
            database_url=database.url,
            broker_url=broker.url,
            state_dir=tmp_path,
            max_jobs_in_flight_per_key=10_000,
            submit_rate_per_minute=0,
        )
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
        log = tmp_path / "api.log"
        with (
            running_process(argv, env, log),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
        ):
            wait_for(lambda: _answers(client), 60, "the API to answer /healthz")
            traffic = Traffic()
            for _ in range(3):
                traffic.round(client)
            assert traffic.statuses == [202, 200, 202, 200, 202, 200], tail(log)

            database.stop()
            stopped_at = time.monotonic()
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.headers["Retry-After"]
            assert ready.json()["checks"] == {"database": "unreachable", "broker": "ok"}
            assert "database" in ready.json()["detail"]
            while time.monotonic() - stopped_at < OUTAGE_S:
                traffic.round(client)
                time.sleep(0.1)
            during = len(traffic.statuses)
            database.start()

            def recovered() -> bool:
                traffic.round(client)
                return traffic.statuses[-1] in {200, 202}

            wait_for(recovered, 60, "the API to serve again after PostgreSQL came back")
            for _ in range(3):
                traffic.round(client)

            outage = traffic.statuses[6:during]
            assert outage and set(outage) == {503}, outage
            assert set(traffic.statuses[-6:]) <= {200, 202}, traffic.statuses[-6:]
            assert len(traffic.local_addresses) == 1, "a connection was dropped"
            assert client.get("/readyz").status_code == 200
            for job_id in traffic.accepted:
                job = client.get(f"{JOBS}/{job_id}")
                assert job.status_code == 200 and job.json()["status"] == "queued"
            listed = client.get(JOBS, params={"limit": 100}).json()["items"]
            assert {job["id"] for job in listed} >= set(traffic.accepted)
            assert "Exception in ASGI application" not in log.read_text(), tail(log)


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False
