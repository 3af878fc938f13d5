"""From command-line arguments to a validated study; every problem becomes one line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hwmodels.datasets.catalog import get_dataset
from hwmodels.datasets.errors import UnknownDatasetError
from hwmodels.profile import HardwareProfile, UnknownPresetError, resolve_profile
from hwmodels.specs import StudySpec, TrainingSettings

OPTION_NAMES = {
    "network": "--hidden",
    "network.hidden": "--hidden",
    "network.architecture": "--architecture",
    "training.epochs": "--epochs",
    "training.hw_epochs": "--hw-epochs",
    "training.stages": "--stages",
    "training.batch_size": "--batch-size",
    "training.learning_rate": "--lr",
    "training.hw_learning_rate": "--hw-lr",
    "training.seed": "--seed",
    "training.validation_fraction": "--validation-fraction",
    "training.train_samples": "--train-samples",
    "evaluation.chips": "--chips",
    "evaluation.test_samples": "--test-samples",
}
"""Spec fields named as the flags that set them, so an error points at what was typed."""


class UsageError(Exception):
    """Bad input from the command line: reported as one line, exit code 2."""


def study_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The study fields the flags gave (dataset, network, training, evaluation), no more.

    Left-out flags are left out here too, so the spec's defaults (or a spec file) apply.
    """
    study: dict[str, Any] = {}
    if args.dataset is not None:
        study["dataset"] = args.dataset
    network: dict[str, Any] = {}
    if args.hidden is not None:
        network["hidden"] = args.hidden
    if getattr(args, "architecture", None) is not None:
        network["architecture"] = args.architecture
    if network:
        study["network"] = network
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
    evaluation = {k: v for k, v in evaluation.items() if v is not None}
    if training:
        study["training"] = training
    if evaluation:
        study["evaluation"] = evaluation
    return study


def build_spec(args: argparse.Namespace) -> StudySpec:
    """A validated StudySpec from parsed arguments; UsageError says what is wrong."""
    if args.dataset is not None:
        try:
            get_dataset(args.dataset)
        except UnknownDatasetError as exc:
            raise UsageError(str(exc)) from None
    study = {**study_fields(args), "profile": _profile(args)}
    try:
        return StudySpec.model_validate(study)
    except ValidationError as exc:
        raise UsageError(one_line(exc, option_names=OPTION_NAMES)) from None


def _profile(args: argparse.Namespace) -> HardwareProfile:
    if args.preset is not None and args.profile_file is not None:
        raise UsageError("give either --preset or --profile-file, not both")
    overrides = parse_overrides(args.overrides)
    inline = read_json_object(args.profile_file, "--profile-file") if args.profile_file else None
    try:
        return resolve_profile(args.preset, overrides or None, inline)
    except UnknownPresetError as exc:
        raise UsageError(str(exc)) from None
    except ValidationError as exc:
        raise UsageError("invalid hardware profile: " + one_line(exc)) from None


def read_json_object(path: Path, flag: str) -> dict[str, Any]:
    """The JSON object in ``path``, or UsageError naming the flag that gave it."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {flag} {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{flag} {path} is not valid JSON: {exc}") from None
    if not isinstance(content, dict):
        raise UsageError(f"{flag} {path} must hold a JSON object")
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


def one_line(exc: ValidationError, option_names: dict[str, str] | None = None) -> str:
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
