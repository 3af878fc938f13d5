"""HTML of the pages, from jinja2 templates with autoescaping on (job text is user input)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from app.core.vocabulary import JobStatus
from app.reports.data import FIGURES, JobView, ReportData
from app.sweep_schemas import SweepOut

REPORT_REFRESH_S = 3
DASHBOARD_REFRESH_S = 5

_env = Environment(
    loader=PackageLoader("app.reports", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


@dataclass(frozen=True)
class FigureRef:
    name: str
    title: str
    src: str


def report_page(data: ReportData, figure_src: Callable[[str], str], *, export: bool = False) -> str:
    """The report page; ``figure_src(name)`` gives each figure's URL or data URI."""
    shown = [name for name in FIGURES if data.available(name)]
    return _render(
        "report.html",
        job=data.job,
        summary=data.job.summary,
        figures=[FigureRef(name, FIGURES[name], figure_src(name)) for name in shown],
        missing=[]
        if data.job.in_flight
        else [FIGURES[n] for n in FIGURES if n not in shown and data.wanted(n)],
        profile_rows=data.profile_rows(),
        study_rows=data.study_rows(),
        refresh_s=REPORT_REFRESH_S if data.job.in_flight and not export else None,
        export=export,
    )


def svg_data_uri(svg: bytes) -> str:
    """An SVG inlined as a data URI (an <img> each: their ids cannot clash in one page)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def dashboard_page(
    jobs: list[JobView],
    status: JobStatus | None,
    signed_in: bool,
    sweeps: Sequence[SweepOut] = (),
) -> str:
    filters = [(None, "all")] + [(s.value, s.value) for s in JobStatus]
    in_flight = any(job.in_flight for job in jobs) or any(
        not sweep.status.is_terminal for sweep in sweeps
    )
    refresh = DASHBOARD_REFRESH_S if in_flight else None
    return _render(
        "dashboard.html",
        jobs=jobs,
        sweeps=sweeps,
        status=status.value if status else None,
        filters=filters,
        signed_in=signed_in,
        refresh_s=refresh,
    )


def signin_page(message: str | None = None) -> str:
    return _render("signin.html", message=message)


def error_page(title: str, message: str) -> str:
    return _render("error.html", title=title, message=message)


def _render(template: str, **context: Any) -> str:
    context.setdefault("export", False)
    context.setdefault("refresh_s", None)
    return _env.get_template(template).render(**context)


def sweep_page(sweep: SweepOut, figure_src: str, *, export: bool = False) -> str:
    """The sweep's report page: robustness figures, the curve (or heat map), its points."""
    return _render(
        "sweep.html",
        sweep=sweep,
        figure_src=figure_src,
        fmt=lambda value: "—" if value is None else f"{value:.2f}",
        refresh_s=None if sweep.status.is_terminal or export else REPORT_REFRESH_S,
        export=export,
    )
