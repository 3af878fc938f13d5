"""The engine's two callbacks for a job: progress into the database, cancel checks from it.

The engine calls ``on_progress`` after every batch and ``should_cancel`` between batches;
both would hammer the database if every call reached it. Milestones (a phase starts, an
epoch or annealing stage ends) are always written, with an event row; batch and chip
progress at most once per ``progress_interval_s``; the job status is read at most once
per ``cancel_interval_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.db.job_store import Claim, JobStore
from hwmodels.progress import ProgressEvent

# Event kinds that mark a milestone a user wants to see in the job's event list.
MILESTONES = frozenset({"phase", "epoch", "stage"})


class JobReporter:
    """``on_progress`` and ``should_cancel`` for one claimed job."""

    def __init__(
        self,
        store: JobStore,
        claim: Claim,
        *,
        progress_interval_s: float = 1.0,
        cancel_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._claim = claim
        self._progress_interval_s = progress_interval_s
        self._cancel_interval_s = cancel_interval_s
        self._clock = clock
        self._last_progress_write = float("-inf")
        self._last_cancel_check = float("-inf")
        self._stop = False
        self._epoch: int | None = None

    def on_progress(self, event: ProgressEvent) -> None:
        """Write the event's progress (throttled unless it is a milestone)."""
        if event.epoch is not None:
            self._epoch = event.epoch
        now = self._clock()
        milestone = event.kind in MILESTONES
        if not milestone and now - self._last_progress_write < self._progress_interval_s:
            return
        self._last_progress_write = now
        still_ours = self._store.record_progress(
            self._claim,
            phase=event.phase,
            fraction=event.fraction,
            epoch=self._epoch,
            event=(event.kind, event.to_dict()) if milestone else None,
        )
        if not still_ours:
            self._stop = True

    def should_cancel(self) -> bool:
        """True once a cancel was requested or the job stopped being ours."""
        if self._stop:
            return True
        now = self._clock()
        if now - self._last_cancel_check < self._cancel_interval_s:
            return False
        self._last_cancel_check = now
        self._stop = self._store.should_stop(self._claim)
        return self._stop
