"""Schemathesis over the API's own OpenAPI schema, on PostgreSQL: no 5xx, no broken schema.

The application runs in-process (ASGI) on a fresh PostgreSQL database with a private
Redis as its broker and no worker, so submitted jobs stay queued and nothing trains.
Limits are lifted so generated submissions reach the database instead of stopping at
429. A fixed seed (derandomize) and a bounded number of examples per operation keep
every run the same and well under two minutes on two cores.

The schema is loaded at import from an application that is not connected yet (building
one connects nothing); a fixture then gives it the real database and broker. Schemathesis'
fixture-based loader (``schemathesis.pytest.from_fixture``) does not run on pytest 9.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from sqlalchemy import func, select

from app.api.state import AppState
from app.core.config import Settings
from app.db.models import Job
from app.db.session import upgrade_database
from app.main import create_app
from tests.integration.services import fresh_postgres_database, private_redis

EXAMPLES_PER_OPERATION = 50
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
LIMITS_LIFTED = {
    "auth": "off",
    "max_jobs_in_flight_per_key": 100_000,
    "submit_rate_per_minute": 0,
    "metrics_cache_s": 0,
}

app = create_app(Settings(**LIMITS_LIFTED))  # type: ignore[arg-type]
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def connected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point the application at a fresh PostgreSQL database and a private Redis."""
    workdir = tmp_path_factory.mktemp("fuzz")
    with fresh_postgres_database("hwscore_fuzz") as database_url, private_redis(workdir) as broker:
        upgrade_database(database_url)
        real = Settings(
            database_url=database_url,
            broker_url=broker.url,
            state_dir=workdir,
            data_dir=workdir,
            **LIMITS_LIFTED,  # type: ignore[arg-type]
        )
        idle: AppState = app.state.hwscore
        app.state.hwscore = AppState(real)
        try:
            yield
        finally:
            app.state.hwscore.close()
            app.state.hwscore = idle


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_without_5xx_and_as_its_schema_says(
    case: schemathesis.Case,
) -> None:
    case.call_and_validate(checks=CHECKS)


def test_the_fuzzing_reached_the_database() -> None:
    """Generated submissions were accepted and stored, so POST /jobs was fuzzed in depth."""
    with app.state.hwscore.database.session() as session:
        stored = session.scalar(select(func.count()).select_from(Job))
    assert stored and stored >= 5, stored
