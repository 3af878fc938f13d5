"""Jobs: submit a study, follow it, cancel it, fetch its result and artifacts."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from app.api.deps import OwnerDep, SessionDep, StateDep
from app.api.errors import ApiProblem
from app.api.examples import JOB_CREATE_EXAMPLES, JOB_QUEUED_EXAMPLE, JOB_SUCCEEDED_EXAMPLE
from app.api.params import (
    ArtifactNamePath,
    CursorQuery,
    EventsAfterQuery,
    IdempotencyKeyHeader,
    JobIdPath,
)
from app.core.vocabulary import JobStatus
from app.db import queries
from app.schemas import (
    API_PREFIX,
    ArtifactList,
    ArtifactOut,
    EventOut,
    EventPage,
    JobCreate,
    JobOut,
    JobPage,
    Problem,
)
from app.services import jobs as job_service
from app.services.pagination import decode_cursor, encode_cursor
from app.services.rate_limit import check_submit_rate
from hwmodels.report import RobustnessReport

router = APIRouter(prefix=f"{API_PREFIX}/jobs", tags=["jobs"])


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        304: "Not modified: the job is unchanged since the ETag you sent.",
        401: "No valid API key (only when authentication is on).",
        404: "No such job for this API key.",
        409: "The job is not in a state that allows this.",
        413: "The request body is too large.",
        422: "The request is invalid; `errors` says where and why.",
        429: "Too many unfinished jobs, or submissions too fast, for this API key; "
        "see Retry-After.",
        503: "The database is unreachable (see Retry-After), or the task broker is "
        "(the job was marked failed).",
    }
    responses: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"description": described[code]}
        if code != 304:
            entry["model"] = Problem
            entry["content"] = {"application/problem+json": {}}
        responses[code] = entry
    return responses


def _etag(job_id: str, revision: int) -> str:
    return '"' + hashlib.sha256(f"{job_id}:{revision}".encode()).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    responses={
        200: {"model": JobOut, "description": "Replay: this Idempotency-Key made this job."},
        202: {"content": {"application/json": {"example": JOB_QUEUED_EXAMPLE}}},
        **_problems(401, 413, 422, 429, 503),
    },
)
def create_job(
    request: Request,
    response: Response,
    state: StateDep,
    session: SessionDep,
    owner: OwnerDep,
    body: Annotated[JobCreate, Body(openapi_examples=JOB_CREATE_EXAMPLES)],
    idempotency_key: IdempotencyKeyHeader = None,
) -> JobOut:
    """Submit a study; identical finished work is reused unless fresh=true."""
    check_submit_rate(
        session,
        owner,
        per_minute=state.settings.submit_rate_per_minute,
        burst=state.settings.submit_burst,
        idempotency_key=idempotency_key,
    )
    submission = job_service.submit_job(
        session,
        state.dispatcher,
        owner=owner,
        request=body,
        idempotency_key=idempotency_key,
        max_in_flight=state.settings.max_jobs_in_flight_per_key,
        max_cost=state.settings.resolved_max_job_cost(),
    )
    job = submission.job
    response.headers["Location"] = f"{API_PREFIX}/jobs/{job.id}"
    response.headers["ETag"] = _etag(job.id, job.revision)
    if not submission.created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return JobOut.from_job(job)


@router.get("", response_model=JobPage, responses=_problems(401, 422))
def list_jobs(
    session: SessionDep,
    owner: OwnerDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page.")] = 20,
    cursor: CursorQuery = None,
) -> JobPage:
    """List your jobs, newest first, a page at a time."""
    before = decode_cursor(cursor) if cursor else None
    rows = queries.list_jobs(session, owner, status=status, limit=limit + 1, before=before)
    page = rows[:limit]
    next_cursor = (
        encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit and page else None
    )
    return JobPage(items=[JobOut.from_job(job) for job in page], next_cursor=next_cursor)


@router.get(
    "/{job_id}",
    response_model=JobOut,
    responses={
        200: {"content": {"application/json": {"example": JOB_SUCCEEDED_EXAMPLE}}},
        **_problems(304, 401, 404),
    },
)
def get_job(
    job_id: JobIdPath,
    session: SessionDep,
    owner: OwnerDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Status, progress, timestamps, and the result summary or error of one job."""
    job = job_service.get_owned_job(session, owner, job_id)
    etag = _etag(job.id, job.revision)
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(
        JobOut.from_job(job).model_dump(mode="json"),
        headers={"ETag": etag, "Cache-Control": "no-cache"},
    )


@router.post(
    "/{job_id}/cancel", status_code=202, response_model=JobOut, responses=_problems(401, 404, 409)
)
def cancel_job(job_id: JobIdPath, session: SessionDep, owner: OwnerDep) -> JobOut:
    """Cancel a queued (at once) or running (at the worker's next check) job."""
    return JobOut.from_job(job_service.cancel_job(session, owner, job_id))


@router.get("/{job_id}/events", response_model=EventPage, responses=_problems(401, 404, 422))
def list_job_events(
    job_id: JobIdPath,
    session: SessionDep,
    owner: OwnerDep,
    after: EventsAfterQuery = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Events per call.")] = 200,
) -> EventPage:
    """Progress events in order; poll with ?after=<next_after> for new ones."""
    job = job_service.get_owned_job(session, owner, job_id)
    events = queries.list_events(session, job.id, after=after, limit=limit)
    return EventPage(
        events=[EventOut.from_event(event) for event in events],
        next_after=events[-1].seq if events else (after or None),
    )


@router.get(
    "/{job_id}/result",
    response_model=None,
    responses={200: {"model": RobustnessReport}, **_problems(401, 404, 409)},
)
def get_job_result(job_id: JobIdPath, session: SessionDep, owner: OwnerDep) -> JSONResponse:
    """The full robustness report of a succeeded job."""
    job = job_service.get_owned_job(session, owner, job_id)
    job_service.require_succeeded(job, "result")
    return JSONResponse(job.result)


@router.get("/{job_id}/artifacts", response_model=ArtifactList, responses=_problems(401, 404, 409))
def list_job_artifacts(job_id: JobIdPath, session: SessionDep, owner: OwnerDep) -> ArtifactList:
    """The files a succeeded job produced, with sizes, hashes and download URLs."""
    job = job_service.get_owned_job(session, owner, job_id)
    job_service.require_succeeded(job, "artifacts")
    artifacts = queries.list_job_artifacts(session, job)
    return ArtifactList(items=[ArtifactOut.from_artifact(job.id, a) for a in artifacts])


@router.get(
    "/{job_id}/artifacts/{name}",
    response_class=Response,
    responses={
        200: {"description": "The file.", "content": {"application/octet-stream": {}}},
        **_problems(401, 404, 409),
    },
)
def download_job_artifact(
    job_id: JobIdPath, name: ArtifactNamePath, session: SessionDep, owner: OwnerDep
) -> Response:
    """Download one artifact of a succeeded job."""
    job = job_service.get_owned_job(session, owner, job_id)
    job_service.require_succeeded(job, "artifacts")
    artifact = queries.find_job_artifact(session, job, name)
    if artifact is None:
        names = ", ".join(a.name for a in queries.list_job_artifacts(session, job))
        raise ApiProblem(404, f"job {job.id} has no artifact {name!r}; it has: {names or 'none'}")
    return Response(
        artifact.content,
        media_type=artifact.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{artifact.name}"',
            "ETag": f'"{artifact.sha256}"',
        },
    )
