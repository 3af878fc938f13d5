"""Sweeps through the real API, broker, worker and engine, on a slice of real MNIST.

An evaluate-mode sweep over programming noise (3 points, one job) and a retrain sweep
over weight bits (2 points, two jobs) run to success; their curves and CSV exports are
checked against the jobs' own results, and the report page is opened in headless
Chromium to see that its figure loads.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.integration.conftest import TERMINAL, Stack
from tests.integration.services import wait_for
from tests.integration.test_pages_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY_STUDY: dict[str, Any] = {
    "dataset": "mnist",
    "network": {"hidden": [32]},
    "profile": {"preset": "rram-4bit"},
    "training": {
        "epochs": 1,
        "hw_epochs": 1,
        "train_samples": 2000,
        "batch_size": 32,
        "learning_rate": 0.005,
    },
    "evaluation": {"chips": 4, "test_samples": 500},
    "fresh": True,
}
NOISE = [0.0, 0.05, 0.3]


def _submit(stack: Stack, mode: str, parameter: str, values: list[Any]) -> dict[str, Any]:
    body = {"mode": mode, "study": TINY_STUDY, "axes": [{"parameter": parameter, "values": values}]}
    response = stack.api.post("/api/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def _wait(stack: Stack, sweep_id: str, timeout_s: float) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        sweep = stack.api.get(f"/api/v1/sweeps/{sweep_id}").json()
        return sweep if sweep["status"] in TERMINAL else None

    return dict(wait_for(finished, timeout_s, f"sweep {sweep_id} to finish"))


def _csv(stack: Stack, sweep: dict[str, Any]) -> list[dict[str, str]]:
    response = stack.api.get(sweep["links"]["curve_csv"])
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: scripts/ensure-services.sh installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_evaluate_and_retrain_sweeps_run_to_curves_that_match_their_jobs(
    stack: Stack, browser: Browser
) -> None:
    evaluate = _submit(stack, "evaluate", "programming_noise", NOISE)
    retrain = _submit(stack, "retrain", "weight_bits", [2, 4])

    evaluate = _wait(stack, evaluate["id"], timeout_s=120)
    assert evaluate["status"] == "succeeded", evaluate
    (job,) = evaluate["jobs"]
    result = stack.api.get(f"/api/v1/jobs/{job['id']}/result").json()
    measured = {point["index"]: point for point in result["sweep_points"]}
    assert [point["values"]["programming_noise"] for point in evaluate["curve"]] == NOISE
    for point in evaluate["curve"]:
        engine = measured[point["index"]]
        assert point["float_pct"] == round(100 * result["float_accuracy"], 2)
        assert point["naive_pct"] == round(100 * engine["naive_mean"], 2)
        assert point["hardware_aware_pct"] == round(100 * engine["hardware_aware_mean"], 2)
        assert point["hardware_aware_std_pp"] == round(100 * engine["hardware_aware_std"], 2)
    for point in evaluate["curve"][:2]:  # where the network was trained for (0.03)
        spread = point["naive_std_pp"] + point["hardware_aware_std_pp"]
        assert point["hardware_aware_pct"] >= point["naive_pct"] - spread, point
    # Accuracy does not rise with noise beyond the Monte Carlo spread.
    light, heavy = evaluate["curve"][0], evaluate["curve"][-1]
    spread = light["hardware_aware_std_pp"] + heavy["hardware_aware_std_pp"]
    assert heavy["hardware_aware_pct"] < light["hardware_aware_pct"] + spread
    assert {figure["model"] for figure in evaluate["robustness"]} == {"naive", "hardware_aware"}
    rows = _csv(stack, evaluate)
    assert [float(row["programming_noise"]) for row in rows] == NOISE
    assert [float(row["naive_pct"]) for row in rows] == [p["naive_pct"] for p in evaluate["curve"]]

    retrain = _wait(stack, retrain["id"], timeout_s=120)
    assert retrain["status"] == "succeeded", retrain["jobs"]
    assert len(retrain["jobs"]) == 2
    rows = _csv(stack, retrain)
    for job, point, row in zip(retrain["jobs"], retrain["curve"], rows, strict=True):
        summary = stack.api.get(job["link"]).json()["result"]
        assert (
            point["values"] == job["values"]
            and int(row["weight_bits"]) == job["values"]["weight_bits"]
        )
        assert point["hardware_aware_pct"] == summary["hardware_aware_pct"]["mean"]
        assert point["naive_pct"] == summary["naive_pct"]["mean"]
        assert float(row["hardware_aware_pct"]) == summary["hardware_aware_pct"]["mean"]
        assert float(row["float_pct"]) == summary["float_accuracy_pct"]

    page = browser.new_page()
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    base = str(stack.api.base_url).rstrip("/")
    page.goto(base + evaluate["links"]["report"])
    figure = page.locator("#figure-curve img")
    figure.wait_for()
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", figure.element_handle())
    assert evaluate["robustness"][0]["statement"] in page.inner_text("#robustness")
    assert page.locator("#curve tr").count() == len(NOISE) + 1
    assert errors == []
    page.close()
