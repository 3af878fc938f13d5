"""The recovery sweep: nothing a dead worker, a lost message or an outage leaves behind stays.

Every process that can send tasks (each API process and each worker's main process)
runs ``RecoverySweeper.run_in_background``; a lease in the database lets one of them
sweep at a time, and another takes over within two intervals if it dies. One sweep:

1. jobs whose worker stopped heart-beating are taken back (``app.db.recovery``):
   queued again, cancelled if a cancel was pending, or failed ``worker_lost`` after the
   last allowed attempt;
2. queued jobs with no message in the broker (never sent: the broker was down at
   submit, the API died before sending, a job was handed back; or lost: the broker
   restarted without persistence) get a fresh message.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.db import recovery
from app.db.models import utcnow
from app.services.dispatch import Dispatcher

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did, for logs and tests."""

    taken_back: recovery.TakenBack = field(default_factory=recovery.TakenBack)
    sent: list[str] = field(default_factory=list)
    broker_error: str | None = None


class RecoverySweeper:
    """Takes back stale jobs and sends lost messages, once per interval per database."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], dispatcher: Dispatcher
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._dispatcher = dispatcher
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"[:200]

    def sweep(self) -> SweepReport | None:
        """One sweep, or None when another process holds the sweeper's lease."""
        ttl_s = 2 * self._settings.sweep_interval_s
        with self._sessions() as session:
            if not recovery.take_lease(session, recovery.RECOVERY_LEASE, self.holder, ttl_s):
                return None
            report = SweepReport(
                taken_back=recovery.take_back_stale_jobs(
                    session,
                    stale_after_s=self._settings.stale_after_s,
                    max_attempts=self._settings.max_attempts,
                )
            )
            try:
                self._send_missing(session, report)
            except Exception as exc:  # the broker is down: the next sweep tries again
                report.broker_error = type(exc).__name__
        self._log(report)
        return report

    def _send_missing(self, session: Session, report: SweepReport) -> None:
        in_broker = self._dispatcher.queued_messages()
        # A message sent since the last sweep may be in a worker's hands, not yet claimed.
        sent_before = utcnow() - timedelta(seconds=self._settings.sweep_interval_s)
        for job_id in recovery.jobs_to_send(session, in_broker=in_broker, sent_before=sent_before):
            self._dispatcher.send_job(job_id)
            recovery.mark_dispatched(session, job_id)
            report.sent.append(job_id)

    def _log(self, report: SweepReport) -> None:
        taken = report.taken_back
        if taken:
            log.warning(
                "recovery: worker lost; requeued %s, failed (worker_lost) %s, cancelled %s",
                taken.requeued,
                taken.lost,
                taken.cancelled,
            )
        if report.sent:
            log.info("recovery: sent messages for queued jobs %s", report.sent)
        if report.broker_error:
            log.warning("recovery: broker unreachable (%s); will retry", report.broker_error)

    def run(self, stop: threading.Event) -> None:
        """Sweep now and then every interval until ``stop`` is set; never raises."""
        while not stop.is_set():
            try:
                self.sweep()
            except Exception:  # the database is down: log once per interval, keep going
                log.warning(
                    "recovery: sweep failed; retrying in %.0f s",
                    self._settings.sweep_interval_s,
                    exc_info=True,
                )
            stop.wait(self._settings.sweep_interval_s)

    def run_in_background(self) -> threading.Event:
        """Start ``run`` in a daemon thread; set the returned event to stop it."""
        stop = threading.Event()
        threading.Thread(
            target=self.run, args=(stop,), name="hwscore-recovery", daemon=True
        ).start()
        return stop
