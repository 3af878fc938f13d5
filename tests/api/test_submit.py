"""POST /jobs: dispatch, idempotency, reuse of finished work, limits and validation."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.models import Job
from app.main import create_app
from app.services.recovery import RecoverySweeper
from hwmodels.profile import PRESETS
from tests.api.conftest import MAX_IN_FLIGHT, Caller, assert_problem, queued_job_ids
from tests.api.factories import make_job, study

JOBS = "/api/v1/jobs"


def test_submit_commits_a_queued_job_and_sends_its_task(
    client: TestClient, alice: Caller, broker_url: str
) -> None:
    response = client.post(JOBS, json=study(), headers=alice.headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"{JOBS}/{job['id']}"
    assert job["status"] == "queued" and job["reused"] is False
    assert job["spec"]["profile"] == PRESETS["rram-4bit"].model_dump(mode="json")
    assert job["spec"]["network"]["hidden"] == [32]
    assert job["progress"] == {"phase": None, "epoch": None, "fraction": 0.0}
    assert job["result"] is None and job["error"] is None
    assert job["id"] in queued_job_ids(broker_url)


def test_same_idempotency_key_and_body_returns_the_same_job(
    client: TestClient, alice: Caller, broker_url: str
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "run-1"}
    body = study()
    first = client.post(JOBS, json=body, headers=headers)
    again = client.post(JOBS, json=body, headers=headers)
    assert first.status_code == 202 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert queued_job_ids(broker_url).count(first.json()["id"]) == 1

    other = client.post(JOBS, json=study(), headers=headers)
    body = assert_problem(other, 422, "Idempotency-Key", "different request body")
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]


def test_concurrent_posts_with_one_idempotency_key_make_exactly_one_job(
    client: TestClient, alice: Caller, db: Session
) -> None:
    headers = {**alice.headers, "Idempotency-Key": "race"}
    body = study()
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(
            pool.map(lambda _: client.post(JOBS, json=body, headers=headers), range(50))
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 49 + [202], [
        (r.status_code, r.text[:300]) for r in responses if r.status_code not in (200, 202)
    ]
    assert len({r.json()["id"] for r in responses}) == 1
    stored = db.scalar(select(func.count()).select_from(Job).where(Job.owner_key == alice.id))
    assert stored == 1


def test_in_flight_cap_answers_429_with_retry_after_and_frees_up_on_cancel(
    client: TestClient, alice: Caller
) -> None:
    ids = [client.post(JOBS, json=study(), headers=alice.headers).json()["id"] for _ in range(3)]
    refused = client.post(JOBS, json=study(), headers=alice.headers)
    assert_problem(refused, 429, f"the limit is {MAX_IN_FLIGHT}", "3 unfinished jobs")
    assert int(refused.headers["Retry-After"]) > 0

    assert client.post(f"{JOBS}/{ids[0]}/cancel", headers=alice.headers).status_code == 202
    assert client.post(JOBS, json=study(), headers=alice.headers).status_code == 202


def test_in_flight_cap_holds_under_concurrent_submissions(
    client: TestClient, alice: Caller, db: Session
) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(
            pool.map(lambda _: client.post(JOBS, json=study(), headers=alice.headers), range(8))
        )
    assert sorted(r.status_code for r in codes) == [202] * MAX_IN_FLIGHT + [429] * (
        8 - MAX_IN_FLIGHT
    )
    in_flight = db.scalar(select(func.count()).select_from(Job).where(Job.owner_key == alice.id))
    assert in_flight == MAX_IN_FLIGHT


def test_identical_succeeded_work_is_reused_without_leaking_the_original(
    client: TestClient, alice: Caller, bob: Caller, db: Session
) -> None:
    body = study()
    labels = {"name": "bobs-chip", "description": "fab 9 lot 4", "source": "bob's lab"}
    bobs = {**body, "profile": {"inline": {**PRESETS["rram-4bit"].model_dump(), **labels}}}
    files = {"metrics.csv": b"epoch,loss\n1,0.5\n", "report.json": b'{"name": "bobs-chip"}'}
    original = make_job(db, bob.id, status="succeeded", body=bobs, artifacts=files)
    assert original.result is not None

    # Alice asks for the same physics under the preset's name: the same work.
    response = client.post(JOBS, json=body, headers=alice.headers)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "succeeded" and job["reused"] is True
    assert job["id"] != original.id and original.id not in response.text
    assert job["result"]["float_accuracy_pct"] == round(100 * original.result["float_accuracy"], 2)
    assert job["result"]["hardware_aware_pct"]["p5"] == round(
        100 * original.result["hardware_aware"]["p5"], 2
    )

    report = client.get(f"{JOBS}/{job['id']}/result", headers=alice.headers).json()
    assert report["profile"]["name"] == "rram-4bit"
    assert {k: v for k, v in report.items() if k != "profile"} == {
        k: v for k, v in original.result.items() if k != "profile"
    }
    listing = client.get(f"{JOBS}/{job['id']}/artifacts", headers=alice.headers).json()
    assert [a["name"] for a in listing["items"]] == ["metrics.csv", "report.json"]
    assert all(a["url"].startswith(f"{JOBS}/{job['id']}/") for a in listing["items"])
    downloads = {
        a["name"]: client.get(a["url"], headers=alice.headers).content for a in listing["items"]
    }
    assert downloads["metrics.csv"] == files["metrics.csv"]  # shared with the original
    assert json.loads(downloads["report.json"]) == report  # its own, under its labels
    seen = response.text + str(listing) + str(downloads) + json.dumps(report)
    assert not any(secret in seen for secret in [original.id, *labels.values()])

    fresh = client.post(JOBS, json={**body, "fresh": True}, headers=alice.headers)
    assert fresh.status_code == 202
    assert fresh.json()["status"] == "queued" and fresh.json()["reused"] is False


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"training": {"epochs": 500}}, "training.epochs must be between 1 and 100 (got 500)"),
        ({"evaluation": {"chips": 5000}}, "evaluation.chips must be between 1 and 1000"),
        ({"network": {"hidden": [4096, 2048]}}, "the limit is 5,000,000"),
        (
            {"profile": {"preset": "rram-4bit", "overrides": {"weights": {"bits": 12}}}},
            "profile.overrides.weights.bits must be between 1 and 8 (got 12)",
        ),
        ({"profile": {"preset": "x"}}, "unknown hardware preset 'x'; valid presets: fefet-2bit"),
        (
            {"profile": {"inline": {"noise": {"programing": 0.1}}}},
            "profile.inline.noise.programing is not a known field; valid fields here: "
            "programming, read",
        ),
        ({"profile": {"preset": "ideal", "inline": {}}}, "give exactly one of 'preset'"),
        ({"dataset": "cifar10"}, "dataset must be one of 'mnist', 'fashion-mnist'"),
        ({"training": {"learning_rate": 0}}, "greater than 0.0 and at most 1.0"),
    ],
)
def test_invalid_studies_are_422_problems_that_say_what_to_change(
    client: TestClient, alice: Caller, change: dict[str, Any], expected: str
) -> None:
    response = client.post(JOBS, json=study(**change), headers=alice.headers)
    errors = assert_problem(response, 422, expected)["errors"]
    assert errors and all({"loc", "field", "message", "type"} <= e.keys() for e in errors)


def test_malformed_json_and_missing_profile_are_problems(client: TestClient, alice: Caller) -> None:
    raw = client.post(
        JOBS, content=b'{"dataset": ', headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert_problem(raw, 422, "not valid JSON")
    body = {key: value for key, value in study().items() if key != "profile"}
    response = client.post(JOBS, json=body, headers=alice.headers)
    missing = assert_problem(response, 422, "profile is required")
    assert missing["errors"][0]["loc"] == ["body", "profile"]


def test_bodies_over_the_limit_are_413_declared_or_streamed(
    client: TestClient, alice: Caller, settings: Settings
) -> None:
    padding = "x" * (settings.max_request_bytes + 1)
    declared = client.post(JOBS, json=study(note=padding), headers=alice.headers)
    assert_problem(declared, 413, f"larger than {settings.max_request_bytes} bytes")

    def chunks() -> Any:
        for _ in range(settings.max_request_bytes // 1000 + 2):
            yield b" " * 1000

    streamed = client.post(
        JOBS, content=chunks(), headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413, "HWSCORE_MAX_REQUEST_BYTES")


def test_a_job_submitted_while_the_broker_is_down_is_accepted_and_sent_by_the_sweep(
    settings: Settings, alice: Caller, db: Session, broker_url: str
) -> None:
    dead_broker = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(dead_broker)) as dead_client:
        headers = {**alice.headers, "Idempotency-Key": "broker-down"}
        response = dead_client.post(JOBS, json=study(), headers=headers)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    job = db.scalars(select(Job).where(Job.owner_key == alice.id)).one()
    assert (job.id, job.status, job.dispatched_at) == (job_id, "queued", None)
    assert job_id not in queued_job_ids(broker_url)

    # The broker is back: the next sweep (any process's) sends the message.
    state = create_app(settings).state.hwscore
    sweeper = RecoverySweeper(settings, state.database.sessionmaker, state.dispatcher)
    report = sweeper.sweep()
    state.close()
    assert report is not None and job_id in report.sent
    assert job_id in queued_job_ids(broker_url)
    db.expire_all()
    assert db.get(Job, job_id).dispatched_at is not None  # type: ignore[union-attr]


def test_auth_auto_follows_the_address_each_connection_arrived_on(settings: Settings) -> None:
    """auto decides per request from the ASGI scope's server (the local socket address).

    The TestClient puts its base URL's host there, as uvicorn puts the socket's address;
    the configured HWSCORE_HOST plays no part (a plain uvicorn never sets it).
    """
    auto = create_app(settings.model_copy(update={"auth": "auto", "host": "127.0.0.1"}))
    for local_address in ("127.0.0.1", "127.0.0.53", "[::1]"):
        with TestClient(auto, base_url=f"http://{local_address}:8000") as local:
            assert local.get(JOBS).status_code == 200, local_address
    for public_address in ("192.0.2.2", "0.0.0.0", "[2001:db8::1]", "testserver"):
        with TestClient(auto, base_url=f"http://{public_address}:8000") as remote:
            assert_problem(remote.get(JOBS), 401, "needs an API key")
    with TestClient(auto, base_url="http://127.0.0.1:8000") as proxied:
        forwarded = proxied.get(JOBS, headers={"X-Forwarded-For": "203.0.113.9"})
        assert_problem(forwarded, 401, "needs an API key")


def test_auth_off_uses_the_local_owner_and_on_always_needs_a_key(settings: Settings) -> None:
    off = create_app(settings.model_copy(update={"auth": "off"}))
    with TestClient(off, base_url="http://192.0.2.2") as remote:
        assert remote.get(JOBS).status_code == 200
    on = create_app(settings.model_copy(update={"auth": "on"}))
    with TestClient(on, base_url="http://127.0.0.1") as local:
        assert_problem(local.get(JOBS), 401, "needs an API key")
