"""The workbook as XlsxWriter writes it: shared cell formats (:class:`_Styles`), the worksheet with quick
formula preparation (:class:`_Worksheet`), a sheet addressed as Excel shows it (:class:`_Sheet`) and the
book in constant-memory mode, closed to deterministic bytes (:class:`_Book`)."""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import xlsxwriter
import xlsxwriter.workbook
from xlsxwriter.format import Format
from xlsxwriter.utility import _preserve_whitespace, _utf16_len, _utf16_truncate, xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from xl_kpi.outputs.csvsafe import FORMULA_START
from xl_kpi.outputs.numlang import tag_code
from xl_kpi.outputs.values import cell_value as _cell_value

_BORDER_PROPS = {"border": 1, "border_color": "#BFBFBF"}
_STYLE_KINDS: dict[str, dict[str, Any]] = {
    "header": {"bold": True, "font_color": "#FFFFFF", "bg_color": "#1F4E78", "align": "center",
               "valign": "vcenter", "text_wrap": True},
    "text": {"valign": "vcenter"},
    "number": {"align": "right", "valign": "vcenter"},
}
_TOTAL_PROPS = {"bold": True, "bg_color": "#DDEBF7", "top": 2, "top_color": "#1F4E78"}
_CM_PX = 96 / 2.54
"""Pixels per centimetre (chart sizes are given in cm, as Excel's dialog shows them)."""


_PLAIN_FUNCTIONS = frozenset({"AND", "AVERAGE", "AVERAGEIF", "COUNTIF", "COUNTIFS", "ISNUMBER", "RANK", "ROUND",
                              "SUBTOTAL", "SUM", "SUMIF", "SUMPRODUCT"})
"""The worksheet functions the summary writes: Excel 2007 functions, which no ``_xlfn.`` prefix applies to."""
_FUNCTION_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\(")
_XML_ESCAPES = re.compile('[&<>]')
_NEEDS_CONTROL_ESCAPE = re.compile("_x[0-9a-fA-F]{4}_|[\x00-\x08\x0b-\x1f\ufffe\uffff]")
"""What XlsxWriter's control-character escaping changes (most texts hold none of it)."""
_NOT_PLAIN_CHAR = re.compile(r"[&<>\x00-\x1f\ufffe\uffff]")
_ESCAPE_LIKE = re.compile(r"_x[0-9a-fA-F]{4}_")
_BLOCK_SEP = "\u2028"
"""Joins a block's texts for one :func:`_not_plain` search (it matches no part of either pattern)."""


def _not_plain(text: str) -> bool:
    """Whether :meth:`_Sheet.bodies` cannot write ``text`` as it is: XML escapes, control characters (dropped or
    escaped), something that reads as XlsxWriter's ``_xHHHH_`` escape; so is text with surrounding white space
    (kept with xml:space) or a formula start (quote-prefixed), which the caller checks. Two searches, not one
    with an alternative: the character class alone is searched four times as fast."""
    return bool(_NOT_PLAIN_CHAR.search(text)) or ("_x" in text and bool(_ESCAPE_LIKE.search(text)))


_STARTS = frozenset(FORMULA_START)
_PLAIN_MAX = 16384
"""Shorter text is never truncated (Excel's limit is 32,767 UTF-16 units)."""
_MADE_LIMIT = 4096
"""Most distinct values :meth:`_Sheet.bodies` remembers between blocks of rows."""
_STRMAX = 32767
"""Excel's longest text in a cell, in UTF-16 units (XlsxWriter truncates to it)."""


def _escape(text: str) -> str:
    if not _XML_ESCAPES.search(text):
        return text
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def blank_body(fmt: Format) -> str:
    """A blank cell with a format, as :meth:`_Worksheet.write_rows` takes it."""
    return f' s="{fmt._get_xf_index()}"/>'


def number_body(x: float, fmt: Format) -> str:
    """A number cell (XlsxWriter's 16 significant digits)."""
    return f' s="{fmt._get_xf_index()}"><v>{x:.16G}</v></c>'


def number_bodies(values: np.ndarray, fmt: Format, stored: list[float] | None = None) -> list[str]:
    """:func:`number_body` of each value; a missing (or infinite) one is a blank cell with the format.

    ``stored`` gets the numbers as the file holds them (those written, in order), from the same digits."""
    xf = fmt._get_xf_index()
    blank = f' s="{xf}"/>'
    if stored is None:
        return [f' s="{xf}"><v>{x:.16G}</v></c>' if math.isfinite(x) else blank
                for x in np.asarray(values, dtype=float).tolist()]
    texts = [f"{x:.16G}" if math.isfinite(x) else "" for x in np.asarray(values, dtype=float).tolist()]
    stored.extend(map(float, filter(None, texts)))
    return [f' s="{xf}"><v>{x}</v></c>' if x else blank for x in texts]


def string_body(text: str, fmt: Format) -> str:
    """An inline text cell, escaped as XlsxWriter escapes it (always as text, never as raw XML)."""
    if len(text) > _STRMAX // 2 and _utf16_len(text) > _STRMAX:
        text = _utf16_truncate(text, _STRMAX)
    if _NEEDS_CONTROL_ESCAPE.search(text):
        text = Worksheet._escape_control_characters(text)
    space = ' xml:space="preserve"' if _preserve_whitespace(text) else ""
    return f' s="{fmt._get_xf_index()}" t="inlineStr"><is><t{space}>{_escape(text)}</t></is></c>'


def boolean_body(value: bool, fmt: Format) -> str:
    """A TRUE/FALSE cell."""
    return f' s="{fmt._get_xf_index()}" t="b"><v>{int(bool(value))}</v></c>'


def formula_body(formula: str, cached: int | float, fmt: Format) -> str:
    """A formula cell with its cached number (the formula as :meth:`_Worksheet._prepare_formula` leaves it)."""
    if isinstance(cached, bool) or not isinstance(cached, (int, float)) or not math.isfinite(cached):
        raise ValueError(f"formula_body takes a finite number as the cached value of {formula}, not {cached!r}")
    return f' s="{fmt._get_xf_index()}"><f>{_escape(formula)}</f><v>{cached}</v></c>'


ROWS_IN_MEMORY = 24_000_000
"""Characters of row XML a book holds in memory until it is closed (about 13,000 employees with position
sheets); past it, a sheet's rows go to a temporary file, as XlsxWriter's constant-memory mode keeps them."""


class _RowBudget:
    """What is left of a book's :data:`ROWS_IN_MEMORY` (shared by its sheets' :class:`_RowSink`)."""

    def __init__(self, chars: int) -> None:
        self.left = chars


class _RowSink:
    """A sheet's row XML until the book is closed, where constant-memory mode keeps it in a temporary file:
    held as the texts written while the book's :class:`_RowBudget` lasts (no encoding, writing, reading back
    and decoding of some 18 MB of XML for 10,000 employees), then moved to an unnamed temporary file that
    takes the rest."""

    def __init__(self, budget: _RowBudget) -> None:
        self.budget = budget
        self.parts: list[str] = []
        self.held = 0
        self.file: Any = None

    def write(self, text: str) -> int:
        if self.file is not None:
            return int(self.file.write(text))
        self.parts.append(text)
        self.held += len(text)
        self.budget.left -= len(text)
        if self.budget.left < 0:
            self._spill()
        return len(text)

    def _spill(self) -> None:
        self.file = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # removed when closed (or on failure)
        self.file.writelines(self.parts)
        self.budget.left += self.held
        self.parts, self.held = [], 0

    def copy_to(self, fh: Any) -> None:
        """Write the rows held (or kept in the file) to ``fh``, the sheet's XML."""
        if self.file is None:
            fh.writelines(self.parts)
            return
        self.file.seek(0)
        while data := self.file.read(1 << 16):
            fh.write(data)

    def close(self) -> None:
        self.budget.left += self.held
        self.parts, self.held = [], 0
        if self.file is not None:
            self.file.close()
            self.file = None


class _Worksheet(Worksheet):
    """XlsxWriter's worksheet, with a quick formula preparation for the formulas the summary writes.

    ``write_formula`` runs every formula through some thirty regular expressions that add the ``_xlfn.``
    prefix to Excel 365 functions: 50 µs a formula, a third of a 10,000-row summary's time (one RANK
    per row). A formula whose functions are all in :data:`_PLAIN_FUNCTIONS` (and is not an array
    formula) needs none of them and is used as written; anything else goes through XlsxWriter's own
    preparation. tests/test_summary.py checks that both give the same text for every formula written.
    """

    def _prepare_formula(self, formula: str, expand_future_functions: bool = False) -> str:
        if (not expand_future_functions and not self.use_future_functions and formula[:1] not in ("{", "=")
                and not formula.endswith("}")
                and all(name.upper() in _PLAIN_FUNCTIONS for name in _FUNCTION_NAME.findall(formula))):
            return formula
        return super()._prepare_formula(formula, expand_future_functions)

    def hold_rows(self, budget: _RowBudget) -> None:
        """Keep the rows in a :class:`_RowSink` (constant-memory mode; before any row is written)."""
        if not self.constant_memory or self.row_data_fh is None or self.row_data_fh.tell():
            raise ValueError("hold_rows needs a constant-memory worksheet with no row written yet")
        self.row_data_fh.close()
        os.unlink(self.row_data_filename)  # XlsxWriter's temporary file, empty: the sink takes its place
        self.row_data_fh = self.fh = _RowSink(budget)

    def _opt_reopen(self) -> None:
        if not isinstance(self.row_data_fh, _RowSink):
            super()._opt_reopen()

    def _write_optimized_sheet_data(self) -> None:
        sink = self.row_data_fh
        if not isinstance(sink, _RowSink):
            super()._write_optimized_sheet_data()
        elif self.dim_rowmin is None:
            self._xml_empty_tag("sheetData")
        else:  # as XlsxWriter's: the rows between <sheetData> and </sheetData>
            self._xml_start_tag("sheetData")
            sink.copy_to(self.fh)
            sink.close()
            self._xml_end_tag("sheetData")

    def _xml_rich_inline_string(self, string: str, attributes: Any = ()) -> None:
        # XlsxWriter writes a text that starts with "<r>" and ends with "</r>" into the XML unescaped (it takes
        # it for rich text, which the summary never writes): a name "<r>a & b</r>" made the file unreadable.
        self._xml_inline_string(string, _preserve_whitespace(string), list(attributes))

    def write_rows(self, first_row: int, first_col: int, columns: Sequence[Sequence[str]]) -> None:
        """Rows ``first_row``… (0-based) at once, one list of cell bodies per column from ``first_col``.

        A body is what XlsxWriter writes after a cell's ``r`` attribute (see :func:`number_body`,
        :func:`blank_body`, :func:`string_body`, :func:`formula_body`); every column holds one for every
        row. The rows go to the sheet's row file as XlsxWriter's constant-memory mode would write the same
        cells one by one (tests/test_summary.py compares the bytes), without its per-cell work: 15 µs a cell,
        most of a 10,000-row summary's time. Needs constant-memory mode, rows after every row written so
        far, and rows with no height, format or comment of their own.
        """
        n = len(columns[0]) if columns else 0
        if not n:
            return
        last_row, last_col = first_row + n - 1, first_col + len(columns) - 1
        if any(len(c) != n for c in columns):
            raise ValueError("every column needs one cell body per row")
        if not self.constant_memory or first_row < self.previous_row or (first_row == self.previous_row
                                                                        and self.table.get(first_row)):
            raise ValueError("write_rows needs constant-memory mode and rows after those already written")
        if any(r in self.row_info or r in self.comments for r in range(first_row, last_row + 1)):
            raise ValueError("write_rows cannot write rows with their own height, format or comments")
        if self.excel_version != 2007 or self.default_row_height != self.original_row_height:
            raise ValueError("write_rows writes plain rows only")
        if self._check_dimensions(first_row, first_col) or self._check_dimensions(last_row, last_col):
            raise ValueError(f"rows {first_row}..{last_row} or columns {first_col}..{last_col} are off the sheet")
        if first_row > self.previous_row:
            self._write_single_row(first_row)  # the row buffered so far goes out first
        # a row is its number joining the pieces around it: '<row r="', '"><c r="A', '"' + body + '<c r="B', ...
        letters = [xl_col_to_name(c) for c in range(first_col, last_col + 1)]
        pieces: list[Sequence[str]] = [['<row r="'] * n, [f'"><c r="{letters[0]}'] * n]
        for k, bodies in enumerate(columns):
            tail = f'<c r="{letters[k + 1]}' if k + 1 < len(letters) else "</row>"
            pieces.append([f'"{b}{tail}' for b in bodies])
        rows = map(str, range(first_row + 1, last_row + 2))  # as text once, not once a cell
        self.fh.write("".join([r.join(p) for r, p in zip(rows, zip(*pieces, strict=True), strict=True)]))
        self.previous_row = last_row  # nothing buffered: the next row written starts afresh


class _Styles:
    """The cell formats of one workbook, each made once and shared by every cell that uses it."""

    def __init__(self, wb: xlsxwriter.Workbook, lang: str = "en") -> None:
        self.wb = wb
        self.lang = lang
        self._made: dict[tuple[str, str | None, bool, bool], Format] = {}

    def get(self, kind: str, num_format: str | None = None, *, total: bool = False, quote: bool = False) -> Format:
        """The format of a ``kind`` cell (header, text, number) with this number format, in a total row or not."""
        key = (kind, num_format, total, quote)
        fmt = self._made.get(key)
        if fmt is None:
            props: dict[str, Any] = {**_BORDER_PROPS, **_STYLE_KINDS[kind]}
            if num_format:  # in the summary's language: the same separators on every machine (PDFs)
                props["num_format"] = tag_code(num_format, self.lang)
            if total:
                props.update(_TOTAL_PROPS)
            if quote:
                props["quote_prefix"] = True  # Excel shows =… as typed and never evaluates it
            fmt = self._made[key] = self.wb.add_format(props)
            fmt._get_xf_index()  # numbered as made, not as first written: rows may be written column by column
        return fmt


class _Sheet:
    """One worksheet, addressed 1-based as Excel shows it, and the cached value of every formula written."""

    def __init__(self, book: _Book, title: str) -> None:
        self.title = title
        self.ws: _Worksheet = book.wb.add_worksheet(title, worksheet_class=_Worksheet)
        self.ws.hold_rows(book.rows)
        self.styles = book.styles
        self.cached: dict[tuple[int, int], Any] = {}

    def put(self, row: int, col: int, value: Any, fmt: str | None = None, *, numeric: bool = False,
            total: bool = False) -> None:
        """A constant: text is always a text cell (``=…`` stays a string, never a formula)."""
        write, value, style = self.cell(_cell_value(value), fmt, numeric=numeric, total=total)
        write(row - 1, col - 1, value, style)

    def cell(self, value: Any, fmt: str | None = None, *, numeric: bool = False,
             total: bool = False) -> tuple[Callable[[int, int, Any, Format], Any], Any, Format]:
        """(XlsxWriter write method, value, format) of a plain cell value (see :func:`_cell_value`)."""
        ws = self.ws
        if isinstance(value, str):
            style = self.styles.get("number" if numeric else "text", fmt, total=total,
                                    quote=value[:1] in FORMULA_START)
            return ws.write_string, value, style
        if value is None:
            return ws.write_blank, None, self.styles.get("number" if numeric else "text", fmt, total=total)
        if isinstance(value, bool):
            return ws.write_boolean, value, self.styles.get("number", fmt, total=total)
        return ws.write_number, value, self.styles.get("number", fmt, total=total)

    def bodies(self, values: list[Any], made: dict[tuple[type, Any], str] | None = None) -> list[str]:
        """The cell bodies (:meth:`_Worksheet.write_rows`) of a text column, as :meth:`cell` would write them.

        Each distinct value is converted once; ``made`` carries the conversions from one block of rows to the
        next (emptied when it grows past :data:`_MADE_LIMIT`, so unique names do not pile up).
        """
        if made is None:
            made = {}
        elif len(made) > _MADE_LIMIT:
            made.clear()
        plain = f' s="{self.styles.get("text")._get_xf_index()}" t="inlineStr"><is><t>'
        out = []
        strings = [v for v in values if type(v) is str]
        clean = not _not_plain(_BLOCK_SEP.join(strings))  # usually: then no text needs its own search
        if clean and len(strings) == len(values):  # all texts: written as they are unless one starts or ends oddly
            firsts, lasts = {v[:1] for v in strings}, {v[-1:] for v in strings}
            if ("" not in firsts and firsts.isdisjoint(_STARTS) and not any(c.isspace() for c in firsts | lasts)
                    and max(map(len, strings), default=0) < _PLAIN_MAX):
                return [f"{plain}{v}</t></is></c>" for v in strings]
        for v in values:
            if (type(v) is str and v and len(v) < _PLAIN_MAX and v[0] not in _STARTS and not v[0].isspace()
                    and not v[-1].isspace() and (clean or not _not_plain(v))):
                out.append(f"{plain}{v}</t></is></c>")  # most names: what the general path below makes of them
                continue
            try:
                key: tuple[type, Any] | None = (type(v), v)
                hit = made.get(key)  # type: ignore[arg-type]
            except TypeError:  # unhashable: convert every time
                key, hit = None, None
            if hit is None:
                _, value, style = self.cell(_cell_value(v))
                if value is None:
                    hit = blank_body(style)
                elif isinstance(value, str):
                    hit = string_body(value, style)
                elif isinstance(value, bool):
                    hit = boolean_body(value, style)
                else:
                    hit = number_body(value, style)
                if key is not None:
                    made[key] = hit
            out.append(hit)
        return out

    def formula(self, row: int, col: int, formula: str, cached: Any, fmt: str | None = None, *,
                total: bool = False) -> None:
        """A formula cell and the value Excel would compute for it (written as its cached value)."""
        if isinstance(cached, float) and not math.isfinite(cached):
            raise ValueError(f"no finite cached value for {formula}")
        self.ws.write_formula(row - 1, col - 1, formula, self.styles.get("number", fmt, total=total), cached)
        self.cached[row, col] = cached


ZIP_LEVEL = 1
"""zlib level of the summary's ZIP: 1 compresses the 18 MB of XML of 10,000 rows in a third of the default's
(6) time, for a file about 30% larger (2.8 MB instead of 2.1 MB)."""


class _Buffer(io.BytesIO):
    """The book's output: a BytesIO that tells :func:`_zip_file` the zlib level to use."""

    compresslevel = ZIP_LEVEL


_XLSX_ZIP = xlsxwriter.workbook.ZipFile


def _zip_file(file: Any, *args: Any, **kwargs: Any) -> Any:
    """XlsxWriter's ZipFile, with the level a :class:`_Buffer` asks for (every other workbook as before)."""
    level = getattr(file, "compresslevel", None)
    if level is not None:
        kwargs.setdefault("compresslevel", level)
    return _XLSX_ZIP(file, *args, **kwargs)


xlsxwriter.workbook.ZipFile = _zip_file  # type: ignore[misc,assignment]  # XlsxWriter takes no level of its own


class _Book:
    """An XlsxWriter workbook, its shared formats and its sheets.

    Constant-memory mode: each row goes to a temporary file as soon as the next one starts (rows are
    written in order, text as inline strings), so the summary of 100,000 employees costs no more memory
    than that of 1,000. The file comes back as bytes.
    """

    def __init__(self, lang: str = "en", out: Any = None) -> None:
        """``out``: a binary file (seekable) the finished book is written to instead of memory (:meth:`close`)."""
        if out is not None:
            out.compresslevel = ZIP_LEVEL  # read by _zip_file, as a _Buffer's
        self.buffer = _Buffer() if out is None else out
        self.rows = _RowBudget(ROWS_IN_MEMORY)
        self.wb = xlsxwriter.Workbook(self.buffer, {"constant_memory": True, "strings_to_numbers": False,
                                                    "strings_to_formulas": False, "strings_to_urls": False})
        self.styles = _Styles(self.wb, lang)

    def sheet(self, title: str) -> _Sheet:
        return _Sheet(self, title)

    def close(self, created: datetime, creator: str, title: str) -> bytes | None:
        """The finished file: fixed timestamps (created = modified = ``created``), so equal input gives equal bytes.
        Its bytes, or None when it went to the book's ``out`` file."""
        self.wb.set_properties({"title": title, "author": creator, "created": created})
        self.wb.close()
        return self.buffer.getvalue() if isinstance(self.buffer, _Buffer) else None
