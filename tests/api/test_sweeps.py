"""Sweeps through the API on PostgreSQL and Redis: validation, ownership, idempotency,
limits, cancel cascading to the jobs, and the curve read from the jobs' results.

No worker runs here: where a test needs results, it writes them into the job rows as a
worker would (tests/integration/test_sweeps_live.py runs real ones).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.vocabulary import JobStatus
from app.db.models import Job
from hwmodels.specs import StudySpec
from tests.api.conftest import MAX_IN_FLIGHT, Caller, assert_problem, queued_job_ids
from tests.api.factories import sample_report, study

SWEEPS = "/api/v1/sweeps"


def sweep_body(mode: str = "retrain", axes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "mode": mode,
        "study": study(),
        "axes": axes or [{"parameter": "weight_bits", "values": [2, 4]}],
    }


def submit(client: TestClient, caller: Caller, body: dict[str, Any], **headers: str) -> Any:
    return client.post(SWEEPS, json=body, headers={**caller.headers, **headers})


@pytest.mark.parametrize(
    ("axes", "field", "fragment"),
    [
        (
            [{"parameter": "weight_bits", "values": [2, 4]}] * 2,
            "axes[1].parameter",
            "swept twice",
        ),
        ([{"parameter": "weight_bits", "values": [2, 4.5]}], "axes[0].values", "whole numbers"),
        (
            [{"parameter": "programming_noise", "values": [0.1, 0.1]}],
            "axes[0].values",
            "a value twice",
        ),
        (
            [{"parameter": "programming_noise", "values": [0.0, 2.0]}],
            "axes[0].values[1]",
            "noise.programming",
        ),
        (
            [
                {"parameter": "weight_bits", "values": list(range(1, 9))},
                {"parameter": "asymmetry", "values": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]},
            ],
            "axes",
            "56 points and the limit is 48",
        ),
    ],
)
def test_invalid_axes_are_422_naming_the_value(
    client: TestClient, alice: Caller, axes: list[dict[str, Any]], field: str, fragment: str
) -> None:
    refused = submit(client, alice, sweep_body(axes=axes))
    body = assert_problem(refused, 422, fragment)
    assert [error["field"] for error in body["errors"]] == [field]


def test_schema_errors_and_base_study_errors_are_located_in_the_sweep_body(
    client: TestClient, alice: Caller
) -> None:
    unknown = sweep_body(axes=[{"parameter": "wire_length", "values": [1, 2]}])
    body = assert_problem(submit(client, alice, unknown), 422)
    assert body["errors"][0]["field"] == "axes[0].parameter"
    one_value = sweep_body(axes=[{"parameter": "weight_bits", "values": [4]}])
    assert assert_problem(submit(client, alice, one_value), 422)["errors"][0]["field"] == (
        "axes[0].values"
    )
    bad_study = sweep_body()
    bad_study["study"]["training"]["epochs"] = 500
    body = assert_problem(submit(client, alice, bad_study), 422, "epochs")
    assert body["errors"][0]["field"] == "study.training.epochs"
    assert assert_problem(submit(client, alice, {**sweep_body(), "mode": "both"}), 422)


def test_an_evaluate_sweep_whose_extra_evaluations_are_over_budget_is_422(
    client: TestClient, alice: Caller
) -> None:
    body = sweep_body(
        "evaluate", [{"parameter": "asymmetry", "values": [i / 20 for i in range(12)]}]
    )
    body["study"]["network"] = {"hidden": [256, 128]}
    body["study"]["evaluation"] = {"chips": 1000}  # fine for one study, not for 24 more
    assert client.post("/api/v1/jobs", json=body["study"], headers=alice.headers).status_code == 202
    refused = assert_problem(submit(client, alice, body), 422, "sweep evaluation")
    assert refused["errors"][0]["field"] == "axes"


def test_retrain_sweep_makes_one_queued_job_per_point_and_others_get_404(
    client: TestClient, alice: Caller, bob: Caller, broker_url: str
) -> None:
    created = submit(
        client, alice, sweep_body(axes=[{"parameter": "weight_bits", "values": [2, 3, 4]}])
    )
    assert created.status_code == 202, created.text
    sweep = created.json()
    assert created.headers["Location"] == f"{SWEEPS}/{sweep['id']}"
    assert sweep["status"] == "queued" and sweep["mode"] == "retrain"
    assert [job["values"] for job in sweep["jobs"]] == [
        {"weight_bits": 2},
        {"weight_bits": 3},
        {"weight_bits": 4},
    ]
    assert [point["values"]["weight_bits"] for point in sweep["curve"]] == [2, 3, 4]
    assert sweep["robustness"] == []
    ids = [job["id"] for job in sweep["jobs"]]
    assert set(ids) <= set(queued_job_ids(broker_url))
    child = client.get(f"/api/v1/jobs/{ids[0]}", headers=alice.headers).json()
    assert child["spec"]["profile"]["weights"]["bits"] == 2
    for path in ("", "/report", "/curve.csv"):
        assert_problem(client.get(f"{SWEEPS}/{sweep['id']}{path}", headers=bob.headers), 404)
    assert_problem(client.post(f"{SWEEPS}/{sweep['id']}/cancel", headers=bob.headers), 404)
    assert client.get(SWEEPS, headers=bob.headers).json()["items"] == []


def test_evaluate_sweep_is_one_job_that_scores_every_point(
    client: TestClient, alice: Caller, broker_url: str
) -> None:
    axes = [{"parameter": "programming_noise", "values": [0.0, 0.05, 0.1]}]
    sweep = submit(client, alice, sweep_body("evaluate", axes)).json()
    assert len(sweep["jobs"]) == 1 and sweep["jobs"][0]["values"] is None
    assert sweep["jobs"][0]["id"] in queued_job_ids(broker_url)
    assert [p["values"] for p in sweep["curve"]] == [
        {"programming_noise": v} for v in (0, 0.05, 0.1)
    ]
    assert {p["status"] for p in sweep["curve"]} == {"queued"}


def test_idempotency_key_replays_the_sweep_and_refuses_another_body(
    client: TestClient, alice: Caller
) -> None:
    body = sweep_body()
    first = submit(client, alice, body, **{"Idempotency-Key": "sweep-1"})
    again = submit(client, alice, body, **{"Idempotency-Key": "sweep-1"})
    assert first.status_code == 202 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["jobs"] == first.json()["jobs"]
    other = submit(client, alice, sweep_body(), **{"Idempotency-Key": "sweep-1"})
    assert_problem(other, 422, "already used with a different request body")
    assert len(client.get(SWEEPS, headers=alice.headers).json()["items"]) == 1


def test_a_sweep_counts_once_against_the_in_flight_cap(client: TestClient, alice: Caller) -> None:
    many = sweep_body(
        axes=[{"parameter": "weight_bits", "values": list(range(1, MAX_IN_FLIGHT + 3))}]
    )
    assert submit(client, alice, many).status_code == 202
    for _ in range(MAX_IN_FLIGHT - 1):
        assert client.post("/api/v1/jobs", json=study(), headers=alice.headers).status_code == 202
    refused = submit(client, alice, sweep_body())
    assert_problem(refused, 429, f"the limit is {MAX_IN_FLIGHT}", "unfinished jobs or sweeps")
    assert refused.headers["Retry-After"]


def test_cancel_cascades_to_unfinished_jobs_and_then_is_409(
    client: TestClient, alice: Caller, db: Session
) -> None:
    sweep = submit(
        client, alice, sweep_body(axes=[{"parameter": "weight_bits", "values": [2, 3, 4]}])
    ).json()
    first, running, _ = (job["id"] for job in sweep["jobs"])
    _set(db, first, status=JobStatus.SUCCEEDED, result=sample_report(_spec(client, alice, first)))
    _set(db, running, status=JobStatus.RUNNING, attempts=1)
    cancelled = client.post(f"{SWEEPS}/{sweep['id']}/cancel", headers=alice.headers)
    assert cancelled.status_code == 202, cancelled.text
    view = cancelled.json()
    assert [job["status"] for job in view["jobs"]] == ["succeeded", "cancelling", "cancelled"]
    assert view["status"] == "cancelling"
    _set(db, running, status=JobStatus.CANCELLED)  # the worker stopped at its next check
    view = client.get(f"{SWEEPS}/{sweep['id']}", headers=alice.headers).json()
    assert view["status"] == "cancelled" and view["finished_at"] is not None
    assert view["curve"][0]["float_pct"] is not None and view["curve"][2]["float_pct"] is None
    again = client.post(f"{SWEEPS}/{sweep['id']}/cancel", headers=alice.headers)
    assert_problem(again, 409, "already cancelled")


def test_curve_robustness_and_csv_are_read_from_the_jobs_results(
    client: TestClient, alice: Caller, db: Session
) -> None:
    axes = [{"parameter": "programming_noise", "values": [0.1, 0.0, 0.05]}]
    sweep = submit(client, alice, sweep_body(axes=axes)).json()
    # Hardware-aware holds within 1 pp of float up to 0.05; naive nowhere.
    aware = {0.0: 0.945, 0.05: 0.941, 0.1: 0.90}
    for job in sweep["jobs"]:
        report = sample_report(_spec(client, alice, job["id"]))
        report["float_accuracy"] = 0.95
        report["hardware_aware"]["mean"] = aware[job["values"]["programming_noise"]]
        _set(db, job["id"], status=JobStatus.SUCCEEDED, result=report)
    view = client.get(f"{SWEEPS}/{sweep['id']}", headers=alice.headers).json()
    assert view["status"] == "succeeded" and view["progress"]["points_measured"] == 3
    figures = {figure["model"]: figure for figure in view["robustness"]}
    assert figures["hardware_aware"]["value"] == 0.05
    assert not figures["hardware_aware"]["whole_range"]
    assert "up to programming noise" in figures["hardware_aware"]["statement"]
    assert figures["naive"]["value"] is None and figures["naive"]["points_within"] == 0
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(view["links"]["curve_csv"], headers=alice.headers).text)
        )
    )
    assert [float(row["programming_noise"]) for row in rows] == [0.1, 0.0, 0.05]
    for row, point in zip(rows, view["curve"], strict=True):
        assert float(row["hardware_aware_pct"]) == point["hardware_aware_pct"]
        assert float(row["naive_pct"]) == point["naive_pct"] == 83.0
    assert float(rows[0]["hardware_aware_pct"]) == 90.0
    page = client.get(view["links"]["report"], headers=alice.headers)
    assert page.status_code == 200 and "data:image/svg+xml;base64," in page.text
    assert figures["hardware_aware"]["statement"] in page.text
    dashboard = client.get("/", headers=alice.headers).text
    assert f'data-sweep="{sweep["id"]}"' in dashboard
    assert figures["hardware_aware"]["statement"] in dashboard


def test_sweeps_are_listed_newest_first_a_page_at_a_time(client: TestClient, alice: Caller) -> None:
    ids = [submit(client, alice, sweep_body()).json()["id"] for _ in range(3)]
    first = client.get(SWEEPS, params={"limit": 2}, headers=alice.headers).json()
    assert [item["id"] for item in first["items"]] == ids[::-1][:2]
    second = client.get(
        SWEEPS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=alice.headers
    ).json()
    assert [item["id"] for item in second["items"]] == ids[:1]
    assert second["next_cursor"] is None


def _spec(client: TestClient, caller: Caller, job_id: str) -> StudySpec:
    job = client.get(f"/api/v1/jobs/{job_id}", headers=caller.headers).json()
    return StudySpec.model_validate(job["spec"])


def _set(db: Session, job_id: str, **values: Any) -> None:
    db.execute(update(Job).where(Job.id == job_id).values(revision=Job.revision + 1, **values))
    db.commit()
