"""The engine's command line: ``train`` a network for a hardware profile, list ``profiles``.

No server is involved: ``train`` runs ``hwmodels.pipeline.run_study`` in this process,
draws its progress on stderr and prints the result (a table, or the report as JSON).
``register`` adds both commands to another program's parser (``app/cli.py`` does);
``main`` runs them alone (``python -m hwmodels``). Importing this module does not import
torch: the pipeline is imported when ``train`` runs.

Exit codes: 0 done, 1 the study could not run (e.g. data unavailable), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from hwmodels.datasets.catalog import DATASETS, get_dataset
from hwmodels.datasets.errors import DatasetError, UnknownDatasetError
from hwmodels.profile import PRESETS, HardwareProfile, UnknownPresetError, resolve_profile
from hwmodels.progress import ProgressEvent
from hwmodels.report import ChipStatistics, RobustnessReport
from hwmodels.specs import EvaluationSettings, StudySpec, TrainingSettings

EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the command line: reported as one line, exit code 2."""


# ---------------------------------------------------------------------------------------
# Parsers


def register(subparsers: Any) -> None:
    """Add ``train`` and ``profiles`` to an argparse subparsers object (``func`` = handler)."""
    _add_train(subparsers)
    profiles = subparsers.add_parser(
        "profiles",
        help="list the hardware presets",
        description="List the named hardware presets a study can start from.",
    )
    profiles.add_argument("--json", action="store_true", help="print full profiles as JSON")
    profiles.set_defaults(func=run_profiles)


def _default(model: type[TrainingSettings] | type[EvaluationSettings], field: str) -> Any:
    return model.model_fields[field].default


def _add_train(subparsers: Any) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a network and score it on simulated hardware",
        description="Train an MLP in float, deploy it naively on simulated chips, train it "
        "hardware-aware, and compare accuracy over Monte Carlo chips.",
    )
    data = train.add_argument_group("data and network")
    data.add_argument(
        "--dataset", default="mnist", help=f"one of: {', '.join(DATASETS)} (default: mnist)"
    )
    data.add_argument(
        "--hidden",
        type=int,
        nargs="+",
        metavar="WIDTH",
        help="hidden layer widths, e.g. --hidden 256 128 (default: 256 128)",
    )
    data.add_argument("--data-dir", type=Path, help="dataset folder (default: $HWSCORE_DATA_DIR)")
    data.add_argument("--train-samples", type=int, help="use only the first N training images")
    data.add_argument("--test-samples", type=int, help="use only the first N test images")

    hardware = train.add_argument_group("hardware profile")
    hardware.add_argument("--preset", help="named hardware preset, see `profiles` (default: ideal)")
    hardware.add_argument(
        "--profile-file", type=Path, help="a JSON hardware profile (instead of --preset)"
    )
    hardware.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one profile field, e.g. --set noise.programming=0.05 (repeatable)",
    )

    training = train.add_argument_group("training and evaluation")
    for flag, field, kind in [
        ("--epochs", "epochs", int),
        ("--hw-epochs", "hw_epochs", int),
        ("--stages", "stages", int),
        ("--batch-size", "batch_size", int),
        ("--lr", "learning_rate", float),
        ("--hw-lr", "hw_learning_rate", float),
        ("--seed", "seed", int),
    ]:
        default = _default(TrainingSettings, field)
        help_text = TrainingSettings.model_fields[field].description or field.replace("_", " ")
        training.add_argument(flag, dest=field, type=kind, help=f"{help_text} (default: {default})")
    training.add_argument(
        "--strategy",
        choices=["ste", "annealed"],
        help=f"hardware-aware training (default: {_default(TrainingSettings, 'strategy')})",
    )
    training.add_argument(
        "--no-noise-injection",
        dest="noise_injection",
        action="store_false",
        default=None,
        help="do not draw programming noise during hardware-aware training",
    )
    training.add_argument(
        "--chips",
        type=int,
        help=f"simulated chips (default: {_default(EvaluationSettings, 'chips')})",
    )

    training.add_argument(
        "--compute-dtype",
        choices=["float32", "bfloat16"],
        help="precision of the Monte Carlo evaluation "
        f"(default: {_default(EvaluationSettings, 'compute_dtype')})",
    )

    output = train.add_argument_group("output")
    output.add_argument("--out", type=Path, metavar="DIR", help="write the artifacts here")
    output.add_argument(
        "--json", action="store_true", help="print only the report as JSON on stdout"
    )
    output.add_argument("--quiet", action="store_true", help="no progress on stderr")
    train.set_defaults(func=run_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hwmodels",
        description="hwscore's engine without a server: train and score networks for "
        "non-ideal neuromorphic hardware.",
    )
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


# ---------------------------------------------------------------------------------------
# profiles


def run_profiles(args: argparse.Namespace) -> int:
    """Print the presets as a table, or as JSON with every field."""
    if args.json:
        print(json.dumps([p.model_dump(mode="json") for p in PRESETS.values()], indent=2))
        return 0
    rows: list[tuple[str, ...]] = [
        ("name", "bits", "ratio", "nonlin", "noise prog/read", "stuck", "summary")
    ]
    rows += [_profile_row(p) for p in PRESETS.values()]
    print(_table(rows))
    print("\nFull fields: --json. Use one with: train --preset NAME [--set FIELD=VALUE ...]")
    return 0


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


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


# ---------------------------------------------------------------------------------------
# train


def run_train(args: argparse.Namespace) -> int:
    """Build the study from the arguments, run it, print the outcome."""
    try:
        spec = build_spec(args)
        if args.out is not None:
            _prepare_out(args.out)
    except UsageError as exc:
        return _fail(f"error: {exc}", EXIT_USAGE)

    from hwmodels.pipeline import run_study  # torch is imported here, not before

    progress = ProgressBar(sys.stderr, enabled=not args.quiet)
    try:
        result = run_study(spec, data_dir=args.data_dir, on_progress=progress)
    except DatasetError as exc:
        progress.close()
        return _fail(f"error: {exc}", EXIT_FAILED)
    progress.close()

    if args.out is not None:
        for name, content in result.artifacts.items():
            (args.out / name).write_bytes(content)
        print(f"artifacts written to {args.out}", file=sys.stderr)
    if args.json:
        print(result.report.model_dump_json(indent=2))
    else:
        print(format_report(result.report))
    return 0


def _fail(message: str, code: int) -> int:
    print(f"hwscore train: {message}", file=sys.stderr)
    return code


def build_spec(args: argparse.Namespace) -> StudySpec:
    """A validated StudySpec from parsed arguments; UsageError says what is wrong."""
    try:
        get_dataset(args.dataset)
    except UnknownDatasetError as exc:
        raise UsageError(str(exc)) from None
    profile = _profile(args)
    training = {
        key: getattr(args, key)
        for key in TrainingSettings.model_fields
        if getattr(args, key, None) is not None
    }
    evaluation = {
        "chips": args.chips,
        "test_samples": args.test_samples,
        "compute_dtype": args.compute_dtype,
    }
    study: dict[str, Any] = {
        "dataset": args.dataset,
        "profile": profile,
        "training": training,
        "evaluation": {k: v for k, v in evaluation.items() if v is not None},
    }
    if args.hidden is not None:
        study["network"] = {"hidden": args.hidden}
    try:
        return StudySpec.model_validate(study)
    except ValidationError as exc:
        raise UsageError(_one_line(exc, option_names=_OPTION_NAMES)) from None


_OPTION_NAMES = {
    "network": "--hidden",
    "network.hidden": "--hidden",
    "training.epochs": "--epochs",
    "training.hw_epochs": "--hw-epochs",
    "training.stages": "--stages",
    "training.batch_size": "--batch-size",
    "training.learning_rate": "--lr",
    "training.hw_learning_rate": "--hw-lr",
    "training.seed": "--seed",
    "training.train_samples": "--train-samples",
    "evaluation.chips": "--chips",
    "evaluation.test_samples": "--test-samples",
}


def _profile(args: argparse.Namespace) -> HardwareProfile:
    overrides = parse_overrides(args.overrides)
    inline = _read_profile_file(args.profile_file) if args.profile_file else None
    if inline is not None and args.preset is not None:
        raise UsageError("give either --preset or --profile-file, not both")
    try:
        return resolve_profile(args.preset, overrides or None, inline)
    except UnknownPresetError as exc:
        raise UsageError(str(exc)) from None
    except ValidationError as exc:
        raise UsageError("invalid hardware profile: " + _one_line(exc)) from None


def _read_profile_file(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read --profile-file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--profile-file {path} is not valid JSON: {exc}") from None
    if not isinstance(content, dict):
        raise UsageError(f"--profile-file {path} must hold a JSON object")
    return content


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """['noise.programming=0.05', 'weights.bits=null'] -> nested dict of typed values.

    Values are read as JSON (numbers, true/false, null) and otherwise kept as text.
    """
    overrides: dict[str, Any] = {}
    for item in items:
        path, sep, text = item.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(keys):
            raise UsageError(
                f"--set expects FIELD=VALUE such as noise.programming=0.05, not {item!r}"
            )
        node = overrides
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise UsageError(f"--set {item!r} conflicts with an earlier --set of {key}")
            node = child
        node[keys[-1]] = _value(text.strip())
    return overrides


def _value(text: str) -> Any:
    if text.lower() == "none":
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _one_line(exc: ValidationError, option_names: dict[str, str] | None = None) -> str:
    """The first validation problem as 'field: message' (plus how many more there are)."""
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"])
    field = (option_names or {}).get(field, field)
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{field}: {message}{more}" if field else f"{message}{more}"


def _prepare_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out folder {out}: {exc.strerror}") from None


# ---------------------------------------------------------------------------------------
# Progress and results


class ProgressBar:
    """Draws ProgressEvents on a stream: one redrawn line on a terminal, else one per phase."""

    WIDTH = 30

    def __init__(self, stream: TextIO, *, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.interactive = stream.isatty()
        self._drawn = False

    def __call__(self, event: ProgressEvent) -> None:
        if not self.enabled:
            return
        if self.interactive:
            self._redraw(event)
        elif event.kind == "phase" or event.kind == "epoch":
            print(f"[{event.fraction:4.0%}] {_describe(event)}", file=self.stream, flush=True)

    def _redraw(self, event: ProgressEvent) -> None:
        filled = round(self.WIDTH * min(max(event.fraction, 0.0), 1.0))
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"\r[{bar}] {event.fraction:4.0%} {_describe(event)}"
        self.stream.write(line[:120].ljust(100))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the redrawn line so that what follows starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _describe(event: ProgressEvent) -> str:
    parts = [event.phase.replace("_", " ")]
    if event.epoch is not None and event.epochs is not None:
        parts.append(f"epoch {event.epoch}/{event.epochs}")
    if event.batch is not None and event.batches is not None:
        parts.append(f"batch {event.batch}/{event.batches}")
    if event.loss is not None:
        parts.append(f"loss {event.loss:.4f}")
    if event.accuracy is not None:
        parts.append(f"acc {event.accuracy:.2%}")
    if event.kind == "chips" and "chips" in event.extra:
        of = event.extra.get("of")
        parts.append(f"chip {event.extra['chips']}" + (f"/{of}" if of else ""))
    return "  ".join(parts)


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
    table = _table_right(rows)
    if report.recovered_fraction is None:
        verdict = "recovered: n/a (naive deployment loses less than 0.05 pp)"
    else:
        verdict = f"recovered: {report.recovered_fraction:.0%} of the naive loss"
    return f"{heading}\n{table}\n{verdict}"


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


def _table_right(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


if __name__ == "__main__":
    sys.exit(main())
