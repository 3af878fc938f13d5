"""Every error as application/problem+json (RFC 9457), with messages a person can act on.

Validation errors are rewritten (``app.services.messages``) into sentences that name the
field and its limits, and keep the structured list in ``errors`` for programs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.services.errors import (
    InvalidRequest,
    NotFound,
    ServiceError,
    StateConflict,
    SubmitRateExceeded,
    TooManyJobsInFlight,
    UnsupportedUpload,
    UploadTooLarge,
)
from app.services.messages import describe_errors, issue

PROBLEM_MEDIA_TYPE = "application/problem+json"
DATABASE_RETRY_AFTER_S = 5
"""What a client is told to wait while the database is unreachable (restarts take seconds)."""
DATABASE_UNAVAILABLE = (
    "the database is unreachable right now; nothing was changed unless an earlier answer "
    "said so. Retry after the time in Retry-After (GET /readyz tells when it is back)"
)
UNEXPECTED = "an unexpected error occurred; the server log has the details"
logger = logging.getLogger(__name__)


class ApiProblem(Exception):
    """Raise from a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": "urn:hwscore:problem:" + phrase.lower().replace(" ", "-").replace("'", ""),
        "title": phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


# --- handlers -------------------------------------------------------------------------


def _summary(errors: list[dict[str, Any]]) -> str:
    messages = [str(error["message"]) for error in errors]
    if len(messages) == 1:
        return messages[0]
    return f"{len(messages)} problems in the request: " + "; ".join(messages)


_SERVICE_STATUS: list[tuple[type[ServiceError], int]] = [
    (NotFound, 404),
    (InvalidRequest, 422),
    (StateConflict, 409),
    (TooManyJobsInFlight, 429),
    (SubmitRateExceeded, 429),
    (UnsupportedUpload, 415),
    (UploadTooLarge, 413),
]


def is_database_unavailable(exc: BaseException) -> bool:
    """A lost or refused connection (or an exhausted pool), as opposed to a bad query."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _parameter(request: Request, loc: list[Any]) -> FieldInfo | None:
    """The declared query/header/path parameter an error is about, for its limits."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None or len(loc) < 2:
        return None
    fields = {
        "query": dependant.query_params,
        "header": dependant.header_params,
        "path": dependant.path_params,
    }.get(loc[0], [])
    return next((f.field_info for f in fields if f.alias == loc[1]), None)


def install_error_handlers(
    app: FastAPI,
    body_model: type[BaseModel] | None = None,
    body_models: dict[str, type[BaseModel]] | None = None,
) -> None:
    """Answer every error, FastAPI's own included, with a problem document.

    ``body_models``: the request body's model by path prefix, where it is not
    ``body_model`` (so a sweep's errors are described by the sweep's fields).
    """

    def model_for(request: Request) -> type[BaseModel] | None:
        for prefix, model in (body_models or {}).items():
            if request.url.path.startswith(prefix):
                return model
        return body_model

    @app.exception_handler(ApiProblem)
    async def _api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(
            request,
            exc.status,
            exc.detail,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        status = next(code for kind, code in _SERVICE_STATUS if isinstance(exc, kind))
        retry_after_s = getattr(exc, "retry_after_s", None)
        headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
        errors = exc.errors if isinstance(exc, InvalidRequest) and exc.errors else None
        if status == 422 and errors is None:
            errors = []
        if isinstance(exc, UnsupportedUpload):
            errors = [issue(["body", "weights"], exc.message, exc.code)]
        return problem_response(request, status, exc.message, errors=errors, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for error in exc.errors():
            loc = list(error.get("loc", ()))
            if loc[:1] == ["body"]:
                errors.extend(describe_errors([error], model_for(request), skip=("body",)))
            else:
                field = _parameter(request, loc)
                errors.extend(describe_errors([error], field=field))
        return problem_response(request, 422, _summary(errors), errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = (
                f"no such endpoint: {request.url.path}; the API lives under /api/v1 (see /docs)"
            )
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            detail = f"{request.method} is not allowed on {request.url.path}" + (
                f"; allowed: {allowed}" if allowed else ""
            )
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(request, exc.status_code, detail, headers=headers)

    # Handled here, not by the catch-all below: Starlette re-raises what reaches the
    # catch-all, and uvicorn then drops the client's keep-alive connection.
    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not is_database_unavailable(exc):
            logger.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
            return problem_response(request, 500, UNEXPECTED)
        logger.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER_S)}
        return problem_response(request, 503, DATABASE_UNAVAILABLE, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, UNEXPECTED)
