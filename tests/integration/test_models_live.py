"""An uploaded model through the real API, broker, worker and engine, on real MNIST."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save
from torch import nn

from hwmodels.datasets.loader import load_split
from tests.integration.conftest import TERMINAL, Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_an_uploaded_model_is_scored_and_fine_tuned(stack: Stack, data_dir: Path) -> None:
    train = load_split("mnist", "train", data_dir, limit=2000, download=False)
    test = load_split("mnist", "test", data_dir, limit=1000, download=False)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for start in range(0, 2000, 32):  # one epoch in plain PyTorch
        loss = nn.functional.cross_entropy(
            model(train.images[start : start + 32]), train.labels[start : start + 32]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        correct = int((model(test.images).argmax(1) == test.labels).sum())

    network = {"hidden": [32]}
    upload = stack.api.post(
        "/api/v1/models",
        files={"weights": ("model.safetensors", save(model.state_dict()))},
        data={"architecture": json.dumps(network), "dataset": "mnist"},
    )
    assert upload.status_code == 201, upload.text
    uploaded = upload.json()
    job = stack.submit(
        model_id=uploaded["id"],
        profile={"preset": "rram-4bit"},
        training={"hw_epochs": 1, "train_samples": 2000, "batch_size": 32},
        evaluation={"chips": 5, "test_samples": 1000},
    )
    assert job["spec"]["start_from"]["sha256"] == uploaded["sha256"]
    done = stack.wait_status(job["id"], TERMINAL, timeout_s=120)
    assert done["status"] == "succeeded", done
    report = stack.api.get(f"/api/v1/jobs/{job['id']}/result").json()
    assert round(report["float_accuracy"] * 1000) == correct  # the uploaded weights, as given
    assert report["hardware_aware"]["mean"] > 0.5

    # The hardware-aware weights come back as safetensors that upload again as they are.
    returned = stack.api.get(f"/api/v1/jobs/{job['id']}/artifacts/hw_weights.safetensors")
    assert returned.status_code == 200
    again = stack.api.post(
        "/api/v1/models",
        files={"weights": ("hw.safetensors", returned.content)},
        data={"architecture": json.dumps(network), "dataset": "mnist"},
    )
    assert again.status_code == 201, again.text
    assert again.json()["sha256"] != uploaded["sha256"]  # fine-tuning changed them
