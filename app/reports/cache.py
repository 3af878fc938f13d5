"""Rendered figures kept per (job id, revision, figure name).

A job's revision changes with everything a client can see of it, so a cached SVG is
never stale. Drawing a figure with matplotlib is slow next to sending stored bytes, so
the newest entries are kept, up to a byte budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

Key = tuple[str, int, str]


class FigureCache:
    """A small thread-safe LRU of SVG bytes, bounded by total size."""

    def __init__(self, max_bytes: int = 32 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Key, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get_or_render(self, key: Key, render: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        svg = render()  # outside the lock: other figures render meanwhile
        with self._lock:
            if key not in self._items:
                self._items[key] = svg
                self._size += len(svg)
            while self._size > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)
        return svg

    def __len__(self) -> int:
        return len(self._items)
