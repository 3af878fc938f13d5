"""The body of ``hwscore submit``: a spec file (JSON or YAML), then flags on top of it.

The server validates the study and answers 422 with what is wrong; this module only
reads and merges, so the rules live in one place (the server) and stay in step with it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hwmodels.cli.spec import UsageError, parse_overrides, read_json_object, study_fields

YAML_SUFFIXES = (".yaml", ".yml")


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    """POST /api/v1/jobs body: the file's fields, overridden by any flag given."""
    body = read_spec_file(args.file) if args.file is not None else {}
    merge(body, study_fields(args))
    body["profile"] = _profile(body.get("profile"), args)
    if args.fresh:
        body["fresh"] = True
    return body


def _profile(from_file: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The profile choice: --preset or --profile-file replace the file's, --set edits it."""
    if args.preset is not None:
        profile: dict[str, Any] = {"preset": args.preset}
    elif args.profile_file is not None:
        profile = {"inline": read_json_object(args.profile_file, "--profile-file")}
    elif isinstance(from_file, dict):
        profile = from_file
    else:
        profile = {"preset": "ideal"}  # what `hwscore train` uses too
    overrides = parse_overrides(args.overrides)
    if overrides:
        target = "inline" if "inline" in profile else "overrides"
        profile[target] = merge(dict(profile.get(target) or {}), overrides)
    return profile


def read_spec_file(path: Path) -> dict[str, Any]:
    """A study from a JSON file, or YAML (.yaml/.yml) when PyYAML is installed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot read spec file {path}: {reason}") from None
    if path.suffix.lower() in YAML_SUFFIXES:
        content = _load_yaml(text, path)
    else:
        try:
            content = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"spec file {path} is not valid JSON: {exc}") from None
    if not isinstance(content, dict):
        raise UsageError(f"spec file {path} must hold an object (dataset, profile, ...)")
    return content


def _load_yaml(text: str, path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        raise UsageError(
            f"spec file {path} is YAML but PyYAML is not installed: "
            "pip install pyyaml, or write the spec as JSON"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise UsageError(f"spec file {path} is not valid YAML: {problem}") from None


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` in place (nested dicts merged, the rest replaced)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base
