"""Progress reporting and cooperative cancellation, shared by the CLI and the workers.

The training and evaluation code calls ``on_progress`` with ``ProgressEvent`` objects and
polls ``should_cancel`` between batches; it never knows who listens (a progress bar, a
database writer, a test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Phase = Literal[
    "loading_data",
    "float_training",
    "naive_evaluation",
    "hardware_aware_training",
    "hardware_aware_evaluation",
    "done",
]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a study. ``kind`` says what happened; optional fields fill in details.

    kind: "phase" (a phase starts), "batch" (a training batch ended), "epoch" (an epoch
    ended: loss and accuracy set), "stage" (an annealing stage starts), "chips" (Monte
    Carlo chips evaluated so far).
    """

    kind: Literal["phase", "batch", "epoch", "stage", "chips"]
    phase: Phase
    fraction: float  # overall progress of the whole study, 0..1
    epoch: int | None = None
    epochs: int | None = None
    batch: int | None = None
    batches: int | None = None
    loss: float | None = None
    accuracy: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}


ProgressCallback = Callable[[ProgressEvent], None]
CancelCheck = Callable[[], bool]


class JobCancelled(Exception):
    """Raised inside the engine when ``should_cancel`` answered True."""


def no_progress(event: ProgressEvent) -> None:
    """The default listener: ignore progress."""


def never_cancel() -> bool:
    """The default cancel check: never cancel."""
    return False
