"""Values the database cannot store or compare are 4xx before any query, on PostgreSQL.

Before this, NUL bytes in a path, cursor or header and integers past a 32-bit column
reached PostgreSQL and came back as 500s.
"""

from __future__ import annotations

import base64
import json
import uuid

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.main import create_app
from tests.api.conftest import Caller, assert_problem
from tests.api.factories import make_job, study

JOBS = "/api/v1/jobs"


def _cursor(*items: object) -> str:
    raw = json.dumps(list(items)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_nul_bytes_in_paths_are_422_not_500(client: TestClient, alice: Caller, db: Session) -> None:
    job = make_job(db, alice.id, status="succeeded", artifacts={"metrics.csv": b"x"})
    for method, path in [
        ("GET", f"{JOBS}/%00"),
        ("POST", f"{JOBS}/%00/cancel"),
        ("GET", f"{JOBS}/%00/events"),
        ("GET", f"{JOBS}/{job.id}%00"),
    ]:
        response = client.request(method, path, headers=alice.headers)
        assert_problem(response, 422, "must be a job id")
    artifact = client.get(f"{JOBS}/{job.id}/artifacts/metrics%00.csv", headers=alice.headers)
    assert_problem(artifact, 422, "name (path parameter) must not contain NUL")
    too_long = client.get(f"{JOBS}/{job.id}/artifacts/{'a' * 101}", headers=alice.headers)
    assert_problem(too_long, 422)
    # The same job, asked for properly (even in capitals), is still there.
    assert client.get(f"{JOBS}/{job.id.upper()}", headers=alice.headers).status_code == 200


def test_cursors_and_integers_the_database_cannot_compare_are_422(
    client: TestClient, alice: Caller
) -> None:
    bad_cursors = [
        _cursor("2026-12-01T00:00:00+00:00", "\u0000"),
        _cursor("2026-12-01T00:00:00+00:00", "x' OR 1=1 --"),
        _cursor("0001-01-01T00:00:00+05:00", str(uuid.uuid4())),  # overflows going to UTC
        "%00",
    ]
    for cursor in bad_cursors:
        response = client.get(JOBS, params={"cursor": cursor}, headers=alice.headers)
        assert_problem(response, 422, "cursor")

    job_id = client.post(JOBS, json=study(), headers=alice.headers).json()["id"]
    events = f"{JOBS}/{job_id}/events"
    past = client.get(events, params={"after": 2**31}, headers=alice.headers)
    assert_problem(past, 422, "after (query parameter) must be between 0 and 2147483647")
    assert client.get(events, params={"after": 2**31 - 1}, headers=alice.headers).json() == {
        "events": [],
        "next_after": 2**31 - 1,
    }


def test_text_the_database_cannot_store_in_headers_and_bodies_is_422(
    client: TestClient, alice: Caller
) -> None:
    nul_key = client.post(
        JOBS, json=study(), headers={**alice.headers, "Idempotency-Key": "run\x001"}
    )
    assert_problem(nul_key, 422, "idempotency-key (header parameter) must not contain NUL")

    inline = {"inline": {"name": "ours\u0000", "weights": {"bits": 3}}}
    overrides_key = {"preset": "rram-4bit", "overrides": {"noise\u0000": {"read": 0.01}}}
    surrogate = '{"profile": {"preset": "rram-4bit", "overrides": {"name": "\\ud800"}}}'
    for content in [
        json.dumps(study(profile=inline)),
        json.dumps(study(profile=overrides_key)),
        surrogate,
    ]:
        response = client.post(
            JOBS, content=content, headers={**alice.headers, "Content-Type": "application/json"}
        )
        body = assert_problem(response, 422, "NUL characters", "unpaired surrogates")
        assert body["errors"][0]["loc"] == ["body"]
    named = client.post(JOBS, json=study(profile=inline), headers=alice.headers)
    assert named.json()["detail"].startswith("profile.inline.name:")
    assert client.get(JOBS, headers=alice.headers).json()["items"] == []


def test_without_the_database_every_call_is_503_with_retry_after_and_no_internals(
    settings: Settings, alice: Caller
) -> None:
    down = settings.model_copy(
        update={"database_url": "postgresql+psycopg://hwscore:secret@127.0.0.1:1/jobsdb"}
    )
    with TestClient(create_app(down)) as dead:
        answers = [
            dead.get(JOBS, headers=alice.headers),
            dead.post(JOBS, json=study(), headers=alice.headers),
            dead.get(f"{JOBS}/{uuid.uuid4()}", headers=alice.headers),
            dead.get("/api/v1/hardware-profiles", headers=alice.headers),
            dead.get("/readyz"),
        ]
        assert dead.get("/metrics").status_code == 200  # request metrics still served
    for response in answers:
        assert_problem(response, 503)
        assert int(response.headers["Retry-After"]) > 0
        for secret in ("127.0.0.1", "jobsdb", "secret", "psycopg", "Error", "Traceback"):
            assert secret not in response.text, (secret, response.text)
    assert "database" in answers[-1].json()["detail"]
    assert answers[-1].json()["checks"]["database"] == "unreachable"
