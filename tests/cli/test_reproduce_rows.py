"""bench/reproduce.py: which rows ``--only`` selects, and how rows of two seeds are reported.

No training here: the rows are built by hand, so this runs in well under a second.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from hwmodels.profile import HardwareProfile
from hwmodels.report import ChipStatistics
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def reproduce() -> Iterator[ModuleType]:
    """bench/reproduce.py as its script run sees it: with bench/ on the import path, for
    its sibling reproduce_report.py."""
    spec = importlib.util.spec_from_file_location(
        "bench_reproduce", REPO_ROOT / "bench" / "reproduce.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(REPO_ROOT / "bench"))
        sys.modules.pop("reproduce_report", None)
        sys.modules.pop(spec.name, None)


def selected(reproduce: ModuleType, *only: str) -> list[str]:
    return [name for name, _ in reproduce.SETTINGS if any(o in name for o in only)]


def test_new_rows_have_their_own_selectors(reproduce: ModuleType) -> None:
    assert [n.split(":")[0] for n in selected(reproduce, "combined")] == [
        "combined, moderate",
        "combined, harsh",
    ]
    assert [n.split(":")[0] for n in selected(reproduce, "harsh")] == ["combined, harsh"]
    assert [n.split(":")[0] for n in selected(reproduce, "stuck", "per-column")] == [
        "stuck devices",
        "per-column scale",
    ]


def test_new_rows_are_the_harsh_profile_with_one_change(reproduce: ModuleType) -> None:
    profiles = dict(reproduce.SETTINGS)
    harsh = HardwareProfile.model_validate(reproduce.HARSH)
    stuck = profiles[selected(reproduce, "stuck")[0]]
    per_column = profiles[selected(reproduce, "per-column")[0]]
    assert (stuck.noise.stuck_off, stuck.noise.stuck_on) == (0.01, 0.01)
    assert stuck.noise.programming == harsh.noise.programming
    assert stuck.model_copy(update={"noise": harsh.noise}) == harsh
    assert per_column.weights.scale == "per_column"
    assert harsh.weights.scale == "per_layer"
    assert per_column.model_copy(update={"weights": harsh.weights}) == harsh


def _stats(mean: float) -> ChipStatistics:
    return ChipStatistics(
        chips=2, mean=mean, std=0.0, worst=mean, p5=mean, best=mean, accuracies=[mean, mean]
    )


def test_two_seeds_give_one_row_each_and_every_combined_row_a_verdict(
    reproduce: ModuleType,
) -> None:
    settings = selected(reproduce, "harsh", "stuck", "per-column")
    rows = [
        reproduce.Row("mnist", setting, seed, 0.98, _stats(0.5), {"ste": _stats(0.979)}, 1.0)
        for seed in (0, 1)
        for setting in settings
    ]
    table = reproduce.markdown(rows).splitlines()[2:]
    assert [line.split(" | ")[2] for line in table] == ["0"] * 3 + ["1"] * 3
    verdict = reproduce.verdict(rows)
    assert len(verdict) == 6
    assert sum("stuck devices" in line for line in verdict) == 2
    assert sum("per-column scale" in line for line in verdict) == 2
    assert all("claim supported" in line for line in verdict)


def test_each_precision_reports_its_largest_move_over_every_network(
    reproduce: ModuleType,
) -> None:
    settings = selected(reproduce, "harsh")
    rows = [
        reproduce.Row(
            "mnist",
            settings[0],
            seed,
            0.98,
            _stats(0.5),
            {"ste": _stats(0.979)},
            1.0,
            {"naive": {"int8": 0.03 * (seed + 1)}, "ste": {"int8": -0.09 * (seed + 1)}},
        )
        for seed in (0, 1)
    ]
    (line,) = reproduce.precision_lines(rows)
    assert line.startswith("int8: largest move of a mean from float32 -0.180 pp over 4 networks")
    assert line.endswith("(mean of |moves| 0.090 pp)")
