"""Every way a job can end, driven through ``execute_job`` on a real database.

The study runner is the one stand-in here (the real engine runs in tests/integration):
each runner below behaves as the engine does at one of its exits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy.exc
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db.job_store import JobStore
from app.db.models import Artifact
from hwmodels.datasets.errors import DatasetUnavailableError
from hwmodels.profile import HardwareProfile
from hwmodels.progress import JobCancelled, ProgressEvent
from hwmodels.report import ChipStatistics, RobustnessReport
from hwmodels.specs import EvaluationSettings, StudySpec, TrainingSettings
from tests.workers.conftest import add_job, events, load_job, set_status
from workers.tasks import Outcome, execute_job

SETTINGS = Settings(max_attempts=2, heartbeat_interval_s=0.05, stale_after_s=30)


def run(store: JobStore, job_id: str, runner: Callable[..., Any]) -> Outcome:
    return execute_job(job_id, store=store, worker="test@host:1", settings=SETTINGS, run=runner)


def raising(exc: BaseException) -> Callable[..., Any]:
    def runner(spec: StudySpec, **_: Any) -> Any:
        raise exc

    return runner


def must_not_run(spec: StudySpec, **_: Any) -> Any:
    raise AssertionError("the study must not start")


@pytest.mark.parametrize(
    ("error", "code", "in_message"),
    [
        (
            DatasetUnavailableError(
                "emnist-letters is missing; put the files in /data/emnist",
                missing=["x.gz"],
                folder="/data/emnist",
            ),
            "dataset_missing",
            "put the files in /data/emnist",
        ),
        (SoftTimeLimitExceeded(), "time_limit", "time limit"),
        (RuntimeError("matrix shapes disagree"), "internal_error", "server log"),
        # A pydantic error inside the engine is a bug of ours, not the user's spec.
        (ValidationError.from_exception_data("Report", []), "internal_error", "server log"),
    ],
)
def test_failures_end_failed_with_a_code(
    sessions: sessionmaker[Session],
    store: JobStore,
    error: BaseException,
    code: str,
    in_message: str,
) -> None:
    job_id = add_job(sessions)
    assert run(store, job_id, raising(error)) == Outcome("failed", code)
    job = load_job(sessions, job_id)
    assert (job.status, job.error_code) == ("failed", code)
    assert in_message in (job.error_message or "")
    assert "matrix shapes" not in (job.error_message or "")  # exception text stays in the log
    assert job.finished_at is not None
    assert events(sessions, job_id)[-1].data == {"status": "failed", "error_code": code}


def test_an_invalid_spec_fails_without_running(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions, spec={"dataset": "cifar-1000", "network": {"hidden": [0]}})
    assert run(store, job_id, must_not_run) == Outcome("failed", "invalid_spec")
    assert "submit it again" in (load_job(sessions, job_id).error_message or "")


def test_a_job_cancelled_while_queued_is_skipped(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions, status="cancelled")
    assert run(store, job_id, must_not_run) == Outcome("skipped")
    job = load_job(sessions, job_id)
    assert (job.status, job.attempts, job.started_at) == ("cancelled", 0, None)


def test_transient_error_hands_the_job_back_until_its_last_attempt(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions)
    lost = sqlalchemy.exc.OperationalError(
        "SELECT 1", {}, Exception("server closed the connection")
    )
    assert run(store, job_id, raising(lost)) == Outcome("requeued")
    job = load_job(sessions, job_id)
    # Back in the queue with no message out: the recovery sweep sends it again.
    assert (job.status, job.attempts, job.worker, job.dispatched_at) == ("queued", 1, None, None)

    # The second claim is the last attempt (max_attempts=2): it fails for good.
    assert run(store, job_id, raising(lost)) == Outcome("failed", "infrastructure_unavailable")
    job = load_job(sessions, job_id)
    assert (job.status, job.attempts) == ("failed", 2)
    assert "GET /readyz" in (job.error_message or "")
    assert "server closed" not in (job.error_message or "")


def test_the_heartbeat_moves_while_a_long_step_runs(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions)
    beats = []

    def one_long_step(spec: StudySpec, **_: Any) -> Any:
        for _ in range(4):  # no progress reported: only the heartbeat thread writes
            beats.append(load_job(sessions, job_id).heartbeat_at)
            time.sleep(0.2)
        raise RuntimeError("done looking")

    run(store, job_id, one_long_step)
    assert len(set(beats)) >= 3, beats


def test_cancel_while_running_stops_at_the_next_check(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions)
    seen: dict[str, Any] = {}

    def engine(spec: StudySpec, *, on_progress: Any, should_cancel: Any, **_: Any) -> Any:
        on_progress(ProgressEvent(kind="phase", phase="float_training", fraction=0.1))
        seen["status_while_running"] = load_job(sessions, job_id).status
        set_status(sessions, job_id, "cancelling")  # what the API's cancel does
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            on_progress(ProgressEvent(kind="batch", phase="float_training", fraction=0.2, batch=1))
            if should_cancel():
                raise JobCancelled()
            time.sleep(0.05)
        raise AssertionError("the cancel request was never seen")

    assert run(store, job_id, engine) == Outcome("cancelled")
    assert seen["status_while_running"] == "running"
    job = load_job(sessions, job_id)
    assert job.status == "cancelled" and job.finished_at is not None
    assert [(e.kind, e.phase) for e in events(sessions, job_id)] == [
        ("state", None),
        ("phase", "float_training"),
        ("state", None),
    ]


def _report(spec: StudySpec) -> RobustnessReport:
    chips = ChipStatistics(
        chips=2, mean=0.9, std=0.01, worst=0.89, p5=0.89, best=0.91, accuracies=[0.89, 0.91]
    )
    return RobustnessReport(
        dataset=spec.dataset,
        layer_sizes=spec.network.layer_sizes(spec.dataset),
        parameters=spec.network.parameter_count(spec.dataset),
        profile=HardwareProfile(),
        training=TrainingSettings(),
        evaluation=EvaluationSettings(),
        float_accuracy=0.95,
        naive=chips,
        hardware_aware=chips,
        naive_drop_pp=5.0,
        hardware_aware_drop_pp=5.0,
        recovered_fraction=0.0,
        layers=[],
        timings_s={"total": 1.0},
    )


def test_success_writes_progress_events_result_and_artifacts(
    sessions: sessionmaker[Session], store: JobStore
) -> None:
    job_id = add_job(sessions)
    artifacts = {"metrics.csv": b"epoch,loss\n1,0.5\n", "float_weights.pt": b"\x80weights"}

    def engine(spec: StudySpec, *, on_progress: Any, should_cancel: Any, **_: Any) -> Any:
        on_progress(ProgressEvent(kind="phase", phase="float_training", fraction=0.0))
        for batch in range(50):  # a burst of batches: throttled to about one write a second
            on_progress(
                ProgressEvent(
                    kind="batch",
                    phase="float_training",
                    fraction=0.01 * batch,
                    epoch=1,
                    batch=batch,
                )
            )
            assert not should_cancel()
        on_progress(
            ProgressEvent(
                kind="epoch",
                phase="float_training",
                fraction=0.5,
                epoch=1,
                epochs=1,
                loss=0.4,
                accuracy=0.9,
            )
        )
        job = load_job(sessions, job_id)
        assert (job.progress_phase, job.progress_fraction, job.progress_epoch) == (
            "float_training",
            0.5,
            1,
        )
        return type("StudyResult", (), {"report": _report(spec), "artifacts": artifacts})()

    revision_before = load_job(sessions, job_id).revision
    assert run(store, job_id, engine) == Outcome("succeeded")

    job = load_job(sessions, job_id)
    assert (job.status, job.progress_fraction) == ("succeeded", 1.0)
    assert job.result is not None and job.result["float_accuracy"] == 0.95
    # claim + phase + (throttled batches) + epoch + success: a handful, not 50+.
    assert 4 <= job.revision - revision_before <= 8
    assert [e.kind for e in events(sessions, job_id)] == ["state", "phase", "epoch", "state"]
    assert events(sessions, job_id)[2].data["accuracy"] == 0.9
    with sessions() as session:
        stored = {a.name: (a.media_type, a.content) for a in session.query(Artifact)}
    assert stored == {
        "metrics.csv": ("text/csv", artifacts["metrics.csv"]),
        "float_weights.pt": ("application/octet-stream", artifacts["float_weights.pt"]),
    }
