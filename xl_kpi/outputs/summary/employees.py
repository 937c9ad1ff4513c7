"""The Employees sheet: the employees table (weighted score, rank, one score column per KPI) and
:func:`_build`, which writes the sheet (rows, SUBTOTAL total row, traffic light, autofilter) and then the
Departments and Score bands sheets."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from xlsxwriter.utility import xl_col_to_name

from xl_kpi.engine.formulas import group_key, group_rank_formula, score_key_formula
from xl_kpi.outputs.summary.bands import _bands_sheet
from xl_kpi.outputs.summary.book import _Book, blank_body, formula_body, number_bodies
from xl_kpi.outputs.summary.departments import _departments_sheet
from xl_kpi.outputs.summary.figures import PCT, _money_sum, money_format, weighted_scores
from xl_kpi.outputs.summary.layout import _header, _Layout, _print_setup, _width
from xl_kpi.outputs.summary.light import TrafficLight
from xl_kpi.outputs.summary.payouts import _payouts_sheet, has_payout_kinds
from xl_kpi.outputs.summary.texts import _LABELS, _period_label
from xl_kpi.outputs.values import number as _num
from xl_kpi.outputs.values import stored as _stored
from xl_kpi.outputs.values import text as _text

_BLOCK = 2048
"""Rows of the Employees sheet made and written at once."""


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


def _group_ranks(weighted: np.ndarray, values: list[Any], cell: str, groups: str, wcol: str,
                 scores: str) -> tuple[list[str | None], list[int]]:
    """Each row's rank within its group (position or department) as a live formula and its cached value.

    Ties share a rank (pandas ``rank(method="min", ascending=False)``, as :func:`group_rank_formula`
    computes it); a row with no weighted score or no group text gets a blank cell (None)."""
    keys = [group_key(_text(v)) for v in values]
    frame = pd.DataFrame({"key": keys, "w": weighted})
    frame.loc[frame["key"] == "", "w"] = np.nan
    cached = frame.groupby("key", sort=False)["w"].rank(method="min", ascending=False)
    formulas: list[str | None] = []
    out: list[int] = []
    for r, (k, w) in enumerate(zip(keys, cached.tolist(), strict=True), start=2):
        if not k or math.isnan(w):
            formulas.append(None)
            out.append(0)
        else:
            formulas.append(group_rank_formula(groups, cell.format(r), scores, f"{wcol}{r}"))
            out.append(int(w))
    return formulas, out


def _adjustments(emp: pd.DataFrame) -> tuple[np.ndarray, list[str]] | None:
    """Each employee's adjustment (the results' amount) and its reason, or None when nobody has one."""
    if "adjustment" not in emp:
        return None
    amounts = pd.to_numeric(emp["adjustment"], errors="coerce").to_numpy(dtype=float)
    if not np.any(np.nan_to_num(amounts) != 0.0):
        return None
    reasons = [_text(r) for r in emp["adjustment_reason"]] if "adjustment_reason" in emp else [""] * len(emp)
    return np.where(amounts == 0.0, np.nan, amounts), reasons


def _build(book: _Book, results: Any, traffic_light: TrafficLight, bands: tuple[float, ...]) -> None:
    language = str(getattr(results, "language", "en") or "en").lower()
    t = _LABELS.get(language, _LABELS["en"])
    money = money_format(getattr(results, "currency", None))
    company = _text(getattr(results, "company", ""))
    period = _period_label(getattr(results, "period", ""), language)

    emp, kpis, matrix = _employees_table(results)
    n = len(emp)
    notes = [_text(r) for r in emp["reason"]] if "reason" in emp else [""] * n
    if "bonus_note" in emp:  # why a bonus is zero or reduced: computed with the results (xl_kpi.bonus_notes)
        notes = [r or _text(b) for r, b in zip(notes, emp["bonus_note"], strict=True)]
    has_note = any(notes)
    adjust = _adjustments(emp)

    sheet = book.sheet(t["sheet_employees"])
    ws = sheet.ws
    fixed = ["employee_id", "name", "department", "position", "manager"]
    first_kpi = len(fixed) + 1
    kpi_cols = list(range(first_kpi, first_kpi + len(kpis)))
    col_weighted = first_kpi + len(kpis)
    lay = _Layout(n=n, kpi_cols=kpi_cols, col_dept=3, col_weighted=col_weighted, col_rank=col_weighted + 1,
                  col_bonus=col_weighted + 4, col_total=col_weighted + 5 + bool(adjust),
                  ncols=col_weighted + 5 + 2 * bool(adjust) + has_note, digits=int(getattr(results, "digits", 2) or 0),
                  col_adjust=col_weighted + 5 if adjust else None)

    no_dept = t["no_department"]
    departments = [(_text(d) or no_dept) for d in emp["department"]] if "department" in emp else [no_dept] * n
    columns = {c: (list(emp[c]) if c in emp else [None] * n) for c in fixed}
    columns["department"] = departments

    # header and widths
    labels = [t[c] for c in fixed] + [name for _, name in kpis] + [t["weighted"], t["rank"], t["rank_position"],
                                                         t["rank_department"], t["bonus"]] + (
        [t["adjustment"]] if adjust else []) + [t["total_pay"]] + ([t["adjustment_reason"]] if adjust else [])
    widths = [
        _width(columns["employee_id"], t["employee_id"], 8, 16),
        _width(columns["name"], t["name"], 18, 40),
        _width(columns["department"], t["department"], 12, 30),
        _width(columns["position"], t["position"], 12, 30),
        _width(columns["manager"], t["manager"], 12, 28),
    ]
    widths += [float(min(max(max((len(w) for w in name.split()), default=0) + 3, 12), 20)) for _, name in kpis]
    widths += [13.0, 8.0, 11.0, 11.0, 15.0] + ([15.0] if adjust else []) + [16.0]
    if adjust:
        widths.append(_width(adjust[1], t["adjustment_reason"], 14, 45))
    if has_note:
        labels.append(t["note"])
        widths.append(_width(notes, t["note"], 14, 45))
    _header(sheet, labels, widths)

    # the rows, column by column: each cell's XML made in one list per column, a block of rows written at once
    styles = book.styles
    pct, count, cash = styles.get("number", PCT), styles.get("number", "0"), styles.get("number", money)
    scores = matrix.to_numpy(dtype=float) if len(kpis) else np.empty((n, 0))
    weighted = emp["weighted_score"].to_numpy(dtype=float)
    ranks = emp["rank"].to_numpy(dtype=float)
    bonus = emp["bonus"].to_numpy(dtype=float)
    total_pay = emp["total_pay"].to_numpy(dtype=float)
    wcol = xl_col_to_name(col_weighted - 1)
    rank_range = lay.rng(col_weighted)
    group_ranks = [_group_ranks(weighted, values, f"{xl_col_to_name(col - 1)}{{0}}", lay.rng(col), wcol, rank_range)
                   for values, col in ((columns["position"], 4), (departments, 3))]
    blank_count = blank_body(count)
    made: list[dict[tuple[type, Any], str]] = [{} for _ in range(len(fixed) + 1)]
    for start in range(0, n, _BLOCK):  # a block of rows at a time: memory stays flat in headcount
        stop = min(start + _BLOCK, n)
        block = [sheet.bodies(columns[c][start:stop], made[j]) for j, c in enumerate(fixed)]
        block += [number_bodies(scores[start:stop, j], pct) for j in range(len(kpi_cols))]
        block.append(number_bodies(weighted[start:stop], pct))
        block.append([blank_count if math.isnan(w) else formula_body(f"RANK({wcol}{r},{rank_range})", int(k), count)
                      for r, w, k in zip(range(start + 2, stop + 2), weighted[start:stop].tolist(),
                                         ranks[start:stop].tolist(), strict=True)])
        for formulas, cached in group_ranks:
            block.append([blank_count if f is None else formula_body(f, k, count)
                          for f, k in zip(formulas[start:stop], cached[start:stop], strict=True)])
        block.append(number_bodies(bonus[start:stop], cash))
        if adjust:
            block.append(number_bodies(adjust[0][start:stop], cash))
        block.append(number_bodies(total_pay[start:stop], cash))
        if adjust:
            block.append(sheet.bodies(adjust[1][start:stop]))
        if has_note:
            block.append(sheet.bodies(notes[start:stop], made[-1]))
        ws.write_rows(start + 1, 0, block)

    # total row: SUBTOTAL respects the autofilter (hidden rows drop out of the totals)
    tr = n + 2
    cells: dict[int, tuple[str, Any, str]] = {}  # column → (formula, cached value, number format)
    if n:
        for j, col in enumerate([*kpi_cols, col_weighted]):
            column = scores[:, j] if j < len(kpi_cols) else weighted
            vals = [_stored(float(x)) for x in column if math.isfinite(x)]
            if vals:
                cells[col] = (f"SUBTOTAL(101,{lay.rng(col, False)})", math.fsum(vals) / len(vals), PCT)
        money_cols = [(lay.col_bonus, bonus), (lay.col_total, total_pay)]
        if adjust and lay.col_adjust:
            money_cols.append((lay.col_adjust, adjust[0]))
        for col, values in money_cols:
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
        x = score_key_formula(f"{first_col}2")  # the score as the bands compare it
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
    if has_payout_kinds(results):
        _payouts_sheet(book, results, language, t, money, lay.digits, company, period)
