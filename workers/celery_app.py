"""The Celery application. Imports no torch: the API uses it only to send tasks by name.

Delivery settings follow from "the job row is the source of truth": a message may be
delivered twice (late acks, requeue on worker loss), and the task's atomic claim of the
job row makes the second delivery harmless.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from app.core.config import Settings, get_settings

RUN_JOB_TASK = "hwscore.run_job"
QUEUE = "hwscore"
#: Celery's prefork pool, safe to SIGKILL an idle pool process of (workers/pool.py).
WORKER_POOL = "workers.pool:KillSafeTaskPool"


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """Options for the configured broker's transport; each transport reads different ones.

    kombu's SQLAlchemy transport hands every option to ``create_engine``, so it must not
    see Redis options such as ``visibility_timeout`` (that raises TypeError at connect).
    """
    url = settings.resolved_broker_url()
    if url.startswith(("sqla+", "sqlalchemy+")):
        if "sqlite" in url:
            # The API publishes while workers poll with BEGIN IMMEDIATE: wait, don't fail.
            return {"connect_args": {"timeout": 30}}
        return {"pool_pre_ping": True}
    if url.startswith(("redis://", "rediss://", "sentinel://")):
        # Above the hard time limit, or Redis would redeliver a job that is still running.
        return {"visibility_timeout": settings.task_time_limit_s + 600}
    return {}


def make_celery(settings: Settings | None = None) -> Celery:
    """A Celery app for ``settings``; the worker and the API build theirs the same way."""
    settings = settings or get_settings()
    app = Celery("hwscore", broker=settings.resolved_broker_url(), include=["workers.tasks"])
    app.conf.update(
        task_default_queue=QUEUE,
        task_ignore_result=True,
        # A message is acknowledged only once the task returns, and requeued if the
        # worker process dies: the claim on the job row makes redelivery harmless.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One job per worker process: no process hoards messages another could run.
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        worker_pool=WORKER_POOL,
        # Training leaks a little memory (allocator caches); recycle processes now and then.
        worker_max_tasks_per_child=50,
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        broker_connection_retry_on_startup=True,
        broker_transport_options=broker_transport_options(settings),
        task_serializer="json",
        accept_content=["json"],
    )
    return app


celery_app = make_celery()
