"""Shared fixtures: where the real data lives, and the rule that CI never skips."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# The services and workers the tests start would each keep compiled kernels in their own
# fresh state folder (app/cli.py) and compile the same graphs again; one cache shared by
# every process of the run, and by the next run, compiles each graph once.
os.environ.setdefault(
    "TORCHINDUCTOR_CACHE_DIR", str(Path(tempfile.gettempdir()) / "hwscore-tests-inductor-cache")
)


def skip_or_fail(reason: str) -> None:
    """Skip locally when a real component is missing; under CI=true that is a failure."""
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The dataset folder from HWSCORE_DATA_DIR (the README's test command sets it)."""
    configured = os.environ.get("HWSCORE_DATA_DIR")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    if not (path / "mnist" / "train-images-idx3-ubyte.gz").exists():
        skip_or_fail(f"real MNIST not found under {path}/mnist; set HWSCORE_DATA_DIR")
    return path
