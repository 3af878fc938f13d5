"""Shared fixtures: where the real data lives, and the rule that CI never skips."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
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
# Compiling the engine's graphs for every network and profile a test builds took over half
# the suite's time. In this process the engine runs eager (its reference path) unless a
# test asks for the compiled one (the `compiled_engine` fixture: the tests that compare
# the two, and the science at the default settings); the services and workers the
# integration tests start run as a user's do, compiled (child_env drops HWSCORE_*).
os.environ.setdefault("HWSCORE_COMPILE", "0")


def skip_or_fail(reason: str) -> None:
    """Skip locally when a real component is missing; under CI=true that is a failure."""
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def compiled_engine() -> Iterator[None]:
    """The engine's compiled paths on for one test, the Monte Carlo stage compiled from
    the first call; it fails if a kernel fell back to eager."""
    from hwmodels import fused, mlp_forward  # torch stays out of the processes that need none

    if not fused.compiler_found():
        skip_or_fail("no C compiler for torch.compile")
    before, after = fused.enabled(), mlp_forward.COMPILE_AFTER
    fused.set_enabled(True)
    mlp_forward.COMPILE_AFTER = 0
    try:
        yield
        assert fused.enabled(), "a kernel failed to compile and the engine fell back to eager"
    finally:
        fused.set_enabled(before)
        mlp_forward.COMPILE_AFTER = after


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The dataset folder from HWSCORE_DATA_DIR (the README's test command sets it)."""
    configured = os.environ.get("HWSCORE_DATA_DIR")
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    if not (path / "mnist" / "train-images-idx3-ubyte.gz").exists():
        skip_or_fail(f"real MNIST not found under {path}/mnist; set HWSCORE_DATA_DIR")
    return path
