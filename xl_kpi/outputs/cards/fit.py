"""Row heights that fit wrapped text: a long scale title, KPI name or reason wraps inside its cell and its row
grows, instead of being cut by the next cell or by the row below.

Neither Excel nor LibreOffice grows a row for a wrapped *merged* cell, and a row with a fixed height does not
grow at all; so each card's rows are sized here, from the text the card holds. Column widths count digits of
the default font, whatever face the office suite draws with (Calibri in Excel; DejaVu Sans when LibreOffice
lacks Calibri: wider letters, but wider columns too), so a text is measured in digits as well, with the
per-character widths of DejaVu Sans: that errs towards a taller row, never a cut one. A row is never made
lower than the template made it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xl_kpi.outputs.ooxml import parse_attrs, render_attrs, split_cell

# advance widths in em of DejaVu Sans, grouped
_NARROW = set(" .,:;!|'ijlIíìїі")
_SEMI = set("ftr()[]{}-/\\\"*")
_WIDE = set("mwMWжшщфюыЖШЩФЮЫ%@—…")
_EM = {**{c: 0.32 for c in _NARROW}, **{c: 0.41 for c in _SEMI}, **{c: 0.95 for c in _WIDE}}
_UPPER = 0.74
_OTHER = 0.63
_BOLD = 1.12
_DIGIT_EM = 0.636
"""A digit's width in em: column widths count digits of the 11-point default font."""
LINE = 1.25
"""Line height, in font sizes (DejaVu Sans: 1.16; Calibri: 1.22)."""
PAD = 3.0
"""Points a row needs besides its lines (cell margins)."""
MARGIN = 0.6
"""Digits of a cell's width its text cannot use (the margins left and right)."""
DEFAULT_ROW = 15.0
DEFAULT_COL = 8.43


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Estimated width of ``text`` in a ``size``-point font, in digits of the 11-point default font."""
    em = 0.0
    for ch in text:
        w = _EM.get(ch)
        if w is None:
            w = _UPPER if ch.isupper() else _OTHER
        em += w
    return em * size * (_BOLD if bold else 1.0) / (_DIGIT_EM * 11)


def line_count(text: str, width: float, size: float, bold: bool = False) -> int:
    """Lines ``text`` takes when wrapped at spaces (a word wider than the cell is broken) in ``width`` digits."""
    if width <= 0:
        return 1
    if "\n" not in text and len(text) * 0.95 * size * (_BOLD if bold else 1.0) / (_DIGIT_EM * 11) <= width:
        return 1  # fast path: fits even if every character were wide
    space = text_width(" ", size, bold)
    lines = 0
    for para in text.split("\n"):
        lines += 1
        cur = 0.0
        for word in para.split(" "):
            w = text_width(word, size, bold)
            if cur and cur + space + w <= width:
                cur += space + w
                continue
            if cur:
                lines += 1
            if w > width:  # broken inside the word
                extra = math.ceil(w / width) - 1
                lines += extra
                w -= extra * width
            cur = w
    return lines


_LINES: dict[tuple[str, float, float, bool], int] = {}
"""Line counts already estimated (per process)."""


@dataclass(frozen=True)
class CellFit:
    """A wrapped text cell of a row: its slot (index into the card's values), width in digits, font in points."""

    slot: int
    width: float
    size: float
    bold: bool


@dataclass(frozen=True)
class RowFit:
    """A row holding wrapped text cells: its ``<row>`` tag at the template's height, or taller when needed."""

    r: int
    attrs: tuple[tuple[str, str], ...]  # the row's attributes without ht/customHeight
    height: float
    tag: str  # the template's own tag
    cells: tuple[CellFit, ...]

    def render(self, values: Sequence[Any]) -> str:
        """The ``<row ...>`` opening tag for a card whose cell values are ``values``."""
        need = 0.0
        for c in self.cells:
            v = values[c.slot]
            v = getattr(v, "value", v) if type(v) is not str else v
            if type(v) is not str or not v:
                continue
            key = (v, c.width, c.size, c.bold)
            n = _LINES.get(key)
            if n is None:
                if len(_LINES) > 20_000:  # names vary by card; KPI names, scales and labels repeat
                    _LINES.clear()
                n = _LINES[key] = line_count(v, c.width, c.size, c.bold)
            if n > 1:
                need = max(need, n * c.size * LINE + PAD)
        if need <= self.height:
            return self.tag
        ht = math.ceil(need * 4) / 4
        return f'<row r="{self.r}"{render_attrs(self.attrs)} ht="{ht:g}" customHeight="1">'


class Styles:
    """What sizing needs of ``xl/styles.xml``: per cell format, whether it wraps, its font size, bold, indent."""

    def __init__(self, xml: str | None) -> None:
        self.wrap: dict[int, tuple[float, bool, int]] = {}
        if not xml:
            return
        fonts: list[tuple[float, bool]] = []
        fm = re.search(r"<fonts\b[^>]*>(.*?)</fonts>", xml, re.S)
        for f in re.findall(r"<font\b[^>]*?(?:/>|>(.*?)</font>)", fm.group(1) if fm else "", re.S):
            sz = re.search(r'<sz\s+val="([\d.]+)"', f or "")
            bold = re.search(r'<b(?:\s+val="(\w+)")?\s*/>', f or "")
            fonts.append((float(sz.group(1)) if sz else 11.0,
                          bool(bold) and (bold.group(1) or "1") not in ("0", "false")))
        cm = re.search(r"<cellXfs\b[^>]*>(.*?)</cellXfs>", xml, re.S)
        for i, m in enumerate(re.finditer(r"<xf\b([^>]*?)(?:/>|>(.*?)</xf>)", cm.group(1) if cm else "", re.S)):
            al = re.search(r"<alignment\b([^>]*)/?>", m.group(2) or "")
            if not al:
                continue
            a = dict(parse_attrs(al.group(1)))
            if a.get("wrapText") not in ("1", "true"):
                continue
            fid = int(dict(parse_attrs(m.group(1))).get("fontId", "0") or 0)
            size, bold = fonts[fid] if fid < len(fonts) else (11.0, False)
            self.wrap[i] = (size, bold, int(a.get("indent", "0") or 0))


def col_widths(head: str) -> dict[int, float]:
    """Column number → width in digits, from the sheet's ``<cols>`` (hidden columns are 0)."""
    dm = re.search(r'<sheetFormatPr\b[^>]*?\sdefaultColWidth="([\d.]+)"', head)
    default = float(dm.group(1)) if dm else DEFAULT_COL
    out: dict[int, float] = {}
    for m in re.finditer(r"<col\b([^>]*)/?>", head):
        a = dict(parse_attrs(m.group(1)))
        try:
            lo, hi = int(a["min"]), int(a["max"])
        except (KeyError, ValueError):
            continue
        w = 0.0 if a.get("hidden") in ("1", "true") else float(a.get("width", DEFAULT_COL))
        for c in range(lo, min(hi, 16384) + 1):
            out[c] = w
        if hi - lo > 200:
            break
    out[0] = default  # any column not listed
    return out


def merged_spans(tail: str) -> dict[tuple[int, int], int]:
    """(row, first column) → last column, for merged ranges of one row."""
    out: dict[tuple[int, int], int] = {}
    for ref in re.findall(r'<mergeCell\s+ref="([^"]*)"', tail):
        a, _, b = ref.partition(":")
        try:
            (r1, c1), (r2, c2) = split_cell(a), split_cell(b or a)
        except ValueError:
            continue
        if r1 == r2:
            out[(r1, c1)] = c2
    return out


def cell_width(widths: dict[int, float], first: int, last: int, indent: int) -> float:
    """Digits for text in columns ``first``..``last`` after the cell margins and ``indent`` levels (each one
    is three spaces of the default font)."""
    w = sum(widths.get(c, widths[0]) for c in range(first, last + 1))
    return w - MARGIN - indent * 1.5


def row_fit(r: int, attrs: Sequence[tuple[str, str]], cells: list[CellFit]) -> RowFit:
    """The :class:`RowFit` of output row ``r`` with the template row's ``attrs``."""
    a = dict(attrs)
    try:
        height = float(a["ht"])
    except (KeyError, ValueError):
        height = DEFAULT_ROW
    rest = tuple((k, v) for k, v in attrs if k not in ("ht", "customHeight"))
    return RowFit(r, rest, height, f'<row r="{r}"{render_attrs(attrs)}>', tuple(cells))


__all__ = ["CellFit", "RowFit", "Styles", "cell_width", "col_widths", "line_count",
           "merged_spans", "row_fit", "text_width"]
