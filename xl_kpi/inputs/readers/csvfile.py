"""CSV files: the encoding and separator guessed (:func:`detect_encoding`, :func:`detect_separator`),
lines, columns and cells counted before pandas parses the text, short lines and parser errors named by line."""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

from xl_kpi.i18n import Msg
from xl_kpi.inputs.readers.limits import FileReadError, Limits, _check_cell_text, _count, _raise_limit, limits
from xl_kpi.inputs.readers.sniff import _NOT_A_SPREADSHEET, _read_input, _refuse, check_file

if TYPE_CHECKING:
    import pandas as pd


def detect_encoding(data: bytes) -> str:
    """'utf-8-sig' (BOM), 'utf-16' (BOM), 'utf-8' if it decodes, else 'cp1251' (Russian Windows Excel)."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:  # a block at a time: no text of the whole file, and a failure copies only its block into the exception
        for start in range(0, len(view), _DECODE_BLOCK):
            decoder.decode(view[start:start + _DECODE_BLOCK], final=start + _DECODE_BLOCK >= len(view))
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8"


_DECODE_BLOCK = 1 << 20
"""Bytes decoded at a time by :func:`detect_encoding`."""


def detect_separator(text: str) -> str:
    """The separator used in the first non-empty line: ';', tab or ',' (the most frequent, outside quotes)."""
    for line in text.splitlines():
        if line.strip():
            counts = {sep: _count_outside_quotes(line, sep) for sep in (";", "\t", ",")}
            best = max(counts, key=lambda s: counts[s])
            return best if counts[best] else ","
    return ","


def _count_outside_quotes(line: str, sep: str) -> int:
    try:
        return len(next(csv.reader([line], delimiter=sep))) - 1
    except (csv.Error, StopIteration):
        return line.count(sep)


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_EOF_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


def read_csv_grid(path: str | Path, *, max_bytes: int | None = None, encoding: str | None = None,
                  separator: str | None = None) -> pd.DataFrame:
    """A CSV file as a grid of text cells (row 0 = line 1), guessing encoding and separator (unless given).

    Refuses (:class:`FileReadError`) a file that is too large, is not text, or holds more rows,
    columns, cells or characters in a cell than :func:`limits` allow. An empty file gives an
    empty grid.
    """
    import pandas as pd  # here, not with the module: the Arrow reader (csvarrow) and the early read need no pandas

    path = Path(path)
    lim = limits()
    name = path.name
    _, kind = check_file(path, max_bytes or lim.data_bytes, "data file")
    if kind == "empty":
        return pd.DataFrame()
    if kind != "text":
        raise _refuse(name, kind, "csv", path)
    data = _read_input(path)
    given = encoding
    encoding = encoding or detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise FileReadError(name, Msg("the text is not {encoding}", encoding=given) if given else
                            Msg("the text is neither UTF-8 nor cp1251"),
                            Msg("correct the encoding in the Sources sheet") if given else
                            Msg("save it as CSV UTF-8 (Excel: File → Save As → CSV UTF-8)")) from None
    del data
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise FileReadError(name, Msg("the file holds NUL characters: it is not a text (CSV) file"),
                            _NOT_A_SPREADSHEET)
    lines = count_lines(name, text, lim)
    sep = separator or detect_separator(text)
    width = header_width(text, sep)
    if width > lim.columns:
        raise FileReadError(name, Msg("the header line has {n} columns, more than the {limit} a table may have",
                                      n=_count(width), limit=_count(lim.columns)),
                            Msg("check the separator and the export, or {raise_limit}",
                                raise_limit=_raise_limit("columns", str(width))), row=1)
    check_cells(name, lines, width, lim)
    try:
        grid = pd.read_csv(
            io.StringIO(text), sep=sep, header=None, dtype=str, keep_default_na=False, na_values=[""],
            skip_blank_lines=False, engine="c",
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except pd.errors.ParserError as e:
        raise _csv_parser_error(name, sep, str(e)) from None
    _check_line_widths(text, sep, name)
    _check_cell_text(grid, name, None, lim)
    return grid


def count_lines(name: str, text: str | bytes, lim: Limits) -> int:
    """The file's lines (a last line without a newline counts); more than ``lim.rows`` is refused with the fix."""
    nl = "\n" if isinstance(text, str) else b"\n"
    lines = text.count(nl) + (0 if text.endswith(nl) else 1)  # type: ignore[arg-type]
    if lines > lim.rows:
        raise FileReadError(name, Msg("the file has {n} lines, more than the {limit} rows a table may have",
                                      n=_count(lines), limit=_count(lim.rows)),
                            Msg("split the export (e.g. by month), or {raise_limit}",
                                raise_limit=_raise_limit("rows", str(lines))))
    return lines


def header_width(text: str, sep: str) -> int:
    """The columns of the first non-blank line, separators inside quotes not counted."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    return _count_outside_quotes(first, sep) + 1


def check_cells(name: str, lines: int, width: int, lim: Limits) -> None:
    """Refuse a raw-data CSV file of more than ``lim.source_cells`` cells (lines × header columns)."""
    if lines * width > lim.source_cells:
        raise FileReadError(name, Msg("the file has {lines} lines × {columns} columns = {cells} cells, more than "
                                      "the {limit} one data file may have", lines=_count(lines),
                                      columns=_count(width), cells=_count(lines * width),
                                      limit=_count(lim.source_cells)),
                            Msg("export only the rows and columns needed (e.g. one month), or {raise_limit}",
                                raise_limit=_raise_limit("source_cells", str(lines * width))))


def _check_line_widths(text: str, sep: str, name: str) -> None:
    """Refuse a CSV line with fewer values than the first line: pandas pads it with empty cells, so a
    missing amount would silently drop out of a sum. Blank lines are allowed (they are empty rows)."""
    import csv

    old = csv.field_size_limit()
    try:
        csv.field_size_limit(max(old, len(text) + 1))
        width = None
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=False)
        start = 1
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                start = reader.line_num + 1
                continue
            if width is None:
                width = len(record)
            elif len(record) < width:
                raise FileReadError(
                    name, Msg("line {line} has {got} values but the first line has {want} (separator {sep})",
                              line=start, got=len(record), want=width, sep=repr(sep)),
                    Msg("add the missing values (an empty value is two {sep} in a row), or re-export the file",
                        sep=repr(sep)), row=start)
            start = reader.line_num + 1
    except csv.Error:  # pandas has read it; a quoting corner the csv module sees otherwise is not our concern
        return
    finally:
        csv.field_size_limit(old)


def _csv_parser_error(name: str, sep: str, message: str) -> FileReadError:
    m = _FIELDS.search(message)
    if m:
        want, line, got = (int(x) for x in m.groups())
        return FileReadError(
            name, Msg("line {line} has {got} values but the first line has {want} (separator {sep})", line=line,
                      got=got, want=want, sep=repr(sep)),
            Msg("a {sep} inside a value? put such values in double quotes, or remove the extra {sep}", sep=repr(sep)),
            row=line)
    m = _EOF_QUOTE.search(message)
    if m:
        line = int(m.group(1)) + 1
        return FileReadError(name, Msg('a double quote (") opened on line {line} is never closed', line=line),
                             Msg('close the quote, or double a quote that belongs to the text ("")'), row=line)
    return FileReadError(name, Msg("cannot read it as CSV with separator {sep}: {error}", sep=repr(sep),
                                   error=message.strip()),
                         Msg("save it from Excel as CSV UTF-8 and try again"))
