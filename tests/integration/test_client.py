"""The Python client and the `hwscore` client commands against the real running stack."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.client import HwscoreClient, HwscoreError, Job
from hwmodels.report import ARTIFACTS, RobustnessReport
from tests.conftest import REPO_ROOT
from tests.integration.conftest import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY_MNIST: dict[str, Any] = {
    "dataset": "mnist",
    "network": {"hidden": [16]},
    "profile": {"preset": "rram-4bit"},
    "training": {"epochs": 2, "hw_epochs": 1, "train_samples": 1000, "batch_size": 50},
    "evaluation": {"chips": 2, "test_samples": 300},
    "fresh": True,
}
LONG_MNIST: dict[str, Any] = {**TINY_MNIST, "training": {"epochs": 50}}


@pytest.fixture
def hw(stack: Stack) -> Any:
    with HwscoreClient(str(stack.api.base_url), retries=2) as client:
        yield client


def test_python_client_submits_waits_fetches_and_downloads(
    hw: HwscoreClient, tmp_path: Path
) -> None:
    job = hw.submit(TINY_MNIST)
    assert job.status == "queued" and not job.done
    seen: list[Job] = []
    done = hw.wait(job.id, timeout_s=90, poll_s=0.3, on_update=seen.append)
    assert done.status == "succeeded", done.error
    fractions = [update.fraction for update in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    report = hw.result(job.id)
    assert report.layer_sizes == [784, 16, 10] and report.hardware_aware.chips == 2
    assert report.float_accuracy > 0.3, "2 epochs on 900 images beat chance (10%)"

    listed = {artifact.name: artifact for artifact in hw.artifacts(job.id)}
    assert set(listed) == set(ARTIFACTS)
    path = hw.download(job.id, "report.json", tmp_path / "out")
    assert path == tmp_path / "out" / "report.json"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == listed["report.json"].sha256
    assert RobustnessReport.model_validate_json(path.read_text()) == report
    assert job.id in [j.id for j in hw.jobs(status="succeeded", limit=100)]


def test_client_errors_carry_the_servers_detail_and_status(hw: HwscoreClient) -> None:
    nobody = str(uuid.uuid4())
    with pytest.raises(HwscoreError) as missing:
        hw.job(nobody)
    assert missing.value.status == 404 and nobody in missing.value.detail

    bad = {**TINY_MNIST, "training": {"epochs": 0}}
    with pytest.raises(HwscoreError) as invalid:
        hw.submit(bad)
    assert invalid.value.status == 422 and "epochs" in invalid.value.detail
    assert invalid.value.problem["errors"][0]["field"] == "training.epochs"

    long = hw.submit(LONG_MNIST)
    cancelling = hw.cancel(long.id)
    assert cancelling.status in ("cancelling", "cancelled")
    assert hw.wait(long.id, timeout_s=60, poll_s=0.3).status == "cancelled"
    with pytest.raises(HwscoreError) as finished:
        hw.cancel(long.id)
    assert finished.value.status == 409
    with pytest.raises(HwscoreError) as unfinished:
        hw.result(long.id)
    assert unfinished.value.status == 409 and long.id in unfinished.value.detail


def test_cli_submit_wait_result_download_jobs_cancel(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ["--server", str(stack.api.base_url)]
    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        "dataset: mnist\nnetwork: {hidden: [16]}\nprofile: {preset: rram-4bit}\n"
        "training: {epochs: 1, hw_epochs: 1, train_samples: 1000, batch_size: 50}\n"
        "evaluation: {chips: 2, test_samples: 300}\n"
    )
    # The installed entry point, as a user runs it: only the job id on stdout.
    submitted = subprocess.run(
        [sys.executable, "-m", "app.cli", "submit", str(spec), "--seed", "7", "--fresh", *server],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert f"hwscore wait {job_id}" in submitted.stderr

    assert main(["wait", job_id, "--timeout", "90", *server]) == 0
    out, err = capsys.readouterr()
    assert "succeeded" in err  # the progress lines
    lines = out.splitlines()
    assert lines[0].startswith("mnist  784-16-10") and "2 chips" in lines[0]
    assert [line.split()[0] for line in lines[2:5]] == ["float", "naive", "hardware-aware"]
    assert lines[5].startswith("recovered: ")

    assert main(["result", job_id, "--json", *server]) == 0
    report = RobustnessReport.model_validate_json(capsys.readouterr().out)
    assert report.training.seed == 7

    assert main(["status", job_id, *server]) == 0
    assert capsys.readouterr().out.startswith(f"{job_id}  succeeded  100%")

    assert main(["download", job_id, "metrics.csv", "--out", str(tmp_path), *server]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "metrics.csv")
    assert (tmp_path / "metrics.csv").read_text().count("\n") >= 2

    assert main(["jobs", "--status", "succeeded", "--limit", "100", *server]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0][:3] == ["id", "status", "progress"]
    assert [job_id, "succeeded", "100%", "mnist", "rram-4bit"] in [row[:5] for row in rows]

    assert main(["cancel", job_id, *server]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwscore cancel: error: ") and err.count("\n") == 1

    nobody = str(uuid.uuid4())
    assert main(["status", nobody, "--json", *server]) == 2
    assert nobody in capsys.readouterr().err


def test_cli_submit_refused_by_the_server_is_one_line(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["submit", "--server", str(stack.api.base_url), "--preset", "rram-4bit"]
    assert main([*argv, "--chips", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("hwscore submit: error: ") and "chips" in captured.err
