"""The FastAPI application: ``create_app(settings)`` builds one, ``app`` is uvicorn's.

Building the application connects to nothing (the database engine and the broker
connection are made on first use), and nothing here imports torch. The schema is
migrated by whoever starts the service (``hwscore serve``), not by the application.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from app.api.deps import get_owner
from app.api.docs import install_docs
from app.api.errors import install_error_handlers
from app.api.middleware import (
    BodySizeLimitMiddleware,
    MetricsMiddleware,
    PageSecurityMiddleware,
)
from app.api.openapi import install_openapi
from app.api.routes import (
    datasets,
    hardware_profiles,
    health,
    jobs,
    models,
    pages,
    sweep_pages,
    sweeps,
)
from app.api.state import AppState
from app.core.config import Settings, get_settings
from app.schemas import API_PREFIX, JobCreate
from app.sweep_schemas import SweepCreate

MULTIPART_OVERHEAD_BYTES = 1_000_000
"""Room for the upload form's other fields and boundaries above the weights file."""

DESCRIPTION = """\
Score how well a neural network keeps its accuracy on non-ideal neuromorphic crossbar
hardware, and train it hardware-aware so that it does.

Submit a study with `POST /api/v1/jobs` (try the example "Quick: about 15 seconds"),
follow it with `GET /api/v1/jobs/{id}` (or its events), then open its report page
`GET /api/v1/jobs/{id}/report` or read `GET /api/v1/jobs/{id}/result`. The dashboard
at [/](/) lists your jobs. Errors are `application/problem+json`.
When authentication is on, send an API key as `Authorization: Bearer <key>` or `X-API-Key`.
"""


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    """An application for these settings (default: from HWSCORE_* environment variables)."""
    state = AppState(settings or get_settings())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.start_recovery_sweep()
        yield
        state.close()

    app = FastAPI(
        title="hwscore",
        version="0.1.0",
        description=DESCRIPTION,
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
        docs_url=None,  # served from local files by install_docs: no CDN
        redoc_url=None,
    )
    app.state.hwscore = state

    # Routers carry their full path, so route templates (metrics labels) are complete.
    for resource in (jobs, sweeps, models, hardware_profiles, datasets):
        app.include_router(resource.router, dependencies=[Depends(get_owner)])
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(sweep_pages.router)
    install_docs(app)

    install_error_handlers(
        app, body_model=JobCreate, body_models={f"{API_PREFIX}/sweeps": SweepCreate}
    )
    install_openapi(app)
    # Added last = outermost: metrics see every answer, 413s included.
    settings = state.settings
    upload_limit = max(
        settings.max_model_bytes + MULTIPART_OVERHEAD_BYTES, settings.max_request_bytes
    )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        routes={models.MODELS_PATH: (upload_limit, "HWSCORE_MAX_MODEL_BYTES")},
    )
    app.add_middleware(PageSecurityMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


app = create_app()
