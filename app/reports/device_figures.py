"""Figures about the hardware: the device's curve, weights on its levels, the confusion matrix.

They read ``report.figures`` (stored by engine 4 and later); the caller draws them only
when ``ReportData.available`` says the data is there.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from app.reports.data import ReportData
from app.reports.style import COLORS, new_figure
from hwmodels.report import ReportFigures

MAX_ANNOTATED_CLASSES = 12


def _figures(data: ReportData) -> ReportFigures:
    assert data.report is not None and data.report.figures is not None
    return data.report.figures


def draw_device(data: ReportData) -> Figure:
    """G(u) of the positive and negative device, with the levels a chip can be programmed to."""
    device = _figures(data).device
    fig, ax = new_figure(6.4, 3.2)
    ax.plot(device.u, device.positive, color=COLORS["positive"], label="positive device G+")
    ax.plot(device.u, device.negative, color=COLORS["negative"], label="negative device G−")
    if device.level_u:
        ax.plot(
            device.level_u,
            device.positive_levels,
            "o",
            color=COLORS["positive"],
            ms=4,
            label=f"{len(device.level_u)} programmable levels",
        )
        ax.plot(device.level_u, device.negative_levels, "o", color=COLORS["negative"], ms=4)
    if device.reference is not None:
        ax.axhline(device.reference, color="black", linestyle=":", label="reference device")
    ax.set_xlabel("programmed fraction u = k / L (pulses)")
    ax.set_ylabel("conductance (positive Gmax = 1)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.legend(frameon=False, loc="lower right")
    return fig


def draw_weights(data: ReportData) -> Figure:
    """Per layer: float and hardware-aware weights binned in level units, levels marked."""
    layers = _figures(data).weights
    fig, axes = new_figure(6.4, 1.1 + 1.9 * len(layers), rows=len(layers))
    axes = np.atleast_1d(axes)
    for ax, layer in zip(axes, layers, strict=True):
        bins = len(layer.float_counts)
        edges = np.linspace(layer.low, layer.high, bins + 1)
        ax.stairs(layer.float_counts, edges, color=COLORS["naive"], label="float weights (naive)")
        ax.stairs(
            layer.hardware_aware_counts,
            edges,
            color=COLORS["hardware_aware"],
            fill=True,
            alpha=0.45,
            label="hardware-aware weights",
        )
        for position in layer.level_positions:
            ax.axvline(position, color="black", alpha=0.25, linewidth=0.6)
        ax.set_yscale("symlog", linthresh=10)
        ax.set_ylabel(f"{layer.name}\nweights")
    unit = "device levels (L·w/s); grey lines: what each level reads back as"
    axes[-1].set_xlabel(unit if layers and layers[0].unit == "level" else "w / s (analog devices)")
    axes[0].legend(frameon=False, fontsize=8, loc="upper right")
    return fig


def draw_confusion(data: ReportData) -> Figure:
    """Hardware-aware model: share of each true class predicted as each class, all chips."""
    counts = np.asarray(_figures(data).confusion, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    shares = 100 * np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    classes = counts.shape[0]
    size = 4.6 if classes <= MAX_ANNOTATED_CLASSES else 7.0
    fig, ax = new_figure(size + 1.0, size)
    ax.grid(False)
    image = ax.imshow(shares, cmap="Greens", vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, label="% of the true class")
    if classes <= MAX_ANNOTATED_CLASSES:
        for (row, column), share in np.ndenumerate(shares):
            if share >= 0.5:
                ax.text(
                    column,
                    row,
                    f"{share:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share > 60 else "black",
                )
        ax.set_xticks(range(classes))
        ax.set_yticks(range(classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    return fig
