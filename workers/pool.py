"""A prefork pool whose idle processes can be killed without wedging the worker.

Without an event loop (the embedded SQLite broker is polled), Celery runs billiard's
blocking pool: all pool processes read tasks from one shared pipe guarded by one
process-shared lock, and an idle process waits for the next task *holding that lock*.
SIGKILL it (the OOM killer, an operator) and the lock is never released: the process
that replaces it blocks on the lock forever and every later job stays ``queued``
(celery#2011, billiard#104).

Here an idle process waits on the pipe without the lock and takes it only to read a
task that is already there, so a kill can strand the lock only inside that one read.
With an event loop (Redis) Celery uses its asynchronous pool, where every process has
its own pipes; it is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from billiard.pool import Pool as BlockingPool
from billiard.pool import Worker as PoolProcess
from billiard.pool import pickle_loads
from celery.concurrency.prefork import TaskPool

_Receive = Callable[[float], tuple[bool, Any]]


class _LockOnlyToReadProcess(PoolProcess):  # type: ignore[misc]
    """A pool process that holds the task pipe's lock only while a task is waiting in it."""

    def _make_recv_method(self, conn: Any) -> _Receive:
        lock = getattr(conn, "_rlock", None)
        reader = getattr(conn, "_reader", None)
        if lock is None or reader is None:  # not a locked pipe: nothing to strand
            receive: _Receive = super()._make_recv_method(conn)
            return receive

        def receive_unlocked(timeout: float) -> tuple[bool, Any]:
            if not reader.poll(timeout):
                return False, None
            # Another idle process may have seen the same task: only one reads it, the
            # other finds the pipe empty again and goes back to waiting.
            if not lock.acquire(timeout=timeout):
                return False, None
            try:
                if not reader.poll(0):
                    return False, None
                return True, pickle_loads(reader.recv_bytes())
            finally:
                lock.release()

        return receive_unlocked


class _KillSafeBlockingPool(BlockingPool):  # type: ignore[misc]
    Worker = _LockOnlyToReadProcess


class KillSafeTaskPool(TaskPool):  # type: ignore[misc]
    """Celery's prefork pool, with the blocking variant replaced (see the module)."""

    BlockingPool = _KillSafeBlockingPool
