"""The report's figures as SVG, drawn on the server with matplotlib (Agg, no pyplot).

No pyplot: its global figure registry is not safe across the API's worker threads, while
a ``Figure`` on its own is. Each ``draw_*`` function takes the report data and returns a
figure; ``render`` turns one, by name, into SVG bytes. Accuracies are drawn in percent.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from app.reports.data import ReportData
from app.reports.device_figures import draw_confusion, draw_device, draw_weights
from app.reports.drift_figures import draw_drift
from app.reports.style import COLORS, new_figure

matplotlib.use("Agg")
matplotlib.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: smaller files, crisp at any zoom
        "svg.hashsalt": "hwscore",  # the same figure gives the same bytes
        "font.size": 9,
    }
)


def draw_accuracy(data: ReportData) -> Figure:
    """Float, naive and hardware-aware accuracy: mean ± std, every chip as a dot."""
    report = data.report
    assert report is not None
    fig, ax = new_figure(6.4, 3.4)
    names = ["float", "naive", "hardware-aware"]
    chips = [[report.float_accuracy], report.naive.accuracies, report.hardware_aware.accuracies]
    means = [100 * np.mean(values) for values in chips]
    stds = [0.0, 100 * report.naive.std, 100 * report.hardware_aware.std]
    colors = [COLORS["float"], COLORS["naive"], COLORS["hardware_aware"]]
    positions = np.arange(3)
    ax.bar(positions, means, yerr=stds, capsize=6, color=colors, alpha=0.75, width=0.6)
    rng = np.random.default_rng(0)
    for x, values in zip(positions[1:], chips[1:], strict=True):
        jitter = rng.uniform(-0.18, 0.18, len(values))
        ax.scatter(x + jitter, 100 * np.asarray(values), s=8, color="black", alpha=0.5, zorder=3)
    for x, mean in zip(positions, means, strict=True):
        ax.annotate(
            f"{mean:.2f}%",
            (x, mean),
            ha="center",
            va="bottom",
            xytext=(0, 8),
            textcoords="offset points",
        )
    low = min(min(100 * np.asarray(v)) for v in chips)
    ax.set_ylim(max(0.0, low - 5.0), 100.0)
    ax.set_xticks(positions, names)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{report.naive.chips} simulated chips; bars: mean ± std, dots: chips")
    return fig


def draw_chips(data: ReportData) -> Figure:
    """How accuracy spreads over the simulated chips, naive and hardware-aware."""
    report = data.report
    assert report is not None
    fig, ax = new_figure(6.4, 3.2)
    naive = 100 * np.asarray(report.naive.accuracies)
    aware = 100 * np.asarray(report.hardware_aware.accuracies)
    low, high = (
        min(naive.min(), aware.min()),
        max(naive.max(), aware.max(), 100 * report.float_accuracy),
    )
    edges = np.linspace(low - 0.5, high + 0.5, 31)
    ax.hist(naive, bins=edges, color=COLORS["naive"], alpha=0.6, label="naive")
    ax.hist(aware, bins=edges, color=COLORS["hardware_aware"], alpha=0.6, label="hardware-aware")
    ax.axvline(100 * report.float_accuracy, color=COLORS["float"], linestyle="--", label="float")
    ax.set_xlabel("test accuracy of one chip (%)")
    ax.set_ylabel("chips")
    if np.ptp(naive) == 0 and np.ptp(aware) == 0:
        ax.set_title("every chip is the same: this profile has no random noise or faults")
    ax.legend(loc="upper left", frameon=False)
    return fig


def draw_training(data: ReportData) -> Figure:
    """Loss and accuracy per epoch (training batches solid, held-out images dashed): the
    float phase, then the hardware-aware one."""
    fig, (loss_ax, acc_ax) = new_figure(6.4, 3.2, columns=2)
    for phase, label in (("float", "float"), ("hardware_aware", "hardware-aware")):
        points = [(i, p) for i, p in enumerate(data.training, 1) if p.phase == phase]
        if not points:
            continue
        steps = [i for i, _ in points]
        loss_ax.plot(
            steps, [p.loss for _, p in points], marker="o", ms=3, color=COLORS[phase], label=label
        )
        acc_ax.plot(
            steps,
            [100 * p.train_accuracy for _, p in points],
            marker="o",
            ms=3,
            color=COLORS[phase],
            label=label,
        )
        held_out = [
            (i, p.validation_accuracy) for i, p in points if p.validation_accuracy is not None
        ]
        if held_out:
            acc_ax.plot(
                [i for i, _ in held_out],
                [100 * value for _, value in held_out],
                linestyle="--",
                color=COLORS[phase],
                label=f"{label}, held out",
            )
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.set_xlabel("epoch (both phases in order)")
    loss_ax.set_ylabel("training loss")
    acc_ax.set_xlabel("epoch (both phases in order)")
    acc_ax.set_ylabel("accuracy (%)")
    loss_ax.legend(frameon=False)
    acc_ax.legend(frameon=False, fontsize="small")
    return fig


DRAW: dict[str, Callable[[ReportData], Figure]] = {
    "accuracy": draw_accuracy,
    "chips": draw_chips,
    "training": draw_training,
    "device": draw_device,
    "weights": draw_weights,
    "confusion": draw_confusion,
    "drift": draw_drift,
}


def render(name: str, data: ReportData) -> bytes:
    """The named figure as SVG bytes (the caller checks ``data.available(name)`` first)."""
    fig = DRAW[name](data)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buffer.getvalue()
