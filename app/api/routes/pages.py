"""HTML pages: the jobs dashboard at /, a report page per job, and the sign-in form.

Same ownership rules as the JSON API (another key's job is 404). A browser cannot send
headers, so these GET pages also read the API key from an HttpOnly cookie that the
sign-in form sets; on loopback under ``HWSCORE_AUTH=auto`` no key is needed at all.
Errors are HTML for a browser (Accept: text/html) and problem+json for other clients.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.api.deps import KEY_COOKIE, SessionDep, StateDep, ViewerDep
from app.api.errors import ApiProblem
from app.api.params import JobIdPath
from app.api.state import AppState
from app.core.security import LOCAL_OWNER, authenticate
from app.core.vocabulary import JobStatus
from app.db import queries, sweep_queries
from app.db.models import Job
from app.reports import render
from app.reports.data import FIGURES, ReportData, job_view, report_data
from app.reports.figures import render as render_figure
from app.schemas import API_PREFIX
from app.services import jobs as job_service
from app.services.errors import NotFound
from app.services.sweep_curve import sweep_out

router = APIRouter()
DASHBOARD_JOBS = 50
DASHBOARD_SWEEPS = 20
_HTML: dict[str, Any] = {"content": {"text/html": {}}}


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _need_key(request: Request) -> Response:
    if _wants_html(request):
        return HTMLResponse(render.signin_page(), status_code=401)
    raise ApiProblem(401, "this page needs an API key: send it as a header, or sign in at /")


def _not_found(request: Request, job_id: str) -> Response:
    message = f"job {job_id!r} not found; / lists your jobs"
    if _wants_html(request):
        return HTMLResponse(render.error_page("Not found", message), status_code=404)
    raise ApiProblem(404, message)


def _viewed_job(
    request: Request, session: Session, viewer: str | None, job_id: str
) -> Job | Response:
    """The viewer's job, or the page that says why it cannot be shown (no key, not found)."""
    if viewer is None:
        return _need_key(request)
    try:
        return job_service.get_owned_job(session, viewer, job_id)
    except NotFound:
        return _not_found(request, job_id)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    status: Annotated[JobStatus | None, Query()] = None,
) -> Response:
    """The caller's newest jobs with status, progress and verdict; refreshes while one runs."""
    if viewer is None:
        return HTMLResponse(render.signin_page(), status_code=401)
    rows = queries.list_jobs(session, viewer, status=status, limit=DASHBOARD_JOBS, before=None)
    signed_in = viewer != LOCAL_OWNER and KEY_COOKIE in request.cookies
    sweeps = sweep_queries.list_sweeps(session, viewer, limit=DASHBOARD_SWEEPS, before=None)
    children = sweep_queries.sweep_jobs(session, [sweep.id for sweep in sweeps])
    sweep_views = [sweep_out(sweep, children[sweep.id]) for sweep in sweeps]
    if status is not None:
        sweep_views = [sweep for sweep in sweep_views if sweep.status == status]
    jobs = [job_view(job) for job in rows]
    page = render.dashboard_page(jobs, status, signed_in, sweep_views)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.post("/session", include_in_schema=False)
async def sign_in(request: Request, state: StateDep) -> Response:
    """Check the form's API key and keep it in an HttpOnly cookie for the pages."""
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
        return HTMLResponse(render.error_page("Forbidden", "sign in from this site"), 403)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    secret = (form.get("key") or [""])[0].strip()
    if not secret or not await run_in_threadpool(_valid_key, state, secret):
        page = render.signin_page("That API key is not valid or has been revoked.")
        return HTMLResponse(page, status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        KEY_COOKIE,
        secret,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/session/clear", include_in_schema=False)
def sign_out() -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(KEY_COOKIE, path="/")
    return response


@router.get(
    f"{API_PREFIX}/jobs/{{job_id}}/report",
    tags=["jobs"],
    response_class=HTMLResponse,
    responses={200: {"description": "The report page.", **_HTML}, 401: {}, 404: {}},
)
def job_report(
    request: Request,
    job_id: JobIdPath,
    state: StateDep,
    session: SessionDep,
    viewer: ViewerDep,
    download: Annotated[
        bool, Query(description="One self-contained HTML file (figures inlined) to share.")
    ] = False,
) -> Response:
    """The report page of a job: verdict, figures and profile; a running job's refreshes."""
    job = _viewed_job(request, session, viewer, job_id)
    if isinstance(job, Response):
        return job
    data = report_data(session, job)
    if download:
        page = render.report_page(
            data, lambda name: render.svg_data_uri(_figure(state, data, name)), export=True
        )
        filename = f"hwscore-report-{job.id}.html"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return HTMLResponse(page, headers=headers)
    base = f"{API_PREFIX}/jobs/{job.id}/report/figures"
    page = render.report_page(data, lambda name: f"{base}/{name}.svg?rev={job.revision}")
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get(f"{API_PREFIX}/jobs/{{job_id}}/report/figures/{{name}}.svg", include_in_schema=False)
def job_report_figure(
    request: Request,
    job_id: JobIdPath,
    name: str,
    state: StateDep,
    session: SessionDep,
    viewer: ViewerDep,
) -> Response:
    """One figure of the report as SVG, cached per job revision."""
    job = _viewed_job(request, session, viewer, job_id)
    if isinstance(job, Response):
        return job
    data = report_data(session, job)
    if name not in FIGURES or not data.available(name):
        raise ApiProblem(404, f"job {job.id} has no figure {name!r}")
    return Response(
        _figure(state, data, name),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, max-age=3600"},
    )


def _figure(state: AppState, data: ReportData, name: str) -> bytes:
    key = (data.job.id, data.job.revision, name)
    return state.figures.get_or_render(key, lambda: render_figure(name, data))


def _valid_key(state: AppState, secret: str) -> bool:
    with state.database.session() as session:
        return authenticate(session, secret) is not None
