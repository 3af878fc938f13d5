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


@dataclass
class Progress:
    """Where one piece of work sits in the study: its phase and its share of the whole."""

    on_progress: ProgressCallback = no_progress
    should_cancel: CancelCheck = never_cancel
    phase: Phase = "float_training"
    start: float = 0.0
    span: float = 1.0

    def part(self, phase: Phase, start: float, span: float) -> Progress:
        """A sub-range of this one's share, in another phase."""
        return Progress(
            self.on_progress,
            self.should_cancel,
            phase,
            self.start + start * self.span,
            span * self.span,
        )

    def emit(self, kind: str, done: float, **fields: object) -> None:
        fraction = min(1.0, self.start + self.span * max(0.0, min(1.0, done)))
        self.on_progress(ProgressEvent(kind=kind, phase=self.phase, fraction=fraction, **fields))  # type: ignore[arg-type]

    def check_cancel(self) -> None:
        if self.should_cancel():
            raise JobCancelled(f"cancelled during {self.phase}")
