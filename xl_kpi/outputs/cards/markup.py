"""The card template's markup: the markers it may hold (``{{name}}``, ``{{kpi.*}}``, ``{{scale.*}}``) and the
reading of its sheet XML (rows, cells, shared formulas); its .rels parts are read with
:func:`xl_kpi.outputs.ooxml.read_rels`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from xl_kpi.engine.errors import KpiError
from xl_kpi.outputs.ooxml import (
    col_letters,
    parse_attrs,
    split_cell,
    string_item_text,
    translate_shared,
    xml_unescape,
)


class TemplateError(KpiError):
    """The card template is missing a required marker, or has one in the wrong place."""


# ----------------------------------------------------------------------------------------------
# markers

HEADER_FIELDS = frozenset({
    "company", "period", "period_name", "currency", "employee_id", "name", "position", "department",
    "manager", "email", "status", "reason", "gate_note", "salary", "bonus_pool", "multiplier", "proration",
    "weight_total", "kpi_bonus", "bonus", "adjustment", "adjustment_reason", "total_pay",
})
"""Markers usable anywhere; the last four are formula cells."""
KPI_FIELDS = frozenset({
    "no", "id", "name", "unit", "weight", "base", "norm", "fact", "floor", "cap", "gate", "scale", "target",
    "score", "coefficient", "bonus",
})
"""``{{kpi.<field>}}``: only in the KPI row; score, coefficient and bonus are formula cells."""
KPI_REQUIRED = ("fact", "score", "coefficient", "bonus")
SCALE_TITLE_FIELDS = frozenset({"name", "kind", "title", "used_by"})
SCALE_POINT_FIELDS = frozenset({"band", "threshold", "coefficient"})

_MARKER = re.compile(r"\{\{\s*([A-Za-z_]+(?:\.[A-Za-z_]+)?)\s*\}\}")
_WHOLE = re.compile(r"^\s*\{\{\s*([A-Za-z_]+(?:\.[A-Za-z_]+)?)\s*\}\}\s*$")

MONEY_FIELDS = frozenset({"salary", "bonus_pool", "kpi_bonus", "bonus", "adjustment", "total_pay", "kpi.bonus"})


# ----------------------------------------------------------------------------------------------
# template parsing


@dataclass
class _Cell:
    col: int
    attrs: list[tuple[str, str]]
    inner: str
    text: str | None = None
    value: Any = None
    formula: str | None = None
    fattrs: list[tuple[str, str]] = field(default_factory=list)
    marker: Any = None  # ("v", field) or ("t", [pieces])


@dataclass
class _Row:
    r: int
    attrs: list[tuple[str, str]]
    cells: list[_Cell]


_ROW_RE = re.compile(r"<row\b([^>]*?)(?:/>|>(.*?)</row>)", re.S)
_CELL_RE = re.compile(r"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.S)
_F_RE = re.compile(r"<f\b([^>]*?)(?:/>|>(.*?)</f>)", re.S)
_V_RE = re.compile(r"<v>(.*?)</v>", re.S)
_IS_RE = re.compile(r"<is>(.*?)</is>", re.S)
_SI_RE = re.compile(r"<si>(.*?)</si>|<si\s*/>", re.S)
_SHEETDATA_RE = re.compile(r"<sheetData\s*/>|<sheetData\b[^>]*>(.*?)</sheetData>", re.S)
_SHEET_RE = re.compile(r"<sheet\b([^>]*?)/?>", re.S)

REL_DRAWING = "/drawing"
REL_CHART = "/chart"
REL_COMMENTS = "/comments"
REL_VML = "/vmlDrawing"
REL_TABLE = "/table"


def _split_sheet(xml: str) -> tuple[str, str, str]:
    m = _SHEETDATA_RE.search(xml)
    if not m:
        raise TemplateError("the card sheet has no <sheetData>")
    return xml[: m.start()], m.group(1) or "", xml[m.end():]


def _parse_rows(data: str, strings: list[str]) -> list[_Row]:
    rows: list[_Row] = []
    shared: dict[str, tuple[str, str]] = {}
    prev_r = 0
    for rm in _ROW_RE.finditer(data):
        attrs = parse_attrs(rm.group(1))
        r = int(dict(attrs).get("r", prev_r + 1))
        prev_r = r
        attrs = [(k, v) for k, v in attrs if k != "r"]
        cells: list[_Cell] = []
        prev_c = 0
        for cm in _CELL_RE.finditer(rm.group(2) or ""):
            cattrs = parse_attrs(cm.group(1))
            ad = dict(cattrs)
            col = split_cell(ad["r"])[1] if "r" in ad else prev_c + 1
            prev_c = col
            inner = cm.group(2) or ""
            cell = _Cell(col, [(k, v) for k, v in cattrs if k != "r"], inner)
            t = ad.get("t", "n")
            fm = _F_RE.search(inner)
            if fm:
                fattrs = parse_attrs(fm.group(1))
                fd = dict(fattrs)
                text = xml_unescape(fm.group(2) or "")
                ref = col_letters(col) + str(r)
                if fd.get("t") == "shared":
                    si = fd.get("si", "")
                    if fm.group(2):
                        shared[si] = (text, ref)
                    elif si in shared:
                        text = translate_shared(shared[si][0], shared[si][1], ref)
                    fattrs = [(k, v) for k, v in fattrs if k not in ("t", "si", "ref")]
                cell.formula, cell.fattrs = text, fattrs
            else:
                vm = _V_RE.search(inner)
                if t == "s" and vm:
                    idx = int(vm.group(1))
                    cell.text = strings[idx] if idx < len(strings) else ""
                elif t == "inlineStr":
                    im = _IS_RE.search(inner)
                    cell.text = string_item_text(im.group(1)) if im else ""
                elif t in ("n", "") and vm:
                    try:
                        cell.value = float(vm.group(1))
                    except ValueError:
                        pass
                elif t == "str" and vm:
                    cell.text = xml_unescape(vm.group(1))
                if cell.text is not None:
                    cell.value = cell.text
            cells.append(cell)
        rows.append(_Row(r, attrs, cells))
    return rows


def _marker_of(text: str) -> Any:
    m = _WHOLE.match(text)
    if m:
        return ("v", m.group(1))
    if not _MARKER.search(text):
        return None
    pieces: list[Any] = []
    pos = 0
    for m in _MARKER.finditer(text):
        if m.start() > pos:
            pieces.append(text[pos: m.start()])
        pieces.append((m.group(1),))
        pos = m.end()
    if pos < len(text):
        pieces.append(text[pos:])
    return ("t", pieces)


def _marker_fields(marker: Any) -> list[str]:
    if marker[0] == "v":
        return [marker[1]]
    return [p[0] for p in marker[1] if isinstance(p, tuple)]
