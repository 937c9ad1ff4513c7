"""Read an input file once, and remember the sha256 of exactly the bytes that were read.

The audit record (manifest.json) must name the bytes a run used, not what is on disk a moment
later: a data file saved again during the run would otherwise be recorded with bytes that were
never parsed. Readers call :func:`read_input` and parse from the returned bytes (``io.BytesIO``);
:func:`recording` collects ``{resolved path: sha256}`` for the run. A file read twice in one run
with different bytes (saved in between) is refused, so a run never mixes two versions of a file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

_SEEN: ContextVar[dict[str, str] | None] = ContextVar("xl_kpi_input_hashes", default=None)


class ChangedWhileReading(OSError):
    """The same input gave other bytes on a second read during one run."""


@contextmanager
def recording() -> Iterator[dict[str, str]]:
    """Collect the sha256 of every input read inside the ``with`` block, by resolved path."""
    seen: dict[str, str] = {}
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)


def is_recording() -> bool:
    """Whether the inputs read now are hashed into a :func:`recording` (a read made outside it would be missing)."""
    return _SEEN.get() is not None


def read_input(path: str | Path) -> bytes:
    """The bytes of ``path`` (read once); their sha256 is recorded when inside :func:`recording`."""
    p = Path(path)
    data = p.read_bytes()
    seen = _SEEN.get()
    if seen is not None:
        key = str(p.resolve())
        digest = hashlib.sha256(data).hexdigest()
        if seen.setdefault(key, digest) != digest:
            raise ChangedWhileReading(f"{p.name} changed while it was being read")
        # setdefault keeps the first digest: the bytes the run parsed first
    return data
