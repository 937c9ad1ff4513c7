"""How the sheets are laid out: where the columns of the Employees sheet are (:class:`_Layout`), the header
row, column widths and the print setup (A4, one page wide, page header and footer)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from xlsxwriter.utility import xl_col_to_name

from xl_kpi.outputs.csvsafe import FORMULA_START
from xl_kpi.outputs.summary.book import _Sheet
from xl_kpi.outputs.values import ILLEGAL_CHARACTERS
from xl_kpi.outputs.values import text as _text

_HEADER_LIMIT = 255
"""Excel keeps at most this many characters of a page header."""


def _header(sheet: _Sheet, labels: list[str], widths: list[float]) -> None:
    for col, (label, width) in enumerate(zip(labels, widths, strict=True)):
        text = _text(label)
        sheet.ws.write_string(0, col, text, sheet.styles.get("header", quote=text[:1] in FORMULA_START))
        sheet.ws.set_column(col, col, width)
    lines = max((_wrapped_lines(label, width) for label, width in zip(labels, widths, strict=True)), default=1)
    sheet.ws.set_row(0, 15 * lines + 6)


def _wrapped_lines(text: str, width: float) -> int:
    chars = max(int(width) - 2, 1)
    lines, current = 1, 0
    for word in text.split():
        need = len(word) if current == 0 else current + 1 + len(word)
        if need <= chars:
            current = need
        else:
            lines += 1 if current else 0
            current = len(word)
            while current > chars:
                lines += 1
                current -= chars
    return lines


def _width(values: Iterable[Any], header: str, lo: float, hi: float) -> float:
    """A column's width: its longest text (:func:`~xl_kpi.outputs.values.text` of each value) or header word,
    within ``lo``..``hi``."""
    values = list(values)
    if plain_texts(values):  # each is its own text: the common case
        longest = max(map(len, values), default=0)
    else:
        longest = max((len(_text(v)) for v in _distinct(values)), default=0)
    longest_word = max((len(w) for w in header.split()), default=0)
    return float(min(max(round(longest * 1.1) + 2, longest_word + 3, lo), hi))


def plain_texts(values: list[Any]) -> bool:
    """Whether every value is a string that :func:`~xl_kpi.outputs.values.text` leaves as it is (one search of
    them all: a line feed, which joins them, is no illegal character)."""
    return all(type(v) is str for v in values) and not ILLEGAL_CHARACTERS.search("\n".join(values))


def _distinct(values: Iterable[Any]) -> list[Any]:
    """Each value once (by type and value; unhashable ones all kept), in first-seen order."""
    seen: set[tuple[type, Any]] = set()
    out = []
    for v in values:
        try:
            key = (type(v), v)
            if key in seen:
                continue
            seen.add(key)
        except TypeError:
            pass
        out.append(v)
    return out


def _print_setup(sheet: _Sheet, title: str, company: str, period: str, landscape: bool, legend: str = "") -> None:
    """A4, landscape or portrait, one page wide, the header row on every page, the company and the period in the
    page header, page numbers (and ``legend``, in small type) in the footer."""
    ws = sheet.ws
    if landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)  # one page wide, as many pages tall as needed
    ws.repeat_rows(0)  # the header row on every printed page
    ws.set_margins(left=0.4, right=0.4, top=0.75, bottom=0.75)

    def amp(s: str) -> str:
        return s.replace("&", "&&")

    centre = amp(f"{title} {period}".strip())
    left = amp(company)
    room = _HEADER_LIMIT - len("&L&C") - len(centre)
    if len(left) > room:  # Excel keeps at most 255 characters of a header: shorten the company, not the title
        left = left[:max(room - 1, 0)].rstrip("&") + "…"
    ws.set_header(f"&L{left}&C{centre}", {"margin": 0.3})
    note = amp(legend)[:_HEADER_LIMIT - 20].rstrip("&")
    ws.set_footer((f"&L&8{note}" if note else "") + "&R&P / &N", {"margin": 0.3})


@dataclass
class _Layout:
    """Where things are on the Employees sheet (1-based columns)."""

    n: int
    kpi_cols: list[int]
    col_dept: int
    col_weighted: int
    col_rank: int
    col_bonus: int
    col_total: int
    ncols: int
    digits: int = 2
    """Settings' rounding digits: the money sums are exact to them."""
    col_adjust: int | None = None
    """The adjustments column (between the bonus and the total pay), only when someone has an adjustment."""

    @property
    def last(self) -> int:
        return self.n + 1

    def rng(self, col: int, absolute: bool = True) -> str:
        c = xl_col_to_name(col - 1)
        return f"${c}$2:${c}${self.last}" if absolute else f"{c}2:{c}{self.last}"
