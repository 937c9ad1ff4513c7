"""The card's rows sheet (issue 13 §1, en "Source rows", ru "Исходные строки"): per derived KPI, the raw rows
behind the fact, with their row number in the file, whose row it is, how each row counted and a live total.

Added only when the results hold rows (:attr:`xl_kpi.results.Results.rows`, some fact derived from raw data) and
this card has a KPI among them; otherwise the card's bytes are exactly those without this module. Like the history
sheet it is appended to the compiled card as a new worksheet part plus small additions to the workbook, its
relationships, the content types and the styles, patched once per card shape (and per what was patched before,
so it composes with the history sheet) and reused; only the sheet itself is written per card.

Each KPI section: a title, the source and the table (file, sheet), a header row, one row per raw row (row number
in the file, the contribution, the person's name as in the plan, then the used cells as the file has them), and a
total row: a live ``SUM``/``AVERAGE``/… formula of :func:`xl_kpi.engine.formulas.rows_total_formula` over the
contributions, cached with :func:`xl_kpi.inputs.sources.drill.total`, next to a live reference to the card's fact
cell, so a reader sees both agree. A ratio source lists both terms and adds a row dividing their totals.

Rows per card and KPI term are capped at :data:`CAP` for the additive aggregations (sum, count, distinct): the rest
are folded into one line carrying their total (and saying how many rows it holds), so the total still equals the
fact. The other aggregations are listed in full.

The sheet part is ``xl/worksheets/xl_kpi_rows*.xml``: the isolation proof finds it by that name and checks that
every listed row is the owner's (or their team's, in a ``for team`` section; :mod:`xl_kpi.delivery.isolation.rows`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine import formulas as fx
from xl_kpi.inputs.sources.drill import KpiRows, TermRows, raw_key, total
from xl_kpi.outputs.cards.cells import Fx, _tail
from xl_kpi.outputs.cards.data import _LINE_COLS, _Card
from xl_kpi.outputs.cards.extrasheet import SheetStyles, add_sheet, part_text
from xl_kpi.outputs.ooxml import ZipEntry, deflate, quote_sheet, xml_attr

CAP = 5000
"""Rows listed per card and KPI term for sum/count/distinct; beyond it the rest is one line with their total."""
ADDITIVE = ("sum", "count", "distinct")
PART_STEM = "xl/worksheets/xl_kpi_rows"
"""The rows sheet's part name (without a number and ``.xml``): how the isolation proof finds it."""

TEXTS = {
    "en": {
        "sheet": "Source rows", "title": "The raw rows behind the facts", "row": "Row in file",
        "person": "Employee", "member": "Employee (team)", "source": "Source: {}",
        "table": "Table {}: file {}{} — {} rows", "sheet_of": ", sheet {}", "total": "Total",
        "fact": "Fact on the card", "none": "no rows in {} for this period", "more": "{} more rows (rows {}–{}), total",
        "num": "Numerator: {}", "den": "Denominator: {}", "ratio": "Fact = numerator / denominator{}",
        "times": " × {}",
        "note": "Each row: its number in the file, how it counted, whose row it is and the cells the source used, "
                "as the file has them. Each total is a live formula over column B; it equals the fact on the card.",
        "counts": {"sum": "Amount", "count": "Count", "distinct": "Counted (first of its value)", "mean": "Value",
                   "min": "Value", "max": "Value", "median": "Value", "nps": "Answer (+1 / 0 / −1)",
                   "hours": "Hours", "minutes": "Minutes", "days": "Days"},
    },
    "ru": {
        "sheet": "Исходные строки", "title": "Строки исходных данных за фактами", "row": "Строка файла",
        "person": "Сотрудник", "member": "Сотрудник (команда)", "source": "Источник: {}",
        "table": "Таблица {}: файл {}{} — строк: {}", "sheet_of": ", лист {}", "total": "Итого",
        "fact": "Факт в карточке", "none": "нет строк в {} за этот период",
        "more": "ещё строк: {} (строки {}–{}), итого",
        "num": "Числитель: {}", "den": "Знаменатель: {}", "ratio": "Факт = числитель / знаменатель{}",
        "times": " × {}",
        "note": "По каждой строке: её номер в файле, как она учтена, чья это строка и ячейки, которые использует "
                "источник, как они записаны в файле. Итого — живая формула по столбцу B; она равна факту в карточке.",
        "counts": {"sum": "Сумма", "count": "Количество", "distinct": "Учтено (первое значение)", "mean": "Значение",
                   "min": "Значение", "max": "Значение", "median": "Значение", "nps": "Ответ (+1 / 0 / −1)",
                   "hours": "Часов", "minutes": "Минут", "days": "Дней"},
    },
}
FIRST_DATA_COLUMN = 4
"""Column D: the used cells start here (A row, B contribution, C the person)."""


def has_rows(ctx: Any, card: _Card) -> bool:
    """True when the card has a KPI whose fact was derived from raw rows (then it gets the sheet)."""
    rows = getattr(ctx, "rows", None)
    if not rows:
        return False
    k = _LINE_COLS.index("kpi_id")
    return any(str(ln[k]) in rows for ln in card.lines)


def add_rows(template: Any, comp: Any, card: _Card, ctx: Any, entries: list[ZipEntry], locals_: list[bytes],
             level: int) -> tuple[list[ZipEntry], list[bytes]]:
    """The card's zip entries with the rows sheet added (``ctx.rows``: kpi_id → :class:`KpiRows`)."""
    current = {e.name.decode("utf-8"): e for e in entries}
    shapes = vars(template).setdefault("_rows_shapes", {})
    key = (comp.key, ctx.lang, tuple(id(current.get(p)) for p in _PATCHED))
    shape = shapes.get(key)
    if shape is None:
        shape = shapes[key] = _shape(template, comp, ctx, current)
    out_e, out_l = [], []
    for e, loc in zip(entries, locals_, strict=True):
        r = shape.replaced.get(e.name.decode("utf-8"))
        out_e.append(r or e)
        out_l.append(r.local if r else loc)
    e = deflate(shape.sheet_part, _sheet(template, comp, card, ctx, shape).encode("utf-8"), level)
    out_e.append(e)
    out_l.append(e.local)
    return out_e, out_l


# ------------------------------------------------------------------------------------------ per card


def _sheet(template: Any, comp: Any, card: _Card, ctx: Any, shape: _Shape) -> str:
    t = TEXTS[ctx.lang]
    xf = shape.xf
    names: dict[str, str] = ctx.rows_names
    k_id, k_name, k_fact = (_LINE_COLS.index(c) for c in ("kpi_id", "kpi_name", "fact"))
    fact_col = template.kpi_cols.get("fact")
    fact_rows = comp.kpi_rows if fact_col and len(comp.kpi_rows) == len(card.lines) else None
    card_sheet = quote_sheet(template.sheet_name)
    rows: list[str] = []
    width = [FIRST_DATA_COLUMN]

    def row(r: int | None, cells: list[Any]) -> None:
        if r is None:  # rows already written out
            rows.extend(cells)
            return
        rows.append(f'<row r="{r}">' + "".join(
            f'<c r="{_col(c)}{r}" s="{xf[s]}"{_tail(v)}' for c, s, v in cells) + "</row>")

    emp = card.emp
    row(1, [(1, "title", t["title"])])
    row(2, [(1, "sub", " — ".join(str(x) for x in (emp["name"], ctx.period_name) if x not in (None, "")))])
    r = 4
    eid = emp["employee_id"]
    for i, ln in enumerate(card.lines):
        kr: KpiRows | None = ctx.rows.get(str(ln[k_id]))
        if kr is None:
            continue
        row(r, [(1, "head", f"{ln[k_id]} — {ln[k_name]}" if ln[k_name] not in (None, "") else str(ln[k_id]))])
        row(r + 1, [(1, "small", t["source"].format(kr.source))])
        r += 2
        totals: list[tuple[str, float]] = []
        ratio = len(kr.terms) > 1
        for j, term in enumerate(kr.terms):
            pos = term.positions(eid)
            if ratio:
                row(r, [(1, "bold", t["num" if j == 0 else "den"].format(term.text))])
                r += 1
            r, ref, value = _term(row, r, term, pos, t, names, 1.0 if ratio else kr.factor, width, xf)
            totals.append((ref, value))
        label_row = r - 1
        if ratio:
            (nref, nval), (dref, dval) = totals
            value = nval / dval * kr.factor if dval else math.nan
            times = t["times"].format(fx.literal(kr.factor)) if kr.factor != 1.0 else ""
            row(r, [(1, "total_text", t["ratio"].format(times)),
                    (2, "total_num", Fx(fx.rows_ratio_formula(nref, dref, kr.factor), value))])
            label_row = r
            r += 1
        if fact_rows is not None:  # the card's own fact, live, next to the total it must equal
            fact = ln[k_fact]
            rows[-1] = rows[-1].replace("</row>", f'<c r="C{label_row}" s="{xf["total_text"]}"{_tail(t["fact"])}'
                                     f'<c r="D{label_row}" s="{xf["total_num"]}"'
                                     f'{_tail(Fx(f"{card_sheet}!{fact_col}{fact_rows[i]}", fact))}</row>')
        r += 1
    note = r + 1
    rows.append(f'<row r="{note}"><c r="A{note}" s="{xf["note"]}"'
                f'{_tail(t["note"])}</row>')
    last = _col(max(width))
    cols = ('<col min="1" max="1" width="12" customWidth="1"/><col min="2" max="2" width="18" customWidth="1"/>'
            '<col min="3" max="3" width="30" customWidth="1"/>'
            f'<col min="4" max="{max(width[0], 4)}" width="22" customWidth="1"/>')
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<worksheet xmlns="{_NS_MAIN}" xmlns:r="{_NS_R}"><sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
        f'<dimension ref="A1:{last}{note}"/><sheetViews><sheetView showGridLines="0" workbookViewId="0"/>'
        f'</sheetViews><sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols>'
        f'<sheetData>{"".join(rows)}</sheetData>'
        '<pageMargins left="0.4" right="0.4" top="0.6" bottom="0.6" header="0.3" footer="0.3"/>'
        '<pageSetup paperSize="9" orientation="landscape" fitToWidth="1" fitToHeight="0"/></worksheet>'
    )


def _term(row: Any, r: int, term: TermRows, pos: np.ndarray, t: dict[str, Any], names: dict[str, str],
          factor: float, width: list[int], xf: dict[str, int]) -> tuple[int, str, float]:
    """One term's table at row ``r``: (next free row, the reference of its total cell, the total's value)."""
    sheet = t["sheet_of"].format(term.sheet) if term.sheet else ""
    row(r, [(1, "small", t["table"].format(term.table, term.file, sheet, len(pos)))])
    r += 1
    counts = t["counts"][term.unit or term.func]
    heads = [(1, "colhead", t["row"]), (2, "colhead", counts), (3, "colhead", t["member" if term.team else "person"])]
    heads += [(FIRST_DATA_COLUMN + k, "colhead", str(h)) for k, h in enumerate(term.columns)]
    width[0] = max(width[0], FIRST_DATA_COLUMN + len(term.columns) - 1)
    row(r, heads)
    r += 1
    number = "int" if term.func in ("count", "distinct", "nps") else "num"
    n = len(pos)
    shown = min(n, CAP) if term.func in ADDITIVE else n
    arrays = _arrays(term)
    contrib = arrays["contribution"][pos].astype(float)
    numbers = arrays["row"][pos].astype(np.int64).tolist()
    tpl = _templates(term, pos[:shown], names, xf, number)
    first = r
    a = xf["rownum"]
    out = []
    for k in range(shown):
        out.append(f'<row r="{r}"><c r="A{r}" s="{a}"><v>{numbers[k]}</v></c>' + tpl[k] % {"r": r} + "</row>")
        r += 1
    row(None, out)
    if shown < n:
        rest = contrib[shown:]
        row(r, [(1, "text", "…"), (2, number, float(rest.sum())),
                (3, "text", t["more"].format(n - shown, numbers[shown], numbers[-1]))])
        r += 1
    value = total(term.func, contrib) * factor
    if n == 0:
        row(r, [(1, "small", t["none"].format(term.table))])
        r += 1
        row(r, [(1, "total_text", t["total"]), (2, "total_num", value if value == value else None)])
    else:
        ref = f"B{first}:B{r - 1}"
        row(r, [(1, "total_text", t["total"]), (2, "total_num", Fx(fx.rows_total_formula(term.func, ref, factor),
                                                                      value))])
    return r + 1, f"B{r}", value


def _arrays(term: TermRows) -> dict[str, np.ndarray]:
    """The columns of ``term``'s frame as NumPy arrays, made once per run (views, not copies, where pandas can)."""
    arrays = term.__dict__.get("_arrays")
    if arrays is None:
        arrays = {c: term.frame[c].to_numpy() for c in term.frame.columns}
        term.__dict__["_arrays"] = arrays
    return arrays


def _templates(term: TermRows, pos: np.ndarray, names: dict[str, str], xf: dict[str, int], number: str) -> list[str]:
    """The rows at ``pos`` of ``term``: their cells from B on as XML with ``%(r)d`` for the sheet row."""
    arrays = _arrays(term)
    b, text = xf[number], xf["text"]
    contrib = [_tail(float(v)) for v in arrays["contribution"][pos].astype(float).tolist()]
    people = [_tail(names.get(m, str(m))).replace("%", "%%") for m in arrays["member"][pos].tolist()]
    cols = [[_tail(_cell(v)).replace("%", "%%") for v in arrays[raw_key(h)][pos].tolist()] for h in term.columns]
    letters = [_col(FIRST_DATA_COLUMN + c) for c in range(len(term.columns))]
    out = []
    for k in range(len(pos)):
        out.append(f'<c r="B%(r)d" s="{b}"{contrib[k]}<c r="C%(r)d" s="{text}"{people[k]}'
                   + "".join(f'<c r="{letters[c]}%(r)d" s="{text}"{cols[c][k]}' for c in range(len(letters))))
    return out


def _cell(v: Any) -> Any:
    """A raw cell as text or a number, as the file has it (dates as dd.mm.yyyy [hh:mm[:ss]])."""
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, float):
        return None if v != v else v
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return float(v)
    if isinstance(v, np.floating):
        return None if v != v else float(v)
    if isinstance(v, (dt.datetime, pd.Timestamp)):
        if (v.hour, v.minute, v.second) == (0, 0, 0):
            return v.strftime("%d.%m.%Y")
        return v.strftime("%d.%m.%Y %H:%M:%S" if v.second else "%d.%m.%Y %H:%M")
    if isinstance(v, dt.date):
        return v.strftime("%d.%m.%Y")
    return str(v)


def _col(n: int) -> str:
    s = ""
    while n:
        n, m = divmod(n - 1, 26)
        s = chr(65 + m) + s
    return s


# ------------------------------------------------------------------------------------ per card shape

_NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PATCHED = ("xl/workbook.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml", "xl/styles.xml")



@dataclass(frozen=True)
class _Shape:
    replaced: dict[str, ZipEntry]
    sheet_part: str
    sheet: str
    xf: dict[str, int]


def _shape(template: Any, comp: Any, ctx: Any, current: dict[str, ZipEntry]) -> _Shape:
    """Patch the card's workbook, relationships, content types and styles (as they are now) for this sheet."""
    names = set(current) | {e for e in comp.entries if isinstance(e, str)}

    n, sheet_part = 1, PART_STEM + ".xml"
    while sheet_part in names:
        n += 1
        sheet_part = f"{PART_STEM}{n}.xml"
    wb = part_text(current, "xl/workbook.xml", "a rows sheet")
    taken = {x.casefold() for x in re.findall(r'<(?:\w+:)?sheet\b[^>]*\sname="([^"]*)"', wb)}
    sheet, k = TEXTS[ctx.lang]["sheet"], 2
    while xml_attr(sheet).casefold() in taken:
        sheet, k = f"{TEXTS[ctx.lang]['sheet']} {k}", k + 1
    replaced, xf = add_sheet(current, sheet, sheet_part, "rIdXlKpiRows", [(sheet_part, "spreadsheetml.worksheet+xml")],
                             SheetStyles(_FONTS, _FILL, _BORDER, _XFS, _FORMATS), ctx.lang, "a rows sheet")
    return _Shape(replaced, sheet_part, sheet, xf)


_FONTS = {"title": '<font><b val="1"/><sz val="14"/><color rgb="FF1F3864"/><name val="Calibri"/></font>',
          "head": '<font><b val="1"/><sz val="11"/><color rgb="FF1F3864"/><name val="Calibri"/></font>',
          "bold": '<font><b val="1"/><sz val="10"/><name val="Calibri"/></font>',
          "text": '<font><sz val="10"/><name val="Calibri"/></font>',
          "small": '<font><i val="1"/><sz val="9"/><color rgb="FF595959"/><name val="Calibri"/></font>'}
_FILL = '<fill><patternFill patternType="solid"><fgColor rgb="FFD9E2F3"/><bgColor indexed="64"/></patternFill></fill>'
_BORDER = '<border><left/><right/><top/><bottom style="thin"><color rgb="FFBFBFBF"/></bottom><diagonal/></border>'
# name → (font, number format: "" general / "int" / "num" / "row", filled, bordered, alignment)
_XFS = {
    "title": ("title", "", False, False, ""), "sub": ("text", "", False, False, ""),
    "head": ("head", "", False, False, ""), "small": ("small", "", False, False, ""),
    "bold": ("bold", "", False, False, ""),
    "colhead": ("bold", "", True, True, '<alignment horizontal="center" vertical="center" wrapText="1"/>'),
    "rownum": ("text", "row", False, True, '<alignment horizontal="center"/>'),
    "text": ("text", "", False, True, ""), "int": ("text", "int", False, True, ""),
    "num": ("text", "num", False, True, ""),
    "total_text": ("bold", "", True, True, ""), "total_num": ("bold", "num", True, True, ""),
    "note": ("small", "", False, False, ""),
}
_FORMATS: dict[str, int | str] = {"": 0, "row": 1, "int": "#,##0", "num": "#,##0.00"}
