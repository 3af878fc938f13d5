"""Colours and figure shapes shared by every report figure."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

COLORS = {
    "float": "#4c4c4c",
    "naive": "#d95f02",
    "hardware_aware": "#1b9e77",
    "positive": "#1b9e77",
    "negative": "#7570b3",
}


def new_figure(width: float, height: float, rows: int = 1, columns: int = 1) -> tuple[Figure, Any]:
    """A Figure (no pyplot) with a grid of axes, tidy spines, constrained layout."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=True)
    for ax in fig.axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(alpha=0.25)
    return fig, axes
