"""The API against real services: a fresh PostgreSQL database and a Redis database.

One application for the whole session (auth on, small limits so tests can reach them);
each test gets API keys of its own, so tests do not see each other's jobs.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.security import create_api_key
from app.db.session import upgrade_database
from app.main import create_app
from tests.integration.services import flushed_redis, fresh_postgres_database

# A Redis database of its own (flushed at start); HWSCORE_TEST_API_REDIS_URL moves it
# where several checkouts share one Redis server.
API_REDIS_URL = os.environ.get("HWSCORE_TEST_API_REDIS_URL", "redis://127.0.0.1:6379/14")
MAX_IN_FLIGHT = 3
MAX_REQUEST_BYTES = 20_000
MAX_MODEL_BYTES = 200_000


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database("hwscore_api") as url:
        upgrade_database(url)
        yield url


@pytest.fixture(scope="session")
def broker_url() -> str:
    return flushed_redis(API_REDIS_URL)


@pytest.fixture(scope="session")
def settings(
    postgres_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return Settings(
        database_url=postgres_url,
        broker_url=broker_url,
        state_dir=tmp_path_factory.mktemp("state"),
        data_dir=tmp_path_factory.mktemp("empty-data"),
        auth="on",
        max_jobs_in_flight_per_key=MAX_IN_FLIGHT,
        max_request_bytes=MAX_REQUEST_BYTES,
        max_model_bytes=MAX_MODEL_BYTES,
        # The tests sweep explicitly when they mean to: no sweep thread under their feet.
        recovery_sweep=False,
        metrics_cache_s=0.0,  # tests read /metrics right after changing jobs
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def db(app: FastAPI) -> Iterator[Session]:
    session = app.state.hwscore.database.session()
    yield session
    session.close()


class Caller:
    """An API key: its owner id and the headers that present it."""

    def __init__(self, key_id: str, secret: str) -> None:
        self.id = key_id
        self.secret = secret
        self.headers = {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def new_caller(app: FastAPI) -> Callable[[], Caller]:
    def make() -> Caller:
        with app.state.hwscore.database.session() as session:
            key, secret = create_api_key(session, "test")
            session.commit()
            return Caller(key.id, secret)

    return make


@pytest.fixture
def alice(new_caller: Callable[[], Caller]) -> Caller:
    return new_caller()


@pytest.fixture
def bob(new_caller: Callable[[], Caller]) -> Caller:
    return new_caller()


def queued_job_ids(broker_url: str) -> list[str]:
    """Job ids of the hwscore.run_job messages waiting in the Redis queue."""
    client = redis.Redis.from_url(broker_url)
    ids = []
    for raw in client.lrange("hwscore", 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "hwscore.run_job"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    client.close()
    return ids


def assert_problem(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status whose detail says each fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:hwscore:problem:")
    assert body["title"] and body["instance"].startswith("/")
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]
    return body
