"""The rows of bench/reproduce.py and how they are reported: a markdown table, the
verdict on the paper's claim and the default recipe's targets, the moves of the Monte
Carlo precisions, JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hwmodels.report import ChipStatistics

STRATEGIES = ("annealed", "ste")
CLAIM_SETTINGS = ("combined", "stuck devices", "per-column scale")
"""Prefixes of the settings that ``verdict`` checks: the low-bit, non-ideal profiles."""
TARGETS: dict[tuple[str, str], tuple[float, float]] = {
    ("mnist", "combined, harsh"): (0.3, 0.6),
    ("fashion-mnist", "combined, harsh"): (1.0, 1.5),
    ("mnist", "combined, moderate"): (0.3, 0.6),
    ("fashion-mnist", "combined, moderate"): (0.3, 0.6),
}
"""(dataset, setting prefix) -> (largest mean drop, largest worst-chip drop) from float,
in points, that the default hardware-aware recipe is meant to meet on every seed."""


@dataclass
class Row:
    dataset: str
    setting: str
    seed: int
    float_accuracy: float
    naive: ChipStatistics
    aware: dict[str, ChipStatistics]
    """Hardware-aware statistics per strategy (annealed, ste)."""
    seconds: float
    moved: dict[str, dict[str, float]] = field(default_factory=dict)
    """``--precisions``: for "naive" and each strategy, how far each Monte Carlo
    precision moves the mean accuracy from float32 on the same chips, in points."""

    @property
    def naive_drop_pp(self) -> float:
        return 100 * (self.float_accuracy - self.naive.mean)

    def aware_drop_pp(self, strategy: str) -> float:
        return 100 * (self.float_accuracy - self.aware[strategy].mean)

    def worst_drop_pp(self, strategy: str) -> float:
        return 100 * (self.float_accuracy - self.aware[strategy].worst)


def precision_lines(rows: list[Row]) -> list[str]:
    """The largest move of a mean each precision made over every row and network."""
    lines = []
    for name in sorted({p for r in rows for moved in r.moved.values() for p in moved}):
        moves = [moved[name] for r in rows for moved in r.moved.values() if name in moved]
        largest = max(moves, key=abs)
        lines.append(
            f"{name}: largest move of a mean from float32 {largest:+.3f} pp over "
            f"{len(moves)} networks (mean of |moves| {sum(map(abs, moves)) / len(moves):.3f} pp)"
        )
    return lines


def markdown(rows: list[Row]) -> str:
    strategies = [s for s in STRATEGIES if any(s in r.aware for r in rows)]
    names = {"annealed": "annealed", "ste": "STE"}
    header = ["dataset", "setting", "seed", "float %", "naive %"]
    header += [f"{names[s]} % (worst chip)" for s in strategies]
    header += ["naive drop pp"] + [f"{names[s]} drop pp (worst)" for s in strategies]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def stats(s: ChipStatistics) -> str:
        return f"{100 * s.mean:.2f} ± {100 * s.std:.2f}"

    for r in rows:
        cells = [r.dataset, r.setting, str(r.seed), f"{100 * r.float_accuracy:.2f}"]
        cells.append(stats(r.naive))
        for s in strategies:
            a = r.aware.get(s)
            cells.append(f"{stats(a)} ({100 * a.worst:.2f})" if a else "-")
        cells.append(f"{r.naive_drop_pp:.2f}")
        for s in strategies:
            cells.append(
                f"{r.aware_drop_pp(s):.2f} ({r.worst_drop_pp(s):.2f})" if s in r.aware else "-"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(rows: list[Row]) -> list[str]:
    """Do the combined low-bit non-ideal settings (``CLAIM_SETTINGS``) support the claim?

    Supported: naive deployment loses at least 2 pp and hardware-aware training (either
    strategy) ends within 0.75 pp of float ("about half a point"). Each combined row is
    also checked against its target in ``TARGETS`` (STE, the default strategy, when run).
    """
    lines = []
    for r in rows:
        if not r.setting.startswith(CLAIM_SETTINGS):
            continue
        best = min(r.aware, key=r.aware_drop_pp)
        supported = r.naive_drop_pp >= 2.0 and r.aware_drop_pp(best) <= 0.75
        losses = ", ".join(f"{r.aware_drop_pp(s):.2f} pp ({s})" for s in r.aware)
        line = (
            f"{r.dataset} seed {r.seed}, {r.setting.split(':')[0]}: naive deployment loses "
            f"{r.naive_drop_pp:.2f} pp; hardware-aware training loses {losses} -> claim "
            + ("supported" if supported else "NOT supported at this budget")
        )
        target = TARGETS.get((r.dataset, r.setting.split(":")[0]))
        strategy = "ste" if "ste" in r.aware else best
        if target is not None:
            met = r.aware_drop_pp(strategy) <= target[0] and r.worst_drop_pp(strategy) <= target[1]
            line += (
                f"; target {target[0]} / {target[1]} pp (mean / worst chip, {strategy}): "
                f"{r.aware_drop_pp(strategy):.2f} / {r.worst_drop_pp(strategy):.2f} -> "
                + ("met" if met else "NOT met")
            )
        lines.append(line)
    return lines


def row_json(r: Row) -> dict[str, Any]:
    result: dict[str, Any] = {
        "dataset": r.dataset,
        "setting": r.setting,
        "seed": r.seed,
        "float_accuracy": r.float_accuracy,
        "naive_mean": r.naive.mean,
        "naive_std": r.naive.std,
        "naive_drop_pp": r.naive_drop_pp,
        "seconds": round(r.seconds, 1),
    }
    result["naive_worst"] = r.naive.worst
    for network, moved in r.moved.items():
        for precision, pp in moved.items():
            result[f"{network}_{precision}_minus_fp32_pp"] = round(pp, 3)
    for strategy in r.aware:
        result[f"{strategy}_mean"] = r.aware[strategy].mean
        result[f"{strategy}_std"] = r.aware[strategy].std
        result[f"{strategy}_worst"] = r.aware[strategy].worst
        result[f"{strategy}_drop_pp"] = r.aware_drop_pp(strategy)
        result[f"{strategy}_worst_drop_pp"] = r.worst_drop_pp(strategy)
    return result
