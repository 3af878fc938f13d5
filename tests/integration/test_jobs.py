"""Jobs through the real API, broker, worker and engine, on real MNIST."""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Any

import numpy as np
import pytest
import torch

from hwmodels.report import ARTIFACTS
from tests.integration.conftest import TERMINAL, Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL_MNIST: dict[str, Any] = {
    "dataset": "mnist",
    "network": {"hidden": [32]},
    "profile": {"preset": "rram-4bit"},
    "training": {
        "epochs": 1,
        "hw_epochs": 1,
        "strategy": "ste",
        "train_samples": 2000,
        "batch_size": 32,
        "learning_rate": 0.005,
    },
    "evaluation": {"chips": 5, "test_samples": 1000},
}


def test_a_real_study_runs_to_success_with_events_and_artifacts(stack: Stack) -> None:
    job = stack.submit(**SMALL_MNIST)
    assert job["status"] == "queued" and job["attempts"] == 0

    done = stack.wait_status(job["id"], TERMINAL, timeout_s=120)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1 and done["progress"]["fraction"] == 1.0
    assert done["started_at"] is not None and done["finished_at"] is not None
    # One epoch on 2,000 real images learns the digits far beyond chance (10%).
    assert done["result"]["float_accuracy_pct"] > 50

    events = stack.events(job["id"])
    states = [e["data"]["status"] for e in events if e["kind"] == "state"]
    assert states[0] == "running" and states[-1] == "succeeded"
    phases = [e["phase"] for e in events if e["kind"] == "phase"]
    assert phases.index("float_training") < phases.index("hardware_aware_training")
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert epochs and all("loss" in e["data"] for e in epochs)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    listed = stack.api.get(f"/api/v1/jobs/{job['id']}/artifacts").json()["items"]
    assert {a["name"] for a in listed} == set(ARTIFACTS)
    files = {}
    for artifact in listed:
        response = stack.api.get(artifact["url"])
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(ARTIFACTS[artifact["name"]])
        assert hashlib.sha256(response.content).hexdigest() == artifact["sha256"]
        assert len(response.content) == artifact["size"]
        files[artifact["name"]] = response.content

    rows = list(csv.DictReader(io.StringIO(files["metrics.csv"].decode())))
    assert rows, "metrics.csv has a header and at least one row"
    levels = np.load(io.BytesIO(files["device_levels.npz"]))
    assert levels.files and all(levels[name].size > 0 for name in levels.files)
    for name in ("float_weights.pt", "hw_weights.pt"):
        weights = torch.load(io.BytesIO(files[name]), weights_only=True)
        shapes = sorted(tuple(t.shape) for t in weights.values() if t.ndim == 2)
        assert shapes == sorted([(32, 784), (10, 32)]), (name, shapes)


def test_cancel_queued_and_running_jobs_and_a_missing_dataset(stack: Stack) -> None:
    # Every training image, 50 epochs: minutes of work, cancelled within seconds.
    long = dict(SMALL_MNIST, training={**SMALL_MNIST["training"], "epochs": 50})
    long["training"].pop("train_samples")
    running = stack.submit(**long)
    stack.wait_status(running["id"], {"running"}, timeout_s=60)

    # The only worker process is busy (one job per process, prefetch 1): these wait.
    queued = stack.submit(**SMALL_MNIST)
    missing = stack.submit(**dict(SMALL_MNIST, dataset="emnist-letters"))
    assert stack.job(queued["id"])["status"] == "queued"

    cancelled = stack.api.post(f"/api/v1/jobs/{queued['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"

    cancelling = stack.api.post(f"/api/v1/jobs/{running['id']}/cancel")
    assert cancelling.status_code == 202
    assert cancelling.json()["status"] in {"cancelling", "cancelled"}
    stopped = stack.wait_status(running["id"], TERMINAL, timeout_s=30)
    assert stopped["status"] == "cancelled" and stopped["finished_at"] is not None
    assert stack.events(running["id"])[-1]["data"]["status"] == "cancelled"

    # The worker takes the next messages in order: the cancelled job's (skipped), then
    # the job on a dataset this server does not have.
    failed = stack.wait_status(missing["id"], TERMINAL, timeout_s=60)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "dataset_missing"
    assert "emnist" in failed["error"]["message"].lower()

    never_started = stack.job(queued["id"])
    assert never_started["status"] == "cancelled"
    assert never_started["attempts"] == 0 and never_started["started_at"] is None
