"""One worksheet's XML streamed with regular expressions (no XML parser, nothing expanded): its used range,
and what calamine does not tell (formulas without a saved value, error and NaN/inf values, merged cells,
hidden and filtered rows, references to other workbooks), as a :class:`SheetInfo`."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from xl_kpi.i18n import Msg
from xl_kpi.inputs.readers.letters import column_letter, column_number
from xl_kpi.inputs.readers.limits import _BOMB_FIX, _DAMAGED_FIX, MB, FileReadError, Limits, _mb
from xl_kpi.inputs.readers.xmltext import unescape


@dataclass
class SheetInfo:
    """What the pre-scan of one worksheet found; cells as (row, column), both 1-based as in Excel."""

    name: str
    rows: int = 0
    """Last row holding a cell with content (calamine's grid has this many rows)."""
    columns: int = 0
    """Last column holding a cell with content."""
    filled: int = 0
    """Cells with content."""
    far_cells: list[str] = field(default_factory=list)
    """The filled cells that reach the last row and the last column (e.g. ['XFD1048576'])."""
    hidden_rows: list[int] = field(default_factory=list)
    filtered: bool = False
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    """Merged ranges as (first row, first column, last row, last column)."""
    no_value: dict[tuple[int, int], str] = field(default_factory=dict)
    """Formula cells without a saved value → the formula."""
    bad_values: dict[tuple[int, int], str] = field(default_factory=dict)
    """Cells holding an error value (#DIV/0!) or a NaN/inf number → what they hold."""
    external: dict[tuple[int, int], str] = field(default_factory=dict)
    """Formulas that refer to another workbook (their saved value is used) → the formula."""
    formulas: int = 0
    """Formula cells with a saved value."""
    stale: str = ""
    """Why the saved formula results may be out of date ('' when there is no reason to think so)."""
    state: str = "visible"
    """The sheet's visibility in xl/workbook.xml: visible, hidden or veryHidden (unhidden only in VBA)."""

    @property
    def corner(self) -> str:
        """The bottom-right corner of the used range ('XFD1048576'); '' for an empty sheet."""
        return _cell_name(self.rows, self.columns) if self.rows and self.columns else ""


_P = rb"(?:[A-Za-z_][\w.-]*:)?"
_CELL = re.compile(rb"<" + _P + rb'c(?=[\s>])(?: r="([A-Z]{1,3})([0-9]{1,7})")?[^>]*(?<!/)>')
_ROW_END = re.compile(rb"</" + _P + rb"row>")
_ROW = re.compile(rb"<" + _P + rb"row(?=[\s>/])([^>]*?)(/?)>")
_ROW_BLOCK = re.compile(rb"<" + _P + rb"row(?=[\s>/])([^>]*?)(?:/>|>(.*?)</" + _P + rb"row>)", re.S)
_CELL_TAG = re.compile(rb"<" + _P + rb"c(?=[\s>/])([^>]*?)(/?)>")
_REF = re.compile(rb'\br="([A-Z]{1,3})([0-9]{1,7})"')
_ROW_R = re.compile(rb'\br="([0-9]{1,7})"')
_ANY_R = re.compile(rb'\br="([^"]*)"')
_VALID_REF = re.compile(rb"[A-Z]{1,3}[0-9]{1,7}")
_VALID_ROW = re.compile(rb"[0-9]{1,7}")
_FORMULA = re.compile(
    rb"<" + _P + rb"c(?=[\s>])([^>]*)>\s*<" + _P + rb"f(?=[\s>/])([^>]*?)(?:/>|>([^<]*)</" + _P + rb"f>)"
    rb"\s*(?:<" + _P + rb"v\s*/>|<" + _P + rb"v>([^<]*)</" + _P + rb"v>)?")
_HAS_FORMULA = re.compile(rb"<" + _P + rb"f[\s>/]")
_ERROR_CELL = re.compile(
    rb"<" + _P + rb'c(?=[\s>])([^>]*\bt="e"[^>]*)>(?:\s*<' + _P + rb"f[^>]*?(?:/>|>[^<]*</" + _P + rb"f>))?"
    rb"\s*<" + _P + rb"v>([^<]*)</" + _P + rb"v>")
_NONFINITE = re.compile(
    rb"<" + _P + rb"c(?=[\s>])([^>]*)>(?:\s*<" + _P + rb"f[^>]*?(?:/>|>[^<]*</" + _P + rb"f>))?"
    rb"\s*<" + _P + rb"v>\s*([+-]?(?:nan|inf(?:inity)?))\s*</" + _P + rb"v>", re.I)
_NONFINITE_HINT = re.compile(rb"<v>[+-]?(?:[nN][aA][nN]|[iI][nN][fF])")
_NONFINITE_HINT_NS = re.compile(rb":v>[+-]?(?:[nN][aA][nN]|[iI][nN][fF])")
_MERGE = re.compile(rb"<" + _P + rb'mergeCell\b[^>]*\bref="([A-Z]{1,3})([0-9]{1,7})(?::([A-Z]{1,3})([0-9]{1,7}))?"')
_FILTER = re.compile(rb"<" + _P + rb"autoFilter\b")
_EXTERNAL = re.compile(r"\[\d+\]")
CHUNK = 1 * MB
"""XML scanned at a time: its cell matches are held while it is (a 100,000-row sheet in 8 MB pieces peaked ~75 MB
above the bytes, in 1 MB pieces ~10 MB, in the same time)."""


def _col_number(letters: bytes) -> int:
    """b'AA' → 27, as the scanner's regular expressions give the letters (openpyxl's conversion)."""
    return column_number(letters.decode("ascii"))


def _cell_name(row: int, col: int) -> str:
    """'B12' for (12, 2); past the last column letters (ZZZ, a hostile file) Excel's other form, 'R1C20000'."""
    return f"{column_letter(col)}{row}" if col <= 18278 else f"R{row}C{col}"


def _chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, lim: Limits) -> Iterator[bytes]:
    """A worksheet's XML in pieces that end after a ``</row>`` (no cell is cut in two)."""
    read = 0
    carry = b""
    with zf.open(info) as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                if carry:
                    yield carry
                return
            read += len(block)
            if read > lim.unzipped_bytes or read > info.file_size:
                raise FileReadError(name, Msg("its part {part} unpacks to more than it declares ({size})",
                                              part=info.filename, size=_mb(info.file_size)), _BOMB_FIX)
            buf = carry + block
            cut = None
            for m in _ROW_END.finditer(buf, max(0, len(carry) - 64)):
                cut = m.end()
            if cut is None:
                carry = buf
                continue
            yield buf[:cut]
            carry = buf[cut:]


def _scan_sheet(zf: zipfile.ZipFile, info: zipfile.ZipInfo, sheet: str, name: str, lim: Limits) -> SheetInfo:
    out = SheetInfo(sheet)
    far_row = far_col = ""
    implicit_row = 0
    for chunk in _chunks(zf, info, name, lim):
        cells = _CELL.findall(chunk)
        if cells and (b"", b"") in cells:  # a cell without r="A1" first: locate every cell the slow way
            try:
                implicit_row, located = _cells_slowly(chunk, implicit_row)
            except _BadReference as e:
                raise FileReadError(name, Msg('a cell or row has the reference r="{ref}", which is not an address '
                                              "in a sheet (A1 to XFD1048576)", ref=str(e)), _DAMAGED_FIX,
                                    sheet=sheet) from None
            for r, c in located:
                if r > out.rows:
                    out.rows, far_row = r, _cell_name(r, c)
                if c > out.columns:
                    out.columns, far_col = c, _cell_name(r, c)
            out.filled += len(located)
        elif cells:
            rows = [c[1] for c in cells]
            longest = len(max(rows, key=len))  # equally long digit strings compare as numbers
            top = max(rows) if len(min(rows, key=len)) == longest else max(r for r in rows if len(r) == longest)
            if int(top) > out.rows:
                out.rows = int(top)
                far_row = (cells[rows.index(top)][0] + top).decode()
            letters = {c[0] for c in cells}
            right = max(letters, key=lambda s: (len(s), s))
            if _col_number(right) > out.columns:
                out.columns = _col_number(right)
                far_col = next((c[0] + c[1]).decode() for c in cells if c[0] == right)
            out.filled += len(cells)
            implicit_row = int(cells[-1][1])
        if b'hidden="' in chunk:
            for m in _ROW.finditer(chunk):
                attrs = m.group(1)
                if re.search(rb'\bhidden="(?:1|true)"', attrs):
                    r = _ROW_R.search(attrs)
                    if r:
                        out.hidden_rows.append(int(r.group(1)))
        if (b"<f" in chunk or b":f" in chunk) and _HAS_FORMULA.search(chunk):
            _formulas(chunk, out)
        if b't="e"' in chunk:
            for m in _ERROR_CELL.finditer(chunk):
                ref = _REF.search(m.group(1))
                if ref:
                    out.bad_values[(int(ref.group(2)), _col_number(ref.group(1)))] = m.group(2).decode("utf-8",
                                                                                                      "replace")
        if _NONFINITE_HINT.search(chunk) or (b":v>" in chunk and _NONFINITE_HINT_NS.search(chunk)):
            for m in _NONFINITE.finditer(chunk):
                t = re.search(rb'\bt="([^"]*)"', m.group(1))
                ref = _REF.search(m.group(1))
                if ref and (t is None or t.group(1) == b"n"):
                    out.bad_values[(int(ref.group(2)), _col_number(ref.group(1)))] = m.group(2).decode()
        if b"mergeCell" in chunk:
            for m in _MERGE.finditer(chunk):
                c1, r1 = m.group(1), int(m.group(2))
                c2, r2 = m.group(3) or m.group(1), int(m.group(4) or m.group(2))
                out.merged.append((r1, _col_number(c1), r2, _col_number(c2)))
        if not out.filtered and b"autoFilter" in chunk and _FILTER.search(chunk):
            out.filtered = True
    # name the cell that stretches each dimension far beyond what the filled cells need
    deep = out.rows > 10 * max(out.filled / max(out.columns, 1), 1)
    wide = out.columns > 10 * max(out.filled / max(out.rows, 1), 1)
    out.far_cells = list(dict.fromkeys(c for c, far in ((far_row, deep), (far_col, wide)) if c and far)) or [
        c for c in (far_row,) if c]
    return out


class _BadReference(ValueError):
    """A cell or row whose r="…" is not an address Excel could write."""


def _cells_slowly(chunk: bytes, row: int) -> tuple[int, list[tuple[int, int]]]:
    """(last row, [(row, column)]) of the non-empty cells of a chunk whose cells may lack r="A1".

    Raises :class:`_BadReference` for an r="…" that is not a valid address (such as A99999999).
    """
    found: list[tuple[int, int]] = []
    for m in _ROW_BLOCK.finditer(chunk):
        r = _ANY_R.search(m.group(1))
        if r and not _VALID_ROW.fullmatch(r.group(1)):
            raise _BadReference(r.group(1).decode("utf-8", "replace")[:40])
        row = int(r.group(1)) if r else row + 1
        col = 0
        for c in _CELL_TAG.finditer(m.group(2) or b""):
            ref = _ANY_R.search(c.group(1))
            if ref and not _VALID_REF.fullmatch(ref.group(1)):
                raise _BadReference(ref.group(1).decode("utf-8", "replace")[:40])
            parts = _REF.search(c.group(1)) if ref else None
            col = _col_number(parts.group(1)) if parts else col + 1
            if not c.group(2):
                found.append((int(parts.group(2)) if parts else row, col))
    return row, found


def _formulas(chunk: bytes, out: SheetInfo) -> None:
    for m in _FORMULA.finditer(chunk):
        attrs, text, value = m.group(1), m.group(3), m.group(4)
        ref = _REF.search(attrs)
        if ref is None:
            continue
        cell = (int(ref.group(2)), _col_number(ref.group(1)))
        formula = "=" + unescape((text or b"").decode("utf-8", "replace"))
        kind = re.search(rb'\bt="([^"]*)"', attrs)
        cached = value is not None and (value.strip() != b"" or (kind is not None and kind.group(1) == b"str"))
        if not cached:
            out.no_value[cell] = formula if text else "(a shared formula)"
        else:
            out.formulas += 1
            if _EXTERNAL.search(formula):
                out.external[cell] = formula
