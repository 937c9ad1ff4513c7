"""Giving the memory a finished stage freed back to the operating system (:func:`release_memory`).

Freed memory is not returned by itself: glibc's malloc keeps freed blocks in its heaps (one per thread that
allocated) and pyarrow's allocator (mimalloc, which the CSV reader and pandas' text columns use) keeps its
segments for reuse. Reading a 100,000-employee plan leaves some 150 MB of such free memory behind (the calamine
grid, the checked frames), and the peak resident memory of a run counts it as if it were still in use while the
cards and the summary are written (bench_memory.py --generate). Called between stages, where a large working
set has just been dropped; elsewhere it costs a few milliseconds for nothing. It imports nothing of xl_kpi (any
layer may call it) and nothing beyond the standard library (pyarrow only if it is already loaded).
"""

from __future__ import annotations

import ctypes
import gc
import sys
from typing import Any

_LIBC: Any = None
"""glibc, once looked up (False: not glibc, nothing to trim)."""


def _glibc_trim() -> Any:
    """``malloc_trim`` of glibc, or None (musl, macOS, Windows: no such call)."""
    global _LIBC
    if _LIBC is None:
        try:
            lib = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
            _LIBC = lib if lib is not None and hasattr(lib, "malloc_trim") and hasattr(lib, "gnu_get_libc_version") \
                else False
        except OSError:  # pragma: no cover - no C library to open
            _LIBC = False
    return _LIBC.malloc_trim if _LIBC else None


def release_memory(collect: bool = True) -> None:
    """Return the free memory of the process's allocators to the system: a garbage collection first (``collect``:
    the frames just dropped often sit in reference cycles), then pyarrow's unused memory (if pyarrow is loaded)
    and glibc's ``malloc_trim(0)`` (every heap; nothing on other C libraries). Nothing in use moves or changes."""
    if collect:
        gc.collect()
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        try:
            pa.default_memory_pool().release_unused()
        except (AttributeError, NotImplementedError):  # pragma: no cover - an old pyarrow
            pass
    trim = _glibc_trim()
    if trim is not None:
        trim(0)
