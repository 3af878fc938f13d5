"""The Celery application. Imports no torch: the API uses it only to send tasks by name.

Delivery settings follow from "the job row is the source of truth": a message may be
delivered twice (late acks, requeue on worker loss), and the task's atomic claim of the
job row makes the second delivery harmless.
"""

from __future__ import annotations

from celery import Celery

from app.core.config import Settings, get_settings

RUN_JOB_TASK = "hwscore.run_job"
QUEUE = "hwscore"


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("hwscore", broker=settings.resolved_broker_url(), include=["workers.tasks"])
    app.conf.update(
        task_default_queue=QUEUE,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        worker_max_tasks_per_child=50,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Above the hard time limit, or Redis would redeliver a job still running.
            "visibility_timeout": settings.task_time_limit_s + 600,
        },
        task_serializer="json",
        accept_content=["json"],
    )
    return app


celery_app = make_celery()
