"""Reading jobs: one job with ETag, lists with cursors, events, results, artifacts, cancel."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.models import utcnow
from tests.api.conftest import Caller, assert_problem
from tests.api.factories import make_job, study

JOBS = "/api/v1/jobs"


def test_get_job_has_an_etag_that_answers_304_until_the_job_changes(
    client: TestClient, alice: Caller
) -> None:
    job_id = client.post(JOBS, json=study(), headers=alice.headers).json()["id"]
    first = client.get(f"{JOBS}/{job_id}", headers=alice.headers)
    etag = first.headers["ETag"]
    assert first.json()["status"] == "queued"
    unchanged = client.get(f"{JOBS}/{job_id}", headers={**alice.headers, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["ETag"] == etag

    client.post(f"{JOBS}/{job_id}/cancel", headers=alice.headers)
    changed = client.get(f"{JOBS}/{job_id}", headers={**alice.headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json()["status"] == "cancelled"


def test_list_pages_newest_first_without_gaps_or_repeats(
    client: TestClient, alice: Caller, db: Session
) -> None:
    start = utcnow()
    made = [
        make_job(db, alice.id, status="succeeded", created_at=start + timedelta(seconds=i // 2))
        for i in range(7)  # pairs share a created_at: the id breaks the tie
    ]
    made.append(make_job(db, alice.id, status="failed", created_at=start + timedelta(seconds=9)))
    expected = [job.id for job in sorted(made, key=lambda j: (j.created_at, j.id), reverse=True)]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(JOBS, params=params, headers=alice.headers).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and pages == 3

    succeeded = client.get(JOBS, params={"status": "succeeded"}, headers=alice.headers).json()
    assert [item["id"] for item in succeeded["items"]] == expected[1:]
    assert succeeded["next_cursor"] is None
    assert succeeded["items"][0]["result"]["naive_pct"]["worst"] == 81.0

    for params, fragment in [
        ({"cursor": "garbage"}, "pass next_cursor from the previous page"),
        ({"limit": 101}, "limit (query parameter) must be between 1 and 100"),
        ({"status": "done"}, "status (query parameter) must be one of 'queued'"),
    ]:
        assert_problem(client.get(JOBS, params=params, headers=alice.headers), 422, fragment)


def test_events_come_in_order_and_after_gives_only_new_ones(
    client: TestClient, alice: Caller, db: Session
) -> None:
    job = make_job(db, alice.id, status="running", events=5)
    everything = client.get(f"{JOBS}/{job.id}/events", headers=alice.headers).json()
    assert [e["seq"] for e in everything["events"]] == [1, 2, 3, 4, 5]
    assert everything["next_after"] == 5
    assert everything["events"][0]["data"]["epoch"] == 1
    newer = client.get(f"{JOBS}/{job.id}/events", params={"after": 3}, headers=alice.headers)
    assert [e["seq"] for e in newer.json()["events"]] == [4, 5]
    none_yet = client.get(f"{JOBS}/{job.id}/events", params={"after": 5}, headers=alice.headers)
    assert none_yet.json() == {"events": [], "next_after": 5}


def test_result_and_artifacts_are_409_until_the_job_succeeds(
    client: TestClient, alice: Caller, db: Session
) -> None:
    queued = make_job(db, alice.id, status="queued")
    assert_problem(client.get(f"{JOBS}/{queued.id}/result", headers=alice.headers), 409, "queued")
    assert_problem(
        client.get(f"{JOBS}/{queued.id}/artifacts", headers=alice.headers), 409, "is queued"
    )
    failed = make_job(db, alice.id, status="failed", error=("training_diverged", "loss was NaN"))
    problem = client.get(f"{JOBS}/{failed.id}/artifacts/metrics.csv", headers=alice.headers)
    assert_problem(problem, 409, "failed", "loss was NaN")
    shown = client.get(f"{JOBS}/{failed.id}", headers=alice.headers).json()
    assert shown["error"] == {"code": "training_diverged", "message": "loss was NaN"}
    assert shown["result"] is None


def test_a_succeeded_job_serves_its_report_and_artifacts(
    client: TestClient, alice: Caller, db: Session
) -> None:
    files = {"metrics.csv": b"epoch,loss\n1,0.4\n", "hw_weights.pt": bytes(range(256)) * 4}
    job = make_job(db, alice.id, status="succeeded", artifacts=files)
    summary = client.get(f"{JOBS}/{job.id}", headers=alice.headers).json()
    assert summary["status"] == "succeeded"
    assert summary["result"]["recovered_pct"] == round(100 * job.result["recovered_fraction"], 2)  # type: ignore[index]
    assert set(summary["result"]["naive_pct"]) == {"mean", "std", "worst", "p5"}

    report = client.get(f"{JOBS}/{job.id}/result", headers=alice.headers)
    assert report.status_code == 200 and report.json() == job.result

    listing = client.get(f"{JOBS}/{job.id}/artifacts", headers=alice.headers).json()["items"]
    assert {a["name"]: a["size"] for a in listing} == {n: len(c) for n, c in files.items()}
    weights = next(a for a in listing if a["name"] == "hw_weights.pt")
    download = client.get(weights["url"], headers=alice.headers)
    assert download.content == files["hw_weights.pt"]
    assert download.headers["Content-Disposition"] == 'attachment; filename="hw_weights.pt"'
    assert download.headers["content-type"] == "application/octet-stream"
    assert weights["sha256"] in download.headers["ETag"]

    unknown = client.get(f"{JOBS}/{job.id}/artifacts/nope.bin", headers=alice.headers)
    assert_problem(unknown, 404, "no artifact 'nope.bin'", "metrics.csv")


def test_cancel_queued_running_and_finished_jobs(
    client: TestClient, alice: Caller, db: Session
) -> None:
    queued = client.post(JOBS, json=study(), headers=alice.headers).json()["id"]
    cancelled = client.post(f"{JOBS}/{queued}/cancel", headers=alice.headers)
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    assert_problem(
        client.post(f"{JOBS}/{queued}/cancel", headers=alice.headers), 409, "already cancelled"
    )

    running = make_job(db, alice.id, status="running")
    for _ in range(2):  # asking twice is fine while the worker has not stopped yet
        answer = client.post(f"{JOBS}/{running.id}/cancel", headers=alice.headers)
        assert answer.status_code == 202 and answer.json()["status"] == "cancelling"

    done = make_job(db, alice.id, status="succeeded")
    assert_problem(
        client.post(f"{JOBS}/{done.id}/cancel", headers=alice.headers), 409, "already succeeded"
    )


def test_jobs_of_another_key_do_not_exist_for_you(
    client: TestClient, alice: Caller, bob: Caller, db: Session
) -> None:
    job = make_job(db, bob.id, status="succeeded", events=2, artifacts={"metrics.csv": b"x"})
    for method, path in [
        ("GET", ""),
        ("POST", "/cancel"),
        ("GET", "/events"),
        ("GET", "/result"),
        ("GET", "/artifacts"),
        ("GET", "/artifacts/metrics.csv"),
    ]:
        response = client.request(method, f"{JOBS}/{job.id}{path}", headers=alice.headers)
        assert_problem(response, 404, f"job '{job.id}' not found")
    assert job.id not in client.get(JOBS, headers=alice.headers).text
    assert (
        job.id not in client.get(JOBS, params={"status": "succeeded"}, headers=alice.headers).text
    )
    assert client.get(f"{JOBS}/{job.id}", headers=bob.headers).status_code == 200

    # Another key's job answers exactly like a job that never existed: no oracle.
    never = str(uuid.uuid4())
    theirs = client.get(f"{JOBS}/{job.id}", headers=alice.headers).json()
    missing = client.get(f"{JOBS}/{never}", headers=alice.headers).json()
    assert theirs["detail"].replace(job.id, never) == missing["detail"]

    # A cancel through the wrong key changes nothing.
    queued = make_job(db, bob.id, status="queued")
    assert client.post(f"{JOBS}/{queued.id}/cancel", headers=alice.headers).status_code == 404
    assert client.get(f"{JOBS}/{queued.id}", headers=bob.headers).json()["status"] == "queued"

    # Bob's cursor, replayed by Alice, pages through Alice's jobs only.
    make_job(db, bob.id, status="failed")
    cursor = client.get(JOBS, params={"limit": 1}, headers=bob.headers).json()["next_cursor"]
    page = client.get(JOBS, params={"cursor": cursor}, headers=alice.headers).json()
    assert all(item["id"] not in {job.id, queued.id} for item in page["items"])


def test_api_keys_are_required_when_auth_is_on(client: TestClient, alice: Caller) -> None:
    missing = client.get(JOBS)
    assert_problem(missing, 401, "needs an API key", "hwscore keys create")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(
        client.get(JOBS, headers={"Authorization": "Bearer hws_wrong"}), 401, "not valid"
    )
    assert_problem(client.get("/api/v1/hardware-profiles"), 401)
    assert client.get(JOBS, headers={"X-API-Key": alice.secret}).status_code == 200


def test_unknown_routes_and_methods_are_problems(client: TestClient, alice: Caller) -> None:
    assert_problem(client.get("/api/v1/nothing", headers=alice.headers), 404, "no such endpoint")
    not_allowed = client.delete(JOBS, headers=alice.headers)
    assert_problem(not_allowed, 405, "DELETE is not allowed", "POST")
    malformed = client.get(f"{JOBS}/not-a-job", headers=alice.headers)
    assert_problem(malformed, 422, "job_id (path parameter) must be a job id")
