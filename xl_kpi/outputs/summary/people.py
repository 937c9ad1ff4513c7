"""A sheet of people, one row per employee (the Employees sheet and each position's sheet): the header, the rows
written a block at a time (:meth:`_Worksheet.write_rows`), a SUBTOTAL total row, the traffic light on the score
columns, autofilter, frozen panes, the print setup and a legend (a text box under the table and the page
footer, so the cells hold only the table: pandas still reads the total as the last row)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xlsxwriter.utility import xl_col_to_name

from xl_kpi.engine.formulas import score_key_formula
from xl_kpi.outputs.summary.book import _CM_PX, _Book, _Sheet
from xl_kpi.outputs.summary.layout import _header, _print_setup
from xl_kpi.outputs.summary.light import TrafficLight

BLOCK = 2048
"""Rows made and written at once: the cell bodies of one block are in memory at a time, whatever the headcount
(see :func:`~xl_kpi.outputs.summary.employees._table`)."""


@dataclass
class Column:
    """One column of a people sheet: its header, width, the cell bodies of rows ``start:stop`` (0-based data
    rows, asked for in order) and its total-row cell ``(formula, cached value, number format)`` or None (a blank
    total cell), or a function that gives it once the rows are written (an average of the numbers written)."""

    header: str
    width: float
    bodies: Callable[[int, int], list[str]]
    total: tuple[str, Any, str] | Callable[[], tuple[str, Any, str] | None] | None = None


@dataclass
class Table:
    """What a people sheet holds: the columns, the row count, the score columns the traffic light colours
    (first and last, 1-based; None: none), and the legend lines printed under the total row."""

    columns: list[Column]
    n: int
    light: tuple[int, int] | None = None
    legend: tuple[str, ...] = ()


def letter(col: int) -> str:
    """The letter of a 1-based column."""
    return xl_col_to_name(col - 1)


def people_sheet(book: _Book, sheet: _Sheet, table: Table, total_label: str, traffic_light: TrafficLight,
                 print_title: str, company: str, period: str) -> None:
    """Write ``table`` into ``sheet`` (made with ``book.sheet``, whose styles the column bodies use)."""
    ws = sheet.ws
    cols, n = table.columns, table.n
    _header(sheet, [c.header for c in cols], [c.width for c in cols])
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        ws.write_rows(start + 1, 0, [c.bodies(start, stop) for c in cols])

    tr = n + 2  # total row: SUBTOTAL respects the autofilter (hidden rows drop out of the totals)
    for col, c in enumerate(cols, start=1):
        if col == 1:
            sheet.put(tr, col, total_label, total=True)
        elif (total := c.total() if callable(c.total) else c.total) is not None:
            formula, cached, fmt = total
            if formula:
                sheet.formula(tr, col, formula, cached, fmt, total=True)
            else:
                sheet.put(tr, col, cached, fmt, numeric=True, total=True)
        else:
            sheet.put(tr, col, None, total=True)
    if table.legend:  # a text box under the table (readers of the cells, pandas, never see it) and the footer
        text = "\n".join(table.legend)
        ws.insert_textbox(tr, 0, text, {"width": round(24 * _CM_PX), "height": 22 * len(table.legend) + 10,
                                        "font": {"size": 9}, "line": {"none": True},
                                        "object_position": 3})

    if n and table.light:  # the traffic light over the score columns (data rows only; blanks stay uncoloured)
        first, last = table.light
        x = score_key_formula(f"{letter(first)}2")  # the score as the bands compare it
        bounds: list[float | None] = [None, *traffic_light.thresholds, None]
        for b in range(len(traffic_light.fills)):
            conds = [f"ISNUMBER({letter(first)}2)"]
            if bounds[b] is not None:
                conds.append(f"{x}>={bounds[b]!r}")
            if bounds[b + 1] is not None:
                conds.append(f"{x}<{bounds[b + 1]!r}")
            light = book.wb.add_format({"bg_color": "#" + traffic_light.fills[b],
                                        "font_color": "#" + traffic_light.fonts[b]})
            ws.conditional_format(1, first - 1, n, last - 1,
                                  {"type": "formula", "criteria": f"AND({','.join(conds)})", "format": light})
    ws.freeze_panes(1, 2)
    ws.autofilter(0, 0, max(n, 1), len(cols) - 1)
    _print_setup(sheet, print_title, company, period, landscape=True, legend=" ".join(table.legend))


def subtotal(code: int, col: int, n: int) -> str:
    """``SUBTOTAL(code, X2:Xn+1)`` over the data rows of column ``col`` (101 average, 109 sum)."""
    c = letter(col)
    return f"SUBTOTAL({code},{c}2:{c}{n + 1})"
