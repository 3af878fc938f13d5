"""Pydantic validation errors rewritten as sentences a person can act on.

"training.epochs must be between 1 and 100 (got 500)" rather than "Input should be less
than or equal to 100"; the structured entries keep loc and type for programs.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Sequence
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from app.core.db_safe import PATTERN_MEANINGS


def field_path(loc: Sequence[str | int]) -> str:
    """('training', 'epochs') -> 'training.epochs'; list indices as [i]."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _unwrap(annotation: Any) -> Any:
    """The model class inside Optional[...] / list[...], or the annotation itself."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            inner = _unwrap(arg)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return annotation


def _walk(model: type[BaseModel] | None, loc: Sequence[str | int]) -> FieldInfo | None:
    """The FieldInfo at ``loc`` below ``model``, if the path goes through models."""
    info: FieldInfo | None = None
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = _unwrap(info.annotation)
    return info


def _bounds(info: FieldInfo | None, ctx: dict[str, Any]) -> str:
    """'between 1 and 8', 'greater than 0 and at most 1', 'at least 1'..."""
    limits: dict[str, Any] = dict(ctx)
    for item in info.metadata if info else []:
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(item, getattr(annotated_types, name.capitalize())):
                limits[name] = getattr(item, name)
    if "ge" in limits and "le" in limits:
        return f"between {limits['ge']} and {limits['le']}"
    words = {"ge": "at least", "gt": "greater than", "le": "at most", "lt": "less than"}
    return " and ".join(f"{words[k]} {limits[k]}" for k in ("ge", "gt", "le", "lt") if k in limits)


_BOUND_TYPES = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_TYPE_WORDS = {
    "int_type": "a whole number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
}
"""Strict types: nothing is coerced, so the message says what to send instead."""


def _shown(value: Any) -> str:
    """A request value as JSON would spell it (true, "yes", Infinity), kept short."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_error(
    error: dict[str, Any],
    model: type[BaseModel] | None,
    walk_loc: Sequence[str | int],
    name: str,
    field: FieldInfo | None = None,
) -> str:
    """One sentence for one pydantic error at ``name``.

    ``walk_loc`` leads from ``model`` to the field; or ``field`` is the field itself.
    """
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    subject = name or "the request body"
    if kind in _BOUND_TYPES:
        got = f" (got {error['input']})" if "input" in error else ""
        return f"{subject} must be {_bounds(field or _walk(model, walk_loc), ctx)}{got}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in PATTERN_MEANINGS:
        return f"{subject} {PATTERN_MEANINGS[ctx['pattern']]}"
    if kind == "missing":
        return f"{subject} is required"
    if kind in _TYPE_WORDS and "input" in error:
        return f"{subject} must be {_TYPE_WORDS[kind]}, not {_shown(error['input'])}"
    if kind == "extra_forbidden":
        parent = _walk(model, walk_loc[:-1]) if len(walk_loc) > 1 else None
        parent_model = _unwrap(parent.annotation) if parent else model
        if isinstance(parent_model, type) and issubclass(parent_model, BaseModel):
            valid = ", ".join(parent_model.model_fields)
            return f"{subject} is not a known field; valid fields here: {valid}"
        return f"{subject} is not a known field"
    if kind in {"literal_error", "enum"}:
        return f"{subject} must be one of {ctx.get('expected')}"
    if kind == "too_long":
        return f"{subject} may have at most {ctx.get('max_length')} items"
    if kind == "json_invalid":
        return f"the request body is not valid JSON: {ctx.get('error', error.get('msg'))}"
    message = str(ctx["error"]) if kind == "value_error" and "error" in ctx else error.get("msg")
    return f"{name}: {message}" if name else str(message)


def describe_errors(
    errors: Sequence[Any],
    model: type[BaseModel] | None = None,
    *,
    prefix: Sequence[str | int] = (),
    skip: Sequence[str | int] = (),
    field: FieldInfo | None = None,
) -> list[dict[str, Any]]:
    """Problem ``errors`` entries (loc, field, message, type) from pydantic errors.

    ``prefix`` is put before each error's loc (where the validated part sits in the
    request); ``skip`` is the leading part of each loc that is not a field of ``model``;
    ``field`` describes the field itself when no model leads to it (a query parameter).
    """
    described = []
    for error in errors:
        loc = list(error.get("loc", ()))
        full = [*prefix, *loc]
        walk = loc[len(skip) :] if loc[: len(skip)] == list(skip) else loc
        name = field_path([part for part in full if part != "body"])
        if error.get("type") == "json_invalid":
            name = ""
        if full[:1] in (["query"], ["header"], ["path"], ["cookie"]) and len(full) > 1:
            name = f"{field_path(full[1:])} ({full[0]} parameter)"
        described.append(
            {
                "loc": full,
                "field": name,
                "message": describe_error(error, model, walk, name, field),
                "type": error.get("type", "value_error"),
            }
        )
    return described


def issue(loc: Sequence[str | int], message: str, kind: str) -> dict[str, Any]:
    """A hand-made entry of a problem's ``errors`` list, shaped like describe_errors'."""
    name = field_path([part for part in loc if part != "body"])
    if loc[:1] in (["query"], ["header"], ["path"], ["cookie"]) and len(loc) > 1:
        name = f"{field_path(loc[1:])} ({loc[0]} parameter)"
    return {"loc": list(loc), "field": name, "message": message, "type": kind}
