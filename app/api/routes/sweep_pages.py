"""The sweep's report page (HTML): robustness figures, the curve or heat map, the points.

The same rules as the job report page (``app.api.routes.pages``): the owner only, a key
from a header or the sign-in cookie, HTML errors for browsers. The one figure is inlined
as SVG, rendered once per state of the sweep's jobs (the sum of their revisions).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.api.deps import SessionDep, StateDep, ViewerDep
from app.api.errors import ApiProblem
from app.api.params import SweepIdPath
from app.api.routes.pages import _need_key, _wants_html
from app.db import sweep_queries
from app.reports import render
from app.reports.sweep_figures import sweep_svg
from app.schemas import API_PREFIX
from app.services import sweeps as sweep_service
from app.services.errors import NotFound
from app.services.sweep_curve import sweep_out

router = APIRouter()


@router.get(
    f"{API_PREFIX}/sweeps/{{sweep_id}}/report",
    tags=["sweeps"],
    response_class=HTMLResponse,
    responses={200: {"description": "The report page.", "content": {"text/html": {}}}},
)
def sweep_report(
    request: Request,
    sweep_id: SweepIdPath,
    state: StateDep,
    session: SessionDep,
    viewer: ViewerDep,
    download: Annotated[bool, Query(description="One self-contained HTML file to share.")] = False,
) -> Response:
    """The report page of a sweep; an unfinished sweep's page refreshes itself."""
    if viewer is None:
        return _need_key(request)
    try:
        sweep = sweep_service.get_owned_sweep(session, viewer, sweep_id)
    except NotFound as exc:
        if _wants_html(request):
            return HTMLResponse(render.error_page("Not found", exc.message), status_code=404)
        raise ApiProblem(404, exc.message) from None
    jobs = sweep_queries.sweep_jobs(session, [sweep.id])[sweep.id]
    view = sweep_out(sweep, jobs)
    revision = sum(job.revision for job in jobs)
    svg = state.figures.get_or_render(
        (sweep.id, revision, "sweep"), lambda: sweep_svg(view.axes, view.curve)
    )
    page = render.sweep_page(view, render.svg_data_uri(svg), export=download)
    headers = {"Cache-Control": "no-store"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="hwscore-sweep-{sweep.id}.html"'
    return HTMLResponse(page, headers=headers)
