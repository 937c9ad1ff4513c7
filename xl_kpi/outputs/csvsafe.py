"""Formula-safe text in the CSVs xl_kpi writes, reversibly (one function pair for every writer and reader).

Excel runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, after a tab or carriage return,
often still) as a formula. Every text cell xl_kpi writes to a CSV goes through :func:`neutralise`: text
starting with one of those characters gets a leading apostrophe, and so does text that already starts
with an apostrophe. :func:`restore` removes exactly one leading apostrophe, so the round trip is exact:
``=1`` is written ``'=1`` and ``'=1`` is written ``''=1``; both read back as they were.

:func:`csv_bytes` (and :func:`csv_chunks`, the same bytes in pieces) and :func:`read_rows` are the CSV writer
and reader built on the pair (UTF-8 with a BOM for Excel, CRLF line ends).

Only text is neutralised. Number columns (total_bonus, scores, amounts) are written as numbers, so a
negative amount stays ``-5.00`` and is read as a number; readers must not call :func:`restore` on them.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

FORMULA_START = ("=", "+", "-", "@")
"""Text starting with one of these is a formula to Excel: neutralised in a CSV, quote-prefixed in summary.xlsx."""
DANGEROUS = (*FORMULA_START, "\t", "\r", "'")
"""What :func:`neutralise` guards in a CSV: a formula start, a leading tab or carriage return, a leading apostrophe."""


def neutralise(text: str) -> str:
    """``text`` as it goes into a CSV cell: an apostrophe before formula-like text or a leading apostrophe."""
    return "'" + text if text.startswith(DANGEROUS) else text


def restore(cell: str) -> str:
    """The text :func:`neutralise` was given: one leading apostrophe removed, if there is one."""
    return cell[1:] if cell.startswith("'") else cell


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], *, plain: Collection[int] = ()) -> bytes:
    """A CSV for Excel: UTF-8 with BOM, CRLF; every text cell through :func:`neutralise`, numbers as numbers.

    ``plain`` lists the columns that hold numbers already formatted as text (``-5.00``): written as they are.
    """
    return b"".join(csv_chunks(header, rows, plain=plain))


CHUNK_ROWS = 4096
"""Rows :func:`csv_chunks` encodes at a time."""


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[Any]], *, plain: Collection[int] = (),
               size: int = CHUNK_ROWS) -> Iterator[bytes]:
    """:func:`csv_bytes` in pieces of ``size`` rows (the first with the BOM and the header): joined, the very same
    bytes, for a writer that streams a large CSV (100,000 manifest rows held as one text and its bytes: ~100 MB)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    encoding, k = "utf-8-sig", 0
    for row in rows:
        w.writerow([neutralise(v) if isinstance(v, str) and i not in plain else v for i, v in enumerate(row)])
        k += 1
        if k >= size:
            yield buf.getvalue().encode(encoding)
            encoding, k = "utf-8", 0
            buf.seek(0)
            buf.truncate()
    if k or encoding == "utf-8-sig":
        yield buf.getvalue().encode(encoding)


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of a CSV that xl_kpi wrote (manifest, errors, index, passwords), each cell through :func:`restore`."""
    text = Path(path).read_bytes().decode("utf-8-sig")
    return [{k: restore("" if v is None else str(v)) for k, v in row.items() if k is not None}
            for row in csv.DictReader(io.StringIO(text))]
