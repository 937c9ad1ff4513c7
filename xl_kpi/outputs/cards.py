"""KPI cards: one workbook per employee, with live Excel formulas and cached results.

A card template (``workbooks/kpi_card_<lang>.xlsx`` or a user's restyled copy) holds markers
(``{{name}}``, a KPI row with ``{{kpi.*}}``, a scale block with ``{{scale.*}}``; see
docs/templates.md). Filling it is split in two, so that 10,000 cards take seconds:

* **compile** (once per card shape: number of KPI rows, scales used, hidden rows, currency):
  the template's XML is expanded at the XML level (rows copied, every row reference moved:
  formulas, merged cells, conditional formats, charts, drawings, defined names, print area)
  and cut into literal chunks with slots; unchanged zip parts are compressed once.
* **stamp** (per employee): each slot gets the employee's value, or a formula plus the value
  xl_kpi computed (``results``), and the zip is written directly.

The formulas are native Excel (no UDFs): the card is a what-if calculator that mirrors the
engine exactly. Their text comes from :mod:`xl_kpi.engine.formulas` (the engine's rules as formulas:
``ROUND(score, 12)`` before comparing with thresholds and gates, ``LOOKUP`` for half-open bands,
straight-line interpolation for linear scales, ``ROUND(…, digits)`` for money with the Settings'
digits); every cached value comes from ``results`` (no number is computed here). A card whose
results lack a total (an employee in error) is marked to be recalculated when opened.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from xl_kpi.engine import formulas as fx
from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.money import CURRENCY_SYMBOLS
from xl_kpi.engine.scales import DEFAULT_SCALE, Scale
from xl_kpi.inputs.resources import workbooks_dir
from xl_kpi.outputs.atomic import AtomicBatch, write_atomic
from xl_kpi.outputs.names import child
from xl_kpi.outputs.ooxml import (
    COMPRESS_LEVEL,
    RowPlan,
    ZipEntry,
    build_zip,
    col_letters,
    deflate,
    map_range,
    map_sqref,
    number_text,
    parse_attrs,
    range_cells,
    read_parts,
    refers_to,
    render_attrs,
    shift_formula,
    split_cell,
    split_sheet_ref,
    string_item_text,
    translate_shared,
    xml_attr,
    xml_text,
    xml_unescape,
)

__all__ = [
    "CardRecord",
    "CardTemplate",
    "TemplateError",
    "card_path",
    "iter_cards",
    "render_card",
    "write_atomic",
    "write_cards",
]

TEMPLATE_DIR = workbooks_dir()
"""Where the bundled templates live (<repo>/workbooks, or the installed copy)."""

FIXED_TIMESTAMP = "2026-01-01T00:00:00Z"
"""docProps/core.xml created/modified of every card (same input → same bytes)."""

CARD_COMPRESS_LEVEL = 1
"""zlib level for the per-employee parts (the sheet XML is small and repetitive; 1 is ~3× faster)."""


class TemplateError(KpiError):
    """The card template is missing a required marker, or has one in the wrong place."""


# ----------------------------------------------------------------------------------------------
# markers

HEADER_FIELDS = frozenset({
    "company", "period", "period_name", "currency", "employee_id", "name", "position", "department",
    "manager", "email", "status", "reason", "gate_note", "salary", "bonus_pool", "multiplier", "proration",
    "weight_total", "kpi_bonus", "bonus", "total_pay",
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

MONEY_FIELDS = frozenset({"salary", "bonus_pool", "kpi_bonus", "bonus", "total_pay", "kpi.bonus"})

TEXTS = {
    "en": {
        "months": ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                   "October", "November", "December"],
        "default_scale": "Default scale", "scale": "Scale “{}”",
        "steps": "steps", "linear": "linear between the points", "capped": "coefficient capped at {}",
        "used_by": "Applies to: {}",
        "below": "below {}", "band": "{} to below {}", "above": "{} and above",
        "at": "at {}", "at_low": "at {} and below", "at_high": "at {} and above", "cap": "coefficient cap",
        "gate": "Gate: “{}” must score at least {}, otherwise no bonus is paid.",
        "gated": "Not reached this period: the bonus is 0.",
        "decimal": ".", "group": ",",
    },
    "ru": {
        "months": ["Январь", "Февраль", "Март", "Апрель", "Май", "Июнь", "Июль", "Август", "Сентябрь",
                   "Октябрь", "Ноябрь", "Декабрь"],
        "default_scale": "Базовая шкала", "scale": "Шкала «{}»",
        "steps": "ступенчатая", "linear": "линейная между точками", "capped": "коэффициент не выше {}",
        "used_by": "Применяется к: {}",
        "below": "ниже {}", "band": "от {} до {} (не включая)", "above": "{} и выше",
        "at": "при {}", "at_low": "при {} и ниже", "at_high": "при {} и выше", "cap": "максимальный коэффициент",
        "gate": "Стоп-показатель: «{}» — не ниже {}, иначе премия не начисляется.",
        "gated": "В этом периоде порог не достигнут: премия 0.",
        "decimal": ",", "group": "\u00a0",
    },
}


# ----------------------------------------------------------------------------------------------
# values written into cells


class Err(str):
    """An Excel error value (``#DIV/0!``) as a cached result."""


class Fx(NamedTuple):
    """A formula cell: the formula (no leading '=') and the value xl_kpi computed for it."""

    text: str
    value: Any


_num = number_text


def _fx_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _tail(v: Any) -> str:
    """The end of a ``<c r=".." s=".."`` element for value ``v`` (text is always an inline string)."""
    tv = type(v)
    if tv is str:
        if not v:
            return "/>"
        return f' t="inlineStr"><is><t xml:space="preserve">{xml_text(v)}</t></is></c>'
    if tv is float:
        if v - v != 0.0:  # NaN or infinity
            return "/>"
        r = repr(v)
        return f"><v>{r[:-2] if r.endswith('.0') else r}</v></c>"
    if tv is int:
        return f"><v>{v}</v></c>"
    if v is None:
        return "/>"
    if tv is Fx:
        f = _fx_text(v.text)
        c = v.value
        tc = type(c)
        if c is None or (tc is float and c != c):
            return f"><f>{f}</f></c>"
        if tc is Err:
            return f' t="e"><f>{f}</f><v>{c}</v></c>'
        if tc is str:
            return f' t="str"><f>{f}</f><v>{xml_text(c)}</v></c>'
        if tc is bool:
            return f' t="b"><f>{f}</f><v>{int(c)}</v></c>'
        return f"><f>{f}</f><v>{_num(c)}</v></c>"
    if tv is bool:
        return f' t="b"><v>{int(v)}</v></c>'
    if isinstance(v, float):
        return _tail(float(v))
    if isinstance(v, int):
        return _tail(int(v))
    return _tail(str(v))


def _plain(v: Any) -> Any:
    """The cached value behind a cell value (for chart caches and text)."""
    return v.value if type(v) is Fx else v


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
_REL_RE = re.compile(r"<Relationship\b([^>]*?)/?>", re.S)
_SHEET_RE = re.compile(r"<sheet\b([^>]*?)/?>", re.S)

REL_DRAWING = "/drawing"
REL_CHART = "/chart"
REL_COMMENTS = "/comments"
REL_VML = "/vmlDrawing"
REL_TABLE = "/table"


def _resolve(base_part: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    parts = list(PurePosixPath(base_part).parent.parts)
    for seg in target.split("/"):
        if seg == "..":
            parts.pop()
        elif seg and seg != ".":
            parts.append(seg)
    return "/".join(parts)


def _rels_path(part: str) -> str:
    p = PurePosixPath(part)
    return str(p.parent / "_rels" / (p.name + ".rels"))


def _rels(parts: dict[str, bytes], part: str) -> list[dict[str, str]]:
    data = parts.get(_rels_path(part))
    if data is None:
        return []
    out = []
    for m in _REL_RE.finditer(data.decode("utf-8")):
        a = dict(parse_attrs(m.group(1)))
        if a.get("TargetMode") == "External":
            continue
        a["path"] = _resolve(part, xml_unescape(a.get("Target", "")))
        out.append(a)
    return out


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


class _Key(NamedTuple):
    rows: int
    scales: tuple[tuple[str, ...], ...]  # per scale: the kinds of its rows ("below", "point", "cap")
    hide_multiplier: bool
    hide_proration: bool
    currency: str
    recalc: bool = False  # some total has no cached value: the office suite recalculates on load


@dataclass
class _Slot:
    ctx: int
    field: str | None
    pieces: list[Any] | None  # text template: str or (ctx, field)


@dataclass
class _ChartSlot:
    numeric: bool
    prefix: str
    format_code: str
    cells: list[Any]  # ("s", slot index) or ("v", static value)


@dataclass
class _Compiled:
    key: _Key
    plan: RowPlan
    sheet_parts: list[str | None]
    sheet_slots: list[tuple[int, _Slot]]
    charts: dict[str, tuple[list[str | None], list[tuple[int, _ChartSlot]]]]
    entries: list[ZipEntry | str]  # str = name of a per-card part
    locals_: list[bytes | None]
    kpi_rows: list[int]
    scale_rows: list[dict[str, Any]]  # per scale: {"ctx": title context, "rows": [(kind, row, context)]}
    ctx_count: int
    field_refs: dict[str, str]  # header marker → absolute reference of its first cell


class CardTemplate:
    """A card template, parsed once; compiled forms are cached per card shape.

    Load it with :meth:`load`. Picklable (it is sent to worker processes as its source bytes).
    """

    def __init__(self, source: bytes, lang: str = "en", path: Path | None = None) -> None:
        if lang not in TEXTS:
            raise TemplateError(f"language must be one of {sorted(TEXTS)}, not {lang!r}")
        self.source = source
        self.lang = lang
        self.path = path
        self._compiled: dict[_Key, _Compiled] = {}
        self._parse()

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, lang: str = "en") -> CardTemplate:
        """Read a template (``None`` = the bundled ``workbooks/kpi_card_<lang>.xlsx``)."""
        p = Path(path) if path is not None else TEMPLATE_DIR / f"kpi_card_{lang}.xlsx"
        if path is not None:  # a user's file: the same size, zip-bomb and XML-bomb checks as a plan
            from xl_kpi.inputs.readers import FileReadError, check_file, limits, scan_xlsx

            try:
                check_file(p, limits().plan_bytes, "card template")
                scan_xlsx(p)
            except FileReadError as exc:
                raise TemplateError(f"card template {exc}") from None
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise TemplateError(f"cannot read the card template {p}: {exc.strerror or exc}") from None
        return cls(data, lang, p)

    def __reduce__(self) -> tuple[Any, ...]:
        return (CardTemplate, (self.source, self.lang, self.path))

    # -- parse ---------------------------------------------------------------------------------

    def _parse(self) -> None:
        try:
            parts = read_parts(self.source)
        except Exception as exc:
            raise TemplateError(f"the card template is not an xlsx file: {exc}") from None
        if "xl/workbook.xml" not in parts:
            raise TemplateError("the card template has no xl/workbook.xml; is it an xlsx workbook?")
        self.parts = parts
        self.names = list(parts)
        wb_rels = {r["Id"]: r for r in _rels(parts, "xl/workbook.xml")}
        self.strings_part = next((r["path"] for r in wb_rels.values() if r["Type"].endswith("/sharedStrings")),
                                 None)
        self.strings_xml: list[str] = []
        strings: list[str] = []
        if self.strings_part and self.strings_part in parts:
            for m in _SI_RE.finditer(parts[self.strings_part].decode("utf-8")):
                self.strings_xml.append(m.group(0))
                strings.append(string_item_text(m.group(1) or ""))
        wb_xml = parts["xl/workbook.xml"].decode("utf-8")
        self.sheets: list[tuple[str, str]] = []  # (name, part)
        for m in _SHEET_RE.finditer(wb_xml):
            a = dict(parse_attrs(m.group(1)))
            rid = next((v for k, v in a.items() if k.endswith(":id")), None)
            rel = wb_rels.get(rid or "")
            if rel and rel["Type"].endswith("/worksheet"):
                self.sheets.append((xml_unescape(a.get("name", "")), rel["path"]))
        card = None
        for name, part in self.sheets:
            head, data, tail = _split_sheet(parts[part].decode("utf-8"))
            rows = _parse_rows(data, strings)
            if any(c.text and "{{" in c.text and _MARKER.search(c.text) for r in rows for c in r.cells):
                card = (name, part, head, rows, tail)
                break
        if card is None:
            raise TemplateError("no sheet of the template holds markers such as {{name}} or {{kpi.fact}}")
        self.sheet_name, self.sheet_part, self.head, rows, self.tail = card
        self.rows = {r.r: r for r in rows}
        self.max_row = max(self.rows, default=1)
        self._find_markers()
        self._related()

    def _find_markers(self) -> None:
        kpi_rows: set[int] = set()
        title_rows: set[int] = set()
        point_rows: set[int] = set()
        self.kpi_cols: dict[str, str] = {}
        self.scale_cols: dict[str, str] = {}
        self.field_cells: dict[str, tuple[str, int]] = {}  # first whole-cell occurrence (column, row)
        self.hide_rows: dict[str, int] = {}
        problems: list[str] = []
        for row in self.rows.values():
            for cell in row.cells:
                if cell.text is None or cell.formula is not None:
                    continue
                marker = _marker_of(cell.text)
                if marker is None:
                    continue
                cell.marker = marker
                ref = f"{col_letters(cell.col)}{row.r}"
                for name in _marker_fields(marker):
                    ns, _, fld = name.rpartition(".")
                    if ns == "kpi":
                        if fld not in KPI_FIELDS:
                            problems.append(f"{ref}: unknown marker {{{{{name}}}}}")
                        kpi_rows.add(row.r)
                        if marker[0] == "v":
                            self.kpi_cols.setdefault(fld, col_letters(cell.col))
                    elif ns == "scale":
                        if fld in SCALE_POINT_FIELDS:
                            point_rows.add(row.r)
                            if marker[0] == "v":
                                self.scale_cols.setdefault(fld, col_letters(cell.col))
                        elif fld in SCALE_TITLE_FIELDS:
                            title_rows.add(row.r)
                        else:
                            problems.append(f"{ref}: unknown marker {{{{{name}}}}}")
                    elif ns:
                        problems.append(f"{ref}: unknown marker {{{{{name}}}}} (namespaces are kpi. and scale.)")
                    elif name not in HEADER_FIELDS:
                        problems.append(f"{ref}: unknown marker {{{{{name}}}}}")
                    elif marker[0] == "v":
                        self.field_cells.setdefault(name, (col_letters(cell.col), row.r))
                        if name in ("multiplier", "proration"):
                            self.hide_rows.setdefault(name, row.r)
        if len(kpi_rows) != 1:
            problems.append(
                "the KPI row is missing: put {{kpi.name}}, {{kpi.fact}}, {{kpi.score}}, {{kpi.coefficient}} and "
                "{{kpi.bonus}} in one row" if not kpi_rows else
                f"{{{{kpi.*}}}} markers must all be in one row (the KPI row), found rows {sorted(kpi_rows)}"
            )
        else:
            missing = [f for f in KPI_REQUIRED if f not in self.kpi_cols]
            if missing:
                problems.append("the KPI row lacks " + ", ".join(f"{{{{kpi.{f}}}}}" for f in missing))
        if len(point_rows) > 1:
            problems.append(f"{{{{scale.band/threshold/coefficient}}}} must be in one row, found {sorted(point_rows)}")
        if title_rows and not point_rows:
            problems.append("{{scale.title}}-type markers need a point row with {{scale.threshold}}")
        self.kpi_row = next(iter(kpi_rows), 0)
        self.point_row = next(iter(point_rows), None)
        self.scale_start = min(title_rows | point_rows) if point_rows else None
        if self.point_row is not None:
            if any(r > self.point_row for r in title_rows):
                problems.append("scale title markers must be above the scale point row")
            if point_rows and not {"threshold", "coefficient"} <= set(self.scale_cols):
                problems.append("the scale point row needs whole-cell {{scale.threshold}} and {{scale.coefficient}}")
            if self.scale_start <= self.kpi_row <= self.point_row:
                problems.append("the KPI row must not be inside the scale block")
        if problems:
            raise TemplateError("card template: " + "; ".join(problems))

    def _related(self) -> None:
        self.sheet_rels = _rels(self.parts, self.sheet_part)
        self.drawing_part = next((r["path"] for r in self.sheet_rels if r["Type"].endswith(REL_DRAWING)), None)
        self.comment_parts = [r["path"] for r in self.sheet_rels if r["Type"].endswith(REL_COMMENTS)]
        self.vml_parts = [r["path"] for r in self.sheet_rels if r["Type"].endswith(REL_VML)]
        self.table_parts = [r["path"] for r in self.sheet_rels if r["Type"].endswith(REL_TABLE)]
        self.chart_parts = [n for n in self.names if n.startswith("xl/charts/chart") and n.endswith(".xml")]
        self.other_sheets = [p for _, p in self.sheets if p != self.sheet_part]

    # -- compile -------------------------------------------------------------------------------

    def compiled(self, key: _Key) -> _Compiled:
        """The compiled form for one card shape (built on first use, then cached)."""
        c = self._compiled.get(key)
        if c is None:
            c = self._compiled[key] = self._compile(key)
        return c

    def _row_plan(self, key: _Key) -> tuple[list[int], list[int], list[int], list[dict[str, Any]], int]:
        sources: list[int] = []
        ctx: list[int] = []
        kpi_rows: list[int] = []
        scale_rows: list[dict[str, Any]] = []
        nk = key.rows
        next_ctx = 1 + nk
        for r in range(1, self.max_row + 1):
            if r == self.kpi_row:
                for i in range(nk):
                    sources.append(r)
                    ctx.append(1 + i)
                    kpi_rows.append(len(sources))
            elif self.scale_start is not None and r == self.scale_start:
                for kinds in key.scales:
                    title_ctx = next_ctx
                    next_ctx += 1
                    info: dict[str, Any] = {"ctx": title_ctx, "rows": []}
                    for t in range(self.scale_start, self.point_row):
                        sources.append(t)
                        ctx.append(title_ctx)
                    for kind in kinds:
                        sources.append(self.point_row)
                        ctx.append(next_ctx)
                        info["rows"].append((kind, len(sources), next_ctx))
                        next_ctx += 1
                    scale_rows.append(info)
            elif self.scale_start is not None and self.scale_start < r <= self.point_row:
                continue
            else:
                sources.append(r)
                ctx.append(0)
        if self.scale_start is None:  # no scale block: still give each scale a context
            for kinds in key.scales:
                info = {"ctx": next_ctx, "rows": []}
                next_ctx += 1
                for kind in kinds:
                    info["rows"].append((kind, 0, next_ctx))
                    next_ctx += 1
                scale_rows.append(info)
        return sources, ctx, kpi_rows, scale_rows, next_ctx

    def _compile(self, key: _Key) -> _Compiled:
        sources, row_ctx, kpi_rows, scale_rows, ctx_count = self._row_plan(key)
        plan = RowPlan(sources, self.max_row)
        sheet = self.sheet_name
        hidden = set()
        if key.hide_multiplier and "multiplier" in self.hide_rows:
            hidden.add(plan.first_of(self.hide_rows["multiplier"]))
        if key.hide_proration and "proration" in self.hide_rows:
            hidden.add(plan.first_of(self.hide_rows["proration"]))

        chunks: list[Any] = []
        dyn: dict[tuple[int, int], int] = {}
        static: dict[tuple[int, int], Any] = {}
        slots: list[_Slot] = []
        max_col = 1
        strip_values = False
        for o, (src, ci) in enumerate(zip(sources, row_ctx, strict=True), 1):
            row = self.rows.get(src)
            if row is None:
                if o in hidden:
                    chunks.append(f'<row r="{o}" hidden="1"/>')
                continue
            attrs = row.attrs
            if o in hidden:
                attrs = [(k, v) for k, v in attrs if k != "hidden"] + [("hidden", "1")]
            if not row.cells:
                chunks.append(f'<row r="{o}"{render_attrs(attrs)}/>')
                continue
            chunks.append(f'<row r="{o}"{render_attrs(attrs)}>')
            copy = (src, o) if src in plan.repeated else None
            for cell in row.cells:
                ref = f"{col_letters(cell.col)}{o}"
                max_col = max(max_col, cell.col)
                if cell.marker is not None:
                    a = render_attrs((k, v) for k, v in cell.attrs if k != "t")
                    chunks.append(f'<c r="{ref}"{a}')
                    slot = self._slot(cell.marker, ci)
                    dyn[(o, cell.col)] = len(slots)
                    chunks.append(len(slots))
                    slots.append(slot)
                elif cell.formula is not None:
                    f = shift_formula(cell.formula, plan, sheet=sheet, own_sheet=True, copy=copy)
                    fattrs = [(k, map_range(v, plan) if k == "ref" else v) for k, v in cell.fattrs]
                    a = render_attrs((k, v) for k, v in cell.attrs if k != "t")
                    chunks.append(f'<c r="{ref}"{a}><f{render_attrs(fattrs)}>{_fx_text(f)}</f></c>')
                    strip_values = True
                else:
                    a = render_attrs(cell.attrs)
                    chunks.append(f'<c r="{ref}"{a}>{cell.inner}</c>' if cell.inner else f'<c r="{ref}"{a}/>')
                    if cell.value is not None:
                        static[(o, cell.col)] = cell.value
            chunks.append("</row>")
        head = self._shift_head(self.head, plan, len(sources), max_col)
        tail = self._shift_tail(self.tail, plan)
        sheet_parts, sheet_slots = _finish([head, "<sheetData>", *chunks, "</sheetData>", tail], slots)

        charts: dict[str, tuple[list[str | None], list[tuple[int, _ChartSlot]]]] = {}
        static_parts: dict[str, bytes] = {}
        for part in self.chart_parts:
            body, cslots = self._compile_chart(self.parts[part].decode("utf-8"), plan, dyn, static)
            if cslots:
                charts[part] = _finish(body, cslots)
            else:
                static_parts[part] = "".join(body).encode("utf-8")
        static_parts.update(self._static_parts(plan, key, strip_values or key.recalc))

        entries: list[ZipEntry | str] = []
        locals_: list[bytes | None] = []
        order = sorted(self.names, key=lambda n: n != "[Content_Types].xml")
        for name in order:
            if name == self.sheet_part or name in charts:
                entries.append(name)
                locals_.append(None)
            elif name in static_parts or name in self.parts:
                data = static_parts.get(name, self.parts[name])
                if data is None:
                    continue
                e = deflate(name, data, COMPRESS_LEVEL)
                entries.append(e)
                locals_.append(e.local)
        field_refs = {name: f"${col}${plan.first_of(r)}" for name, (col, r) in self.field_cells.items()}
        return _Compiled(key, plan, sheet_parts, sheet_slots, charts, entries, locals_, kpi_rows, scale_rows,
                         ctx_count, field_refs)

    def _slot(self, marker: Any, ci: int) -> _Slot:
        def ctx_of(name: str) -> int:
            return ci if "." in name else 0

        if marker[0] == "v":
            return _Slot(ctx_of(marker[1]), marker[1], None)
        pieces = [p if isinstance(p, str) else (ctx_of(p[0]), p[0]) for p in marker[1]]
        return _Slot(0, None, pieces)

    def _shift_head(self, head: str, plan: RowPlan, last_row: int, max_col: int) -> str:
        def dim(m: re.Match[str]) -> str:
            ref = m.group(2)
            start = ref.split(":")[0]
            try:
                _, c_end = split_cell(ref.split(":")[-1])
            except ValueError:
                c_end = max_col
            return f'{m.group(1)}{start}:{col_letters(max(c_end, max_col))}{max(last_row, 1)}"'

        head = re.sub(r'(<dimension\s+ref=")([^"]*)"', dim, head)
        head = re.sub(r'(\s(?:sqref|activeCell|topLeftCell)=")([^"]*)(")',
                      lambda m: m.group(1) + map_sqref(m.group(2), plan, grow=False) + m.group(3), head)
        return head

    def _shift_tail(self, tail: str, plan: RowPlan) -> str:
        copies: dict[int, list[int]] = {}
        for o, src in enumerate(plan.sources, 1):
            copies.setdefault(src, []).append(o)

        def merges(m: re.Match[str]) -> str:
            refs = re.findall(r'<mergeCell\s+ref="([^"]*)"\s*/>', m.group(0))
            out: list[str] = []
            for ref in refs:
                a, _, b = ref.partition(":")
                try:
                    (r1, c1), (r2, c2) = split_cell(a), split_cell(b or a)
                except ValueError:
                    out.append(ref)
                    continue
                if r1 == r2 and r1 in plan.repeated:
                    for o in copies[r1]:
                        out.append(f"{col_letters(c1)}{o}:{col_letters(c2)}{o}")
                else:
                    out.append(map_range(ref, plan))
            body = "".join(f'<mergeCell ref="{r}"/>' for r in out)
            return f'<mergeCells count="{len(out)}">{body}</mergeCells>'

        placeholder = "\x00MERGES\x00"
        mm = re.search(r"<mergeCells\b[^>]*>.*?</mergeCells>", tail, re.S)
        merged = merges(mm) if mm else None
        if mm:
            tail = tail[: mm.start()] + placeholder + tail[mm.end():]
        sheet = self.sheet_name
        tail = re.sub(r'(\ssqref=")([^"]*)(")', lambda m: m.group(1) + map_sqref(m.group(2), plan) + m.group(3),
                      tail)
        tail = re.sub(r'(\sref=")([^"]*)(")', lambda m: m.group(1) + map_sqref(m.group(2), plan) + m.group(3),
                      tail)
        tail = re.sub(
            r"(<((?:\w+:)?(?:formula|formula1|formula2|f))>)(.*?)(</\2>)",
            lambda m: m.group(1) + _fx_text(shift_formula(xml_unescape(m.group(3)), plan, sheet=sheet,
                                                          own_sheet=True)) + m.group(4),
            tail, flags=re.S)
        tail = re.sub(r"(<(\w+:)?sqref>)(.*?)(</\2sqref>)",
                      lambda m: m.group(1) + map_sqref(m.group(3), plan) + m.group(4), tail, flags=re.S)
        tail = re.sub(r'(<brk\b[^>]*?\sid=")(\d+)(")',
                      lambda m: f"{m.group(1)}{plan.last_of(int(m.group(2)))}{m.group(3)}", tail)
        if merged is not None:
            tail = tail.replace(placeholder, merged)
        return tail

    def _compile_chart(
        self, xml: str, plan: RowPlan, dyn: dict[tuple[int, int], int], static: dict[tuple[int, int], Any]
    ) -> tuple[list[Any], list[_ChartSlot]]:
        sheet = self.sheet_name
        body: list[Any] = []
        slots: list[_ChartSlot] = []
        pos = 0
        for m in re.finditer(r"<((\w+:)?)(numRef|strRef|multiLvlStrRef)>(.*?)</\1\3>", xml, re.S):
            p, kind, inner = m.group(1), m.group(3), m.group(4)
            fm = re.search(rf"<{re.escape(p)}f>(.*?)</{re.escape(p)}f>", inner, re.S)
            if not fm:
                continue
            ftext = xml_unescape(fm.group(1))
            if not refers_to(ftext, sheet):
                continue  # a literal or another sheet's data: static, keep its cache
            new_f = shift_formula(ftext, plan, sheet=sheet, own_sheet=False, grow=True)
            cache_re = rf"<{re.escape(p)}(numCache|strCache|multiLvlStrCache)\b.*?</{re.escape(p)}\1>|" \
                       rf"<{re.escape(p)}(numCache|strCache|multiLvlStrCache)\s*/>"
            fmt = re.search(rf"<{re.escape(p)}formatCode>(.*?)</{re.escape(p)}formatCode>", inner, re.S)
            rest = re.sub(cache_re, "", inner[fm.end():], flags=re.S)
            body.append(xml[pos: m.start()])
            body.append(f"<{p}{kind}>{inner[: fm.start()]}<{p}f>{xml_attr(new_f).replace('&quot;', chr(34))}</{p}f>")
            sh2, area2 = split_sheet_ref(new_f)
            cells = range_cells(area2) if sh2 == sheet and kind != "multiLvlStrRef" else None
            if cells is not None:
                srcs = [("s", dyn[c]) if c in dyn else ("v", static.get(c)) for c in cells]
                body.append(len(slots))
                slots.append(_ChartSlot(kind == "numRef", p, fmt.group(1) if fmt else "General", srcs))
            body.append(f"{rest}</{p}{kind}>")
            pos = m.end()
        body.append(xml[pos:])
        return body, slots

    def _static_parts(self, plan: RowPlan, key: _Key, strip_values: bool) -> dict[str, bytes | None]:
        """Every part that changes with the shape but not with the employee (None = drop the part)."""
        parts = self.parts
        out: dict[str, bytes | None] = {}
        sheet = self.sheet_name

        def text(name: str) -> str:
            return parts[name].decode("utf-8")

        # workbook: defined names (print area, user names) follow the rows; calc on load if needed
        wb = text("xl/workbook.xml")
        wb = re.sub(
            r"(<definedName\b[^>]*>)(.*?)(</definedName>)",
            lambda m: m.group(1) + _fx_text(shift_formula(xml_unescape(m.group(2)), plan, sheet=sheet,
                                                          own_sheet=False)) + m.group(3),
            wb, flags=re.S)
        if strip_values and "fullCalcOnLoad" not in wb:
            wb = re.sub(r"<calcPr\b", '<calcPr fullCalcOnLoad="1"', wb, count=1) if "<calcPr" in wb else \
                wb.replace("</workbook>", '<calcPr fullCalcOnLoad="1"/></workbook>')
        out["xl/workbook.xml"] = wb.encode("utf-8")

        # drop the calculation chain (cells moved) and the thumbnail (it shows the template)
        drop = {n for n in parts if n.endswith("calcChain.xml") or n.startswith("docProps/thumbnail")}
        for n in drop:
            out[n] = None
        for rels_name in ("xl/_rels/workbook.xml.rels", "_rels/.rels"):
            if rels_name in parts:
                rels = re.sub(r"<Relationship\b[^>]*?(calcChain|thumbnail)[^>]*?/>", "", text(rels_name))
                out[rels_name] = rels.encode("utf-8")
        ct = text("[Content_Types].xml")
        ct = re.sub(r'<Override\b[^>]*PartName="/(?:xl/calcChain\.xml|docProps/thumbnail[^"]*)"[^>]*/>', "", ct)
        out["[Content_Types].xml"] = ct.encode("utf-8")

        # core properties: fixed dates (deterministic output), no last-printed date
        if "docProps/core.xml" in parts:
            core = text("docProps/core.xml")
            core = re.sub(r"(<dcterms:(created|modified)\b[^>]*>)[^<]*(</dcterms:\2>)",
                          rf"\g<1>{FIXED_TIMESTAMP}\g<3>", core)
            core = re.sub(r"<cp:lastPrinted>[^<]*</cp:lastPrinted>", "", core)
            out["docProps/core.xml"] = core.encode("utf-8")

        # shared strings used only by marker cells are blanked (indices stay valid)
        if self.strings_part and self.strings_part in parts:
            used = self._used_strings()
            items = [si if i in used else "<si><t></t></si>" for i, si in enumerate(self.strings_xml)]
            xml = text(self.strings_part)
            m1 = re.search(r"<si\b", xml)
            m2 = xml.rfind("</sst>")
            if m1 and m2 > 0:
                xml = xml[: m1.start()] + "".join(items) + xml[m2:]
            out[self.strings_part] = xml.encode("utf-8")

        # currency symbol of money formats
        sym = CURRENCY_SYMBOLS.get(key.currency.upper(), key.currency) if key.currency else "₽"
        if sym != "₽" and "xl/styles.xml" in parts:
            styles = text("xl/styles.xml")
            styles = re.sub(r'formatCode="([^"]*)"', lambda m: 'formatCode="' + m.group(1).replace(
                "₽", xml_attr(sym).replace('"', "&quot;")) + '"', styles)
            out["xl/styles.xml"] = styles.encode("utf-8")

        if not plan.identity:
            if self.drawing_part and self.drawing_part in parts:
                out[self.drawing_part] = _shift_anchors(text(self.drawing_part), plan).encode("utf-8")
            for p in self.comment_parts:
                xml = re.sub(r'(<comment\b[^>]*?\sref=")([^"]*)(")',
                             lambda m: m.group(1) + map_range(m.group(2), plan) + m.group(3), text(p))
                out[p] = xml.encode("utf-8")
            for p in self.vml_parts:
                out[p] = _shift_vml(text(p), plan).encode("utf-8")
            for p in self.table_parts:
                xml = re.sub(r'(\sref=")([^"]*)(")', lambda m: m.group(1) + map_range(m.group(2), plan) + m.group(3),
                             text(p))
                out[p] = xml.encode("utf-8")
            for p in self.other_sheets:
                out[p] = _shift_other_sheet(text(p), plan, sheet).encode("utf-8")
        return out

    def _used_strings(self) -> set[int]:
        used: set[int] = set()
        for _, part in self.sheets:
            xml = self.parts[part].decode("utf-8")
            for m in _CELL_RE.finditer(xml):
                if 't="s"' not in m.group(1):
                    continue
                vm = _V_RE.search(m.group(2) or "")
                if not vm:
                    continue
                idx = int(vm.group(1))
                if part == self.sheet_part:
                    ref = dict(parse_attrs(m.group(1))).get("r", "")
                    try:
                        r, c = split_cell(ref)
                    except ValueError:
                        used.add(idx)
                        continue
                    row = self.rows.get(r)
                    cell = next((x for x in row.cells if x.col == c), None) if row else None
                    if cell is not None and cell.marker is not None:
                        continue
                used.add(idx)
        return used


def _finish(chunks: Sequence[Any], slots: Sequence[Any]) -> tuple[list[str | None], list[tuple[int, Any]]]:
    """Merge adjacent literal chunks; slots become None placeholders with their positions."""
    parts: list[str | None] = []
    where: list[tuple[int, Any]] = []
    buf: list[str] = []
    for ch in chunks:
        if isinstance(ch, str):
            buf.append(ch)
        else:
            parts.append("".join(buf))
            buf = []
            where.append((len(parts), slots[ch]))
            parts.append(None)
    parts.append("".join(buf))
    return parts, where


def _shift_anchors(xml: str, plan: RowPlan) -> str:
    def anchor(m: re.Match[str]) -> str:
        block = m.group(0)
        edit_as = re.search(r'editAs="(\w+)"', block[:200])
        fm = re.search(r"<((?:\w+:)?)from>.*?<\1row>(\d+)</\1row>", block, re.S)
        tm = re.search(r"<((?:\w+:)?)to>.*?<\1row>(\d+)</\1row>", block, re.S)
        new_from = new_to = None
        if fm:
            new_from = plan.first_of(int(fm.group(2)) + 1) - 1
        if tm:
            t = int(tm.group(2)) + 1
            if edit_as and edit_as.group(1) in ("oneCell", "absolute") and fm:
                new_to = new_from + (t - 1 - int(fm.group(2)))
            else:
                new_to = (plan.last_of(t) if t in plan.repeated else plan.first_of(t)) - 1
        out = block
        if tm and new_to is not None:
            s, e = tm.span(2)
            out = out[:s] + str(new_to) + out[e:]
        if fm and new_from is not None:
            s, e = fm.span(2)
            out = out[:s] + str(new_from) + out[e:]
        return out

    return re.sub(r"<((?:\w+:)?)(twoCellAnchor|oneCellAnchor)\b.*?</\1\2>", anchor, xml, flags=re.S)


def _shift_vml(xml: str, plan: RowPlan) -> str:
    xml = re.sub(r"(<x:Row>)(\d+)(</x:Row>)", lambda m: f"{m.group(1)}{plan.first_of(int(m.group(2)) + 1) - 1}"
                 f"{m.group(3)}", xml)

    def anchor(m: re.Match[str]) -> str:
        v = [s.strip() for s in m.group(2).split(",")]
        if len(v) == 8:
            v[2] = str(plan.first_of(int(v[2]) + 1) - 1)
            v[6] = str(plan.first_of(int(v[6]) + 1) - 1)
        return m.group(1) + ", ".join(v) + m.group(3)

    return re.sub(r"(<x:Anchor>)(.*?)(</x:Anchor>)", anchor, xml, flags=re.S)


def _shift_other_sheet(xml: str, plan: RowPlan, sheet: str) -> str:
    def cell(m: re.Match[str]) -> str:
        inner = m.group(2) or ""
        fm = _F_RE.search(inner)
        if not fm or not fm.group(2):
            return m.group(0)
        f = xml_unescape(fm.group(2))
        nf = shift_formula(f, plan, sheet=sheet, own_sheet=False)
        if nf == f:
            return m.group(0)
        attrs = [(k, v) for k, v in parse_attrs(m.group(1)) if k != "t"]
        return f"<c{render_attrs(attrs)}><f{fm.group(1)}>{_fx_text(nf)}</f></c>"

    return _CELL_RE.sub(cell, xml)


# ----------------------------------------------------------------------------------------------
# results → per-card data

_LINE_COLS = ("kpi_id", "kpi_name", "unit", "weight", "base", "norm", "floor", "cap", "scale", "gate", "fact",
              "score", "coefficient", "bonus")
_LINE_NUM = {"weight", "base", "norm", "floor", "cap", "gate", "fact", "score", "coefficient", "bonus"}
_EMP_COLS = ("employee_id", "name", "position", "department", "manager", "email", "salary", "bonus_pool",
             "multiplier", "proration", "kpi_bonus", "gated", "bonus", "total_pay", "status", "reason")
_EMP_NUM = {"salary", "bonus_pool", "multiplier", "proration", "kpi_bonus", "bonus", "total_pay"}
_EMP_DEFAULT = {"multiplier": 1.0, "proration": 1.0, "gated": False}


def _clean_text(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float):
        if v != v:
            return None
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if hasattr(v, "item") and not isinstance(v, str):
        return _clean_text(v.item())
    return v


def _array(df: pd.DataFrame, name: str, numeric: bool, default: Any = None) -> Any:
    """One column as a compact NumPy array (float64 with NaN for numbers, objects otherwise)."""
    if name not in df.columns:
        return np.full(len(df), np.nan if numeric else default, dtype=float if numeric else object)
    s = df[name]
    if numeric:
        return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=math.nan)
    return s.to_numpy(dtype=object)


def _texts(values: list[Any]) -> list[Any]:
    return [_clean_text(v) for v in values]


def _flags(values: list[Any]) -> list[bool]:
    return [bool(x) if x is not None and x is not pd.NA and x == x else False for x in values]


@dataclass(slots=True)
class _Card:
    emp: dict[str, Any]
    lines: list[tuple[Any, ...]]


class _Context:
    """What is shared by all cards of one results table."""

    def __init__(self, results: Any, lang: str) -> None:
        self.scales: dict[str, Scale] = dict(getattr(results, "scales", None) or {})
        self.period = str(getattr(results, "period", "") or "")
        self.currency = str(getattr(results, "currency", "") or "RUB")
        self.company = _clean_text(getattr(results, "company", "")) or ""
        self.digits = int(getattr(results, "digits", 2))
        """Settings' rounding digits: every money ROUND on the card uses them."""
        self.lang = lang
        self.t = TEXTS[lang]
        self.period_name = _period_name(self.period, self.t)

    def scale(self, name: Any) -> Scale:
        if name is None or name == "" or (isinstance(name, float) and name != name):
            name = "default"
        sc = self.scales.get(name)
        if sc is None:
            if name == "default":
                return DEFAULT_SCALE
            raise KpiError(f"scale {name!r} is used by a KPI but not defined in results.scales")
        return sc


def _period_name(period: str, t: dict[str, Any]) -> str:
    m = re.fullmatch(r"(\d{4})-(\d{2})", period.strip())
    if m and 1 <= int(m.group(2)) <= 12:
        return f"{t['months'][int(m.group(2)) - 1]} {m.group(1)}"
    return period


def _cards(results: Any, employee_ids: Iterable[Any] | None = None, batch: int = 256) -> Iterator[_Card]:
    """Per-employee data, grouping the lines once (no per-employee DataFrame filtering).

    Columns are kept as NumPy arrays and turned into Python values ``batch`` employees at a time,
    so memory does not grow with the number of employees beyond the results table itself.
    """
    emps: pd.DataFrame = results.employees
    lines: pd.DataFrame = results.lines
    ecols = {c: _array(emps, c, c in _EMP_NUM, _EMP_DEFAULT.get(c)) for c in _EMP_COLS}
    lcols = [_array(lines, c, c in _LINE_NUM) for c in _LINE_COLS]
    ltext = [c not in _LINE_NUM for c in _LINE_COLS]
    groups = lines.groupby("employee_id", sort=False).indices if len(lines) else {}
    ids = _texts(ecols["employee_id"].tolist())
    if employee_ids is not None:
        index = {v: i for i, v in enumerate(ids)}
        order: Sequence[int] = []
        for e in employee_ids:
            if e not in index:
                raise KpiError(f"employee {e!r} is not in the results")
            order.append(index[e])  # type: ignore[attr-defined]
    else:
        order = range(len(ids))
    empty = np.zeros(0, dtype=np.intp)
    for start in range(0, len(order), batch):
        pos = np.asarray(order[start: start + batch], dtype=np.intp)
        ev: dict[str, list[Any]] = {}
        for c, arr in ecols.items():
            vals = arr[pos].tolist()
            ev[c] = vals if c in _EMP_NUM else _flags(vals) if c == "gated" else _texts(vals)
        idxs = [groups.get(ids[i], empty) for i in pos.tolist()]
        flat = np.concatenate(idxs) if idxs else empty
        lv = [_texts(col[flat].tolist()) if txt else col[flat].tolist() for col, txt in zip(lcols, ltext, strict=True)]
        rows = list(zip(*lv, strict=True)) if len(flat) else []
        at = 0
        for k, idx in enumerate(idxs):
            emp = {c: ev[c][k] for c in _EMP_COLS}
            emp["employee_id"] = ids[pos[k]]
            yield _Card(emp, rows[at: at + len(idx)])
            at += len(idx)


# ----------------------------------------------------------------------------------------------
# stamping one card

_L_ID, _L_NAME, _L_UNIT, _L_W, _L_BASE, _L_NORM, _L_FLOOR, _L_CAP, _L_SCALE, _L_GATE, _L_FACT, _L_SCORE, \
    _L_COEF, _L_BONUS = range(14)
_DIV0 = Err("#DIV/0!")


def _isnum(x: Any) -> bool:
    return type(x) is float and x == x


def _pct_text(x: float, t: dict[str, Any]) -> str:
    s = f"{x * 100:.4f}".rstrip("0").rstrip(".") + "%"
    return s.replace(".", t["decimal"])


def _coef_text(x: float, t: dict[str, Any]) -> str:
    return f"{x:g}".replace(".", t["decimal"])


def _money_text(x: float, t: dict[str, Any], currency: str) -> str:
    s = f"{x:,.2f}".replace(",", "\x00").replace(".", t["decimal"]).replace("\x00", t["group"])
    return f"{s} {CURRENCY_SYMBOLS.get(currency.upper(), currency)}"


def _scale_rows(sc: Scale) -> tuple[str, ...]:
    kinds = (("below",) if sc.kind == "steps" else ()) + ("point",) * len(sc.thresholds)
    return kinds + (("cap",) if sc.cap is not None else ())


def _scale_ctxs(sc: Scale, label: str, used_by: list[str], t: dict[str, Any]) -> list[dict[str, Any]]:
    kind = t["steps"] if sc.kind == "steps" else t["linear"]
    if sc.cap is not None:
        kind += ", " + t["capped"].format(_coef_text(sc.cap, t))
    title = {"scale.name": label, "scale.kind": kind, "scale.title": f"{label} — {kind}",
             "scale.used_by": t["used_by"].format(", ".join(used_by))}
    out = [title]
    pts = [_pct_text(x, t) for x in sc.thresholds]
    if sc.kind == "steps":
        out.append({"scale.band": t["below"].format(pts[0]), "scale.threshold": None,
                    "scale.coefficient": float(sc.below)})
        for k, (th, c) in enumerate(sc.points):
            band = t["band"].format(pts[k], pts[k + 1]) if k + 1 < len(pts) else t["above"].format(pts[k])
            out.append({"scale.band": band, "scale.threshold": float(th), "scale.coefficient": float(c)})
    else:
        last = len(pts) - 1
        for k, (th, c) in enumerate(sc.points):
            band = t["at_low" if k == 0 else "at_high" if k == last else "at"].format(pts[k])
            out.append({"scale.band": band, "scale.threshold": float(th), "scale.coefficient": float(c)})
    if sc.cap is not None:
        out.append({"scale.band": t["cap"], "scale.threshold": None, "scale.coefficient": float(sc.cap)})
    return out


class _Stamp:
    """Builds one card's slot values: inputs, formulas and the cached results."""

    def __init__(self, template: CardTemplate, ctx: _Context) -> None:
        self.tpl = template
        self.ctx = ctx

    def key_and_scales(self, card: _Card) -> tuple[_Key, list[tuple[str, Scale, list[str]]]]:
        order: dict[str, tuple[Scale, list[str]]] = {}
        for ln in card.lines:
            name = ln[_L_SCALE] if ln[_L_SCALE] not in (None, "") else "default"
            if name not in order:
                order[name] = (self.ctx.scale(name), [])
            order[name][1].append(str(ln[_L_NAME] if ln[_L_NAME] is not None else ln[_L_ID]))
        if not order:
            order["default"] = (self.ctx.scale("default"), [])
        scales = [(n, sc, used) for n, (sc, used) in order.items()]
        e = card.emp
        m = e["multiplier"]
        p = e["proration"]
        key = _Key(
            max(1, len(card.lines)),
            tuple(_scale_rows(sc) for _, sc, _ in scales),
            not (_isnum(m) and m != 1.0),
            not (_isnum(p) and p != 1.0),
            self.ctx.currency,
            not all(_isnum(e[k]) for k in ("kpi_bonus", "bonus", "total_pay")),
        )
        return key, scales

    def contexts(self, card: _Card, comp: _Compiled, scales: list[tuple[str, Scale, list[str]]]) -> list[Any]:
        tpl, cx, t = self.tpl, self.ctx, self.ctx.t
        emp = card.emp
        kc = tpl.kpi_cols
        fc = comp.field_refs
        ctxs: list[Any] = [None] * comp.ctx_count

        # scales: where each one's rows are (cell references or literals)
        sref: dict[str, fx.ScaleRefs] = {}
        sc_cols = tpl.scale_cols
        for (name, sc, used), info in zip(scales, comp.scale_rows, strict=True):
            label = t["default_scale"] if name == "default" else t["scale"].format(name)
            cs = _scale_ctxs(sc, label, used, t)
            ctxs[info["ctx"]] = cs[0]
            for (_kind, _row, ci), c in zip(info["rows"], cs[1:], strict=True):
                ctxs[ci] = c
            rows = info["rows"]
            if tpl.scale_start is not None:
                at = {k: r for k, r, _ in rows if k in ("below", "cap")}
                sref[name] = fx.ScaleRefs.cells(sc, sc_cols["threshold"], sc_cols["coefficient"],
                                                [r for k, r, _ in rows if k == "point"], at.get("below"),
                                                at.get("cap"))
            else:
                sref[name] = fx.ScaleRefs.of(sc)

        pool = emp["bonus_pool"]
        pool_ref = fc.get("bonus_pool") or fx.literal(pool if _isnum(pool) else 0.0)
        weights: list[float] = []
        gates: list[tuple[str, str, float, Any]] = []  # (score ref, gate ref, gate, KPI name)
        rows = comp.kpi_rows
        for i, r in enumerate(rows):
            if i >= len(card.lines):
                ctxs[1 + i] = {}
                continue
            ln = card.lines[i]
            ref = {f: f"{col}{r}" for f, col in kc.items()}
            F = ref["fact"]
            S, C = ref["score"], ref["coefficient"]
            floor, cap = ln[_L_FLOOR], ln[_L_CAP]
            score_f = fx.score_formula(
                F, ref.get("base") or fx.literal(ln[_L_BASE]), ref.get("norm") or fx.literal(ln[_L_NORM]),
                (ref.get("floor") or fx.literal(floor)) if _isnum(floor) else None,
                (ref.get("cap") or fx.literal(cap)) if _isnum(cap) else None)
            name = ln[_L_SCALE] if ln[_L_SCALE] not in (None, "") else "default"
            coef_f = fx.coefficient_formula(S, sref[name])
            bonus_f = fx.line_bonus_formula(pool_ref, ref.get("weight") or fx.literal(ln[_L_W]), C, cx.digits)

            fact, score, coef, bon = ln[_L_FACT], ln[_L_SCORE], ln[_L_COEF], ln[_L_BONUS]
            if not _isnum(fact):
                sv = cv = bv = ""  # no fact: the chain stays empty and SUM skips the line
            elif not _isnum(score):
                sv, cv, bv = _DIV0, "", ""  # norm = base: #DIV/0! in the score, empty after it
            else:
                sv = score
                cv = coef if _isnum(coef) else ""
                bv = bon if _isnum(bon) else ""
            if _isnum(ln[_L_W]):
                weights.append(ln[_L_W])
            gate = ln[_L_GATE]
            if _isnum(gate):
                gates.append((S, ref.get("gate") or fx.literal(gate), gate, ln[_L_NAME]))
            ctxs[1 + i] = {
                "kpi.no": i + 1, "kpi.id": ln[_L_ID], "kpi.name": ln[_L_NAME], "kpi.unit": ln[_L_UNIT],
                "kpi.weight": ln[_L_W], "kpi.base": ln[_L_BASE], "kpi.norm": ln[_L_NORM], "kpi.fact": fact,
                "kpi.floor": floor, "kpi.cap": cap, "kpi.gate": gate, "kpi.scale": name, "kpi.target": 1.0,
                "kpi.score": Fx(score_f, sv), "kpi.coefficient": Fx(coef_f, cv), "kpi.bonus": Fx(bonus_f, bv),
            }

        # totals: formulas from the engine, cached values from results (none where results have none)
        first, last = rows[0], rows[-1]
        bc, wc = kc["bonus"], kc.get("weight")
        sum_bonus = fx.kpi_bonus_formula(f"{bc}{first}:{bc}{last}")
        mult = emp["multiplier"] if _isnum(emp["multiplier"]) else 1.0
        pror = emp["proration"] if _isnum(emp["proration"]) else 1.0
        bonus_f = fx.period_bonus_formula(fc.get("kpi_bonus") or sum_bonus, fc.get("multiplier") or fx.literal(mult),
                                          fc.get("proration") or fx.literal(pror), cx.digits,
                                          fx.gate_condition((s, g) for s, g, _, _ in gates))
        salary = emp["salary"] if _isnum(emp["salary"]) else 0.0
        total_f = fx.total_pay_formula(fc.get("salary") or fx.literal(salary), fc.get("bonus") or bonus_f, cx.digits)
        wsum = math.fsum(weights)
        weight_f = fx.sum_formula(f"{wc}{first}:{wc}{last}") if wc else fx.literal(wsum)

        gate_note = ""
        if gates:
            gate_note = " ".join(t["gate"].format(name, _pct_text(g, t)) for _, _, g, name in gates)
            if emp["gated"]:
                gate_note += " " + t["gated"]
        ctxs[0] = {
            "company": cx.company, "period": cx.period, "period_name": cx.period_name, "currency": cx.currency,
            "employee_id": emp["employee_id"], "name": emp["name"], "position": emp["position"],
            "department": emp["department"], "manager": emp["manager"], "email": emp["email"],
            "status": emp["status"], "reason": emp["reason"], "gate_note": gate_note,
            "salary": emp["salary"], "bonus_pool": pool, "multiplier": mult, "proration": pror,
            "weight_total": Fx(weight_f, wsum), "kpi_bonus": Fx(sum_bonus, emp["kpi_bonus"]),
            "bonus": Fx(bonus_f, emp["bonus"]), "total_pay": Fx(total_f, emp["total_pay"]),
        }
        return ctxs

    def text(self, pieces: list[Any], ctxs: list[Any]) -> str:
        out = []
        t = self.ctx.t
        for p in pieces:
            if isinstance(p, str):
                out.append(p)
                continue
            ci, name = p
            v = _plain((ctxs[ci] or {}).get(name))
            if v is None or (type(v) is float and v != v):
                continue
            if type(v) is float:
                if name in MONEY_FIELDS:
                    out.append(_money_text(v, t, self.ctx.currency))
                elif name in ("proration", "kpi.score", "kpi.weight", "weight_total", "scale.threshold"):
                    out.append(_pct_text(v, t))
                else:
                    out.append(_coef_text(v, t))
            else:
                out.append(str(v))
        return "".join(out)


def _render(template: CardTemplate, stamp: _Stamp, card: _Card) -> bytes:
    key, scales = stamp.key_and_scales(card)
    comp = template.compiled(key)
    ctxs = stamp.contexts(card, comp, scales)
    values: list[Any] = []
    buf = list(comp.sheet_parts)
    for pos, slot in comp.sheet_slots:
        if slot.field is not None:
            v = (ctxs[slot.ctx] or {}).get(slot.field)
        else:
            v = stamp.text(slot.pieces, ctxs)
        values.append(v)
        buf[pos] = _tail(v)
    dynamic: dict[str, bytes] = {template.sheet_part: "".join(buf).encode("utf-8")}
    for part, (cparts, cslots) in comp.charts.items():
        cb = list(cparts)
        for pos, cs in cslots:
            vals = [_plain(values[ref]) if kind == "s" else ref for kind, ref in cs.cells]
            cb[pos] = _chart_cache(cs, vals)
        dynamic[part] = "".join(cb).encode("utf-8")
    entries: list[ZipEntry] = []
    locals_: list[bytes] = []
    for e, loc in zip(comp.entries, comp.locals_, strict=True):
        if isinstance(e, str):
            e = deflate(e, dynamic[e], CARD_COMPRESS_LEVEL)
            loc = e.local
        entries.append(e)
        locals_.append(loc)  # type: ignore[arg-type]
    return build_zip(entries, locals_)


def _chart_cache(cs: _ChartSlot, vals: list[Any]) -> str:
    p = cs.prefix
    n = len(vals)
    if cs.numeric:
        pts = "".join(
            f'<{p}pt idx="{i}"><{p}v>{_num(v)}</{p}v></{p}pt>'
            for i, v in enumerate(vals) if type(v) in (float, int) and v == v
        )
        return (f"<{p}numCache><{p}formatCode>{cs.format_code}</{p}formatCode><{p}ptCount val=\"{n}\"/>"
                f"{pts}</{p}numCache>")
    pts = "".join(
        f'<{p}pt idx="{i}"><{p}v>{xml_text(v if type(v) is str else _num(float(v)))}</{p}v></{p}pt>'
        for i, v in enumerate(vals) if v is not None and v != "" and not (type(v) is float and v != v)
    )
    return f'<{p}strCache><{p}ptCount val="{n}"/>{pts}</{p}strCache>'


# ----------------------------------------------------------------------------------------------
# public API


def _template(template: CardTemplate | str | os.PathLike[str] | None, lang: str) -> CardTemplate:
    if isinstance(template, CardTemplate):
        return template
    return CardTemplate.load(template, lang)


def render_card(template: CardTemplate, results: Any, employee_id: Any) -> bytes:
    """The xlsx bytes of one employee's card (deterministic: same input → same bytes)."""
    for _, data in iter_cards(template, results, [employee_id]):
        return data
    raise KpiError(f"employee {employee_id!r} is not in the results")  # pragma: no cover


def iter_cards(
    template: CardTemplate, results: Any, employee_ids: Iterable[Any] | None = None
) -> Iterator[tuple[Any, bytes]]:
    """(employee_id, xlsx bytes) for each employee (all, or ``employee_ids`` in that order).

    The results are grouped once; one card is in memory at a time.
    """
    stamp = _Stamp(template, _Context(results, template.lang))
    for card in _cards(results, employee_ids):
        yield card.emp["employee_id"], _render(template, stamp, card)


def card_path(out_dir: str | os.PathLike[str], department: Any, employee_id: Any, name: Any) -> Path:
    """OUT/cards/<department>/<employee_id> <name>.xlsx, every component made safe, always inside OUT."""
    dep = department if department not in (None, "") and not (isinstance(department, float) and
                                                               department != department) else "_unassigned"
    stem = f"{_clean_text(employee_id)} {'' if name is None else _clean_text(name)}".strip()
    return child(Path(out_dir) / "cards", dep, stem, ext=".xlsx")


@dataclass(frozen=True)
class CardRecord:
    """One written card: what the manifest lists."""

    employee_id: Any
    path: Path
    sha256: str
    total_bonus: float
    status: Any
    reason: Any


# worker state (one template compiled per process)
_W: dict[str, Any] = {}


def _worker_init(source: bytes, lang: str, path: Path | None, ctx: _Context, fsync: bool,
                 keep: bool | Mapping[str, str]) -> None:
    tpl = CardTemplate(source, lang, path)
    _W.update(template=tpl, stamp=_Stamp(tpl, ctx), fsync=fsync, keep=keep)


class _Journal:
    """Append-only "sha256 path" lines, fsync'ed per chunk: the cards a run has finished (for resume)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def add(self, rows: Sequence[tuple[Any, str, str, Any, Any, Any]]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.write(fd, "".join(f"{digest} {p}\n" for _, p, digest, *_ in rows).encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


def read_journal(path: str | os.PathLike[str]) -> dict[str, str]:
    """path → sha256 of the cards a :func:`write_cards` journal records (empty when missing)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    pairs = (line.split(" ", 1) for line in text.splitlines() if " " in line)
    return {p: d for d, p in pairs if len(d) == 64}


def _write_chunk(
    template: CardTemplate, stamp: _Stamp, chunk: Sequence[tuple[_Card, str]], fsync: bool,
    keep: bool | Mapping[str, str] = False,
) -> list[tuple[Any, str, str, Any, Any, Any]]:
    """Render and write one chunk of cards (one flush to disk for the chunk).

    ``keep``: a card file already at its path is kept as it is (a resumed run whose earlier,
    identical run wrote it atomically); a mapping path → sha256 (a resume journal) keeps it only when
    its bytes have the recorded hash, anything else is rendered again. Returns (employee_id, path,
    sha256, bonus, status, reason).
    """
    out = []
    with AtomicBatch(fsync=fsync) as batch:
        for card, path in chunk:
            data = None
            if keep and os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    data = f.read()
                if isinstance(keep, Mapping) and keep.get(path) != hashlib.sha256(data).hexdigest():
                    data = None  # not proven to be this run's card for these inputs: rebuilt
            if data is None:
                data = _render(template, stamp, card)
                batch.write(path, data)
            e = card.emp
            out.append((e["employee_id"], path, hashlib.sha256(data).hexdigest(), e["bonus"], e["status"],
                        e["reason"]))
    return out


def _worker_chunk(chunk: list[tuple[_Card, str]]) -> list[tuple[Any, str, str, Any, Any, Any]]:
    return _write_chunk(_W["template"], _W["stamp"], chunk, _W["fsync"], _W["keep"])


def _chunks(results: Any, out_dir: Path, size: int) -> Iterator[list[tuple[_Card, str]]]:
    """(card, path) pairs, ``size`` at a time; file names that collide get " (2)", " (3)"..."""
    seen: set[str] = set()
    buf: list[tuple[_Card, str]] = []
    for card in _cards(results):
        e = card.emp
        p = card_path(out_dir, e["department"], e["employee_id"], e["name"])
        k, n = str(p).casefold(), 2
        while k in seen:  # same safe name (or the same but for case)
            p = p.with_name(f"{p.stem[:90]} ({n}){p.suffix}")
            k, n = str(p).casefold(), n + 1
        seen.add(k)
        buf.append((card, str(p)))
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def write_cards(
    results: Any,
    out_dir: str | os.PathLike[str],
    template: CardTemplate | str | os.PathLike[str] | None = None,
    lang: str = "en",
    jobs: int = 1,
    on_progress: Callable[[int], None] | None = None,
    *,
    fsync: bool = True,
    chunk_size: int = 250,
    keep_existing: bool | Mapping[str, str] = False,
    journal: str | os.PathLike[str] | None = None,
) -> list[CardRecord]:
    """Write every employee's card under OUT/cards/<department>/ and return one record per card.

    ``template``: a :class:`CardTemplate` (its language wins), a path, or None (the bundled
    template for ``lang``); ``lang`` is also the language of the generated text.
    ``jobs`` > 1 uses that many worker processes, each compiling the template once and taking
    chunks of ``chunk_size`` employees; only a few chunks are in flight at a time, so memory
    stays flat however many employees there are. Files are written atomically, a chunk at a time
    with one flush to disk per chunk (``fsync=False`` skips the flush). ``on_progress(n_done)``
    is called after each chunk. Records come in the order of ``results.employees``; names that
    collide after sanitising get a " (2)" suffix. ``keep_existing`` keeps card files already in
    place (resuming an interrupted run of the same inputs into the same folder); a mapping path →
    sha256 keeps only the files with those hashes. ``journal``: a file that gets "sha256 path" lines
    for every finished chunk, flushed to disk, so that a resume can prove which cards it wrote.
    """
    log = _Journal(journal) if journal is not None else None
    tpl = _template(template, lang)
    out = Path(out_dir)
    ctx = _Context(results, tpl.lang)
    chunks = _chunks(results, out, max(1, chunk_size))
    done: dict[int, list[tuple[Any, str, str, Any, Any, Any]]] = {}
    n_done = 0
    if jobs <= 1 or len(results.employees) <= chunk_size:
        stamp = _Stamp(tpl, ctx)
        for i, ch in enumerate(chunks):
            done[i] = _write_chunk(tpl, stamp, ch, fsync, keep_existing)
            if log:
                log.add(done[i])
            n_done += len(ch)
            if on_progress:
                on_progress(n_done)
    else:
        import multiprocessing as mp

        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(
            max_workers=jobs, mp_context=mp.get_context(method), initializer=_worker_init,
            initargs=(tpl.source, tpl.lang, tpl.path, ctx, fsync, keep_existing),
        ) as pool:
            pending: dict[Any, int] = {}
            numbered = enumerate(chunks)
            exhausted = False
            while pending or not exhausted:
                while not exhausted and len(pending) < 2 * jobs:
                    nxt = next(numbered, None)
                    if nxt is None:
                        exhausted = True
                    else:
                        pending[pool.submit(_worker_chunk, nxt[1])] = nxt[0]
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    i = pending.pop(fut)
                    done[i] = fut.result()
                    if log:
                        log.add(done[i])
                    n_done += len(done[i])
                    if on_progress:
                        on_progress(n_done)
    return [CardRecord(eid, Path(p), digest, bonus, status, reason)
            for i in sorted(done) for eid, p, digest, bonus, status, reason in done[i]]
