"""Sending the task that wakes a worker for a job, and checking the broker is there.

The API only sends tasks by name (``workers.celery_app.RUN_JOB_TASK``) with the job id:
the job row is the source of truth, so the message carries nothing else. The Celery app
is built on first use, so importing or creating the API opens no broker connection.
"""

from __future__ import annotations

import threading
from typing import Protocol

from celery import Celery

from app.core.config import Settings
from workers.celery_app import QUEUE, RUN_JOB_TASK, make_celery

# A request must not hang on a dead broker: a few quick tries, then a clear 503.
_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0.0,
    "interval_step": 0.25,
    "interval_max": 0.5,
}
_CONNECT_TIMEOUT_S = 2.0


class Dispatcher(Protocol):
    """What the API needs from a broker."""

    def send_job(self, job_id: str) -> None:
        """Queue the task that runs this job; raises on failure."""

    def check(self) -> None:
        """Raise unless the broker accepts connections right now."""

    def queued_messages(self) -> int:
        """How many job messages wait in the broker's queue; raises if it is unreachable."""


class CeleryDispatcher:
    """Sends ``hwscore.run_job`` through Celery to the broker named in the settings."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app: Celery | None = None
        self._lock = threading.Lock()

    @property
    def celery(self) -> Celery:
        with self._lock:
            if self._app is None:
                app = make_celery(self._settings)
                app.conf.broker_connection_timeout = _CONNECT_TIMEOUT_S
                app.conf.broker_connection_retry = False
                self._app = app
            return self._app

    def send_job(self, job_id: str) -> None:
        self.celery.send_task(
            RUN_JOB_TASK, args=[job_id], retry=True, retry_policy=_PUBLISH_RETRY_POLICY
        )

    def check(self) -> None:
        # Counting the queue really reads it: a broker file that cannot be opened, or a
        # Redis that refuses commands, fails here, where a bare connect may not.
        self.queued_messages()

    def queued_messages(self) -> int:
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0.2, timeout=_CONNECT_TIMEOUT_S
            )
            # Declaring is idempotent on both supported transports and answers the count
            # of messages waiting (not those a worker has already taken).
            declared = connection.default_channel.queue_declare(
                queue=QUEUE, durable=True, auto_delete=False
            )
            return int(declared.message_count)

    def close(self) -> None:
        """Release pooled broker connections (at application shutdown)."""
        with self._lock:
            if self._app is not None:
                self._app.close()
                self._app = None
