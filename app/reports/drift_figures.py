"""Accuracy against time after programming (conductance drift), on a log time axis.

Drawn from ``report.drift`` (one point per time in ``evaluation.drift_times_s``): naive
and hardware-aware mean ± std over the simulated chips, solid without and dashed with
global drift compensation when the profile asked for it; float accuracy for reference.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from app.reports.data import ReportData
from app.reports.style import COLORS, new_figure

_UNITS = ((31_536_000.0, "y"), (86_400.0, "d"), (3_600.0, "h"), (60.0, "min"), (1.0, "s"))


def time_label(seconds: float) -> str:
    """A tick label a person reads at a glance: 3600 -> '1 h', 2592000 -> '30 d'."""
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def draw_drift(data: ReportData) -> Figure:
    """Mean accuracy ± std at every time, both networks, with and without compensation."""
    report = data.report
    assert report is not None and report.drift
    points = report.drift
    times = [p.time_s for p in points]
    fig, ax = new_figure(6.6, 3.6)
    ax.axhline(100 * report.float_accuracy, color=COLORS["float"], linestyle=":", label="float")
    series = [
        ("naive", "naive", "-"),
        ("hardware_aware", "hardware-aware", "-"),
        ("naive_compensated", "naive, compensated", "--"),
        ("hardware_aware_compensated", "hardware-aware, compensated", "--"),
    ]
    for field, label, style in series:
        stats = [getattr(p, field) for p in points]
        if any(s is None for s in stats):
            continue
        color = COLORS["hardware_aware" if field.startswith("hardware") else "naive"]
        ax.errorbar(
            times,
            [100 * s.mean for s in stats],
            yerr=[100 * s.std for s in stats],
            fmt="o" + style,
            capsize=3,
            color=color,
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xticks(times, [time_label(t) for t in times])
    ax.minorticks_off()
    ax.set_xlabel("time after programming (log scale)")
    ax.set_ylabel("test accuracy (%)")
    drift = report.profile.drift
    ax.set_title(
        f"nu ~ N({drift.nu_mean:g}, {drift.nu_spread:g}²), t0 = {drift.t0_s:g} s; "
        f"{points[0].naive.chips} chips, mean ± std"
    )
    ax.legend(loc="best", fontsize=8, frameon=False)
    return fig
