"""CSV raw data read by pyarrow (:func:`read_csv_arrow`): CRM exports as they come (cp1251 or UTF-8,
``;``/``,``/tab, every value quoted, multi-line quoted values), every cell kept as text, into an Arrow
table without a pandas round trip.

The same limits as :func:`~xl_kpi.inputs.readers.csvfile.read_csv_grid` apply before parsing. A file
pyarrow cannot parse as a clean rectangle (a short or long line, a quote never closed) gives ``None``:
the caller then reads it with the pandas reader, whose messages name the line. pyarrow is imported here only, lazily.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import TYPE_CHECKING

from xl_kpi.inputs.readers.cp1251 import UNDEFINED, utf8_column
from xl_kpi.inputs.readers.csvfile import check_cells, count_lines, detect_encoding, detect_separator, header_width
from xl_kpi.inputs.readers.limits import limits
from xl_kpi.inputs.readers.sniff import _read_input, _refuse, check_file

if TYPE_CHECKING:
    import pyarrow as pa

_FIRST_LINES = 64 * 1024


def read_csv_arrow(path: str | Path, *, encoding: str | None = None, separator: str | None = None) -> pa.Table | None:
    """A CSV file as an Arrow grid of text cells (columns ``f0``, ``f1``…; row 0 = the first record),
    or None when only the line-by-line reader can say what is wrong with it (see the module doc).

    ``encoding`` and ``separator`` replace the guess (a Sources sheet row). Raises :class:`FileReadError`
    for what no reader accepts: too large, not text, beyond a limit.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv

    path = Path(path)
    lim = limits()
    name = path.name
    _, kind = check_file(path, lim.data_bytes, "data file")
    if kind == "empty":
        return None
    if kind != "text":
        raise _refuse(name, kind, "csv", path)
    data = _read_input(path)
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            return None  # the line reader names the unknown encoding
        if encoding == "utf-8" and data.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
    encoding = encoding or detect_encoding(data)
    if encoding not in ("utf-8", "utf-8-sig", "cp1251") or b"\x00" in data:
        return None  # UTF-16, other encodings, NUL characters: the line reader decodes and explains
    head = data[:_FIRST_LINES].decode(encoding, errors="ignore").removeprefix("\ufeff")
    if not head.strip() or data[:1] in (b"\r", b"\n") or data.count(b'"') % 2:
        return None  # an odd number of quotes: one is never closed (pyarrow would take the rest of the file)
    lines = count_lines(name, data, lim)
    sep = separator or detect_separator(head)
    width = header_width(head, sep)
    if width > lim.columns:
        return None  # the line reader names the limit and the line
    check_cells(name, lines, width, lim)
    names = [f"f{i}" for i in range(width)]
    raw = encoding == "cp1251"  # read as bytes, each column re-encoded after (readers/cp1251.py): faster than
    if raw and UNDEFINED in data:  # pyarrow's transcoding through Python's codec
        return None  # not cp1251 text: the line reader says so
    try:
        grid = csv.read_csv(
            pa.BufferReader(data),  # the bytes hashed, read in place (a BytesIO is copied out block by block)
            read_options=csv.ReadOptions(encoding="utf8", column_names=names),  # pyarrow's 1 MB blocks: 16 MB ones
            # were 1.3-2.5x slower on a 1M-row export (fewer blocks parsed in parallel)
            # ignore_empty_lines=False: a blank line stays an (empty) row, as in the line reader; skipping
            # it would shift the row numbers of every row below
            parse_options=csv.ParseOptions(delimiter=sep, quote_char='"', double_quote=True, newlines_in_values=True,
                                           ignore_empty_lines=False),
            convert_options=csv.ConvertOptions(column_types=dict.fromkeys(names, pa.binary() if raw else pa.string()),
                                               strings_can_be_null=True, null_values=[""],
                                               quoted_strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, LookupError):
        return None
    del data
    if raw:
        grid = pa.table([utf8_column(col) for col in grid.columns], names=names)
    if encoding == "utf-8-sig" and grid.num_rows:
        grid = grid.set_column(0, "f0", _strip_bom(grid.column(0)))
    for col in grid.columns:
        if (pc.max(pc.binary_length(col)).as_py() or 0) <= lim.cell_chars:
            continue  # no more bytes than the limit, so no more characters: no need to count them
        longest = pc.max(pc.utf8_length(col)).as_py()
        if longest is not None and longest > lim.cell_chars:
            return None  # the line reader names the cell
    return grid


def use_jemalloc() -> None:
    """Have pyarrow allocate with jemalloc where its wheel has it, unless ARROW_DEFAULT_MEMORY_POOL chooses: on a
    1,000,000-row export validate then spends about a third less time in the kernel than with the default
    (mimalloc) and peaks about 50 MB lower (benchmarks/bench_sources.py). For the command line's process (the CLI,
    and ``validate``'s early read before it: :func:`xl_kpi.inputs.readers.ahead.read_early`), not for a library."""
    import os

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        import pyarrow as pa

        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (ImportError, NotImplementedError, AttributeError):  # no pyarrow, or a wheel without jemalloc
        pass


def _strip_bom(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """The first cell without a byte-order mark (pyarrow keeps it when told the encoding is UTF-8)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    first = col[0].as_py()
    if first is None or not first.startswith("\ufeff"):
        return col
    fixed = pa.chunked_array([pa.array([first.removeprefix("\ufeff")], pa.string()), col.slice(1)])
    return pc.cast(fixed, pa.string())
