"""Float training reused across jobs by a live worker (real API, broker, worker, MNIST)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.integration.conftest import TERMINAL, Stack
from tests.integration.test_jobs import SMALL_MNIST

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# A network and seed no other test trains, so the first job finds nothing cached.
STUDY: dict[str, Any] = {
    **SMALL_MNIST,
    "network": {"hidden": [24]},
    "training": {"epochs": 1, "hw_epochs": 1, "train_samples": 2000, "seed": 41},
    "evaluation": {"chips": 2, "test_samples": 500},
}


def _run(stack: Stack, preset: str, **changes: Any) -> dict[str, Any]:
    training = {**STUDY["training"], **changes}
    job = stack.submit(**{**STUDY, "profile": {"preset": preset}, "training": training})
    done = stack.wait_status(job["id"], TERMINAL, timeout_s=180)
    assert done["status"] == "succeeded", done
    return done


def _float_rows(stack: Stack, job_id: str) -> list[dict[str, str]]:
    content = stack.api.get(f"/api/v1/jobs/{job_id}/artifacts/metrics.csv").content
    return [r for r in csv.DictReader(io.StringIO(content.decode())) if r["phase"] == "float"]


def test_a_job_on_another_profile_reuses_the_float_network(stack: Stack) -> None:
    first = _run(stack, "rram-4bit")
    # Another profile and another hardware-aware recipe: the same float training.
    second = _run(stack, "pcm-3bit", hw_epochs=2, hw_learning_rate=0.002)

    trained, reused = first["result"]["float_training"], second["result"]["float_training"]
    assert trained["reused"] is False and reused["reused"] is True
    assert reused["key"] == trained["key"] and len(trained["key"]) == 64
    assert second["result"]["float_accuracy_pct"] == first["result"]["float_accuracy_pct"]
    report = stack.api.get(f"/api/v1/jobs/{second['id']}/result").json()
    assert report["float_training"] == reused
    assert (
        report["float_accuracy"]
        == stack.api.get(f"/api/v1/jobs/{first['id']}/result").json()["float_accuracy"]
    )
    assert len(_float_rows(stack, second["id"])) == 1  # the stored curve comes with it
    assert _float_rows(stack, second["id"]) == _float_rows(stack, first["id"])
    page = stack.api.get(f"/api/v1/jobs/{second['id']}/report").text
    assert 'id="float-reused"' in page and reused["key"][:12] in page
    assert 'id="float-reused"' not in stack.api.get(f"/api/v1/jobs/{first['id']}/report").text

    # A damaged cache file: the next job trains again (same numbers) and repairs it.
    path = stack.worker_log.parent / "float-cache" / f"{trained['key']}.safetensors"
    assert path.is_file()
    path.write_bytes(b"\x00" * 64)
    third = _run(stack, "fefet-2bit")
    assert third["result"]["float_training"] == trained  # trained here, same key
    assert third["result"]["float_accuracy_pct"] == first["result"]["float_accuracy_pct"]
    fourth = _run(stack, "sram-4bit")
    assert fourth["result"]["float_training"] == reused


def test_a_changed_float_setting_trains_again(stack: Stack) -> None:
    base = _run(stack, "rram-4bit", seed=43)
    other = _run(stack, "rram-4bit", seed=43, learning_rate=0.002)
    assert other["result"]["float_training"]["reused"] is False
    assert other["result"]["float_training"]["key"] != base["result"]["float_training"]["key"]
