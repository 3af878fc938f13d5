"""The OpenAPI document, told the truth about errors: every one is problem+json.

FastAPI documents its automatic 422 as ``application/json`` with its own
``HTTPValidationError`` body, but this API answers every error, 422 included, as an
RFC 9457 ``application/problem+json`` document (``app.api.errors``). Clients and schema
checkers (schemathesis) read this document, so it must say what really comes back.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.api.errors import PROBLEM_MEDIA_TYPE
from app.schemas import Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}


def describe_errors_as_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx/5xx response of every operation as application/problem+json (in place)."""
    for path in document.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                if str(code)[:1] in {"4", "5"}:
                    response["content"] = _problem_content()
                    if str(code) == "422":
                        response["description"] = "The request is invalid; `errors` says why."
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_ERROR_SCHEMAS:
        schemas.pop(name, None)
    if "Problem" not in schemas:
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    return document


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and /openapi.json) build the corrected document once."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_errors_as_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
