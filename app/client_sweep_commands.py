"""``hwscore sweep | sweeps | sweep-result | sweep-cancel``: robustness sweeps from a shell.

``sweep`` takes the study flags of ``submit`` (or a spec file) for the base study, one
or two ``--axis PARAMETER=V1,V2,...`` and ``--mode``, prints the sweep's id, and with
``--wait`` follows it to the end and prints its curve and robustness figures. The same
exit codes and one-line errors as the job commands (``app.client_commands``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.client_commands import EXIT_FAILED, _note, _runs
from app.core.vocabulary import JobStatus, SweepMode
from hwmodels.cli import ProgressBar, UsageError, add_study_arguments, table
from hwmodels.sweep_spec import PARAMETERS

if TYPE_CHECKING:
    from app.client import HwscoreClient


def register(command: Any) -> None:
    """Add the sweep commands; ``command(name, help)`` makes a parser with --server/--key."""
    sweep = command("sweep", "submit a robustness sweep (study flags, --axis, --mode)")
    sweep.add_argument("file", nargs="?", type=Path, help="base study spec file (optional)")
    add_study_arguments(sweep, local=False)
    sweep.add_argument("--fresh", action="store_true", help="run even if done before")
    sweep.add_argument(
        "--axis",
        action="append",
        required=True,
        metavar="PARAMETER=V1,V2,...",
        help=f"a swept parameter and its values (once or twice): {', '.join(PARAMETERS)}",
    )
    sweep.add_argument(
        "--mode",
        choices=[mode.value for mode in SweepMode],
        default=SweepMode.EVALUATE.value,
        help="evaluate: train once, score every point (default); retrain: train per point",
    )
    sweep.add_argument("--wait", action="store_true", help="follow it, then print the curve")
    sweep.add_argument("--timeout", type=float, metavar="S", help="give up waiting after S s")
    sweep.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sweep.set_defaults(func=_sweep)

    sweeps = command("sweeps", "list your sweeps, newest first")
    sweeps.add_argument("--limit", type=int, default=20, help="at most this many (max 100)")
    sweeps.set_defaults(func=_sweeps)

    result = command("sweep-result", "print a sweep's curve and robustness figures")
    result.add_argument("id")
    output = result.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="print the curve as CSV")
    output.add_argument("--json", action="store_true", help="print the sweep as JSON")
    result.set_defaults(func=_result)

    cancel = command("sweep-cancel", "cancel every unfinished job of a sweep")
    cancel.add_argument("id")
    cancel.set_defaults(func=_cancel)


def parse_axis(text: str) -> dict[str, Any]:
    """'weight_bits=2,4,8' -> {"parameter": "weight_bits", "values": [2, 4, 8]}."""
    name, _, values = text.partition("=")
    if name not in PARAMETERS or not values:
        raise UsageError(
            f"--axis {text!r}: write PARAMETER=V1,V2,... with PARAMETER one of "
            f"{', '.join(PARAMETERS)}"
        )
    try:
        numbers = [int(v) if PARAMETERS[name].integer else float(v) for v in values.split(",") if v]
    except ValueError:
        kind = "whole numbers" if PARAMETERS[name].integer else "numbers"
        raise UsageError(f"--axis {text!r}: the values must be {kind}") from None
    return {"parameter": name, "values": numbers}


@_runs
def _sweep(client: HwscoreClient, args: argparse.Namespace) -> int:
    from app.client_request import build_request

    body = {
        "mode": args.mode,
        "study": build_request(args),
        "axes": [parse_axis(text) for text in args.axis],
    }
    sweep = client.submit_sweep(body)
    print(sweep["id"])
    if not args.wait:
        _note(f"sweep {sweep['id']} is {sweep['status']}; see it with: hwscore sweep-result ID")
        return 0
    bar = ProgressBar(sys.stderr, enabled=not args.quiet)

    def update(view: dict[str, Any]) -> None:
        progress = view["progress"]
        words = f"{view['status']}, {progress['points_measured']}/{progress['points']} points"
        bar.show(progress["fraction"], words, milestone=False)

    try:
        sweep = client.wait_sweep(sweep["id"], timeout_s=args.timeout, on_update=update)
    finally:
        bar.close()
    print(format_sweep(sweep))
    return 0 if sweep["status"] == JobStatus.SUCCEEDED else EXIT_FAILED


@_runs
def _sweeps(client: HwscoreClient, args: argparse.Namespace) -> int:
    rows = [("id", "mode", "swept", "status", "points")]
    for sweep in client.sweeps(limit=args.limit):
        progress = sweep["progress"]
        rows.append(
            (
                sweep["id"],
                sweep["mode"],
                " x ".join(axis["parameter"] for axis in sweep["axes"]),
                sweep["status"],
                f"{progress['points_measured']}/{progress['points']}",
            )
        )
    print(table(rows) if len(rows) > 1 else "no sweeps yet")
    return 0


@_runs
def _result(client: HwscoreClient, args: argparse.Namespace) -> int:
    if args.csv:
        print(client.sweep_csv(args.id), end="")
        return 0
    sweep = client.sweep(args.id)
    print(json.dumps(sweep, indent=2) if args.json else format_sweep(sweep))
    return 0


@_runs
def _cancel(client: HwscoreClient, args: argparse.Namespace) -> int:
    sweep = client.cancel_sweep(args.id)
    print(f"sweep {sweep['id']} is {sweep['status']}")
    return 0


def format_sweep(sweep: dict[str, Any]) -> str:
    """The curve as a table (accuracies in %), then the robustness statements."""
    names = [axis["parameter"] for axis in sweep["axes"]]
    rows = [(*names, "float %", "naive %", "± pp", "hw-aware %", "± pp", "status")]
    for point in sweep["curve"]:
        cells = [point[key] for key in _COLUMNS]
        rows.append(
            (
                *(f"{point['values'][name]:g}" for name in names),
                *("—" if cell is None else f"{cell:.2f}" for cell in cells),
                point["status"],
            )
        )
    lines = [f"sweep {sweep['id']}: {sweep['mode']}, {sweep['status']}", table(rows)]
    lines += [figure["statement"] for figure in sweep["robustness"]]
    return "\n".join(lines)


_COLUMNS = ("float_pct", "naive_pct", "naive_std_pp", "hardware_aware_pct", "hardware_aware_std_pp")
