"""Sweeps: submit a robustness sweep, follow it, cancel it, export its curve.

The keys, ownership, idempotency, limits and errors are the jobs' own (the service
reuses the job code paths); only the shapes of the bodies differ.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from app.api.deps import OwnerDep, SessionDep, StateDep
from app.api.params import CursorQuery, IdempotencyKeyHeader, SweepIdPath
from app.api.routes.jobs import _problems
from app.db import sweep_queries
from app.schemas import API_PREFIX
from app.services import sweeps as sweep_service
from app.services.pagination import decode_cursor, encode_cursor
from app.services.rate_limit import check_submit_rate
from app.services.sweep_curve import curve_csv, sweep_out
from app.sweep_schemas import SweepCreate, SweepOut, SweepPage

router = APIRouter(prefix=f"{API_PREFIX}/sweeps", tags=["sweeps"])

SWEEP_EXAMPLE = {
    "summary": "Evaluate-mode sweep over programming noise (small: about 20 s on 2 cores)",
    "value": {
        "mode": "evaluate",
        "study": {
            "dataset": "mnist",
            "network": {"hidden": [32]},
            "profile": {"preset": "rram-4bit"},
            "training": {"epochs": 1, "hw_epochs": 1, "train_samples": 5000, "batch_size": 32},
            "evaluation": {"chips": 5, "test_samples": 1000},
        },
        "axes": [{"parameter": "programming_noise", "values": [0.0, 0.03, 0.06, 0.1]}],
    },
}


def _view(session: SessionDep, sweep_id: str, owner: str) -> SweepOut:
    sweep = sweep_service.get_owned_sweep(session, owner, sweep_id)
    return sweep_out(sweep, sweep_queries.sweep_jobs(session, [sweep.id])[sweep.id])


@router.post(
    "",
    status_code=202,
    response_model=SweepOut,
    responses={
        200: {"model": SweepOut, "description": "Replay: this Idempotency-Key made this sweep."},
        **_problems(401, 413, 422, 429, 503),
    },
)
def create_sweep(
    response: Response,
    state: StateDep,
    session: SessionDep,
    owner: OwnerDep,
    body: Annotated[SweepCreate, Body(openapi_examples={"small": SWEEP_EXAMPLE})],
    idempotency_key: IdempotencyKeyHeader = None,
) -> SweepOut:
    """Submit a sweep: one job per point (retrain) or one evaluation job (evaluate)."""
    check_submit_rate(
        session,
        owner,
        per_minute=state.settings.submit_rate_per_minute,
        burst=state.settings.submit_burst,
        idempotency_key=idempotency_key,
        find_earlier=sweep_queries.find_sweep_by_idempotency_key,
    )
    submission = sweep_service.submit_sweep(
        session,
        state.dispatcher,
        owner=owner,
        request=body,
        idempotency_key=idempotency_key,
        max_in_flight=state.settings.max_jobs_in_flight_per_key,
        max_cost=state.settings.resolved_max_job_cost(),
    )
    sweep = submission.sweep
    response.headers["Location"] = f"{API_PREFIX}/sweeps/{sweep.id}"
    if not submission.created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return _view(session, sweep.id, owner)


@router.get("", response_model=SweepPage, responses=_problems(401, 422))
def list_sweeps(
    session: SessionDep,
    owner: OwnerDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Sweeps per page.")] = 20,
    cursor: CursorQuery = None,
) -> SweepPage:
    """List your sweeps, newest first, a page at a time."""
    before = decode_cursor(cursor) if cursor else None
    rows = sweep_queries.list_sweeps(session, owner, limit=limit + 1, before=before)
    page = rows[:limit]
    jobs = sweep_queries.sweep_jobs(session, [sweep.id for sweep in page])
    next_cursor = (
        encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit and page else None
    )
    return SweepPage(items=[sweep_out(s, jobs[s.id]) for s in page], next_cursor=next_cursor)


@router.get("/{sweep_id}", response_model=SweepOut, responses=_problems(401, 404))
def get_sweep(sweep_id: SweepIdPath, session: SessionDep, owner: OwnerDep) -> SweepOut:
    """Status, progress, the curve so far and, once finished, the robustness figures."""
    return _view(session, sweep_id, owner)


@router.post(
    "/{sweep_id}/cancel",
    status_code=202,
    response_model=SweepOut,
    responses=_problems(401, 404, 409),
)
def cancel_sweep(sweep_id: SweepIdPath, session: SessionDep, owner: OwnerDep) -> SweepOut:
    """Cancel every unfinished job of the sweep (queued at once, running at its next check)."""
    sweep = sweep_service.cancel_sweep(session, owner, sweep_id)
    return _view(session, sweep.id, owner)


@router.get(
    "/{sweep_id}/curve.csv",
    response_class=Response,
    responses={
        200: {"description": "The curve, one row per point.", "content": {"text/csv": {}}},
        **_problems(401, 404),
    },
)
def download_curve(sweep_id: SweepIdPath, session: SessionDep, owner: OwnerDep) -> Response:
    """The curve as CSV: swept values, then float, naive and hardware-aware accuracy (%)."""
    view = _view(session, sweep_id, owner)
    return Response(
        curve_csv(view.axes, view.curve),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="sweep-{view.id}.csv"'},
    )
