"""The workbook as XlsxWriter writes it: shared cell formats (:class:`_Styles`), the worksheet with quick
formula preparation (:class:`_Worksheet`), a sheet addressed as Excel shows it (:class:`_Sheet`) and the
book in constant-memory mode, closed to deterministic bytes (:class:`_Book`)."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from xl_kpi.outputs.csvsafe import FORMULA_START
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
                              "SUBTOTAL", "SUM", "SUMIF"})
"""The worksheet functions the summary writes: Excel 2007 functions, which no ``_xlfn.`` prefix applies to."""
_FUNCTION_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\(")


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


class _Styles:
    """The cell formats of one workbook, each made once and shared by every cell that uses it."""

    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.wb = wb
        self._made: dict[tuple[str, str | None, bool, bool], Format] = {}

    def get(self, kind: str, num_format: str | None = None, *, total: bool = False, quote: bool = False) -> Format:
        """The format of a ``kind`` cell (header, text, number) with this number format, in a total row or not."""
        key = (kind, num_format, total, quote)
        fmt = self._made.get(key)
        if fmt is None:
            props: dict[str, Any] = {**_BORDER_PROPS, **_STYLE_KINDS[kind]}
            if num_format:
                props["num_format"] = num_format
            if total:
                props.update(_TOTAL_PROPS)
            if quote:
                props["quote_prefix"] = True  # Excel shows =… as typed and never evaluates it
            fmt = self._made[key] = self.wb.add_format(props)
        return fmt


class _Sheet:
    """One worksheet, addressed 1-based as Excel shows it, and the cached value of every formula written."""

    def __init__(self, book: _Book, title: str) -> None:
        self.title = title
        self.ws: Worksheet = book.wb.add_worksheet(title, worksheet_class=_Worksheet)
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

    def column(self, values: list[Any]) -> list[tuple[Callable[[int, int, Any, Format], Any], Any, Format]]:
        """:meth:`cell` of each value of a text column, each distinct value converted once."""
        made: dict[tuple[type, Any], tuple[Callable[[int, int, Any, Format], Any], Any, Format]] = {}
        out = []
        for v in values:
            try:
                key = (type(v), v)
                hit = made.get(key)
            except TypeError:  # unhashable: convert every time
                key, hit = None, None
            if hit is None:
                hit = self.cell(_cell_value(v))
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


class _Book:
    """An XlsxWriter workbook, its shared formats and its sheets.

    Constant-memory mode: each row goes to a temporary file as soon as the next one starts (rows are
    written in order, text as inline strings), so the summary of 100,000 employees costs no more memory
    than that of 1,000. The file comes back as bytes.
    """

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.wb = xlsxwriter.Workbook(self.buffer, {"constant_memory": True, "strings_to_numbers": False,
                                                    "strings_to_formulas": False, "strings_to_urls": False})
        self.styles = _Styles(self.wb)

    def sheet(self, title: str) -> _Sheet:
        return _Sheet(self, title)

    def close(self, created: datetime, creator: str, title: str) -> bytes:
        """The finished file: fixed timestamps (created = modified = ``created``), so equal input gives equal bytes."""
        self.wb.set_properties({"title": title, "author": creator, "created": created})
        self.wb.close()
        return self.buffer.getvalue()
