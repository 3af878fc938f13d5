"""Keep freed memory in the process, so that per-step temporaries do not page-fault.

A training step allocates and frees dozens of tensors of 0.1 to 2 MB (the weight
transform of a 256 x 784 layer, activation quantizers, gradients). With glibc's default
settings such blocks are given back to the kernel when freed (trimmed from the heap top,
or unmapped), and the next step page-faults fresh zero pages for every one of them,
which costs more than the arithmetic on them. Raising the mmap and trim thresholds
(``mallopt``) lets the heap keep up to ``TRIM_BYTES`` of free memory for reuse instead.
The cost is resident memory that stays at its high-water mark (bounded by the study's
own peak). Nothing happens on C libraries without ``mallopt`` (musl, macOS, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_BYTES = 32 << 20
"""Blocks above this are still mapped on their own (glibc's largest allowed threshold)."""
TRIM_BYTES = 128 << 20
"""Free memory at the heap top the process keeps before giving it back."""


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc malloc once per process; True when it took effect."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_BYTES)
    )


__all__ = ["keep_freed_memory"]
