"""Path, query and header parameters, each declared once with what the database accepts.

Routes use these types, so a job id that is not a UUID, text with NUL or a number past a
32-bit column is a 422 from validation and never reaches a query.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query
from pydantic import AfterValidator

from app.core.db_safe import INT32_MAX, JOB_ID_EXAMPLE, JOB_ID_PATTERN, NUL_FREE_PATTERN
from app.db.models import ARTIFACT_NAME_MAX_LENGTH, IDEMPOTENCY_KEY_MAX_LENGTH

CURSOR_MAX_LENGTH = 200
"""Far above any cursor this server issues (about 100 characters)."""

JobIdPath = Annotated[
    str,
    Path(
        pattern=JOB_ID_PATTERN,
        description="The job's id, as POST /api/v1/jobs returned it.",
        examples=[JOB_ID_EXAMPLE],
    ),
    AfterValidator(str.lower),  # ids are stored in lower case; a UUID is case-blind
]

ArtifactNamePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=ARTIFACT_NAME_MAX_LENGTH,
        pattern=NUL_FREE_PATTERN,
        description="An artifact name from the job's artifact list, e.g. report.json.",
    ),
]

EventsAfterQuery = Annotated[
    int,
    Query(ge=0, le=INT32_MAX, description="Only events with seq above this (next_after)."),
]

CursorQuery = Annotated[
    str | None,
    Query(
        max_length=CURSOR_MAX_LENGTH,
        pattern=NUL_FREE_PATTERN,
        description="next_cursor from the previous page.",
    ),
]

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=NUL_FREE_PATTERN,
        description="Any unique string, e.g. a UUID. Resending the same body with the "
        "same key returns the same job (200, Idempotent-Replayed: true) instead of "
        "creating another; the same key with a different body is refused (422).",
    ),
]

SweepIdPath = Annotated[
    str,
    Path(
        pattern=JOB_ID_PATTERN,
        description="The sweep's id, as POST /api/v1/sweeps returned it.",
        examples=[JOB_ID_EXAMPLE],
    ),
    AfterValidator(str.lower),
]
