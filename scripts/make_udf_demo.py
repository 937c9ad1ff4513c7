"""Generate workbooks/udf_demo.xlsx: a KPI matrix built with the xl_kpi Excel functions (udfs.py).

The workbook holds formulas only (=KPI_SCORE(...), =KPI_BONUS(...), ...); openpyxl cannot compute
them, so Excel shows their values once the functions are imported (docs/excel.md). Kept as a script
so the workbook can be regenerated after a change:

    .venv/bin/python scripts/make_udf_demo.py [--out workbooks/udf_demo.xlsx]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import re
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.formula import ArrayFormula
from openpyxl.worksheet.worksheet import Worksheet

from xl_kpi.outputs.ooxml import read_parts, write_xlsx

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "workbooks" / "udf_demo.xlsx"

MATRIX_SHEET = "KPI matrix"
CONFIG_SHEET = "xlwings.conf"  # the sheet name xlwings looks for (xlwings docs, "Workbook Config")
UDF_MODULE = "udfs"  # udfs.py: next to the workbook, on PYTHONPATH, or installed with xl_kpi

MONEY = "#,##0.00"
SCORE = "0.0%"
PERCENT = "0%"
COEFF = "0.00"

BOLD = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")
NOTE = Font(italic=True, color="595959")

# KPI matrix rows: (KPI, weight, base, norm, fact, number format of base/norm/fact).
# Fact may be a formula. Churn: base above norm, lower is better.
KPIS = [
    ("Closed deals", 0.4, 100, 150, 160, "0"),
    ("Complaints (lower is better)", 0.2, 10, 5, 4, "0"),
    ("Share of regular clients", 0.2, 0.5, 0.7, 0.66, PERCENT),
    ("Churn rate (lower is better)", 0.2, 0.10, 0.05, "=KPI_CHURN($B$21,$B$20)", "0.0%"),
]
FIRST_KPI_ROW = 8
LAST_KPI_ROW = FIRST_KPI_ROW + len(KPIS) - 1
POOL = "$B$5"

# The company's own step scale, typed as a user would: a header row, thresholds as percentages.
SCALE_TABLE = [("Threshold", "Coefficient"), (0.70, 0.9), (1.00, 1.0), (1.10, 1.1), (1.20, 1.2)]
SCALE_RANGE = "$J$7:$K$11"

# Gate of each KPI (score below it: no bonus for the period); None = no gate on that KPI.
GATES = [0.5, None, None, None]

NPS_ANSWERS = [10, 9, 9, 8, 7, 10, 6, 3, 9, 10]


def build_workbook() -> Workbook:
    """The demo workbook: a 'KPI matrix' sheet with the formulas and an 'xlwings.conf' sheet."""
    wb = Workbook()
    ws = wb.active
    ws.title = MATRIX_SHEET
    _matrix(ws)
    _config(wb.create_sheet(CONFIG_SHEET))
    wb.properties.creator = "xl_kpi"
    wb.properties.title = "xl_kpi Excel functions: demo"
    wb.properties.created = dt.datetime(2024, 1, 1)
    return wb


def workbook_bytes() -> bytes:
    """The demo workbook as deterministic bytes: openpyxl stamps ``modified`` with the clock and the zip entries
    with the time of saving, so the file is saved to memory, its core properties pinned, and zipped again with the
    project's deterministic writer (same parts, fixed timestamps): rebuilding changes no byte."""
    buf = io.BytesIO()
    build_workbook().save(buf)
    parts = read_parts(buf.getvalue())
    core = "docProps/core.xml"
    if core in parts:
        stamp = rb"\g<1>2024-01-01T00:00:00Z\g<2>"
        parts[core] = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", stamp, parts[core])
    return write_xlsx(parts)


def _matrix(ws: Worksheet) -> None:
    ws["A1"] = "KPI card: demo of the xl_kpi Excel functions"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = (
        "Formulas show #NAME? until the functions are there: xlwings > Import Functions, or in xlwings Lite "
        "xl_kpi in requirements.txt and 'from udfs import *' in main.py (docs/excel.md). Yellow cells are inputs."
    )
    ws["A2"].font = NOTE
    _label_value(ws, 3, "Employee", "Anna Ivanova (Иванова Анна), account manager, Moscow office")
    _label_value(ws, 4, "Period", "2024-03")
    _label_value(ws, 5, "Bonus pool (variable pay), RUB", 20000, MONEY, inp=True)

    headers = ["KPI", "Weight", "Base", "Norm", "Fact", "Score", "Coefficient", "Bonus, RUB"]
    _header_row(ws, 7, headers)
    for i, (name, weight, base, norm, fact, fmt) in enumerate(KPIS):
        r = FIRST_KPI_ROW + i
        ws.cell(r, 1, name)
        _put(ws, f"B{r}", weight, PERCENT, inp=True)
        _put(ws, f"C{r}", base, fmt, inp=True)
        _put(ws, f"D{r}", norm, fmt, inp=True)
        _put(ws, f"E{r}", fact, fmt, inp=not str(fact).startswith("="))
        _put(ws, f"F{r}", f"=KPI_SCORE(E{r},C{r},D{r})", SCORE)
        _put(ws, f"G{r}", f"=KPI_COEFF(F{r})", COEFF)
        _put(ws, f"H{r}", f"=KPI_BONUS({POOL},B{r},F{r})", MONEY)
    total = LAST_KPI_ROW + 1
    ws.cell(total, 1, "Total").font = BOLD
    _put(ws, f"B{total}", f"=SUM({_kpis('B')})", PERCENT)
    _put(ws, f"H{total}", f"=KPI_TOTAL_BONUS({POOL},{_kpis('B')},{_kpis('F')})", MONEY)
    ws[f"H{total}"].font = BOLD
    ws.cell(total + 1, 1, "Check: sum of the KPI bonuses above")
    _put(ws, f"H{total + 1}", f"=SUM({_kpis('H')})", MONEY)

    # The company's own scale, used as the optional [scale] argument below.
    for j, (threshold, coeff) in enumerate(SCALE_TABLE):
        r = 7 + j
        if j == 0:
            _header_row(ws, r, [threshold, coeff], first_col=10)
        else:
            _put(ws, f"J{r}", threshold, PERCENT, inp=True)
            _put(ws, f"K{r}", coeff, COEFF, inp=True)
    ws["J6"] = "Own scale (optional [scale] argument)"
    ws["J6"].font = BOLD

    ws["A15"] = f"With the own scale in {SCALE_RANGE.replace('$', '')}:"
    ws["A15"].font = BOLD
    ws["A16"] = "Closed deals (score exactly on the 120% threshold)"
    _put(ws, "G16", f"=KPI_COEFF(F{FIRST_KPI_ROW},{SCALE_RANGE})", COEFF)
    _put(ws, "H16", f"=KPI_BONUS({POOL},B{FIRST_KPI_ROW},F{FIRST_KPI_ROW},{SCALE_RANGE})", MONEY)
    ws["A17"] = "Total bonus on the own scale"
    _put(ws, "H17", f"=KPI_TOTAL_BONUS({POOL},{_kpis('B')},{_kpis('F')},{SCALE_RANGE})", MONEY)

    ws["A19"] = "Client metrics"
    ws["A19"].font = BOLD
    _label_value(ws, 20, "Clients at the start of the period", 120, "0", inp=True)
    _label_value(ws, 21, "Clients lost during the period", 6, "0", inp=True)
    _label_value(ws, 22, "Clients at the end of the period", 134, "0", inp=True)
    _label_value(ws, 23, "New clients won during the period", 20, "0", inp=True)
    _label_value(ws, 24, "Retention rate", "=KPI_RETENTION(B22,B23,B20)", "0.0%")
    _label_value(ws, 25, "Average spend per visit, RUB", 1500, MONEY, inp=True)
    _label_value(ws, 26, "Visits per year", 12, "0", inp=True)
    _label_value(ws, 27, "Years of relationship", 3, "0", inp=True)
    _label_value(ws, 28, "Customer lifetime value (CLV), RUB", "=KPI_CLV(B25,B26,B27)", MONEY)
    ws["A29"] = "NPS survey answers (0-10)"
    for j, answer in enumerate(NPS_ANSWERS):
        _put(ws, ws.cell(29, 2 + j).coordinate, answer, "0", inp=True)
    _label_value(ws, 30, "NPS, points (-100..100)", "=KPI_NPS(B29:K29)", "0.0")

    ws["A32"] = "A range in gives a range out"
    ws["A32"].font = BOLD
    ws["A33"] = (
        "F34:F37 hold one array formula over the whole matrix. In Excel 365 you can instead type "
        f"=KPI_SCORE({_kpis('E')},{_kpis('C')},{_kpis('D')}) in one cell: it spills."
    )
    ws["A33"].font = NOTE
    for j, (name, *_rest) in enumerate(KPIS):
        ws.cell(34 + j, 1, name)
    ref = f"F34:F{33 + len(KPIS)}"
    ws["F34"] = ArrayFormula(ref, f"=KPI_SCORE({_kpis('E')},{_kpis('C')},{_kpis('D')})")
    for r in range(34, 34 + len(KPIS)):
        ws[f"F{r}"].number_format = SCORE

    ws["A39"] = "What bad input gives"
    ws["A39"].font = BOLD
    _header_row(ws, 40, ["Case", "", "Base", "Norm", "Fact", "Score", "Meaning"])
    errors = [
        ("Norm equals base", 100, 100, 120, "#DIV/0!: the KPI has no range; set norm different from base"),
        ("Fact not entered yet", 100, 150, None, "#N/A: a required input is empty (never scored as 0)"),
        ("Fact typed as text", 100, 150, "n/a", "#VALUE!: a number is needed"),
    ]
    for j, (case, base, norm, fact, meaning) in enumerate(errors):
        r = 41 + j
        ws.cell(r, 1, case)
        _put(ws, f"C{r}", base, "0", inp=True)
        _put(ws, f"D{r}", norm, "0", inp=True)
        _put(ws, f"E{r}", fact, "0", inp=True)
        _put(ws, f"F{r}", f"=KPI_SCORE(E{r},C{r},D{r})", SCORE)
        ws.cell(r, 7, meaning).font = NOTE

    ws["A45"] = "The payout, as the batch pays it"
    ws["A45"].font = BOLD
    _label_value(ws, 46, "Weighted score (sum of weight x score)", f"=KPI_WEIGHTED_SCORE({_kpis('B')},{_kpis('F')})",
                 SCORE)
    _label_value(ws, 47, "Days worked in the period (hired on the 13th)", 19, "0", inp=True)
    _label_value(ws, 48, "Days of the period", 31, "0", inp=True)
    _label_value(ws, 49, "Share of the period worked", "=KPI_PRORATE(B47,B48)", "0.0%")
    _label_value(ws, 50, "Individual multiplier", 1.2, "0.00", inp=True)
    _label_value(ws, 51, "Bonus for the period, RUB",
                 f"=KPI_PERIOD_BONUS(H{LAST_KPI_ROW + 1},B50,B49)", MONEY)
    _payout_kinds(ws)
    _card_rebuilt(ws)

    ws.column_dimensions["A"].width = 46
    for col in "BCDEFGH":
        ws.column_dimensions[col].width = 13
    ws.column_dimensions["I"].width = 8
    ws.column_dimensions["J"].width = 12
    ws.column_dimensions["K"].width = 12
    ws.freeze_panes = "A8"


def _payout_kinds(ws: Worksheet) -> None:
    """Rows 53-64: one line per payout kind of issue 15 (fixed, proportional, per unit, share, tiered share)."""
    ws["A53"] = "Payout kinds (the Plan's payout column)"
    ws["A53"].font = BOLD
    _label_value(ws, 54, "Fixed: 5 000 once the deals score reaches 100%", f"=KPI_FIXED(F{FIRST_KPI_ROW},B55,5000)",
                 MONEY)
    _label_value(ws, 55, "Fixed: the threshold", 1.0, SCORE, inp=True)
    _label_value(ws, 56, "Proportional: pool x weight x score of deals", f"=KPI_PROPORTIONAL({POOL},B{FIRST_KPI_ROW},"
                 f"F{FIRST_KPI_ROW})", MONEY)
    _label_value(ws, 57, "Closed deals this month", 14, "0", inp=True)
    _label_value(ws, 58, "Per unit: 500 for every closed deal above 10", "=KPI_PER_UNIT(B57,10,500)", MONEY)
    _label_value(ws, 59, "Won revenue, RUB", 1_200_000, MONEY, inp=True)
    _label_value(ws, 60, "Share: 3% of won revenue", "=KPI_SHARE(B59,0.03)", MONEY)
    _label_value(ws, 61, "Share, tiered (marginal): 3%, and 5% above 1 000 000", "=KPI_SHARE(B59,J60:K62)", MONEY)
    _label_value(ws, 62, "Largest payout of the line, RUB", 100_000, MONEY, inp=True)
    _label_value(ws, 63, "Tier mode", "retroactive", inp=True)
    _label_value(ws, 64, "Share, tiered (retroactive): 5% of all once above", "=KPI_SHARE(B59,J60:K62,B62,B63)",
                 MONEY)
    _header_row(ws, 60, ["From", "Rate"], first_col=10)
    for r, (start, rate) in enumerate(((0, 0.03), (1_000_000, 0.05)), start=61):
        _put(ws, f"J{r}", start, MONEY, inp=True)
        _put(ws, f"K{r}", rate, "0.0%", inp=True)


def _card_rebuilt(ws: Worksheet) -> None:
    """Rows 66-70 and column I: the card's gate and total pay rebuilt with the functions (issue 12 §2)."""
    ws["A66"] = "The card rebuilt: gates (column I) and total pay"
    ws["A66"].font = BOLD
    _header_row(ws, 7, ["Gate"], first_col=9)  # below a KPI's gate the whole period bonus is 0, as on the card
    for i, gate in enumerate(GATES):
        _put(ws, f"I{FIRST_KPI_ROW + i}", gate, PERCENT, inp=True)
    _label_value(ws, 67, "Some KPI below its gate (column I)?", f"=KPI_GATE_FAILED({_kpis('F')},{_kpis('I')})")
    _label_value(ws, 68, "Bonus for the period with the gates, RUB",
                 f"=KPI_PERIOD_BONUS(H{LAST_KPI_ROW + 1},B50,B49,B67)", MONEY)
    _label_value(ws, 69, "Fixed salary (оклад), RUB", 80000, MONEY, inp=True)
    _label_value(ws, 70, "Total pay for the period, RUB", "=KPI_TOTAL_PAY(B69,B68)", MONEY)
    ws["B70"].font = BOLD


def _kpis(col: str) -> str:
    """The matrix rows of one column, e.g. 'F8:F11'."""
    return f"{col}{FIRST_KPI_ROW}:{col}{LAST_KPI_ROW}"


def _config(ws: Worksheet) -> None:
    """xlwings reads key/value pairs from A1 down to the first empty row; keys are case-insensitive."""
    ws["A1"] = "UDF Modules"
    ws["B1"] = UDF_MODULE
    ws["A3"] = "Notes:"
    ws["A4"] = "xlwings reads the settings from A1 down to the first empty row (key | value)."
    ws["A5"] = "UDF Modules names the Python module with the Excel functions (udfs.py, without .py)."
    ws["A6"] = "Add Interpreter_Win / PYTHONPATH rows above the empty row to override the ribbon settings."
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 12


def _label_value(ws: Worksheet, row: int, label: str, value: object, fmt: str | None = None, inp: bool = False) -> None:
    ws.cell(row, 1, label)
    _put(ws, f"B{row}", value, fmt, inp=inp)


def _put(ws: Worksheet, ref: str, value: object, fmt: str | None = None, inp: bool = False) -> None:
    cell = ws[ref]
    cell.value = value
    if fmt:
        cell.number_format = fmt
    if inp:
        cell.fill = INPUT_FILL


def _header_row(ws: Worksheet, row: int, headers: list[str], first_col: int = 1) -> None:
    for j, text in enumerate(headers):
        cell = ws.cell(row, first_col + j, text or None)
        cell.font = BOLD
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(horizontal="center", wrap_text=True)


def main(argv: list[str] | None = None) -> Path:
    """Write the demo workbook and return its path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write it (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(workbook_bytes())
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
