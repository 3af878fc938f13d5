"""The sweep report's figure: accuracy against the swept parameter, or a heat map of two.

Drawn on the server like the job report's figures (matplotlib Figure, no pyplot), from
the curve the API derives from the sweep's jobs; accuracies in percent.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from app.reports import figures as _figures  # noqa: F401  (sets the Agg backend and rcParams)
from app.reports.style import COLORS, new_figure
from app.services.sweep_curve import WITHIN_PP
from app.sweep_schemas import CurvePoint
from hwmodels.sweep_spec import PARAMETERS


def sweep_svg(axes: list[dict[str, Any]], points: Sequence[CurvePoint]) -> bytes:
    """The figure for one or two axes, as SVG bytes."""
    fig = draw_curve(axes, points) if len(axes) == 1 else draw_heatmap(axes, points)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buffer.getvalue()


def draw_curve(axes: list[dict[str, Any]], points: Sequence[CurvePoint]) -> Figure:
    """Float, naive and hardware-aware mean accuracy with ±1 std (Monte Carlo) bars."""
    parameter = axes[0]["parameter"]
    info = PARAMETERS[parameter]
    measured = sorted(
        (p for p in points if p.float_pct is not None), key=lambda p: p.values[parameter]
    )
    fig, ax = new_figure(6.6, 3.8)
    x = np.array([p.values[parameter] for p in measured], dtype=float)
    if measured:
        float_pct = np.array([p.float_pct for p in measured], dtype=float)
        ax.plot(x, float_pct, "o-", color=COLORS["float"], label="float")
        ax.plot(
            x, float_pct - WITHIN_PP, ":", color=COLORS["float"], label=f"float − {WITHIN_PP:g} pp"
        )
        for model, label in (("naive", "naive"), ("hardware_aware", "hardware-aware")):
            means = [getattr(p, f"{model}_pct") for p in measured]
            stds = [getattr(p, f"{model}_std_pp") for p in measured]
            ax.errorbar(x, means, yerr=stds, fmt="o-", capsize=4, color=COLORS[model], label=label)
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no point measured yet", ha="center", va="center", transform=ax.transAxes)
    if info.integer and measured:
        ax.set_xticks(x)
    if parameter == "on_off_ratio" and measured and x.min() > 0 and x.max() / x.min() >= 20:
        ax.set_xscale("log")
    ax.set_xlabel(info.label)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy vs. " + info.label + " (mean ± std over simulated chips)")
    return fig


def draw_heatmap(axes: list[dict[str, Any]], points: Sequence[CurvePoint]) -> Figure:
    """Naive and hardware-aware mean accuracy over the grid, each cell labelled."""
    (first, rows), (second, columns) = ((a["parameter"], a["values"]) for a in axes)
    fig, panels = new_figure(9.0, 3.9, columns=2)
    for ax, (model, title) in zip(
        panels, (("naive", "naive"), ("hardware_aware", "hardware-aware")), strict=True
    ):
        grid = np.full((len(rows), len(columns)), np.nan)
        for point in points:
            value = getattr(point, f"{model}_pct")
            if value is not None:
                i = rows.index(point.values[first])
                j = columns.index(point.values[second])
                grid[i, j] = value
        image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, aspect="auto", origin="lower")
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                color = "white" if value < 60 else "black"
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7, color=color)
        ax.set_xticks(range(len(columns)), [f"{v:g}" for v in columns])
        ax.set_yticks(range(len(rows)), [f"{v:g}" for v in rows])
        ax.set_xlabel(PARAMETERS[second].label)
        ax.set_ylabel(PARAMETERS[first].label)
        ax.set_title(f"{title} accuracy (%)")
        ax.grid(False)
    fig.colorbar(image, ax=panels, shrink=0.85)
    return fig
