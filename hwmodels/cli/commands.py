"""What ``train`` and ``profiles`` do once their arguments are parsed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hwmodels.cli.output import format_profiles, format_report
from hwmodels.cli.progress import ProgressBar
from hwmodels.cli.spec import UsageError, build_spec
from hwmodels.datasets.errors import DatasetError
from hwmodels.profile import PRESETS
from hwmodels.specs import StartFrom, StudySpec
from hwmodels.weights_check import canonical_weights
from hwmodels.weights_file import WeightsError, read_safetensors

EXIT_FAILED = 1
EXIT_USAGE = 2


def run_profiles(args: argparse.Namespace) -> int:
    """Print the presets as a table, or as JSON with every field."""
    if args.json:
        print(json.dumps([p.model_dump(mode="json") for p in PRESETS.values()], indent=2))
        return 0
    print(format_profiles(list(PRESETS.values())))
    print("\nFull fields: --json. Use one with: train --preset NAME [--set FIELD=VALUE ...]")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Build the study from the arguments, run it, print the outcome."""
    try:
        spec = build_spec(args)
        if args.out is not None:
            _prepare_out(args.out)
    except UsageError as exc:
        return _fail(f"error: {exc}", EXIT_USAGE)

    from hwmodels.pipeline import run_study  # torch is imported here, not before

    float_weights = None
    if args.weights is not None:
        try:
            spec, float_weights = _given_weights(spec, args.weights)
        except (OSError, WeightsError) as exc:
            return _fail(f"error: --weights {args.weights}: {_reason(exc)}", EXIT_USAGE)
    progress = ProgressBar(sys.stderr, enabled=not args.quiet)
    try:
        result = run_study(
            spec, data_dir=args.data_dir, on_progress=progress, float_weights=float_weights
        )
    except DatasetError as exc:
        progress.close()
        hint = "" if args.data_dir else "\nOr name the folder for this run: --data-dir DIR."
        return _fail(f"error: {exc}{hint}", EXIT_FAILED)
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


def _given_weights(spec: StudySpec, path: Path) -> tuple[StudySpec, dict[str, Any]]:
    """The study starting from the file's weights (checked against the network), and
    those weights as a state dict."""
    from hwmodels.weights_load import read_weights_file, state_dict

    weights = canonical_weights(read_weights_file(path), spec.network, spec.dataset)
    spec = spec.model_copy(update={"start_from": StartFrom(sha256=weights.sha256)})
    return spec, state_dict(read_safetensors(weights.content))


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _fail(message: str, code: int) -> int:
    print(f"hwscore train: {message}", file=sys.stderr)
    return code


def _prepare_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out folder {out}: {exc.strerror}") from None
