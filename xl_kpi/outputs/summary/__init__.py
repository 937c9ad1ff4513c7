"""The summary workbook for HR (``OUT/summary.xlsx``), ``OUT/manifest.csv`` and ``OUT/errors.csv``.

The summary's sheets:

* **Employees**: one row per employee (id, name, department, position, manager, one score
  column per KPI of the company — only the KPIs every position has when positions differ —, weighted
  score, rank, rank in position and in department, bonus, total pay, note), a traffic light on the
  scores, autofilter, frozen header, and a SUBTOTAL total row; gated employees' ranks marked ``*``.
* **one sheet per position**, only when positions have different KPIs: its employees and its KPIs.
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

The package, one job a module: ``light`` (the traffic light, the default bands), ``figures``
(weighted scores, money formats and totals), ``texts`` (labels in en/ru, band labels, the period's
name, safe sheet names), ``book`` (XlsxWriter: shared formats, worksheet, sheet and book wrappers), ``layout``
(column positions, header row, widths, print setup), ``criteria`` (formula text: sheet references, COUNTIF
criteria), ``people`` (a sheet of people: rows, totals, traffic light, legend), ``employees`` (the Employees
and position sheets' columns), ``departments``, ``bands`` and ``payouts`` (the other sheets), ``write``
(:func:`summary_bytes`, the team subset, :func:`write_summary`).
"""

from __future__ import annotations

from xl_kpi.engine.payout import SCORE_DECIMALS
from xl_kpi.outputs.summary.book import _Book, _Worksheet
from xl_kpi.outputs.summary.criteria import _criterion, _criterion_number, _quote_sheet
from xl_kpi.outputs.summary.employees import _build, _employees_table
from xl_kpi.outputs.summary.figures import PCT, _money_sum, money_format, weighted_scores
from xl_kpi.outputs.summary.layout import _Layout, _width, _wrapped_lines
from xl_kpi.outputs.summary.light import DEFAULT_BANDS, DEFAULT_TRAFFIC_LIGHT, TrafficLight
from xl_kpi.outputs.summary.texts import _LABELS, _band_labels, _timestamp
from xl_kpi.outputs.summary.write import summary_bytes, write_summary
from xl_kpi.outputs.values import cell_value as _cell_value
from xl_kpi.outputs.values import number as _num
from xl_kpi.outputs.values import stored as _stored
from xl_kpi.outputs.values import text as _text

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_TRAFFIC_LIGHT",
    "PCT",
    "SCORE_DECIMALS",
    "_LABELS",
    "TrafficLight",
    "_Book",
    "_Layout",
    "_Worksheet",
    "_band_labels",
    "_build",
    "_cell_value",
    "_criterion",
    "_criterion_number",
    "_employees_table",
    "_money_sum",
    "_num",
    "_quote_sheet",
    "_stored",
    "_text",
    "_timestamp",
    "_width",
    "_wrapped_lines",
    "money_format",
    "summary_bytes",
    "weighted_scores",
    "write_summary",
]
