"""The job task: claim the job row, run the study, store the one final outcome.

The broker message carries only a job id; everything else is read from the job row.
``execute_job`` holds the whole lifecycle and takes the study runner as an argument, so
the tests drive every outcome through the real database; ``run_job`` is the thin Celery
task around it that turns "give it back and try again" into a Celery retry.

Only worker processes run studies: the engine (torch) is imported by the worker's main
process before it forks its pool (``worker_init``), so every pool process shares it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import kombu.exceptions
import sqlalchemy.exc
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_init, worker_process_init
from pydantic import ValidationError

from app.core.config import Settings, get_settings
from app.core.vocabulary import ErrorCode, JobStatus
from app.db.job_store import Claim, JobStore
from app.db.session import get_engine, get_sessionmaker
from hwmodels.datasets.errors import DatasetError
from hwmodels.progress import JobCancelled
from hwmodels.report import ARTIFACTS
from hwmodels.specs import StudySpec
from workers.celery_app import RUN_JOB_TASK, celery_app
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

    status: Literal["skipped", "succeeded", "failed", "cancelled", "retry", "lost"]
    error_code: str | None = None


def execute_job(
    job_id: str,
    *,
    store: JobStore,
    worker: str,
    settings: Settings,
    retries_done: int = 0,
    run: StudyRunner | None = None,
) -> Outcome:
    """Claim ``job_id`` and run it to exactly one final status.

    Transient database errors while claiming propagate (nothing was claimed; the caller
    retries). Every error after the claim ends the job: failed with a code, cancelled,
    or back to queued with ``Outcome("retry")`` for a transient error the caller retries.
    ``run`` is the study runner (default: ``hwmodels.pipeline.run_study``).
    """
    claim = store.claim(job_id, worker)
    if claim is None:
        status = store.status(job_id)
        log.info("job %s not claimed: it is %s", job_id, status or "missing")
        return Outcome("skipped")
    log.info("job %s claimed by %s (attempt %d)", job_id, worker, claim.attempt)
    try:
        spec = StudySpec.model_validate(claim.spec)
        reporter = JobReporter(store, claim)
        result = (run or _engine_runner())(
            spec,
            data_dir=settings.data_dir,
            on_progress=reporter.on_progress,
            should_cancel=reporter.should_cancel,
        )
        report = result.report.model_dump(mode="json")
        stored = _settle(lambda: store.succeed(claim, report, result.artifacts, ARTIFACTS))
        return _logged(claim, Outcome("succeeded") if stored else Outcome("lost"))
    except JobCancelled:
        stored = _settle(lambda: store.cancel(claim))
        return _logged(claim, Outcome("cancelled") if stored else Outcome("lost"))
    except ValidationError as exc:
        return _fail(store, claim, ErrorCode.INVALID_SPEC, f"the job's spec is not valid: {exc}")
    except DatasetError as exc:
        return _fail(store, claim, ErrorCode.DATASET_MISSING, str(exc))
    except SoftTimeLimitExceeded:
        message = (
            f"the job ran longer than the time limit ({settings.task_soft_time_limit_s} s); "
            "ask for fewer epochs, samples or chips, or raise HWSCORE_TASK_SOFT_TIME_LIMIT_S"
        )
        return _fail(store, claim, ErrorCode.TIME_LIMIT, message)
    except TRANSIENT_ERRORS as exc:
        return _give_back(store, claim, exc, retries_done, settings.task_max_retries)
    except Exception as exc:
        log.exception("job %s failed with an unexpected error", job_id)
        return _fail(store, claim, ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")


def _engine_runner() -> StudyRunner:
    from hwmodels.pipeline import run_study

    return run_study


def _give_back(
    store: JobStore, claim: Claim, exc: BaseException, retries_done: int, max_retries: int
) -> Outcome:
    """Requeue after a transient error, or fail once the retries are spent."""
    reason = f"{type(exc).__name__}: {exc}"
    if retries_done >= max_retries:
        message = f"the database or broker failed {retries_done + 1} times; last: {reason}"
        return _fail(store, claim, ErrorCode.INFRASTRUCTURE_UNAVAILABLE, message)
    log.warning("job %s: transient error, giving it back for a retry: %s", claim.job_id, reason)
    status = _settle(lambda: store.requeue(claim, reason))
    if status == JobStatus.QUEUED:
        return Outcome("retry")
    return _logged(claim, Outcome("cancelled") if status == "cancelled" else Outcome("lost"))


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


def retry_countdown_s(retries_done: int) -> int:
    """Exponential backoff between tries: 2, 4, 8 ... seconds, at most a minute."""
    return int(min(2 ** (retries_done + 1), 60))


def worker_name(hostname: str | None) -> str:
    return f"{hostname or socket.gethostname()}:{os.getpid()}"[:200]


def configure_torch_threads(settings: Settings) -> int:
    """Give torch the configured thread count, or every core of the machine."""
    import torch

    threads = settings.torch_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


@worker_init.connect
def _preload_engine(**_: Any) -> None:
    """Import the engine once in the worker's main process, before the pool forks."""
    import hwmodels.pipeline  # noqa: F401


@worker_process_init.connect
def _init_worker_process(**_: Any) -> None:
    """Each forked pool process: its own database connections and torch threads."""
    get_engine().dispose(close=False)
    configure_torch_threads(get_settings())


@celery_app.task(name=RUN_JOB_TASK, bind=True, max_retries=None)
def run_job(self: Task, job_id: str) -> str:
    """Run the job ``job_id``; the job row says what to run and receives the outcome."""
    settings = get_settings()
    retries_done = int(self.request.retries or 0)
    try:
        outcome = execute_job(
            job_id,
            store=JobStore(get_sessionmaker()),
            worker=worker_name(self.request.hostname),
            settings=settings,
            retries_done=retries_done,
        )
    except TRANSIENT_ERRORS as exc:
        # The claim itself failed: the job is still queued (or was never touched).
        if retries_done >= settings.task_max_retries:
            raise
        raise self.retry(exc=exc, countdown=retry_countdown_s(retries_done)) from exc
    if outcome.status == "retry":
        raise self.retry(countdown=retry_countdown_s(retries_done))
    return outcome.status
