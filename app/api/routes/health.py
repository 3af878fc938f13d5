"""Liveness, readiness and Prometheus metrics (outside /api/v1, no API key needed)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.api.deps import StateDep
from app.api.errors import DATABASE_RETRY_AFTER_S, problem_response
from app.schemas import HealthOut, Problem

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)

UNREACHABLE = "unreachable"
"""A failed check says only this: the reason (host, exception) goes to the log."""


@router.get("/healthz", response_model=HealthOut)
def healthz() -> HealthOut:
    """The process is up (touches nothing else)."""
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=HealthOut,
    responses={503: {"model": Problem, "content": {"application/problem+json": {}}}},
)
def readyz(request: Request, state: StateDep) -> JSONResponse:
    """The database answers SELECT 1 and the broker accepts a connection."""
    checks: dict[str, str] = {}
    try:
        with state.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        logger.warning("readyz: database check failed: %s", exc)
        checks["database"] = UNREACHABLE
    try:
        state.dispatcher.check()
        checks["broker"] = "ok"
    except Exception as exc:
        logger.warning("readyz: broker check failed: %s", exc)
        checks["broker"] = UNREACHABLE
    failed = [name for name, outcome in checks.items() if outcome != "ok"]
    if failed:
        return problem_response(
            request,
            503,
            f"not ready: {' and '.join(failed)} unreachable; check HWSCORE_DATABASE_URL / "
            "HWSCORE_BROKER_URL and that those services are running",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
            extra={"checks": checks},
        )
    return JSONResponse({"status": "ok", "checks": checks})


@router.get("/metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    """Prometheus metrics: requests, and jobs read from the database."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
