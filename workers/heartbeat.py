"""A worker's proof of life for the job it runs, independent of the engine's progress.

The engine reports progress between batches, but one step can be long (a Monte Carlo
pass over many chips, a slow first batch); the recovery sweep must not mistake a busy
worker for a dead one. A thread stamps the job's heartbeat every interval for as long as
the job is ours; when the process dies, the stamps stop and the sweep takes the job back.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from app.db.job_store import Claim, JobStore

log = logging.getLogger(__name__)


class Heartbeat:
    """``with Heartbeat(store, claim, interval_s):`` stamps the job while the block runs."""

    def __init__(self, store: JobStore, claim: Claim, interval_s: float) -> None:
        self._store = store
        self._claim = claim
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-{claim.job_id[:8]}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                if not self._store.heartbeat(self._claim):
                    return  # taken back or finished: the engine stops at its next check
            except Exception:  # a database blip: the next beat tries again
                log.warning("job %s: heartbeat not written", self._claim.job_id, exc_info=True)
