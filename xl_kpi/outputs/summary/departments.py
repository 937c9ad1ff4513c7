"""The Departments sheet: headcount, bonus, total pay and average weighted score per department as live
COUNTIF/SUMIF/AVERAGEIF formulas over the Employees sheet, a total row, and a bar chart of bonus by
department."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from xl_kpi.outputs.numlang import tag_code
from xl_kpi.outputs.summary.book import _CM_PX, _Book
from xl_kpi.outputs.summary.criteria import _criterion, _quote_sheet
from xl_kpi.outputs.summary.figures import PCT, _money_sum
from xl_kpi.outputs.summary.layout import _header, _Layout, _print_setup, _width


def _departments_sheet(book: _Book, t: dict[str, str], lay: _Layout, emp: pd.DataFrame,
                       departments: list[str], money: str, company: str, period: str) -> None:
    sheet = book.sheet(t["sheet_departments"])
    src = _quote_sheet(t["sheet_employees"])
    # COUNTIF compares text ignoring case: group the same way, show the first spelling met
    groups: dict[str, list[int]] = {}
    label: dict[str, str] = {}
    for i, d in enumerate(departments):
        key = d.casefold()
        if key not in groups:
            groups[key], label[key] = [], d
        groups[key].append(i)
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
        rows = np.asarray(groups[key], dtype=np.int64)
        name = label[key]
        crit = _criterion(f"$A{r}", name)
        sheet.put(r, 1, name)
        sheet.formula(r, 2, f"COUNTIF({dept_rng},{crit})", len(rows), "0")
        bonus, pay = _present(bonus_all[rows]), _present(pay_all[rows])
        sheet.formula(r, 3, f"SUMIF({dept_rng},{crit},{bonus_rng})", _money_sum(bonus, lay.digits), money)
        sheet.formula(r, 4, f"SUMIF({dept_rng},{crit},{total_rng})", _money_sum(pay, lay.digits), money)
        scores = _present(weighted_all[rows])
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
        scores = _present(weighted_all)
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
        chart.set_x_axis({"num_format": tag_code(money.replace(".00", ""), sheet.styles.lang)})
        chart.set_size({"width": round(18 * _CM_PX), "height": round(max(7.5, 1.0 * len(keys) + 3.5) * _CM_PX)})
        sheet.ws.insert_chart("G2", chart)


def _present(values: np.ndarray) -> list[float]:
    """The numbers that are there (not NaN), as Python floats."""
    return values[~np.isnan(values)].tolist()
