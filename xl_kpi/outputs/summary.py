"""The summary workbook for HR (``OUT/summary.xlsx``), ``OUT/manifest.csv`` and ``OUT/errors.csv``.

The summary has three sheets:

* **Employees**: one row per employee (id, name, department, position, manager, one score
  column per KPI of the company, weighted score, rank, bonus, total pay), a traffic light on the
  scores, autofilter, frozen header, and a SUBTOTAL total row.
* **Departments**: headcount, bonus, total pay and average weighted score per department as
  live COUNTIF/SUMIF/AVERAGEIF formulas over the Employees sheet, a total row, and a bar chart
  of bonus by department.
* **Score bands**: how many employees fall in each weighted-score band (COUNTIFS), and a
  histogram-like bar chart coloured by the traffic light.

Every formula cell carries its cached value (openpyxl cannot write them, so they are put into the
saved XML afterwards), so pandas and ``openpyxl.load_workbook(data_only=True)`` read the numbers
without Excel. The file is deterministic (fixed timestamps, fixed ZIP entry dates) and written
atomically. No KPI math happens here: the numbers come from the results table.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.label import DataLabelList
from openpyxl.chart.series import DataPoint
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from xl_kpi.engine.money import round_money
from xl_kpi.engine.payout import SCORE_DECIMALS, weighted_score
from xl_kpi.outputs.atomic import write_atomic
from xl_kpi.outputs.csvsafe import neutralise, restore

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_TRAFFIC_LIGHT",
    "TrafficLight",
    "money_format",
    "summary_bytes",
    "weighted_scores",
    "write_errors",
    "write_manifest",
    "write_summary",
]

@dataclass(frozen=True)
class TrafficLight:
    """Colours of the score "traffic light": ``len(thresholds) + 1`` half-open bands.

    With the defaults: below 70% red, 70% to below 100% amber, 100% and above green.
    Colours are RGB hex strings: ``fills`` for the cell background, ``fonts`` for the text,
    ``bars`` for the bars of the score-band chart.
    """

    thresholds: tuple[float, ...] = (0.70, 1.00)
    fills: tuple[str, ...] = ("FFC7CE", "FFEB9C", "C6EFCE")
    fonts: tuple[str, ...] = ("9C0006", "9C5700", "006100")
    bars: tuple[str, ...] = ("E06666", "F1C232", "6AA84F")

    def __post_init__(self) -> None:
        n = len(self.thresholds) + 1
        if not self.thresholds:
            raise ValueError("traffic light: give at least one threshold")
        if any(b <= a for a, b in itertools.pairwise(self.thresholds)):
            raise ValueError(f"traffic light: thresholds must be strictly ascending, not {self.thresholds}")
        if any(not math.isfinite(t) for t in self.thresholds):
            raise ValueError(f"traffic light: thresholds must be finite numbers, not {self.thresholds}")
        for name in ("fills", "fonts", "bars"):
            colours = getattr(self, name)
            if len(colours) != n:
                raise ValueError(
                    f"traffic light: {len(self.thresholds)} thresholds need {n} {name}, not {len(colours)}"
                )
            for c in colours:
                if not re.fullmatch(r"[0-9A-Fa-f]{6}", c):
                    raise ValueError(f"traffic light: colour {c!r} is not an RGB hex string like 'FFC7CE'")

    def band(self, score: float) -> int:
        """Index of the band (colour) of ``score``: 0 = lowest."""
        return int(np.searchsorted(np.asarray(self.thresholds), round(score, SCORE_DECIMALS), side="right"))


DEFAULT_TRAFFIC_LIGHT = TrafficLight()
DEFAULT_BANDS: tuple[float, ...] = (0.5, 0.7, 0.9, 1.0, 1.1, 1.2, 1.5)
"""Bounds of the weighted-score bands of the distribution chart: <50%, 50–<70%, …, ≥150%."""

_MONEY_FORMATS = {
    "RUB": '#,##0.00 "₽"',
    "USD": '"$"#,##0.00',
    "EUR": '#,##0.00 "€"',
    "GBP": '"£"#,##0.00',
    "KZT": '#,##0.00 "₸"',
    "UAH": '#,##0.00 "₴"',
    "BYN": '#,##0.00 "Br"',
    "CNY": '"¥"#,##0.00',
}
PCT = "0.0%"

_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "sheet_employees": "Employees",
        "sheet_departments": "Departments",
        "sheet_bands": "Score bands",
        "employee_id": "ID",
        "name": "Employee",
        "department": "Department",
        "position": "Position",
        "manager": "Manager",
        "weighted": "Weighted score",
        "rank": "Rank",
        "bonus": "Bonus",
        "total_pay": "Total pay",
        "note": "Note",
        "total": "Total",
        "headcount": "Headcount",
        "bonus_total": "Bonus",
        "total_pay_total": "Total pay",
        "avg_weighted": "Average weighted score",
        "band": "Weighted score",
        "band_from": "From",
        "band_below": "Below",
        "band_count": "Employees",
        "chart_departments": "Bonus by department",
        "chart_bands": "Employees by weighted score",
        "title": "KPI summary",
        "no_department": "(no department)",
    },
    "ru": {
        "sheet_employees": "Сотрудники",
        "sheet_departments": "Отделы",
        "sheet_bands": "Распределение",
        "employee_id": "Таб. №",
        "name": "Сотрудник",
        "department": "Отдел",
        "position": "Должность",
        "manager": "Руководитель",
        "weighted": "Взвешенный результат",
        "rank": "Место",
        "bonus": "Премия",
        "total_pay": "К выплате",
        "note": "Примечание",
        "total": "Итого",
        "headcount": "Численность",
        "bonus_total": "Премии",
        "total_pay_total": "К выплате",
        "avg_weighted": "Средний взвешенный результат",
        "band": "Взвешенный результат",
        "band_from": "От",
        "band_below": "До",
        "band_count": "Сотрудников",
        "chart_departments": "Премии по отделам",
        "chart_bands": "Сотрудники по взвешенному результату",
        "title": "Сводка KPI",
        "no_department": "(без отдела)",
    },
}

# styles (shared objects: openpyxl stores each distinct style once)
_THIN = Side(style="thin", color="BFBFBF")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_TOTAL_BORDER = Border(left=_THIN, right=_THIN, top=Side(style="medium", color="1F4E78"), bottom=_THIN)
_HEADER_FONT = Font(name="Calibri", size=11, bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
_HEADER_ALIGN = Alignment(horizontal="center", vertical="center", wrap_text=True)
_TOTAL_FONT = Font(name="Calibri", size=11, bold=True)
_TOTAL_FILL = PatternFill("solid", fgColor="DDEBF7")
_TEXT_ALIGN = Alignment(vertical="center", indent=0)
_NUM_ALIGN = Alignment(horizontal="right", vertical="center")


# --------------------------------------------------------------------------------------------
# numbers


def weighted_scores(lines: pd.DataFrame) -> pd.Series:
    """Σ weight × score over each employee's KPIs, one value per ``employee_id`` (first-seen order): the
    engine's :func:`~xl_kpi.engine.payout.weighted_score` (Excel ROUND to :data:`SCORE_DECIMALS`, so equal scores
    on paper rank as ties; a missing score makes that employee's weighted score NaN).
    """
    if lines.empty:
        return pd.Series([], dtype=float, name="weighted_score")
    w = pd.to_numeric(lines["weight"], errors="coerce").to_numpy(dtype=float)
    s = pd.to_numeric(lines["score"], errors="coerce").to_numpy(dtype=float)
    return weighted_score(w, s, lines["employee_id"])


def money_format(currency: str | None) -> str:
    """Excel number format for money in ``currency`` (RUB: ``#,##0.00 "₽"``)."""
    code = (currency or "").strip().upper()
    if code in _MONEY_FORMATS:
        return _MONEY_FORMATS[code]
    if re.fullmatch(r"[A-Z]{3}", code):
        return f'#,##0.00 "{code}"'
    return "#,##0.00"


def _stored(x: float) -> float:
    """The float as openpyxl writes it (16 significant digits): caches are computed from these."""
    return float(f"{x:.16g}")


def _money_sum(values: Iterable[float]) -> float:
    """Sum of kopeck amounts: the exact decimal total (Excel's running sum differs by < 1e-9)."""
    return float(round_money(math.fsum(values)))


def _criterion_number(x: float) -> float:
    """A number after Excel's number → text → number trip in a criterion like ">="&B2."""
    return float(f"{x:.15g}")


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    return False


def _num(v: Any) -> float | None:
    if _is_missing(v):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return _stored(x) if math.isfinite(x) else None


def _cell_value(v: Any) -> Any:
    """A pandas/NumPy value as a plain Python value for a cell (None = blank)."""
    if _is_missing(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _num(v)
    text = ILLEGAL_CHARACTERS_RE.sub("", str(v))
    return text if text != "" else None


def _text(v: Any) -> str:
    value = _cell_value(v)
    return "" if value is None else str(value)


# --------------------------------------------------------------------------------------------
# the workbook


class _Book:
    """An openpyxl workbook plus the cached value of every formula cell written into it."""

    def __init__(self) -> None:
        self.wb = Workbook()
        self.cached: dict[str, dict[str, Any]] = {}

    def sheet(self, title: str, first: bool = False) -> Worksheet:
        ws = self.wb.active if first else self.wb.create_sheet()
        ws.title = title
        self.cached[title] = {}
        return ws

    @staticmethod
    def put(ws: Worksheet, row: int, col: int, value: Any, fmt: str | None = None, *, numeric: bool = False) -> None:
        """A constant: text is always text (``=…`` stays a string, never a formula)."""
        value = _cell_value(value)
        cell = ws.cell(row=row, column=col)
        cell.value = value
        if isinstance(value, str):
            cell.data_type = "s"
            if value[:1] in ("=", "+", "-", "@"):
                cell.quotePrefix = True
        cell.border = _BORDER
        cell.alignment = _NUM_ALIGN if numeric or isinstance(value, (int, float)) else _TEXT_ALIGN
        if fmt:
            cell.number_format = fmt

    def formula(self, ws: Worksheet, row: int, col: int, formula: str, cached: Any, fmt: str | None = None) -> None:
        """A formula cell and the value Excel would compute for it."""
        if isinstance(cached, float) and not math.isfinite(cached):
            raise ValueError(f"no finite cached value for {formula}")
        cell = ws.cell(row=row, column=col)
        cell.value = "=" + formula
        cell.border = _BORDER
        cell.alignment = _NUM_ALIGN
        if fmt:
            cell.number_format = fmt
        self.cached[ws.title][cell.coordinate] = cached


def _header(ws: Worksheet, labels: list[str], widths: list[float]) -> None:
    for col, (label, width) in enumerate(zip(labels, widths, strict=True), start=1):
        cell = ws.cell(row=1, column=col, value=label)
        cell.data_type = "s"
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = _HEADER_ALIGN
        cell.border = _BORDER
        ws.column_dimensions[get_column_letter(col)].width = width
    lines = max((_wrapped_lines(label, width) for label, width in zip(labels, widths, strict=True)), default=1)
    ws.row_dimensions[1].height = 15 * lines + 6


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


def _style_total(ws: Worksheet, row: int, ncols: int) -> None:
    for col in range(1, ncols + 1):
        cell = ws.cell(row=row, column=col)
        cell.font = _TOTAL_FONT
        cell.fill = _TOTAL_FILL
        cell.border = _TOTAL_BORDER


def _width(values: Iterable[Any], header: str, lo: float, hi: float) -> float:
    longest = max((len(_text(v)) for v in values), default=0)
    longest_word = max((len(w) for w in header.split()), default=0)
    return float(min(max(round(longest * 1.1) + 2, longest_word + 3, lo), hi))


def _print_setup(ws: Worksheet, title: str, company: str, period: str, landscape: bool) -> None:
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.gridLines = False
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.75
    ws.page_margins.header = ws.page_margins.footer = 0.3

    def amp(s: str) -> str:
        return s.replace("&", "&&")

    ws.oddHeader.left.text = amp(company)
    ws.oddHeader.center.text = amp(f"{title} {period}".strip())
    ws.oddFooter.right.text = "&P / &N"


def _quote_sheet(title: str) -> str:
    return "'" + title.replace("'", "''") + "'!"


def _formula_string(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _criterion(cell_ref: str, value: str) -> str:
    """COUNTIF/SUMIF criterion matching ``value`` exactly (text compare ignores case, as Excel does).

    A plain name is matched by referring to its cell. Names that COUNTIF would read as a
    comparison (leading = < >) or a wildcard (* ? ~) become an escaped "=…" string.
    """
    if value[:1] in ("=", "<", ">") or any(ch in value for ch in "*?~"):
        escaped = value.replace("~", "~~").replace("*", "~*").replace("?", "~?")
        return _formula_string("=" + escaped)
    return cell_ref


def _pct_label(x: float) -> str:
    return f"{x * 100:.10g}%"


def _band_labels(bounds: tuple[float, ...]) -> list[str]:
    labels = [f"<{_pct_label(bounds[0])}"]
    labels += [f"{_pct_label(a)} – <{_pct_label(b)}" for a, b in itertools.pairwise(bounds)]
    labels.append(f"≥{_pct_label(bounds[-1])}")
    return labels


def _timestamp(period: Any) -> datetime:
    """Fixed created/modified time: the first day of the period (2026-10 → 2026-10-01), else 2000-01-01."""
    m = re.fullmatch(r"\s*(\d{4})-(\d{2})(?:-(\d{2}))?.*", str(period or ""))
    if m:
        try:
            return datetime(int(m.group(1)), int(m.group(2)), int(m.group(3) or 1))
        except ValueError:
            pass
    return datetime(2000, 1, 1)


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

    @property
    def last(self) -> int:
        return self.n + 1

    def rng(self, col: int, absolute: bool = True) -> str:
        c = get_column_letter(col)
        return f"${c}$2:${c}${self.last}" if absolute else f"{c}2:{c}{self.last}"


def _employees_table(results: Any) -> tuple[pd.DataFrame, list[tuple[Any, str]], pd.DataFrame]:
    """Employees in results order with weighted score and rank; the KPI columns; the score matrix."""
    emp = results.employees.reset_index(drop=True).copy()
    lines = results.lines
    kpi_order = list(pd.unique(lines["kpi_id"])) if len(lines) else []
    names: dict[Any, str] = {}
    if len(lines):
        first = lines.drop_duplicates("kpi_id").set_index("kpi_id")
        for k in kpi_order:
            nm = first.at[k, "kpi_name"] if "kpi_name" in first.columns else None
            names[k] = _text(nm) or _text(k)
    counts: dict[str, int] = {}
    for k in kpi_order:
        counts[names[k].casefold()] = counts.get(names[k].casefold(), 0) + 1
    kpis = [(k, names[k] if counts[names[k].casefold()] == 1 else f"{names[k]} ({_text(k)})") for k in kpi_order]

    if len(lines):
        matrix = (
            pd.Series(pd.to_numeric(lines["score"], errors="coerce").to_numpy(dtype=float),
                      index=pd.MultiIndex.from_arrays([lines["employee_id"], lines["kpi_id"]]))
            .groupby(level=[0, 1], sort=False).first()
            .unstack(level=1)
        )
        matrix = matrix.reindex(index=emp["employee_id"], columns=kpi_order)
    else:
        matrix = pd.DataFrame(index=emp["employee_id"], columns=[], dtype=float)
    ws_ = weighted_scores(lines).reindex(emp["employee_id"]).to_numpy(dtype=float) if len(lines) else np.full(
        len(emp), np.nan
    )
    emp["weighted_score"] = [_stored(x) if math.isfinite(x) else np.nan for x in ws_]
    # RANK(x, range) = 1 + how many numbers in the range are greater (ties share the rank)
    emp["rank"] = emp["weighted_score"].rank(method="min", ascending=False)
    for col in ("bonus", "total_pay"):
        emp[col] = [(_num(v) if _num(v) is not None else np.nan) for v in emp[col]] if col in emp else np.nan
    return emp, kpis, matrix


def _build(results: Any, traffic_light: TrafficLight, bands: tuple[float, ...]) -> _Book:
    language = str(getattr(results, "language", "en") or "en").lower()
    t = _LABELS.get(language, _LABELS["en"])
    money = money_format(getattr(results, "currency", None))
    company = _text(getattr(results, "company", ""))
    period = _text(getattr(results, "period", ""))

    emp, kpis, matrix = _employees_table(results)
    n = len(emp)
    notes = [_text(r) for r in emp["reason"]] if "reason" in emp else [""] * n
    has_note = any(notes)

    book = _Book()
    ws = book.sheet(t["sheet_employees"], first=True)
    fixed = ["employee_id", "name", "department", "position", "manager"]
    first_kpi = len(fixed) + 1
    kpi_cols = list(range(first_kpi, first_kpi + len(kpis)))
    col_weighted = first_kpi + len(kpis)
    lay = _Layout(n=n, kpi_cols=kpi_cols, col_dept=3, col_weighted=col_weighted, col_rank=col_weighted + 1,
                  col_bonus=col_weighted + 2, col_total=col_weighted + 3, ncols=col_weighted + 3 + has_note)

    no_dept = t["no_department"]
    departments = [(_text(d) or no_dept) for d in emp["department"]] if "department" in emp else [no_dept] * n
    columns = {c: (list(emp[c]) if c in emp else [None] * n) for c in fixed}
    columns["department"] = departments

    # header and widths
    labels = [t[c] for c in fixed] + [name for _, name in kpis] + [t["weighted"], t["rank"], t["bonus"], t["total_pay"]]
    widths = [
        _width(columns["employee_id"], t["employee_id"], 8, 16),
        _width(columns["name"], t["name"], 18, 40),
        _width(columns["department"], t["department"], 12, 30),
        _width(columns["position"], t["position"], 12, 30),
        _width(columns["manager"], t["manager"], 12, 28),
    ]
    widths += [float(min(max(max((len(w) for w in name.split()), default=0) + 3, 12), 20)) for _, name in kpis]
    widths += [13.0, 8.0, 15.0, 16.0]
    if has_note:
        labels.append(t["note"])
        widths.append(_width(notes, t["note"], 14, 45))
    _header(ws, labels, widths)

    wcol = get_column_letter(col_weighted)
    for i in range(n):
        r = i + 2
        for j, c in enumerate(fixed, start=1):
            book.put(ws, r, j, columns[c][i])
        for j, col in enumerate(kpi_cols):
            book.put(ws, r, col, _num(matrix.iat[i, j]), PCT, numeric=True)
        w = emp.at[i, "weighted_score"]
        book.put(ws, r, col_weighted, None if np.isnan(w) else float(w), PCT, numeric=True)
        if np.isnan(w):
            book.put(ws, r, lay.col_rank, None, "0", numeric=True)
        else:
            book.formula(ws, r, lay.col_rank, f"RANK({wcol}{r},{lay.rng(col_weighted)})", int(emp.at[i, "rank"]), "0")
        for col, key in ((lay.col_bonus, "bonus"), (lay.col_total, "total_pay")):
            v = emp.at[i, key]
            book.put(ws, r, col, None if np.isnan(v) else float(v), money, numeric=True)
        if has_note:
            book.put(ws, r, lay.ncols, notes[i])

    # total row
    tr = n + 2
    for col in range(1, lay.ncols + 1):
        book.put(ws, tr, col, None)
    book.put(ws, tr, 1, t["total"])
    if n:
        for col in [*kpi_cols, col_weighted]:
            vals = [_num(ws.cell(row=r, column=col).value) for r in range(2, tr)]
            vals = [v for v in vals if v is not None]
            if vals:
                book.formula(ws, tr, col, f"SUBTOTAL(101,{lay.rng(col, False)})", math.fsum(vals) / len(vals), PCT)
        for col, key in ((lay.col_bonus, "bonus"), (lay.col_total, "total_pay")):
            vals = [float(v) for v in emp[key] if not np.isnan(v)]
            book.formula(ws, tr, col, f"SUBTOTAL(109,{lay.rng(col, False)})", _money_sum(vals), money)
    else:
        book.put(ws, tr, lay.col_bonus, 0.0, money)
        book.put(ws, tr, lay.col_total, 0.0, money)
    _style_total(ws, tr, lay.ncols)

    # traffic light over the score columns (data rows only; blanks stay uncoloured)
    if n:
        first_col = get_column_letter(first_kpi)
        area = f"{first_col}2:{wcol}{n + 1}"
        x = f"ROUND({first_col}2,{SCORE_DECIMALS})"
        bounds: list[float | None] = [None, *traffic_light.thresholds, None]
        for b in range(len(traffic_light.fills)):
            conds = [f"ISNUMBER({first_col}2)"]
            if bounds[b] is not None:
                conds.append(f"{x}>={bounds[b]!r}")
            if bounds[b + 1] is not None:
                conds.append(f"{x}<{bounds[b + 1]!r}")
            ws.conditional_formatting.add(area, FormulaRule(
                formula=[f"AND({','.join(conds)})"],
                fill=PatternFill("solid", fgColor=traffic_light.fills[b], bgColor=traffic_light.fills[b]),
                font=Font(color=traffic_light.fonts[b]),
            ))
    ws.freeze_panes = "C2"
    ws.auto_filter.ref = f"A1:{get_column_letter(lay.ncols)}{max(n + 1, 2)}"
    ws.print_title_rows = "1:1"
    _print_setup(ws, t["title"], company, period, landscape=True)

    _departments_sheet(book, t, lay, emp, departments, money, company, period)
    _bands_sheet(book, t, lay, emp, bands, traffic_light, company, period)
    book.wb.active = 0
    return book


def _departments_sheet(book: _Book, t: dict[str, str], lay: _Layout, emp: pd.DataFrame,
                       departments: list[str], money: str, company: str, period: str) -> None:
    ws = book.sheet(t["sheet_departments"])
    src = _quote_sheet(t["sheet_employees"])
    # COUNTIF compares text ignoring case: group the same way, show the first spelling met
    groups: dict[str, list[int]] = {}
    label: dict[str, str] = {}
    for i, d in enumerate(departments):
        key = d.casefold()
        groups.setdefault(key, []).append(i)
        label.setdefault(key, d)
    keys = sorted(groups, key=lambda k: (k, label[k]))
    heads = [t["department"], t["headcount"], t["bonus_total"], t["total_pay_total"], t["avg_weighted"]]
    widths = [_width(label.values(), t["department"], 16, 40), 14.0, 16.0, 17.0, 16.0]
    _header(ws, heads, widths)
    dept_rng = f"{src}{lay.rng(lay.col_dept)}"
    bonus_rng = f"{src}{lay.rng(lay.col_bonus)}"
    total_rng = f"{src}{lay.rng(lay.col_total)}"
    w_rng = f"{src}{lay.rng(lay.col_weighted)}"
    for r, key in enumerate(keys, start=2):
        rows = groups[key]
        name = label[key]
        crit = _criterion(f"$A{r}", name)
        book.put(ws, r, 1, name)
        book.formula(ws, r, 2, f"COUNTIF({dept_rng},{crit})", len(rows), "0")
        bonus = [float(emp.at[i, "bonus"]) for i in rows if not np.isnan(emp.at[i, "bonus"])]
        pay = [float(emp.at[i, "total_pay"]) for i in rows if not np.isnan(emp.at[i, "total_pay"])]
        book.formula(ws, r, 3, f"SUMIF({dept_rng},{crit},{bonus_rng})", _money_sum(bonus), money)
        book.formula(ws, r, 4, f"SUMIF({dept_rng},{crit},{total_rng})", _money_sum(pay), money)
        scores = [float(emp.at[i, "weighted_score"]) for i in rows if not np.isnan(emp.at[i, "weighted_score"])]
        if scores:
            book.formula(ws, r, 5, f"AVERAGEIF({dept_rng},{crit},{w_rng})", math.fsum(scores) / len(scores), PCT)
        else:
            book.put(ws, r, 5, None, PCT, numeric=True)
    tr = len(keys) + 2
    for col in range(1, 6):
        book.put(ws, tr, col, None)
    book.put(ws, tr, 1, t["total"])
    if keys:
        book.formula(ws, tr, 2, f"SUM(B2:B{tr - 1})", len(emp), "0")
        book.formula(ws, tr, 3, f"SUM(C2:C{tr - 1})",
                     _money_sum(book.cached[ws.title][f"C{r}"] for r in range(2, tr)), money)
        book.formula(ws, tr, 4, f"SUM(D2:D{tr - 1})",
                     _money_sum(book.cached[ws.title][f"D{r}"] for r in range(2, tr)), money)
        scores = [float(x) for x in emp["weighted_score"] if not np.isnan(x)]
        if scores:
            book.formula(ws, tr, 5, f"AVERAGE({w_rng})", math.fsum(scores) / len(scores), PCT)
    _style_total(ws, tr, 5)
    ws.freeze_panes = "A2"
    _print_setup(ws, t["title"], company, period, landscape=True)

    if keys:
        chart = BarChart()
        chart.type = "bar"
        chart.style = 10
        chart.title = t["chart_departments"]
        chart.legend = None
        chart.add_data(Reference(ws, min_col=3, min_row=1, max_row=tr - 1), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=tr - 1))
        chart.series[0].graphicalProperties.solidFill = "2F5597"
        chart.series[0].graphicalProperties.line.solidFill = "2F5597"
        chart.gapWidth = 60
        chart.x_axis.scaling.orientation = "maxMin"  # first department on top, as in the table
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        chart.y_axis.numFmt = money.replace(".00", "")
        chart.y_axis.crosses = "max"
        chart.width = 18
        chart.height = max(7.5, 1.0 * len(keys) + 3.5)
        ws.add_chart(chart, "G2")


def _bands_sheet(book: _Book, t: dict[str, str], lay: _Layout, emp: pd.DataFrame, bands: tuple[float, ...],
                 light: TrafficLight, company: str, period: str) -> None:
    ws = book.sheet(t["sheet_bands"])
    src = _quote_sheet(t["sheet_employees"])
    _header(ws, [t["band"], t["band_from"], t["band_below"], t["band_count"]], [18.0, 9.0, 9.0, 14.0])
    w_rng = f"{src}{lay.rng(lay.col_weighted)}"
    scores = np.array([x for x in emp["weighted_score"] if not np.isnan(x)], dtype=float)
    labels = _band_labels(bands)
    lows: list[float | None] = [None, *bands]
    highs: list[float | None] = [*bands, None]
    for i, (label, lo, hi) in enumerate(zip(labels, lows, highs, strict=True)):
        r = i + 2
        book.put(ws, r, 1, label)
        book.put(ws, r, 2, lo, "0%", numeric=True)
        book.put(ws, r, 3, hi, "0%", numeric=True)
        mask = np.ones(len(scores), dtype=bool)
        parts = []
        if lo is not None:
            mask &= scores >= _criterion_number(_stored(lo))
            parts.append(f'{w_rng},">="&B{r}')
        if hi is not None:
            mask &= scores < _criterion_number(_stored(hi))
            parts.append(f'{w_rng},"<"&C{r}')
        if lay.n:
            fn = "COUNTIFS" if len(parts) > 1 else "COUNTIF"
            book.formula(ws, r, 4, f"{fn}({','.join(parts)})", int(mask.sum()), "0")
        else:
            book.put(ws, r, 4, 0, "0")
    tr = len(labels) + 2
    for col in range(1, 5):
        book.put(ws, tr, col, None)
    book.put(ws, tr, 1, t["total"])
    if lay.n:
        book.formula(ws, tr, 4, f"SUM(D2:D{tr - 1})", sum(book.cached[ws.title][f"D{r}"] for r in range(2, tr)), "0")
    else:
        book.put(ws, tr, 4, 0, "0")
    _style_total(ws, tr, 4)
    ws.freeze_panes = "A2"
    _print_setup(ws, t["title"], company, period, landscape=True)

    if lay.n:
        chart = BarChart()
        chart.type = "col"
        chart.style = 10
        chart.title = t["chart_bands"]
        chart.legend = None
        chart.add_data(Reference(ws, min_col=4, min_row=1, max_row=tr - 1), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=tr - 1))
        series = chart.series[0]
        for i, lo in enumerate(lows):
            colour = light.bars[light.band(lo) if lo is not None else 0]
            point = DataPoint(idx=i)
            point.graphicalProperties.solidFill = colour
            point.graphicalProperties.line.solidFill = colour
            series.dPt.append(point)
        chart.gapWidth = 15
        chart.dataLabels = DataLabelList(showVal=True, showCatName=False, showSerName=False,
                                         showLegendKey=False, showPercent=False, dLblPos="outEnd")
        chart.x_axis.delete = False
        chart.y_axis.delete = False
        chart.y_axis.numFmt = "0"
        chart.y_axis.scaling.min = 0
        chart.width = 18
        chart.height = 9
        ws.add_chart(chart, "F2")


# --------------------------------------------------------------------------------------------
# cached values and a deterministic ZIP

_FORMULA_CELL = re.compile(r'<c r="([A-Z]+[0-9]+)"([^>]*)><f>([^<]*)</f><v\s*/></c>')
_FIXED_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _cached_xml(value: Any) -> tuple[str, str]:
    """(type attribute, <v> text) of a cached value."""
    if isinstance(value, bool):
        return ' t="b"', "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return "", str(int(value))
    if isinstance(value, (float, np.floating)):
        return "", repr(float(value))
    return ' t="str"', escape(str(value))


def _sheet_paths(files: dict[str, bytes]) -> dict[str, str]:
    """Sheet title → path of its XML inside the package."""
    wb = files["xl/workbook.xml"].decode("utf-8")
    rels = files["xl/_rels/workbook.xml.rels"].decode("utf-8")
    targets = {}
    for rel in re.finditer(r"<Relationship\b[^>]*>", rels):
        tag = rel.group(0)
        rid = re.search(r'\bId="([^"]+)"', tag)
        target = re.search(r'\bTarget="([^"]+)"', tag)
        if rid and target:
            path = target.group(1)
            targets[rid.group(1)] = path.lstrip("/") if path.startswith("/") else "xl/" + path
    out = {}
    for sheet in re.finditer(r"<sheet\b[^>]*>", wb):
        tag = sheet.group(0)
        name = re.search(r'\bname="([^"]*)"', tag)
        rid = re.search(r'\br:id="([^"]+)"', tag)
        if name and rid:
            title = name.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            out[title] = targets[rid.group(1)]
    return out


def _finish(book: _Book, created: datetime) -> bytes:
    """Save, put the cached values into the formula cells, fix timestamps, re-zip deterministically."""
    book.wb.properties.created = created
    raw = io.BytesIO()
    book.wb.save(raw)
    with zipfile.ZipFile(raw) as zin:
        names = zin.namelist()
        files = {name: zin.read(name) for name in names}

    for title, path in _sheet_paths(files).items():
        cached = book.cached.get(title, {})
        xml = files[path].decode("utf-8")
        seen: set[str] = set()

        def fill(m: re.Match[str], cached: dict[str, Any] = cached, seen: set[str] = seen) -> str:
            ref, attrs, formula = m.group(1), m.group(2), m.group(3)
            if ref not in cached:
                raise RuntimeError(f"internal error: formula cell {ref} has no cached value")
            seen.add(ref)
            type_attr, text = _cached_xml(cached[ref])
            return f'<c r="{ref}"{attrs}{type_attr}><f>{formula}</f><v>{text}</v></c>'

        xml = _FORMULA_CELL.sub(fill, xml)
        if seen != set(cached):
            raise RuntimeError(f"internal error: cached values not written for {sorted(set(cached) - seen)[:5]}")
        if re.search(r"</f><v\s*/>", xml):
            raise RuntimeError("internal error: a formula cell was left without a cached value")
        files[path] = xml.encode("utf-8")

    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    core = files["docProps/core.xml"].decode("utf-8")
    core = re.sub(r"(<dcterms:(created|modified)\b[^>]*>)[^<]*(</dcterms:\2>)", rf"\g<1>{stamp}\g<3>", core)
    files["docProps/core.xml"] = core.encode("utf-8")

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            info.create_system = 0
            zout.writestr(info, files[name], compresslevel=6)
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# public API


def summary_bytes(
    results: Any,
    *,
    traffic_light: TrafficLight = DEFAULT_TRAFFIC_LIGHT,
    bands: Iterable[float] = DEFAULT_BANDS,
    timestamp: datetime | None = None,
) -> bytes:
    """The summary workbook as bytes (same input → same bytes).

    ``results`` has ``lines``, ``employees``, ``period``, ``currency``, ``company`` and
    ``language`` (see ``xl_kpi.results``). ``traffic_light`` sets the score colours and their
    intervals, ``bands`` the bounds of the weighted-score bands, ``timestamp`` the
    created/modified time recorded in the file (default: the first day of the period).
    """
    bounds = tuple(float(b) for b in bands)
    if not bounds or any(b <= a for a, b in itertools.pairwise(bounds)) or not all(map(math.isfinite, bounds)):
        raise ValueError(f"bands must be finite, strictly ascending bounds, not {bounds}")
    book = _build(results, traffic_light, bounds)
    language = str(getattr(results, "language", "en") or "en").lower()
    t = _LABELS.get(language, _LABELS["en"])
    book.wb.properties.creator = "xl_kpi"
    book.wb.properties.title = " ".join(
        x for x in (t["title"], _text(getattr(results, "company", "")), _text(getattr(results, "period", ""))) if x
    )
    return _finish(book, timestamp or _timestamp(getattr(results, "period", None)))


def write_summary(results: Any, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write the summary workbook to ``path`` atomically and return the path.

    Options are those of :func:`summary_bytes`.
    """
    target = Path(path)
    _write_atomic(target, summary_bytes(results, **options))
    return target


MANIFEST_COLUMNS = ("employee_id", "file", "sha256", "total_bonus", "status")
ERROR_COLUMNS = ("employee_id", "name", "reason")


def write_manifest(records: Iterable[Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``OUT/manifest.csv``: employee_id, file (relative to OUT, ``/``), sha256, total_bonus, status.

    ``records`` are dicts or objects with ``employee_id``, ``path`` (absolute, or relative to
    ``out_dir``), ``sha256``, ``total_bonus`` and ``status``. Rows are sorted by employee id
    (numbers in ids compare as numbers: E2 before E10), so parallel runs give the same file.
    UTF-8 with BOM; text is neutralised by :mod:`xl_kpi.outputs.csvsafe` (Excel runs no formula).
    """
    target = Path(out_dir) / "manifest.csv"
    _write_atomic(target, manifest_bytes(records, out_dir))
    return target


def manifest_bytes(records: Iterable[Any], out_dir: str | os.PathLike[str]) -> bytes:
    """The bytes :func:`write_manifest` writes (``xl-kpi verify`` recomputes them to compare)."""
    out = Path(out_dir)
    rows = []
    for rec in records:
        total = _get(rec, "total_bonus")
        total_num = _num(total)
        rows.append([
            _get(rec, "employee_id"),
            _relative(_get(rec, "path"), out),
            _text(_get(rec, "sha256")),
            "" if total_num is None else f"{round_money(total_num):.2f}",
            _get(rec, "status"),
        ])
    rows.sort(key=lambda row: (_natural(row[0]), row[1]))
    return _csv_bytes(MANIFEST_COLUMNS, rows, neutralise=(0, 1, 2, 4))


def write_errors(rows: Iterable[Any], out_dir: str | os.PathLike[str]) -> Path | None:
    """Write ``OUT/errors.csv`` (employee_id, name, reason) if there are errors; otherwise remove it.

    Returns the path written, or None when there was nothing to report (a stale errors.csv
    from an earlier run is deleted then).
    """
    out = Path(out_dir)
    target = out / "errors.csv"
    data = errors_bytes(rows)
    if data is None:
        try:
            target.unlink()
        except FileNotFoundError:
            pass
        return None
    _write_atomic(target, data)
    return target


def errors_bytes(rows: Iterable[Any]) -> bytes | None:
    """The bytes :func:`write_errors` writes, or None when there is no error (no errors.csv then)."""
    data = [[_get(r, "employee_id"), _get(r, "name"), _get(r, "reason")] for r in rows]
    return _csv_bytes(ERROR_COLUMNS, data, neutralise=(0, 1, 2)) if data else None


def _get(rec: Any, name: str) -> Any:
    if isinstance(rec, Mapping):
        return rec.get(name)
    if isinstance(rec, pd.Series):
        return rec.get(name)
    return getattr(rec, name, None)


def _relative(path: Any, out: Path) -> str:
    if _is_missing(path) or path == "":
        return ""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return Path(os.path.relpath(p, out)).as_posix()


def _natural(value: Any) -> tuple[Any, ...]:
    text = _text(value)
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.casefold()) for part in re.split(r"(\d+)", text))


def _neutral(value: Any) -> str:
    return neutralise(_text(value))


def read_csv_rows(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of a CSV that xl_kpi wrote (manifest, errors, bundle index), the neutralising quote removed."""
    text = Path(path).read_bytes().decode("utf-8-sig")
    return [{k: _unneutral(v) for k, v in row.items() if k is not None} for row in csv.DictReader(io.StringIO(text))]


def _unneutral(value: Any) -> str:
    return restore("" if value is None else str(value))


def _csv_bytes(header: tuple[str, ...], rows: list[list[Any]], neutralise: tuple[int, ...]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_neutral(v) if i in neutralise else _text(v) for i, v in enumerate(row)])
    return buf.getvalue().encode("utf-8-sig")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, then replace: readers never see half a file."""
    try:
        write_atomic(path, data)
    except PermissionError as exc:
        raise PermissionError(f"cannot replace {path}: is it open in Excel? Close it and retry ({exc})") from exc
