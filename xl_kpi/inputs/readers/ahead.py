"""CSV exports read ahead: while the plan workbook is read, one background thread has pyarrow parse the CSV
files of ``--data`` (:func:`reading_ahead`), and the reader that then asks for such a file with the guessed
encoding and separator gets that grid, or the error its read raised (:func:`take`).

pyarrow parses without holding the GIL, so reading a large export overlaps with the plan, the imports and the
checks that come before the data (about half a second of a validation on two cores). Nothing changes but when
the bytes are read: each file is still read once, hashed (the thread runs in the caller's context, see
:mod:`xl_kpi.inputs.inputbytes`) and its problems reported where and in the order they were before. A file
read with other options (a Sources row's encoding) is read again by its reader; files nobody asks for are
discarded when the block ends, which waits for the read under way, so no thread outlives it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xl_kpi.inputs.readers.sniff import CSV_SUFFIXES

_AHEAD: contextvars.ContextVar[dict[str, Future[Any]] | None] = contextvars.ContextVar("xl_kpi_read_ahead",
                                                                                       default=None)


def _key(path: str | Path) -> str:
    return str(Path(path).resolve())


@contextmanager
def reading_ahead(paths: Iterable[str | Path]) -> Iterator[None]:
    """Inside the block, the CSV files among ``paths`` are being parsed in the background, in order."""
    from xl_kpi.inputs.readers.csvarrow import read_csv_arrow

    csvs = list(dict.fromkeys(_key(p) for p in paths if Path(p).suffix.casefold() in CSV_SUFFIXES
                              and Path(p).is_file()))
    if not csvs:
        yield
        return
    pending: dict[str, Future[Any]] = {}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xl_kpi-read-ahead")
    try:
        for key in csvs:  # each in a copy of this context: the hashes go to the caller's recording
            pending[key] = pool.submit(contextvars.copy_context().run, read_csv_arrow, Path(key))
        token = _AHEAD.set(pending)
        try:
            yield
        finally:
            _AHEAD.reset(token)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def take(path: str | Path, encoding: str | None = None, separator: str | None = None) -> Future[Any] | None:
    """The read under way of ``path`` (its ``result()`` is the grid, or raises the read's error), handed out
    once; None when it is not being read ahead, or when other options than the guessed ones are asked for."""
    pending = _AHEAD.get()
    if not pending or encoding is not None or separator is not None:
        return None
    return pending.pop(_key(path), None)
