"""CSV exports read ahead: while the plan workbook is read, one background thread has pyarrow parse the CSV
files of ``--data`` (:func:`reading_ahead`), and the reader that then asks for such a file with the guessed
encoding and separator gets that grid, or the error its read raised (:func:`take`).

pyarrow parses without holding the GIL, so reading a large export overlaps with the plan, the imports and the
checks that come before the data (about half a second of a validation on two cores). Nothing changes but when
the bytes are read: each file is still read once, hashed (the thread runs in the caller's context, see
:mod:`xl_kpi.inputs.inputbytes`) and its problems reported where and in the order they were before. A file
read with other options (a Sources row's encoding) is read again by its reader; files nobody asks for are
discarded when the block ends, which waits for the read under way, so no thread outlives it.

``xl-kpi validate`` starts these reads earlier still (:func:`read_early`, from ``python -m xl_kpi`` before the
command line, typer and the validate modules are imported; pandas too once ``xl_kpi/__init__`` imports lazily):
:func:`reading_ahead` then adopts the reads already under way for the files it is given, so the half second of
parsing a large export also overlaps with the imports. Outside a :func:`~xl_kpi.inputs.inputbytes.recording` only
(the early reads hash into no run's record): inside one, every file is read again in the caller's context as before.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xl_kpi.inputs.inputbytes import is_recording
from xl_kpi.inputs.readers.sniff import CSV_SUFFIXES

_AHEAD: contextvars.ContextVar[dict[str, Future[Any]] | None] = contextvars.ContextVar("xl_kpi_read_ahead",
                                                                                       default=None)


_EARLY: list[tuple[ThreadPoolExecutor, dict[str, Future[Any]]]] = []
"""The reads :func:`read_early` started: its pool and the futures by resolved path (adopted, or shut down, by the
next :func:`reading_ahead`)."""


def _key(path: str | Path) -> str:
    return str(Path(path).resolve())


def _csv_keys(paths: Iterable[str | Path]) -> list[str]:
    """The resolved paths of the CSV files among ``paths``, each once, in order."""
    return list(dict.fromkeys(_key(p) for p in paths if Path(p).suffix.casefold() in CSV_SUFFIXES
                              and Path(p).is_file()))


def _submit(pool: ThreadPoolExecutor, key: str) -> Future[Any]:
    """The read of ``key`` on ``pool``, in a copy of this context (the hashes go to the caller's recording)."""
    from xl_kpi.inputs.readers.csvarrow import read_csv_arrow

    return pool.submit(contextvars.copy_context().run, read_csv_arrow, Path(key))


def read_early(paths: Iterable[str | Path]) -> None:
    """Start reading the CSV files among ``paths`` now (see the module doc; the paths of a ``validate`` command
    line: :func:`xl_kpi.inputs.datafiles.read_early`), pyarrow allocating as the CLI has it
    (:func:`~xl_kpi.inputs.readers.csvarrow.use_jemalloc`); nothing when a reading is already started."""
    if _EARLY:
        return
    csvs = _csv_keys(paths)
    if not csvs:
        return
    from xl_kpi.inputs.readers.csvarrow import use_jemalloc

    use_jemalloc()  # the allocator the CLI chooses, before the reads allocate (the CLI's choice comes too late)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xl_kpi-read-ahead")
    _EARLY.append((pool, {key: _submit(pool, key) for key in csvs}))


@contextmanager
def reading_ahead(paths: Iterable[str | Path]) -> Iterator[None]:
    """Inside the block, the CSV files among ``paths`` are being parsed in the background, in order (or were
    since :func:`read_early`)."""
    early_pool, early = _EARLY.pop() if _EARLY else (None, {})
    if is_recording():  # a recording: read in this context, so that the hashes go to it
        early = {}
    csvs = _csv_keys(paths)
    if not csvs:
        if early_pool is not None:
            early_pool.shutdown(wait=True, cancel_futures=True)
        yield
        return
    pending: dict[str, Future[Any]] = {}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xl_kpi-read-ahead")
    try:
        for key in csvs:
            pending[key] = early[key] if key in early else _submit(pool, key)
        token = _AHEAD.set(pending)
        try:
            yield
        finally:
            _AHEAD.reset(token)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if early_pool is not None:
            early_pool.shutdown(wait=True, cancel_futures=True)


def take(path: str | Path, encoding: str | None = None, separator: str | None = None) -> Future[Any] | None:
    """The read under way of ``path`` (its ``result()`` is the grid, or raises the read's error), handed out
    once; None when it is not being read ahead, or when other options than the guessed ones are asked for."""
    pending = _AHEAD.get()
    if not pending or encoding is not None or separator is not None:
        return None
    return pending.pop(_key(path), None)
