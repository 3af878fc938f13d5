"""A progress bar with a time estimate, for ``hwscore train`` and ``hwscore wait`` alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from hwmodels.progress import ProgressEvent

MIN_ELAPSED_S = 2.0
"""No estimate before this: the first seconds (loading data) say little about the rest."""
MIN_GAIN = 0.01
"""Nor before the bar has moved this much since it started watching."""


class ProgressBar:
    """Draws progress on a stream: one redrawn line on a terminal, else one per phase/epoch.

    The estimate assumes the rest goes at the average pace seen so far, measured from the
    first update this bar saw (so ``hwscore wait`` on a half-done job is not misled by
    the half it did not watch).
    """

    WIDTH = 30

    def __init__(
        self,
        stream: TextIO,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.enabled = enabled
        self.interactive = stream.isatty()
        self._clock = clock
        self._start: tuple[float, float] | None = None  # (time, fraction) when first seen
        self._drawn = False

    def __call__(self, event: ProgressEvent) -> None:
        """The engine's progress callback."""
        self.show(event.fraction, describe(event), milestone=event.kind in ("phase", "epoch"))

    def show(self, fraction: float, text: str, *, milestone: bool = True) -> None:
        """Draw ``fraction`` (0..1) with ``text``; off a terminal only milestones print."""
        if not self.enabled:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        eta = self.estimate(fraction)
        suffix = f"  ETA {format_duration(eta)}" if eta is not None else ""
        if self.interactive:
            filled = round(self.WIDTH * fraction)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            line = f"\r[{bar}] {fraction:4.0%} {text}{suffix}"
            self.stream.write(line[:120].ljust(100))
            self._drawn = True
        elif milestone:
            self.stream.write(f"[{fraction:4.0%}] {text}{suffix}\n")
        self.stream.flush()

    def estimate(self, fraction: float) -> float | None:
        """Seconds left at the pace seen so far; None while too early to tell."""
        now = self._clock()
        if self._start is None:
            self._start = (now, fraction)
            return None
        started, first = self._start
        elapsed, gained = now - started, fraction - first
        if elapsed < MIN_ELAPSED_S or gained < MIN_GAIN or fraction >= 1.0:
            return None
        return elapsed * (1.0 - fraction) / gained

    def close(self) -> None:
        """End the redrawn line so that what follows starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def format_duration(seconds: float) -> str:
    """42s, 3m05s, 1h02m: short enough for the end of a progress line."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def describe(event: ProgressEvent) -> str:
    """What the engine is doing, in words: phase, epoch, batch, loss, accuracy, chips."""
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
