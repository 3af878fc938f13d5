"""What the database can store and compare, declared once for every request value.

PostgreSQL refuses text holding NUL (U+0000) and UTF-8 cannot encode an unpaired
surrogate; an integer column holds 32 bits. A request value outside these reaches the
database only as a 500, so the API refuses it first with a 4xx that says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

INT32_MAX = 2**31 - 1
"""The largest value of an Integer column (job_events.seq, artifacts.size...)."""

NUL_FREE_PATTERN = r"^[^\x00]*$"
"""Any text without NUL; what a path, query or header string must match."""

JOB_ID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
"""Job ids are UUIDs (``str(uuid.uuid4())``); anything else cannot name a job."""

JOB_ID_EXAMPLE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"

PATTERN_MEANINGS = {
    NUL_FREE_PATTERN: "must not contain NUL characters (\\u0000)",
    JOB_ID_PATTERN: f"must be a job id as the API returned it, e.g. {JOB_ID_EXAMPLE}",
}
"""What failing each pattern means, in words, for validation messages."""


def is_storable_text(text: str) -> bool:
    """True unless ``text`` holds NUL or an unpaired surrogate (JSON allows both)."""
    return "\x00" not in text and not any("\ud800" <= char <= "\udfff" for char in text)


def unstorable_strings(value: Any, path: str = "") -> Iterator[str]:
    """Dotted paths of every string (keys included) inside ``value`` that cannot be stored."""
    if isinstance(value, str):
        if not is_storable_text(value):
            yield path or "the request body"
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and not is_storable_text(key):
                yield f"{path or 'the request body'} (a key)"
            else:
                yield from unstorable_strings(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unstorable_strings(item, f"{path}[{index}]")
