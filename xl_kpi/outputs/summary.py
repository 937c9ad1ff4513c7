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

The workbook is written with XlsxWriter: every formula cell carries its cached value
(``write_formula(..., value)``), so pandas and ``openpyxl.load_workbook(data_only=True)`` read the
numbers without Excel; each cell format is made once per workbook and shared. Text is always written
as text (a name like ``=HYPERLINK(...)`` is a string cell with a quote prefix, never a formula). The
file is deterministic (fixed created/modified time, fixed ZIP entry dates: equal input gives equal
bytes, which ``xl-kpi verify`` relies on) and written atomically. No KPI math happens here: the
numbers come from the results table.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import itertools
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import Worksheet

from xl_kpi.engine.money import round_money, round_score
from xl_kpi.engine.payout import SCORE_DECIMALS, weighted_score
from xl_kpi.engine.period import Period, PeriodError, period_of
from xl_kpi.outputs.atomic import write_atomic
from xl_kpi.outputs.csvsafe import FORMULA_START
from xl_kpi.outputs.values import cell_value as _cell_value
from xl_kpi.outputs.values import number as _num
from xl_kpi.outputs.values import stored as _stored
from xl_kpi.outputs.values import text as _text

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_TRAFFIC_LIGHT",
    "TrafficLight",
    "money_format",
    "summary_bytes",
    "weighted_scores",
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
        return int(np.searchsorted(np.asarray(self.thresholds), round_score(score), side="right"))


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

_HEADER_LIMIT = 255
"""Excel keeps at most this many characters of a page header."""


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


def _money_sum(values: Iterable[float], digits: int = 2) -> float:
    """Sum of amounts rounded to ``digits`` (Settings; at least kopecks): the exact decimal total
    (Excel's running sum differs by < 1e-9)."""
    return float(round_money(math.fsum(values), max(int(digits), 2)))


def _criterion_number(x: float) -> float:
    """A number after Excel's number → text → number trip in a criterion like ">="&B2."""
    return float(f"{x:.15g}")


# --------------------------------------------------------------------------------------------
# the workbook (XlsxWriter: formulas carry their cached values, formats are made once per book)

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
"""The worksheet functions this module writes: Excel 2007 functions, which no ``_xlfn.`` prefix applies to."""
_FUNCTION_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\(")


class _Worksheet(Worksheet):
    """XlsxWriter's worksheet, with a quick formula preparation for the formulas this module writes.

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
    longest = max((len(_text(v)) for v in _distinct(values)), default=0)
    longest_word = max((len(w) for w in header.split()), default=0)
    return float(min(max(round(longest * 1.1) + 2, longest_word + 3, lo), hi))


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


def _print_setup(sheet: _Sheet, title: str, company: str, period: str, landscape: bool) -> None:
    ws = sheet.ws
    if landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)  # one page wide, as many pages tall as needed
    ws.set_margins(left=0.4, right=0.4, top=0.75, bottom=0.75)

    def amp(s: str) -> str:
        return s.replace("&", "&&")

    centre = amp(f"{title} {period}".strip())
    left = amp(company)
    room = _HEADER_LIMIT - len("&L&C") - len(centre)
    if len(left) > room:  # Excel keeps at most 255 characters of a header: shorten the company, not the title
        left = left[:max(room - 1, 0)].rstrip("&") + "…"
    ws.set_header(f"&L{left}&C{centre}", {"margin": 0.3})
    ws.set_footer("&R&P / &N", {"margin": 0.3})


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
    """Fixed created/modified time: the first day of the period (2026-Q4 → 2026-10-01), else 2000-01-01."""
    p = _period(period)
    return datetime(p.start.year, p.start.month, p.start.day) if p else datetime(2000, 1, 1)


def _period(period: Any) -> Period | None:
    try:
        return period_of(period)
    except PeriodError:
        return None


def _period_label(period: Any, language: str) -> str:
    """The period as the summary's language names it («IV квартал 2026», "Q4 2026"); other text as is."""
    p = _period(period)
    return p.label(language) if p else _text(period)


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

    @property
    def last(self) -> int:
        return self.n + 1

    def rng(self, col: int, absolute: bool = True) -> str:
        c = xl_col_to_name(col - 1)
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
        emp[col] = [np.nan if (x := _num(v)) is None else x for v in emp[col]] if col in emp else np.nan
    return emp, kpis, matrix


def _build(book: _Book, results: Any, traffic_light: TrafficLight, bands: tuple[float, ...]) -> None:
    language = str(getattr(results, "language", "en") or "en").lower()
    t = _LABELS.get(language, _LABELS["en"])
    money = money_format(getattr(results, "currency", None))
    company = _text(getattr(results, "company", ""))
    period = _period_label(getattr(results, "period", ""), language)

    emp, kpis, matrix = _employees_table(results)
    n = len(emp)
    notes = [_text(r) for r in emp["reason"]] if "reason" in emp else [""] * n
    has_note = any(notes)

    sheet = book.sheet(t["sheet_employees"])
    ws = sheet.ws
    fixed = ["employee_id", "name", "department", "position", "manager"]
    first_kpi = len(fixed) + 1
    kpi_cols = list(range(first_kpi, first_kpi + len(kpis)))
    col_weighted = first_kpi + len(kpis)
    lay = _Layout(n=n, kpi_cols=kpi_cols, col_dept=3, col_weighted=col_weighted, col_rank=col_weighted + 1,
                  col_bonus=col_weighted + 2, col_total=col_weighted + 3, ncols=col_weighted + 3 + has_note,
                  digits=int(getattr(results, "digits", 2) or 0))

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
    _header(sheet, labels, widths)

    # the rows: the cell loop calls XlsxWriter directly with formats fetched once
    styles = book.styles
    pct, count, cash = styles.get("number", PCT), styles.get("number", "0"), styles.get("number", money)
    scores = matrix.to_numpy(dtype=float) if len(kpis) else np.empty((n, 0))
    weighted = emp["weighted_score"].to_numpy(dtype=float)
    ranks = emp["rank"].to_numpy(dtype=float)
    bonus = emp["bonus"].to_numpy(dtype=float)
    total_pay = emp["total_pay"].to_numpy(dtype=float)
    write_number, write_blank, write_formula = ws.write_number, ws.write_blank, ws.write_formula
    wcol = xl_col_to_name(col_weighted - 1)
    rank_range = lay.rng(col_weighted)
    text_cells = [(j, sheet.column(columns[c])) for j, c in enumerate(fixed)]
    note_cells = sheet.column(notes) if has_note else []
    for i in range(n):
        r = i + 2
        for j, cells_j in text_cells:
            write, value, style = cells_j[i]
            write(r - 1, j, value, style)
        for j, col in enumerate(kpi_cols):
            x = scores[i, j]
            if math.isfinite(x):
                write_number(r - 1, col - 1, float(x), pct)
            else:
                write_blank(r - 1, col - 1, None, pct)
        w = weighted[i]
        if math.isnan(w):
            write_blank(r - 1, col_weighted - 1, None, pct)
            write_blank(r - 1, lay.col_rank - 1, None, count)
        else:
            write_number(r - 1, col_weighted - 1, float(w), pct)
            write_formula(r - 1, lay.col_rank - 1, f"RANK({wcol}{r},{rank_range})", count, int(ranks[i]))
        for col, values in ((lay.col_bonus, bonus), (lay.col_total, total_pay)):
            v = values[i]
            if math.isnan(v):
                write_blank(r - 1, col - 1, None, cash)
            else:
                write_number(r - 1, col - 1, float(v), cash)
        if has_note:
            write, value, style = note_cells[i]
            write(r - 1, lay.ncols - 1, value, style)

    # total row: SUBTOTAL respects the autofilter (hidden rows drop out of the totals)
    tr = n + 2
    cells: dict[int, tuple[str, Any, str]] = {}  # column → (formula, cached value, number format)
    if n:
        for j, col in enumerate([*kpi_cols, col_weighted]):
            column = scores[:, j] if j < len(kpi_cols) else weighted
            vals = [_stored(float(x)) for x in column if math.isfinite(x)]
            if vals:
                cells[col] = (f"SUBTOTAL(101,{lay.rng(col, False)})", math.fsum(vals) / len(vals), PCT)
        for col, values in ((lay.col_bonus, bonus), (lay.col_total, total_pay)):
            total = _money_sum((v for v in values if not np.isnan(v)), lay.digits)
            cells[col] = (f"SUBTOTAL(109,{lay.rng(col, False)})", total,
                          money)
    for col in range(1, lay.ncols + 1):
        if col == 1:
            sheet.put(tr, col, t["total"], total=True)
        elif col in cells:
            formula, cached, fmt = cells[col]
            sheet.formula(tr, col, formula, cached, fmt, total=True)
        elif not n and col in (lay.col_bonus, lay.col_total):
            sheet.put(tr, col, 0.0, money, total=True)
        else:
            sheet.put(tr, col, None, total=True)

    # traffic light over the score columns (data rows only; blanks stay uncoloured)
    if n:
        first_col = xl_col_to_name(first_kpi - 1)
        x = f"ROUND({first_col}2,{SCORE_DECIMALS})"
        bounds: list[float | None] = [None, *traffic_light.thresholds, None]
        for b in range(len(traffic_light.fills)):
            conds = [f"ISNUMBER({first_col}2)"]
            if bounds[b] is not None:
                conds.append(f"{x}>={bounds[b]!r}")
            if bounds[b + 1] is not None:
                conds.append(f"{x}<{bounds[b + 1]!r}")
            light = book.wb.add_format({"bg_color": "#" + traffic_light.fills[b],
                                        "font_color": "#" + traffic_light.fonts[b]})
            ws.conditional_format(1, first_kpi - 1, n, col_weighted - 1,
                                  {"type": "formula", "criteria": f"AND({','.join(conds)})", "format": light})
    ws.freeze_panes(1, 2)
    ws.autofilter(0, 0, max(n, 1), lay.ncols - 1)
    ws.repeat_rows(0)
    _print_setup(sheet, t["title"], company, period, landscape=True)

    _departments_sheet(book, t, lay, emp, departments, money, company, period)
    _bands_sheet(book, t, lay, emp, bands, traffic_light, company, period)


def _departments_sheet(book: _Book, t: dict[str, str], lay: _Layout, emp: pd.DataFrame,
                       departments: list[str], money: str, company: str, period: str) -> None:
    sheet = book.sheet(t["sheet_departments"])
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
    _header(sheet, heads, widths)
    dept_rng = f"{src}{lay.rng(lay.col_dept)}"
    bonus_rng = f"{src}{lay.rng(lay.col_bonus)}"
    total_rng = f"{src}{lay.rng(lay.col_total)}"
    w_rng = f"{src}{lay.rng(lay.col_weighted)}"
    bonus_all = emp["bonus"].to_numpy(dtype=float)
    pay_all = emp["total_pay"].to_numpy(dtype=float)
    weighted_all = emp["weighted_score"].to_numpy(dtype=float)
    for r, key in enumerate(keys, start=2):
        rows = groups[key]
        name = label[key]
        crit = _criterion(f"$A{r}", name)
        sheet.put(r, 1, name)
        sheet.formula(r, 2, f"COUNTIF({dept_rng},{crit})", len(rows), "0")
        bonus = [float(bonus_all[i]) for i in rows if not np.isnan(bonus_all[i])]
        pay = [float(pay_all[i]) for i in rows if not np.isnan(pay_all[i])]
        sheet.formula(r, 3, f"SUMIF({dept_rng},{crit},{bonus_rng})", _money_sum(bonus, lay.digits), money)
        sheet.formula(r, 4, f"SUMIF({dept_rng},{crit},{total_rng})", _money_sum(pay, lay.digits), money)
        scores = [float(weighted_all[i]) for i in rows if not np.isnan(weighted_all[i])]
        if scores:
            sheet.formula(r, 5, f"AVERAGEIF({dept_rng},{crit},{w_rng})", math.fsum(scores) / len(scores), PCT)
        else:
            sheet.put(r, 5, None, PCT, numeric=True)
    tr = len(keys) + 2
    sheet.put(tr, 1, t["total"], total=True)
    if keys:
        sheet.formula(tr, 2, f"SUM(B2:B{tr - 1})", len(emp), "0", total=True)
        sheet.formula(tr, 3, f"SUM(C2:C{tr - 1})",
                      _money_sum((sheet.cached[r, 3] for r in range(2, tr)), lay.digits), money,
                      total=True)
        sheet.formula(tr, 4, f"SUM(D2:D{tr - 1})",
                      _money_sum((sheet.cached[r, 4] for r in range(2, tr)), lay.digits), money,
                      total=True)
        scores = [float(x) for x in weighted_all if not np.isnan(x)]
        if scores:
            sheet.formula(tr, 5, f"AVERAGE({w_rng})", math.fsum(scores) / len(scores), PCT, total=True)
        else:
            sheet.put(tr, 5, None, total=True)
    else:
        for col in range(2, 6):
            sheet.put(tr, col, None, total=True)
    sheet.ws.freeze_panes(1, 0)
    _print_setup(sheet, t["title"], company, period, landscape=True)

    if keys:
        chart = book.wb.add_chart({"type": "bar"})
        chart.set_style(10)
        chart.set_title({"name": t["chart_departments"]})
        chart.set_legend({"none": True})
        chart.add_series({
            "name": [sheet.title, 0, 2],
            "categories": [sheet.title, 1, 0, tr - 2, 0],
            "values": [sheet.title, 1, 2, tr - 2, 2],
            "fill": {"color": "#2F5597"},
            "border": {"color": "#2F5597"},
            "gap": 60,
        })
        # a bar chart's y axis is its category axis: first department on top, the value axis below it
        chart.set_y_axis({"reverse": True, "crossing": "max"})
        chart.set_x_axis({"num_format": money.replace(".00", "")})
        chart.set_size({"width": round(18 * _CM_PX), "height": round(max(7.5, 1.0 * len(keys) + 3.5) * _CM_PX)})
        sheet.ws.insert_chart("G2", chart)


def _bands_sheet(book: _Book, t: dict[str, str], lay: _Layout, emp: pd.DataFrame, bands: tuple[float, ...],
                 light: TrafficLight, company: str, period: str) -> None:
    sheet = book.sheet(t["sheet_bands"])
    src = _quote_sheet(t["sheet_employees"])
    _header(sheet, [t["band"], t["band_from"], t["band_below"], t["band_count"]], [18.0, 9.0, 9.0, 14.0])
    w_rng = f"{src}{lay.rng(lay.col_weighted)}"
    scores = np.array([x for x in emp["weighted_score"] if not np.isnan(x)], dtype=float)
    labels = _band_labels(bands)
    lows: list[float | None] = [None, *bands]
    highs: list[float | None] = [*bands, None]
    counts: list[int] = []
    for i, (label, lo, hi) in enumerate(zip(labels, lows, highs, strict=True)):
        r = i + 2
        sheet.put(r, 1, label)
        sheet.put(r, 2, lo, "0%", numeric=True)
        sheet.put(r, 3, hi, "0%", numeric=True)
        mask = np.ones(len(scores), dtype=bool)
        parts = []
        if lo is not None:
            mask &= scores >= _criterion_number(_stored(lo))
            parts.append(f'{w_rng},">="&B{r}')
        if hi is not None:
            mask &= scores < _criterion_number(_stored(hi))
            parts.append(f'{w_rng},"<"&C{r}')
        counts.append(int(mask.sum()))
        if lay.n:
            fn = "COUNTIFS" if len(parts) > 1 else "COUNTIF"
            sheet.formula(r, 4, f"{fn}({','.join(parts)})", counts[-1], "0")
        else:
            sheet.put(r, 4, 0, "0")
    tr = len(labels) + 2
    sheet.put(tr, 1, t["total"], total=True)
    sheet.put(tr, 2, None, total=True)
    sheet.put(tr, 3, None, total=True)
    if lay.n:
        sheet.formula(tr, 4, f"SUM(D2:D{tr - 1})", sum(counts), "0", total=True)
    else:
        sheet.put(tr, 4, 0, "0", total=True)
    sheet.ws.freeze_panes(1, 0)
    _print_setup(sheet, t["title"], company, period, landscape=True)

    if lay.n:
        chart = book.wb.add_chart({"type": "column"})
        chart.set_style(10)
        chart.set_title({"name": t["chart_bands"]})
        chart.set_legend({"none": True})
        points = []
        for lo in lows:
            colour = "#" + light.bars[light.band(lo) if lo is not None else 0]
            points.append({"fill": {"color": colour}, "border": {"color": colour}})
        chart.add_series({
            "name": [sheet.title, 0, 3],
            "categories": [sheet.title, 1, 0, tr - 2, 0],
            "values": [sheet.title, 1, 3, tr - 2, 3],
            "points": points,
            "gap": 15,
            "data_labels": {"value": True, "position": "outside_end"},
        })
        chart.set_y_axis({"num_format": "0", "min": 0})
        chart.set_size({"width": round(18 * _CM_PX), "height": round(9 * _CM_PX)})
        sheet.ws.insert_chart("F2", chart)


# --------------------------------------------------------------------------------------------
# public API


def summary_bytes(
    results: Any,
    *,
    traffic_light: TrafficLight = DEFAULT_TRAFFIC_LIGHT,
    bands: Iterable[float] = DEFAULT_BANDS,
    timestamp: datetime | None = None,
    members: Iterable[Any] | None = None,
) -> bytes:
    """The summary workbook as bytes (same input → same bytes).

    ``results`` has ``lines``, ``employees``, ``period``, ``currency``, ``company`` and
    ``language`` (see ``xl_kpi.results``). ``traffic_light`` sets the score colours and their
    intervals, ``bands`` the bounds of the weighted-score bands, ``timestamp`` the
    created/modified time recorded in the file (default: the first day of the period).
    ``members`` (employee ids) keeps only their rows: a manager's or a department's team summary
    (``xl-kpi distribute``), whose totals, departments and bands are theirs alone.
    """
    bounds = tuple(float(b) for b in bands)
    if not bounds or any(b <= a for a, b in itertools.pairwise(bounds)) or not all(map(math.isfinite, bounds)):
        raise ValueError(f"bands must be finite, strictly ascending bounds, not {bounds}")
    if members is not None:
        results = _only(results, members)
    book = _Book()
    _build(book, results, traffic_light, bounds)
    language = str(getattr(results, "language", "en") or "en").lower()
    t = _LABELS.get(language, _LABELS["en"])
    title = " ".join(
        x for x in (t["title"], _text(getattr(results, "company", "")),
                    _period_label(getattr(results, "period", ""), language)) if x
    )
    return book.close(timestamp or _timestamp(getattr(results, "period", None)), "xl_kpi", title)


def _only(results: Any, members: Iterable[Any]) -> Any:
    """A copy of ``results`` holding only the employees (and KPI lines) whose id is in ``members``."""
    ids = {str(m).strip() for m in members}
    emp = results.employees
    keep = emp["employee_id"].astype(str).str.strip().isin(ids)
    lines = results.lines
    lines = lines[lines["employee_id"].astype(str).str.strip().isin(ids)]
    changes = {"employees": emp[keep].reset_index(drop=True), "lines": lines.reset_index(drop=True)}
    if dataclasses.is_dataclass(results) and not isinstance(results, type):
        return dataclasses.replace(results, **changes)
    team = copy.copy(results)
    for name, value in changes.items():
        setattr(team, name, value)
    return team


def write_summary(results: Any, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write the summary workbook to ``path`` atomically and return the path.

    Options are those of :func:`summary_bytes`.
    """
    target = Path(path)
    _write_atomic(target, summary_bytes(results, **options))
    return target


def _write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, then replace: readers never see half a file."""
    try:
        write_atomic(path, data)
    except PermissionError as exc:
        raise PermissionError(f"cannot replace {path}: is it open in Excel? Close it and retry ({exc})") from exc
