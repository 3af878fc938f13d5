"""Drift jobs through the API: bad drift settings are refused with 422 and what to change,
and the report page of a drift job draws accuracy against time."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.models import Job
from hwmodels.report import ChipStatistics, DriftPoint
from tests.api.conftest import Caller, assert_problem
from tests.api.factories import make_job, study

JOBS = "/api/v1/jobs"
TIMES = [1, 3600, 86400, 2592000, 31536000]


def drift_study(drift: dict[str, Any], times: list[float] | None = TIMES) -> dict[str, Any]:
    evaluation: dict[str, Any] = {"chips": 3}
    if times is not None:
        evaluation["drift_times_s"] = times
    return study(
        profile={"preset": "pcm-3bit", "overrides": {"drift": drift}}, evaluation=evaluation
    )


PCM = {"nu_mean": 0.05, "nu_spread": 0.02}
BAD_DRIFT = [
    pytest.param(
        drift_study({"nu_mean": -0.05}),
        "profile.overrides.drift.nu_mean must be between 0.0 and 1.0 (got -0.05)",
        id="nu-negative",
    ),
    pytest.param(
        drift_study({"nu_mean": 0.05, "nu_spread": -0.01}),
        "drift.nu_spread must be between 0.0 and 1.0 (got -0.01)",
        id="spread-negative",
    ),
    pytest.param(drift_study({**PCM, "t0_s": 0}), "drift.t0_s must be greater than 0.0", id="t0=0"),
    pytest.param(
        drift_study({"compensation": True}),
        "drift.compensation needs drift: set drift.nu_mean or drift.nu_spread above 0",
        id="compensation-without-drift",
    ),
    pytest.param(drift_study(PCM, [0, 3600]), "every drift time must be above 0", id="time=0"),
    pytest.param(drift_study(PCM, [-5]), "every drift time must be above 0", id="time-negative"),
    pytest.param(
        drift_study({**PCM, "t0_s": 10}, [1, 3600]),
        "evaluation.drift_times_s must each be at least profile.drift.t0_s (10 s): got 1 s",
        id="time<t0",
    ),
    pytest.param(
        drift_study(PCM, [3600, 60]), "drift times must be distinct and increasing", id="unsorted"
    ),
    pytest.param(drift_study(PCM, [60, 60]), "distinct and increasing", id="repeated"),
    pytest.param(drift_study(PCM, [float(t) for t in range(1, 14)]), "12", id="too-many"),
    pytest.param(drift_study(PCM, []), "drift_times_s", id="empty"),
    pytest.param(drift_study(PCM, [1e12]), "at most 3.2e+09 s", id="beyond-100-years"),
]


@pytest.mark.parametrize(("body", "expected"), BAD_DRIFT)
def test_bad_drift_settings_are_refused_with_what_to_change(
    client: TestClient, alice: Caller, body: dict[str, Any], expected: str
) -> None:
    assert_problem(client.post(JOBS, json=body, headers=alice.headers), 422, expected)


def test_a_drift_job_is_accepted_and_its_spec_keeps_the_settings(
    client: TestClient, alice: Caller
) -> None:
    body = drift_study({**PCM, "compensation": True})
    response = client.post(JOBS, json=body, headers=alice.headers)
    assert response.status_code == 202, response.text
    spec = response.json()["spec"]
    assert spec["profile"]["drift"] == {**PCM, "t0_s": 1.0, "compensation": True}
    assert spec["evaluation"]["drift_times_s"] == TIMES


def _stats(mean: float) -> dict[str, Any]:
    accuracies = [mean - 0.01, mean, mean + 0.01]
    return ChipStatistics(
        chips=3,
        mean=mean,
        std=0.01,
        worst=mean - 0.01,
        p5=mean - 0.01,
        best=mean + 0.01,
        accuracies=accuracies,
    ).model_dump()


def test_the_report_page_of_a_drift_job_draws_accuracy_over_time(
    client: TestClient, alice: Caller, db: Session
) -> None:
    job = make_job(
        db, alice.id, status="succeeded", body=drift_study({**PCM, "compensation": True})
    )
    points = [
        DriftPoint.model_validate(
            {
                "time_s": t,
                "naive": _stats(0.83 - 0.01 * i),
                "hardware_aware": _stats(0.955 - 0.01 * i),
                "naive_compensated": _stats(0.83 - 0.005 * i),
                "hardware_aware_compensated": _stats(0.955 - 0.005 * i),
            }
        ).model_dump(mode="json")
        for i, t in enumerate(TIMES)
    ]
    stored = db.get(Job, job.id)
    assert stored is not None
    stored.result = {**stored.result, "drift": points}
    db.commit()
    page = client.get(f"{JOBS}/{job.id}/report", headers=alice.headers)
    assert page.status_code == 200
    sources = re.findall(r'<img src="([^"]+)"', page.text)
    drift = [s for s in sources if "/figures/drift.svg" in s]
    assert drift, sources
    figure = client.get(drift[0], headers=alice.headers)
    assert figure.status_code == 200 and figure.headers["content-type"] == "image/svg+xml"
    svg = figure.content
    assert b"<svg" in svg and len(svg) > 5_000
    for label in (b"1 s", b"1 h", b"30 d", b"1 y", b"compensated", b"time after programming"):
        assert label in svg, label


def test_a_job_without_drift_times_has_no_time_figure_and_misses_none(
    client: TestClient, alice: Caller, db: Session
) -> None:
    job = make_job(db, alice.id, status="succeeded")
    db.commit()
    page = client.get(f"{JOBS}/{job.id}/report", headers=alice.headers).text
    assert "drift.svg" not in page and "Accuracy over time" not in page
    missing = client.get(f"{JOBS}/{job.id}/report/figures/drift.svg", headers=alice.headers)
    assert_problem(missing, 404, "no figure 'drift'")


README_DRIFT_EXAMPLE: dict[str, Any] = {
    "dataset": "mnist",
    "network": {"hidden": [256, 128]},
    "profile": {
        "preset": "pcm-3bit",
        "overrides": {"drift": {"nu_mean": 0.05, "nu_spread": 0.02, "compensation": True}},
    },
    "training": {"epochs": 5, "hw_epochs": 3},
    "evaluation": {"chips": 20, "drift_times_s": TIMES},
}


def test_the_readme_drift_example_is_accepted(client: TestClient, alice: Caller) -> None:
    body = {**README_DRIFT_EXAMPLE, "fresh": True}
    response = client.post(JOBS, json=body, headers=alice.headers)
    assert response.status_code == 202, response.text
