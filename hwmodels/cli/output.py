"""Tables for people: the presets, and a study's result."""

from __future__ import annotations

from collections.abc import Sequence

from hwmodels.profile import HardwareProfile
from hwmodels.report import ChipStatistics, RobustnessReport


def format_report(report: RobustnessReport) -> str:
    """The result as a table: float, naive and hardware-aware accuracy over chips."""
    network = "-".join(str(size) for size in report.layer_sizes)
    heading = (
        f"{report.dataset}  {network} ({report.parameters:,} parameters)  "
        f"profile {report.profile.name}  {report.hardware_aware.chips} chips"
    )
    rows: list[tuple[str, ...]] = [("", "mean", "std", "worst", "p5", "drop (pp)")]
    rows.append(("float", _pct(report.float_accuracy), "", "", "", ""))
    rows.append(_stats_row("naive", report.naive, report.naive_drop_pp))
    rows.append(_stats_row("hardware-aware", report.hardware_aware, report.hardware_aware_drop_pp))
    if report.recovered_fraction is None:
        verdict = "recovered: n/a (naive deployment loses less than 0.05 pp)"
    else:
        verdict = f"recovered: {report.recovered_fraction:.0%} of the naive loss"
    return f"{heading}\n{table(rows, right_align=True)}\n{verdict}"


def format_profiles(profiles: Sequence[HardwareProfile]) -> str:
    """One line per preset: bits, on/off ratio, non-linearity, noise, stuck devices."""
    rows: list[tuple[str, ...]] = [
        ("name", "bits", "ratio", "nonlin", "noise prog/read", "stuck", "summary")
    ]
    rows += [_profile_row(p) for p in profiles]
    return table(rows)


def table(rows: Sequence[Sequence[str]], *, right_align: bool = False) -> str:
    """Columns padded to their widest cell; with ``right_align``, all but the first."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if right_align and i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def _profile_row(profile: HardwareProfile) -> tuple[str, ...]:
    ratio = profile.conductance.on_off_ratio
    noise = profile.noise
    stuck = noise.stuck_off + noise.stuck_on
    return (
        profile.name,
        "float" if profile.weights.bits is None else str(profile.weights.bits),
        "inf" if ratio is None else f"{ratio:g}",
        f"{profile.conductance.nonlinearity:g}",
        f"{noise.programming:g}/{noise.read:g}",
        f"{stuck:.1%}" if stuck else "0",
        _shorten(_summary(profile.description), 70),
    )


def _summary(description: str) -> str:
    """The description's first clause: what the technology is, before the details."""
    return description.split(": ")[0].split(". ")[0].rstrip(".")


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _stats_row(label: str, stats: ChipStatistics, drop_pp: float) -> tuple[str, ...]:
    return (
        label,
        _pct(stats.mean),
        _pct(stats.std),
        _pct(stats.worst),
        _pct(stats.p5),
        f"{drop_pp:.2f}",
    )


def _pct(value: float) -> str:
    return f"{value:.2%}"
