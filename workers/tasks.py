"""The job task: claim the job row, run the study, store the one final outcome.

The broker message carries only a job id; everything else is read from the job row.
``execute_job`` holds the whole lifecycle and takes the study runner as an argument, so
the tests drive every outcome through the real database; ``run_job`` is the thin Celery
task around it. There are no Celery retries: a job handed back, or a message lost, is
sent again by the recovery sweep (``app.services.recovery``), the one path for both.

Only worker processes run studies: the engine (torch) is imported by the worker's main
process before it forks its pool (``worker_init``), so every pool process shares it.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import kombu.exceptions
import sqlalchemy.exc
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_init, worker_process_init, worker_ready
from pydantic import ValidationError

from app.core.config import Settings, get_settings
from app.core.vocabulary import ErrorCode, JobKind, JobStatus
from app.db.job_store import Claim, JobStore
from app.db.session import get_engine, get_sessionmaker
from app.services.dispatch import CeleryDispatcher
from app.services.recovery import RecoverySweeper
from hwmodels.datasets.errors import DatasetError
from hwmodels.progress import JobCancelled
from hwmodels.report import ARTIFACTS
from hwmodels.specs import StudySpec
from hwmodels.sweep_spec import SweepPoint
from workers.celery_app import RUN_JOB_TASK, celery_app
from workers.heartbeat import Heartbeat
from workers.reporter import JobReporter

if TYPE_CHECKING:
    from hwmodels.pipeline import StudyResult

log = logging.getLogger(__name__)

T = TypeVar("T")
StudyRunner = Callable[..., "StudyResult"]

# Errors of the database or broker connection that a later try may not meet again.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    kombu.exceptions.OperationalError,
    ConnectionError,
)
try:
    import redis.exceptions

    TRANSIENT_ERRORS += (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
except ImportError:  # pragma: no cover - redis comes with celery[redis]
    pass


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery of a job message (for logs and tests)."""

    status: Literal["skipped", "succeeded", "failed", "cancelled", "requeued", "lost"]
    error_code: str | None = None


def execute_job(
    job_id: str,
    *,
    store: JobStore,
    worker: str,
    settings: Settings,
    run: StudyRunner | None = None,
) -> Outcome:
    """Claim ``job_id`` and run it to exactly one final status.

    Transient database errors while claiming propagate (nothing was claimed; the job
    stays queued and the recovery sweep sends it again). Every error after the claim
    ends the job: failed with a code, cancelled, or handed back to the queue after a
    transient error (``Outcome("requeued")``; the sweep sends it again).
    ``run`` is the study runner (default: ``hwmodels.pipeline.run_study``, or
    ``hwmodels.sweep.run_evaluation_sweep`` for a job of kind ``sweep-evaluate``).
    """
    claim = store.claim(job_id, worker)
    if claim is None:
        status = store.status(job_id)
        log.info("job %s not claimed: it is %s", job_id, status or "missing")
        return Outcome("skipped")
    log.info("job %s claimed by %s (attempt %d)", job_id, worker, claim.attempt)
    try:
        spec = StudySpec.model_validate(claim.spec)
        points = (
            [SweepPoint.model_validate(point) for point in claim.sweep_points or []]
            if claim.kind == JobKind.SWEEP_EVALUATE
            else []
        )
    except ValidationError:
        log.exception("job %s: stored spec does not validate", job_id)
        message = "the job's spec is not valid for this version of hwscore; submit it again"
        return _fail(store, claim, ErrorCode.INVALID_SPEC, message)
    if run is None:
        run = _engine_runner(claim.kind, points, settings)
    with Heartbeat(store, claim, settings.heartbeat_interval_s):
        return _run_claimed(store, claim, spec, settings, run)


def _run_claimed(
    store: JobStore, claim: Claim, spec: StudySpec, settings: Settings, run: StudyRunner
) -> Outcome:
    """Run the study of a claimed job and store its one outcome."""
    try:
        if spec.start_from is not None:
            run = functools.partial(run, float_weights=_given_weights(store, spec))
        reporter = JobReporter(store, claim)
        result = run(
            spec,
            data_dir=settings.data_dir,
            on_progress=reporter.on_progress,
            should_cancel=reporter.should_cancel,
            allow_download=settings.download_datasets,
        )
        report = result.report.model_dump(mode="json")
        stored = _settle(lambda: store.succeed(claim, report, result.artifacts, ARTIFACTS))
        return _logged(claim, Outcome("succeeded") if stored else Outcome("lost"))
    except JobCancelled:
        stored = _settle(lambda: store.cancel(claim))
        return _logged(claim, Outcome("cancelled") if stored else Outcome("lost"))
    except DatasetError as exc:  # written for users: names the files and where to put them
        return _fail(store, claim, ErrorCode.DATASET_MISSING, str(exc))
    except ModelGone as exc:
        return _fail(store, claim, ErrorCode.INVALID_SPEC, str(exc))
    except SoftTimeLimitExceeded:
        message = (
            f"the job ran longer than the time limit ({settings.task_soft_time_limit_s} s); "
            "ask for fewer epochs, samples or chips, or raise HWSCORE_TASK_SOFT_TIME_LIMIT_S"
        )
        return _fail(store, claim, ErrorCode.TIME_LIMIT, message)
    except TRANSIENT_ERRORS as exc:
        return _give_back(store, claim, exc, settings.max_attempts)
    except Exception:  # a pydantic error inside the engine is ours, not the user's spec
        log.exception("job %s failed with an unexpected error", claim.job_id)
        message = (
            f"the study stopped on an unexpected error; the server log has the details "
            f"under job {claim.job_id}"
        )
        return _fail(store, claim, ErrorCode.INTERNAL_ERROR, message)


class ModelGone(Exception):
    """The uploaded model a job starts from was deleted after the job was submitted."""


def _given_weights(store: JobStore, spec: StudySpec) -> dict[str, Any]:
    """The state dict of the uploaded model the study starts from (stored checked, in
    hwscore's names, so it is only read here)."""
    from hwmodels.weights_file import read_safetensors
    from hwmodels.weights_load import state_dict

    assert spec.start_from is not None and spec.start_from.model_id is not None
    content = store.model_weights(spec.start_from.model_id, spec.start_from.sha256)
    if content is None:
        raise ModelGone(
            f"the uploaded model {spec.start_from.model_id} was deleted after this job was "
            "submitted; upload the weights again and submit a new job"
        )
    return state_dict(read_safetensors(content))


def _engine_runner(kind: str, points: list[SweepPoint], settings: Settings) -> StudyRunner:
    """The engine function a job of this kind runs: a study, or an evaluate-mode sweep
    (the same callbacks and outcome handling; only the work differs), with the worker's
    float-training cache (none when HWSCORE_FLOAT_CACHE is off)."""
    from hwmodels.float_cache import FloatCache

    folder = settings.resolved_float_cache_dir()
    cache = FloatCache(folder) if folder is not None else None
    if kind == JobKind.SWEEP_EVALUATE:
        from hwmodels.sweep import run_evaluation_sweep

        return functools.partial(run_evaluation_sweep, points=points, float_cache=cache)
    from hwmodels.pipeline import run_study

    return functools.partial(run_study, float_cache=cache)


def _give_back(store: JobStore, claim: Claim, exc: BaseException, max_attempts: int) -> Outcome:
    """Hand the job back to the queue after a transient error, or fail it on its last try."""
    log.warning("job %s: transient error: %s: %s", claim.job_id, type(exc).__name__, exc)
    if claim.attempt >= max_attempts:
        message = (
            f"the database or task broker was unavailable on each of the job's {claim.attempt} "
            "runs; check GET /readyz, then submit it again"
        )
        return _fail(store, claim, ErrorCode.INFRASTRUCTURE_UNAVAILABLE, message)
    status = _settle(lambda: store.requeue(claim, "infrastructure_unavailable"))
    if status == JobStatus.QUEUED:
        return _logged(claim, Outcome("requeued"))
    return _logged(
        claim, Outcome("cancelled") if status == JobStatus.CANCELLED else Outcome("lost")
    )


def _fail(store: JobStore, claim: Claim, code: str, message: str) -> Outcome:
    stored = _settle(lambda: store.fail(claim, code, message))
    return _logged(claim, Outcome("failed", code) if stored else Outcome("lost"))


def _logged(claim: Claim, outcome: Outcome) -> Outcome:
    if outcome.status == "lost":
        log.warning("job %s was no longer ours when it ended; nothing written", claim.job_id)
    else:
        log.info("job %s: %s %s", claim.job_id, outcome.status, outcome.error_code or "")
    return outcome


def _settle(write: Callable[[], T], tries: int = 4, first_wait_s: float = 1.0) -> T:
    """Make a final write, riding out a short database outage.

    A job must not stay ``running`` because one write hit a dropped connection; if the
    database stays down past the last try the error propagates, the heartbeat goes stale
    and crash recovery takes the job.
    """
    for attempt in range(tries):
        try:
            return write()
        except sqlalchemy.exc.OperationalError:
            if attempt == tries - 1:
                raise
            log.warning("database unavailable while finishing a job; trying again")
            time.sleep(first_wait_s * 2**attempt)
    raise AssertionError("unreachable")


def current_task_hostname() -> str | None:
    """The Celery node name of the running task (None outside a worker)."""
    return getattr(run_job.request, "hostname", None)


def worker_name(hostname: str | None) -> str:
    return f"{hostname or socket.gethostname()}:{os.getpid()}"[:200]


def configure_torch_threads(settings: Settings) -> int:
    """Give torch the configured thread count, or by default this process's share of the
    cores: the worker's pool processes run jobs at once, and each taking every core
    oversubscribes them (HWSCORE_TORCH_THREADS overrides)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    concurrency = int(celery_app.conf.worker_concurrency or 1)
    threads = settings.torch_threads or max(1, (cores or 1) // concurrency)
    torch.set_num_threads(threads)
    return threads


@worker_init.connect  # type: ignore[untyped-decorator]  # Celery ships no type information
def _preload_engine(**_: Any) -> None:
    """Import the engine once in the worker's main process, before the pool forks."""
    import hwmodels.pipeline
    import hwmodels.sweep  # noqa: F401


@worker_process_init.connect  # type: ignore[untyped-decorator]  # Celery ships no type information
def _init_worker_process(**_: Any) -> None:
    """Each forked pool process: its own database connections and torch threads."""
    get_engine().dispose(close=False)
    configure_torch_threads(get_settings())


@worker_ready.connect  # type: ignore[untyped-decorator]  # Celery ships no type information
def _start_recovery_sweep(**_: Any) -> None:
    """The worker's main process takes part in the recovery sweep (see app.services.recovery)."""
    settings = get_settings()
    if settings.recovery_sweep:
        sweeper = RecoverySweeper(settings, get_sessionmaker(), CeleryDispatcher(settings))
        sweeper.run_in_background()


@celery_app.task(name=RUN_JOB_TASK)  # type: ignore[untyped-decorator]  # Celery ships no type information
def run_job(job_id: str) -> str:
    """Run the job ``job_id``; the job row says what to run and receives the outcome."""
    try:
        outcome = execute_job(
            job_id,
            store=JobStore(get_sessionmaker()),
            worker=worker_name(current_task_hostname()),
            settings=get_settings(),
        )
    except TRANSIENT_ERRORS as exc:
        # Nothing was claimed: the job is still queued, and its message is acknowledged
        # with this return; the recovery sweep sees a queued job missing from the broker.
        log.warning(
            "job %s: not claimed (%s); the recovery sweep will send it again",
            job_id,
            type(exc).__name__,
        )
        return "deferred"
    return outcome.status
