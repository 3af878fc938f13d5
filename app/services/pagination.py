"""Opaque keyset cursors for newest-first job lists: (created_at, id) of the last item."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime

from app.core.db_safe import JOB_ID_PATTERN
from app.services.errors import InvalidRequest
from app.services.messages import issue

_BAD_CURSOR = (
    "cursor is not one this server issued; pass next_cursor from the previous page unchanged"
)


def encode_cursor(created_at: datetime, job_id: str) -> str:
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    raw = json.dumps([created_at.isoformat(), job_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, job_id = json.loads(raw)
        created_at = datetime.fromisoformat(moment)
        if not isinstance(job_id, str) or not re.fullmatch(JOB_ID_PATTERN, job_id):
            raise ValueError("not a cursor")  # also keeps NUL and junk away from SQL
        if created_at.tzinfo is None:
            raise ValueError("not a cursor")
        created_at = created_at.astimezone(UTC)  # year 1 at +01:00 overflows here
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError):
        error = issue(["query", "cursor"], _BAD_CURSOR, "invalid_cursor")
        raise InvalidRequest(_BAD_CURSOR, [error]) from None
    return created_at, job_id.lower()
