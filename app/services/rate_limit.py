"""The per-key submission rate limit, counted from the jobs table itself.

A key may create ``burst`` jobs within any window of ``burst / per_minute`` minutes
(defaults: 10 jobs per 20 s, so 30 a minute in the long run). The job rows are the
count, so every API process sees the same one with no extra table or Redis key; the
check runs under the per-owner lock that ``submit_job`` takes too (a PostgreSQL
advisory lock held until the submission commits), so concurrent submissions through
any number of API processes cannot all slip under the limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.core.security import caller_words
from app.db import queries
from app.db.models import utcnow
from app.schemas import as_utc
from app.services.errors import SubmitRateExceeded


def check_submit_rate(
    session: Session,
    owner: str,
    *,
    per_minute: float,
    burst: int,
    idempotency_key: str | None,
    now: datetime | None = None,
    find_earlier: Callable[[Session, str, str], object | None] = queries.find_by_idempotency_key,
) -> None:
    """Raise SubmitRateExceeded when ``owner`` may not create a job now.

    Leaves the transaction open with the owner locked, so the caller's insert is
    counted before anyone else's check. A replay of an Idempotency-Key creates nothing
    and is never limited (``find_earlier`` looks the key up: jobs by default, or sweeps).
    A sweep counts as one submission, however many jobs it creates.
    """
    if per_minute <= 0:
        return
    if idempotency_key and find_earlier(session, owner, idempotency_key):
        return  # a replay: no lock, so replays never queue behind each other
    queries.lock_owner(session, owner)
    now = now or utcnow()
    window = timedelta(minutes=burst / per_minute)
    recent = queries.recent_job_times(session, owner, since=now - window, limit=burst)
    if len(recent) < burst:
        return
    oldest = as_utc(recent[-1])
    assert oldest is not None
    retry_after_s = max(1, math.ceil((oldest + window - now).total_seconds()))
    session.rollback()
    raise SubmitRateExceeded(
        f"{caller_words(owner)} created {burst} jobs in the last {window.total_seconds():g} s, the "
        f"most this server allows ({per_minute:g} a minute, bursts of {burst}); "
        f"submit again in {retry_after_s} s",
        retry_after_s=retry_after_s,
    )
