"""Catalog endpoints, health, metrics, the OpenAPI document, no torch, and SQLite."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.models import Job
from app.db.session import upgrade_database
from app.main import create_app
from hwmodels.datasets.catalog import DATASETS
from hwmodels.profile import PRESETS
from tests.api.conftest import Caller, assert_problem
from tests.api.factories import make_job, study
from tests.conftest import REPO_ROOT


def test_hardware_profiles_list_every_preset_with_its_provenance(
    client: TestClient, alice: Caller
) -> None:
    listed = client.get("/api/v1/hardware-profiles", headers=alice.headers).json()
    assert [p["name"] for p in listed] == list(PRESETS)
    assert all(p["description"] and p["source"] for p in listed)
    assert [p["name"] for p in listed if p["is_ideal"]] == ["ideal"]
    one = client.get("/api/v1/hardware-profiles/pcm-4bit", headers=alice.headers).json()
    assert one["profile"] == PRESETS["pcm-4bit"].model_dump(mode="json")
    missing = client.get("/api/v1/hardware-profiles/memristor", headers=alice.headers)
    assert_problem(missing, 404, "unknown hardware preset 'memristor'", "rram-4bit")


def test_datasets_say_what_this_server_has(
    client: TestClient, alice: Caller, settings: Settings, data_dir: Path
) -> None:
    listed = client.get("/api/v1/datasets", headers=alice.headers).json()
    assert [d["name"] for d in listed] == list(DATASETS)
    mnist = listed[0]
    assert (mnist["input_size"], mnist["num_classes"]) == (784, 10)
    assert mnist["present"] is False  # the session's data folder is empty
    assert "train-images-idx3-ubyte" in mnist["missing"]
    letters = next(d for d in listed if d["name"] == "emnist-letters")
    assert letters["num_classes"] == DATASETS["emnist-letters"].num_classes

    with_data = settings.model_copy(update={"data_dir": data_dir})
    with TestClient(create_app(with_data)) as data_client:
        here = data_client.get("/api/v1/datasets", headers=alice.headers).json()
    assert here[0]["present"] is True and here[0]["missing"] == []


def test_health_and_readiness(client: TestClient, settings: Settings) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}

    broken = settings.model_copy(
        update={
            "broker_url": "redis://127.0.0.1:1/0",
            "database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none",
        }
    )
    with TestClient(create_app(broken)) as broken_client:
        assert broken_client.get("/healthz").status_code == 200
        problem = assert_problem(broken_client.get("/readyz"), 503, "database and broker")
    assert problem["checks"]["database"].startswith("unreachable")
    assert problem["checks"]["broker"].startswith("unreachable")


def _sample(text_: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text_):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"{name}{labels} not in metrics")


def test_metrics_count_requests_by_route_and_jobs_from_the_database(
    client: TestClient, alice: Caller, db: Session
) -> None:
    make_job(db, alice.id, status="succeeded", duration_s=42.0)
    unknown = "0b5f7c1e-4d2a-4c3b-9e8f-1a2b3c4d5e6f"
    client.get(f"/api/v1/jobs/{unknown}", headers=alice.headers)
    metrics = client.get("/metrics").text
    route = "/api/v1/jobs/{job_id}"
    assert _sample(metrics, "hwscore_http_requests_total", method="GET", route=route, status="404")
    assert unknown not in metrics

    counts = dict(db.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    for status in ("queued", "succeeded", "cancelled"):
        assert _sample(metrics, "hwscore_jobs", status=status) == counts.get(status, 0)
    reused = db.scalar(select(func.count()).select_from(Job).where(Job.reused_from.is_not(None)))
    ran = _sample(metrics, "hwscore_job_duration_seconds_count", status="succeeded")
    assert ran == counts["succeeded"] - reused

    def bucket(bound: str) -> float:
        name = "hwscore_job_duration_seconds_bucket"
        return _sample(metrics, name, status="succeeded", le=bound)

    assert bucket("60.0") - bucket("30.0") >= 1  # the 42 s job


def test_openapi_has_operation_ids_examples_and_problem_responses(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert all(re.fullmatch(r"[a-z-]+-[a-z_]+", op["operationId"]) for op in operations)
    assert all(op.get("description") or op.get("summary") for op in operations)
    create = document["paths"]["/api/v1/jobs"]["post"]
    examples = create["requestBody"]["content"]["application/json"]["examples"]
    assert {"preset", "preset-with-overrides", "inline"} <= examples.keys()
    assert "application/problem+json" in create["responses"]["422"]["content"]
    assert client.get("/docs").status_code == 200


def test_the_api_process_never_imports_torch(settings: Settings) -> None:
    program = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "import app.main\n"
        "from app.core.config import Settings\n"
        f"settings = Settings.model_validate_json({settings.model_dump_json()!r})\n"
        "with TestClient(app.main.create_app(settings.model_copy(update={'auth': 'off'}))) as c:\n"
        "    assert c.get('/api/v1/datasets').status_code == 200\n"
        "    assert c.post('/api/v1/jobs', json={'profile': {'preset': 'x'}}).status_code == 422\n"
        "    assert c.get('/api/v1/jobs').status_code == 200\n"
        "    assert c.get('/metrics').status_code == 200\n"
        "assert 'torch' not in sys.modules, 'the API imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, cwd=REPO_ROOT, timeout=120)


def test_main_flow_on_the_embedded_sqlite_default(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, auth="off", database_url="", broker_url="")
    upgrade_database(settings.resolved_database_url())
    body = study()
    with TestClient(create_app(settings)) as local:
        created = local.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "k"})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        replay = local.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "k"})
        assert (replay.status_code, replay.json()["id"]) == (200, job_id)
        other_id = local.post("/api/v1/jobs", json=study()).json()["id"]

        first = local.get("/api/v1/jobs", params={"limit": 1}).json()
        second = local.get("/api/v1/jobs", params={"cursor": first["next_cursor"]}).json()
        assert [first["items"][0]["id"], second["items"][0]["id"]] == [other_id, job_id]
        assert second["next_cursor"] is None
        etag = local.get(f"/api/v1/jobs/{job_id}").headers["ETag"]
        unchanged = local.get(f"/api/v1/jobs/{job_id}", headers={"If-None-Match": etag})
        assert unchanged.status_code == 304
        assert local.post(f"/api/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
        assert local.get("/readyz").json()["checks"] == {"database": "ok", "broker": "ok"}
    broker = create_engine(settings.resolved_broker_url().removeprefix("sqla+"))
    with broker.connect() as connection:
        messages = connection.execute(text("SELECT payload FROM kombu_message")).scalars().all()
    broker.dispose()
    assert len(messages) == 2
    assert sum(job_id in m for m in messages) == 1 and sum(other_id in m for m in messages) == 1


def test_readyz_says_the_embedded_broker_is_down_when_its_file_cannot_be_opened(
    tmp_path: Path,
) -> None:
    """The broker check reads the queue: a bare connect would answer ok for a bad path."""
    settings = Settings(
        state_dir=tmp_path / "never-created",
        auth="off",
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'missing' / 'broker.sqlite3'}",
        recovery_sweep=False,
    )
    upgrade_database(settings.resolved_database_url())
    with TestClient(create_app(settings)) as local:
        ready = local.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "broker": "unreachable"}
