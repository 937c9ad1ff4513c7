"""The bad-input catalogue: malformed plans and data files, each made here and run through the CLI.

Every bad case must end with exit code 1 through the ordinary input-error path: a message naming
the file (and sheet, row, column where they exist) and a fix, no Python traceback, and nothing in
``--out``. The good cases (BOM and cp1251 CSVs, hidden rows, formulas with saved values…) must
succeed. docs/plan.md ("What xl_kpi refuses to read") has the table of how each case ends.
"""

from __future__ import annotations

import builtins
import datetime
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests import _bad_files as bf
from tests import _plan_helpers as ph
from xl_kpi import KpiError, cli
from xl_kpi.cli import app
from xl_kpi.inputs.plan import load_plan
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.readers import Limits, limits, sniff
from xl_kpi.inputs.sources import evaluate, parse
from xl_kpi.inputs.tables import Table
from xl_kpi.outputs.results_files import load_results
from xl_kpi.validate import validate

runner = CliRunner()
Inputs = tuple[Path, list[Path]]


@dataclass
class Case:
    """One catalogue entry: how to build the inputs, and how the run must end."""

    id: str
    build: Callable[[Path], Inputs]
    expect: tuple[str, ...]
    code: int = 1
    env: dict[str, str] = field(default_factory=dict)


CASES: list[Case] = []


def case(id: str, *expect: str, code: int = 1, env: dict[str, str] | None = None) -> Callable:
    def register(build: Callable[[Path], Inputs]) -> Callable[[Path], Inputs]:
        CASES.append(Case(id, build, expect, code, env or {}))
        return build
    return register


def good(tmp: Path, sheets: dict | None = None, facts: dict | None = None) -> Inputs:
    return ph.make_plan(tmp, sheets), [ph.make_facts(tmp, facts)]


def plan_with(change: Callable[[dict], None]) -> Callable[[Path], Inputs]:
    def build(tmp: Path) -> Inputs:
        sheets = ph.plan_sheets()
        change(sheets)
        return good(tmp, sheets)
    return build


def facts_csv(tmp: Path, text: str | bytes, name: str = "facts.csv") -> Inputs:
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return ph.make_plan(tmp), [path]


GOOD_FACTS = "employee_id,kpi_id,fact\r\nE1,deals,160\r\nE1,complaints,4\r\nE2,deals,130\r\nE2,complaints,8\r\n" \
             "E3,complaints,5\r\nE3,nps,35\r\n"


# ------------------------------------------------------------------------------ the whole file


@case("empty-plan", "plan.xlsx", "the file is empty")
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    plan.write_bytes(b"")
    return plan, data


@case("empty-facts-csv", "facts.csv", "the file is empty", "missing fact")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, "")


@case("csv-header-only", "facts.csv", "header but no rows", "missing fact")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, "employee_id,kpi_id,fact\r\n")


@case("plan-is-a-csv", "plan.csv", "the plan must be an Excel workbook")
def _(tmp: Path) -> Inputs:
    plan = tmp / "plan.csv"
    plan.write_text("employee_id,name\nE1,Иванов\n", encoding="utf-8")
    return plan, [ph.make_facts(tmp)]


@case("unknown-extension", "facts.json", "unknown file type .json")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, '{"E1": 160}', name="facts.json")


@case("xlsx-named-csv", "facts.csv", "Excel workbook (.xlsx), but its name ends in .csv", "rename it to .xlsx")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, bf.facts_workbook(tmp, name="real.xlsx").read_bytes())


@case("csv-named-xlsx", "facts.xlsx", "text file (CSV?)", "rename it to .csv")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, GOOD_FACTS, name="facts.xlsx")


@case("word-document-as-plan", "plan.xlsx", "Word document")
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    with zipfile.ZipFile(plan, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<document/>")
    return plan, data


@case("opendocument-data", "deals.ods", "OpenDocument", "save it as an Excel Workbook")
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    with zipfile.ZipFile(tmp / "deals.ods", "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<office:document-content/>")
    return plan, [*data, tmp / "deals.ods"]


@case("old-xls-plan", "plan.xls", "Excel 97–2003", "save it as an Excel Workbook (.xlsx)")
def _(tmp: Path) -> Inputs:
    return bf.old_xls(tmp / "plan.xls"), [ph.make_facts(tmp)]


@case("old-xls-data", "facts.xls", "Excel 97–2003")
def _(tmp: Path) -> Inputs:
    return ph.make_plan(tmp), [bf.old_xls(tmp / "facts.xls")]


@case("html-saved-as-xls", "deals.xls", "web page (HTML)", "export the data as CSV")
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    (tmp / "deals.xls").write_text("<html><body><table><tr><td>deal</td></tr></table></body></html>")
    return plan, [*data, tmp / "deals.xls"]


@case("pdf-as-data", "facts.pdf", "unknown file type .pdf")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", name="facts.pdf")


@case("pdf-named-csv", "facts.csv", "PDF document")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")


@case("binary-junk-csv", "facts.csv", "binary file")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, bytes(range(256)) * 4)


@case("password-protected-plan", "plan.xlsx", "protected with a password", "Encrypt with Password")
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    return bf.encrypt(plan, tmp / "plan.xlsx"), data


@case("password-protected-facts", "facts.xlsx", "protected with a password")
def _(tmp: Path) -> Inputs:
    return ph.make_plan(tmp), [bf.encrypt(bf.facts_workbook(tmp, name="open.xlsx"), tmp / "facts.xlsx")]


@case("truncated-plan", "plan.xlsx", "not a complete zip archive", "download or save it again")
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    return bf.truncate(plan), data


@case("corrupted-zip-part", "facts.xlsx", "damaged")
def _(tmp: Path) -> Inputs:
    facts = bf.facts_workbook(tmp)
    return ph.make_plan(tmp), [bf.corrupt_part(facts, bf.sheet_member(facts, "Facts"))]


@case("zip-bomb", "facts.xlsx", "a zip bomb?")
def _(tmp: Path) -> Inputs:
    return ph.make_plan(tmp), [bf.zip_bomb(bf.facts_workbook(tmp), "Facts")]


@case("billion-laughs-in-sheet", "plan.xlsx", "XML bomb")
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    return bf.billion_laughs_in_sheet(plan, "Employees", "B2"), data


@case("billion-laughs-in-shared-strings", "facts.xlsx", "sharedStrings.xml", "XML bomb")
def _(tmp: Path) -> Inputs:
    return ph.make_plan(tmp), [bf.billion_laughs_in_shared_strings(bf.facts_workbook(tmp), "Facts", "B2")]


@case("shared-strings-claim-4e9", "facts.xlsx", "claims 4 000 000 000 strings")
def _(tmp: Path) -> Inputs:
    return ph.make_plan(tmp), [bf.shared_strings_claiming(bf.facts_workbook(tmp), 4_000_000_000)]


@case("value-at-XFD1048576", "facts.xlsx", "sheet Facts", "XFD1048576", "delete XFD1048576")
def _(tmp: Path) -> Inputs:
    facts = bf.add_row_xml(bf.facts_workbook(tmp), "Facts",
                           '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>')
    return ph.make_plan(tmp), [facts]


@case("stray-value-in-row-1048576", "plan.xlsx", "sheet Employees", "delete A1048576")
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    return bf.add_row_xml(plan, "Employees", '<row r="1048576"><c r="A1048576"><v>1</v></c></row>'), data


@case("huge-dimension-claim-only", code=0)
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    bf.patch_sheet(plan, "Employees", lambda x: x.replace(b'<dimension ref="A1:H4" />',
                                                          b'<dimension ref="A1:XFD1048576"/>'))
    assert b"XFD1048576" in zipfile.ZipFile(plan).read(bf.sheet_member(plan, "Employees"))
    return plan, data


@case("plan-of-100-MB", "plan.xlsx", "100.0 MB", "50.0 MB", "XL_KPI_MAX_PLAN_MB")
def _(tmp: Path) -> Inputs:
    return bf.sparse(tmp / "plan.xlsx", 100 * 1024 * 1024), [ph.make_facts(tmp)]


@case("data-file-over-the-limit", "facts.csv", "XL_KPI_MAX_DATA_MB", env={"XL_KPI_MAX_DATA_MB": "1"})
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, GOOD_FACTS + "\r\n" * 800_000)


@case("too-many-rows", "facts.csv", "more than the 5 rows", env={"XL_KPI_MAX_ROWS": "5"})
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, GOOD_FACTS)


@case("too-many-source-cells", "facts.csv", "more than the 10 one data file may have", "XL_KPI_MAX_SOURCE_CELLS",
      env={"XL_KPI_MAX_SOURCE_CELLS": "10"})
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, GOOD_FACTS)


@case("row-after-multiline-value-and-blank-line", "facts.csv", "row 5, column C (fact)", "ambiguous")
def _(tmp: Path) -> Inputs:
    text = ('"employee_id";"kpi_id";"fact";"note"\r\n"E1";"deals";"160";"две\r\nстроки"\r\n\r\n'
            '"E1";"complaints";"4";""\r\n"E2";"deals";"1,234";""\r\n"E2";"complaints";"8";""\r\n'
            '"E3";"complaints";"5";""\r\n"E3";"nps";"35";""\r\n')
    return facts_csv(tmp, text.encode("cp1251"))


@case("too-many-columns", "facts.csv", "the header line has 12 columns, more than the 11",
      env={"XL_KPI_MAX_COLUMNS": "11"})
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, GOOD_FACTS.replace("fact\r\n", "fact,a,b,c,d,e,f,g,h,i\r\n", 1))


@case("cell-of-40000-characters", "facts.csv", "row 3, column C", "40 000 characters")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, GOOD_FACTS.replace("E1,complaints,4", "E1,complaints," + "4" * 40_000))


@case("unclosed-quote", "facts.csv", "never closed")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, GOOD_FACTS.replace("E2,deals,130", 'E2,deals,"130'))


@case("ragged-csv-row", "facts.csv", "row 3", "line 3 has 4 values but the first line has 3")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, GOOD_FACTS.replace("E1,complaints,4", "E1,complaints,4,5"))


# --------------------------------------------------------------------------------- the sheets


@case("missing-sheet", "plan.xlsx", "missing sheet Employees", "add a sheet named Employees")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    del sheets["Employees"]
    return good(tmp, sheets)


@case("no-header-row", "plan.xlsx", "missing column", "sheet Employees")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    sheets["Employees"] = sheets["Employees"][1:]
    return good(tmp, sheets)


@case("header-below-the-searched-rows", "plan.xlsx", "sheet Employees, row 12", "the header row is row 12",
      "delete the rows above the header")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    sheets["Employees"] = [[f"note {i}"] for i in range(11)] + sheets["Employees"]
    return good(tmp, sheets)


def _merge(sheet: str, cells: str) -> Callable[[Path], Inputs]:
    def build(tmp: Path) -> Inputs:
        plan, data = good(tmp)
        return bf.edit_workbook(plan, lambda wb: wb[sheet].merge_cells(cells)), data
    return build


case("merged-header-cells", "plan.xlsx", "sheet Plan, row 1, column D (weight)", "D1:E1 are merged across the header",
     "unmerge")(_merge("Plan", "D1:E1"))
case("merged-data-cells", "plan.xlsx", "sheet Plan, row 2, column A (position)", "A2:A3 are merged",
     "type the value in every row")(_merge("Plan", "A2:A3"))


@case("duplicate-columns", "plan.xlsx", 'the header "weight" appears 2 times (columns D, K)')
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    for i, r in enumerate(sheets["Plan"]):
        r.append("weight" if i == 0 else 0.5)
    return good(tmp, sheets)


@case("two-headers-for-one-column", "plan.xlsx", "could be weight", "D (weight), K (Вес, %)")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    for i, r in enumerate(sheets["Plan"]):
        r.append("Вес, %" if i == 0 else 0.5)
    return good(tmp, sheets)


def _hide(filtered: bool) -> Callable[[Path], Inputs]:
    def build(tmp: Path) -> Inputs:
        plan, data = good(tmp)

        def change(wb):
            ws = wb["Employees"]
            ws.row_dimensions[3].hidden = True
            if filtered:
                ws.auto_filter.ref = "A1:H4"
        return bf.edit_workbook(plan, change), data
    return build


case("hidden-rows", "plan.xlsx", "1 row is hidden (row 3)", "read as data", code=0)(_hide(False))
case("filtered-rows", "plan.xlsx", "hidden by a filter", code=0)(_hide(True))


@case("formula-without-saved-value-in-facts", "facts.xlsx", "sheet Facts, row 2, column C (fact)",
      "formula with no saved value (=B7*2)", "open and save the file in Excel")
def _(tmp: Path) -> Inputs:
    facts = bf.facts_workbook(tmp)
    return ph.make_plan(tmp), [bf.edit_workbook(facts, lambda wb: wb["Facts"].__setitem__("C2", "=B7*2"))]


@case("formula-without-saved-value-in-plan", "plan.xlsx", "sheet Plan, row 3, column D (weight)",
      "formula with no saved value (=1-D2)")
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    return bf.edit_workbook(plan, lambda wb: wb["Plan"].__setitem__("D3", "=1-D2")), data


@case("formula-with-saved-value", "the saved results of its 1 formulas may be out of date", code=0)
def _(tmp: Path) -> Inputs:
    facts = bf.facts_workbook(tmp)
    return ph.make_plan(tmp), [bf.set_cell_xml(facts, "Facts", "C2", '<c r="C2"><f>80*2</f><v>160</v></c>')]


@case("excel-error-value", "facts.xlsx", "sheet Facts, row 2, column C (fact)", "the Excel error #DIV/0!")
def _(tmp: Path) -> Inputs:
    facts = bf.facts_workbook(tmp)
    return ph.make_plan(tmp), [bf.set_cell_xml(facts, "Facts", "C2", '<c r="C2" t="e"><f>1/0</f><v>#DIV/0!</v></c>')]


@case("infinite-number-in-xlsx", "facts.xlsx", "sheet Facts, row 2, column C (fact)", "the cell holds inf")
def _(tmp: Path) -> Inputs:
    facts = bf.facts_workbook(tmp)
    return ph.make_plan(tmp), [bf.set_cell_xml(facts, "Facts", "C2", '<c r="C2"><v>inf</v></c>')]


@case("weight-is-infinity-in-xlsx", "plan.xlsx", "sheet Plan, row 2, column D (weight)", "the cell holds INF")
def _(tmp: Path) -> Inputs:
    plan, data = good(tmp)
    return bf.set_cell_xml(plan, "Plan", "D2", '<c r="D2" t="n"><v>INF</v></c>'), data


# ------------------------------------------------------------------------------------- values


def _hired(text: str) -> Callable[[Path], Inputs]:
    def change(sheets: dict) -> None:
        sheets["Employees"][0].append("hired")
        for r in sheets["Employees"][1:]:
            r.append(text)
    return plan_with(change)


case("date-as-text-dd.mm.yyyy", code=0)(_hired("01.10.2026"))
case("date-as-text-iso", code=0)(_hired("2026-10-01"))
case("date-slashed-ambiguous", "sheet Employees, row 2, column I (hired)", "ambiguous: 10 January or 1 October")(
    _hired("10/01/2026"))


def _fact(value: str) -> Callable[[Path], Inputs]:
    return lambda tmp: good(tmp, facts={("E1", "deals"): value})


for _label, _value in (("NaN", "NaN"), ("inf", "inf"), ("n-a", "n/a"), ("em-dash", "—"), ("formula-text", "=1+1")):
    case(f"fact-{_label}", "facts.csv", "row 2, column C (fact)", f'the fact is not a number: "{_value}"',
         "type the fact as a number")(_fact(_value))


@case("negative-weight", "plan.xlsx", "sheet Plan, row 2, column D (weight)", "weight -0.4 is below 0")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 2, "weight", -0.4)
    return good(tmp, sheets)


@case("negative-bonus-pool", "plan.xlsx", "sheet Employees, row 2, column H (bonus_pool)", "below 0")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Employees", 2, "bonus_pool", -20_000)
    return good(tmp, sheets)


@case("absurd-bonus-pool", "plan.xlsx", "sheet Employees, row 2, column H (bonus_pool)", "too large to be paid")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Employees", 2, "bonus_pool", 1e308)
    return good(tmp, sheets)


@case("weights-percent-and-fraction-mixed", "plan.xlsx", "mix whole percentages (40", "fractions (0.6)",
      "write every weight the same way")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 2, "weight", 40)
    return good(tmp, sheets)


@case("weights-percent-without-sign", "plan.xlsx", "they add up to 100")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 2, "weight", 40)
    ph.set_cell(sheets, "Plan", 3, "weight", 60)
    return good(tmp, sheets)


@case("score-overflow", "facts.csv", "row 2, column C (fact)", "KPI deals is infinite", "check the fact, the base")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 2, "base", 0)
    ph.set_cell(sheets, "Plan", 2, "norm", 1e-300)
    return good(tmp, sheets, facts={("E1", "deals"): "1e308"})


@case("same-employee-twice-in-plan", "plan.xlsx", "sheet Employees, row 4", 'duplicate employee_id "E1"')
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    sheets["Employees"][3][0] = "E1"  # Сидорова Анна becomes a second E1, with other pay
    return good(tmp, sheets)


@case("same-fact-twice-with-different-values", "facts.csv", "row 8", "a second fact for employee E1, KPI deals")
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, GOOD_FACTS + "E1,deals,999\r\n")


@case("facts-for-another-period", "facts.csv", "another period than 2026-10", "missing fact")
def _(tmp: Path) -> Inputs:
    rows = ph.facts_rows()
    rows[0].append("period")
    for r in rows[1:]:
        r.append("2026-09")
    return ph.make_plan(tmp), [ph.write_csv(tmp / "facts.csv", rows)]


@case("csv-utf8-bom", code=0)
def _(tmp: Path) -> Inputs:
    return ph.make_plan(tmp), [ph.make_facts(tmp, bom=True)]


@case("csv-cp1251-semicolons", code=0)
def _(tmp: Path) -> Inputs:
    rows = [["Табельный номер", "Показатель", "Факт"]] + [[e, k, str(v).replace(".", ",")]
                                                         for e, k, v in ph.facts_rows()[1:]]
    return ph.make_plan(tmp), [ph.write_csv(tmp / "факты.csv", rows, sep=";", encoding="cp1251")]


@case("csv-utf16", code=0)
def _(tmp: Path) -> Inputs:
    return ph.make_plan(tmp), [ph.write_csv(tmp / "facts.csv", ph.facts_rows(), sep="\t", encoding="utf-16")]


def hostile_name_plan(tmp: Path) -> Inputs:
    """Employee E1 is called =HYPERLINK(…), typed as text (as after a leading apostrophe)."""
    plan, data = good(tmp)

    def change(wb):
        cell = wb["Employees"]["B2"]
        cell.value = HOSTILE_NAME
        cell.data_type = "s"
    return bf.edit_workbook(plan, change), data


HOSTILE_NAME = '=HYPERLINK("http://x","click")'
case("formula-text-as-a-name", code=0)(hostile_name_plan)


# ---------------------------------------------------------------- second wave: identity
# Identity: never one of two candidates (issue 9). Cases of this family go below this line.


def _rename_employee(old: str, new: str) -> Callable[[Path], Inputs]:
    """Employee ``old`` gets the id ``new`` in the plan and in the facts."""
    def build(tmp: Path) -> Inputs:
        sheets = ph.plan_sheets()
        next(r for r in sheets["Employees"][1:] if r[0] == old)[0] = new
        rows = [[new if r[0] == old else r[0], *r[1:]] for r in ph.facts_rows()]
        return ph.make_plan(tmp, sheets), [ph.write_csv(tmp / "facts.csv", rows)]
    return build


case("ids-differ-only-by-case", "plan.xlsx", "sheet Employees, row 3, column A (employee_id)",
     'employee_id "e1" (row 3) and "E1" (row 2) differ only in upper/lower case or spacing')(
    _rename_employee("E2", "e1"))


@case("ids-differ-only-by-unicode-form", "plan.xlsx", "sheet Employees, row 3, column A (employee_id)",
      'employee_id "Е\u03081" (row 3) and "Ё1" (row 2) look the same but are typed with different Unicode')
def _(tmp: Path) -> Inputs:
    """E1 is "Ё1" typed as one letter (NFC), E2 "Ё1" typed as Е + combining diaeresis (NFD): they look the same."""
    sheets = ph.plan_sheets()
    sheets["Employees"][1][0], sheets["Employees"][2][0] = "Ё1", "Е\u03081"
    ids = {"E1": "Ё1", "E2": "Е\u03081"}
    rows = [[ids.get(r[0], r[0]), *r[1:]] for r in ph.facts_rows()]
    return ph.make_plan(tmp, sheets), [ph.write_csv(tmp / "facts.csv", rows)]


@case("kpi-ids-differ-only-by-case", "plan.xlsx", "sheet KPIs, row 5, column A (kpi_id)",
      'kpi_id "Deals" (row 5) and "deals" (row 2) differ only in upper/lower case')
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    sheets["KPIs"].append(["Deals", "Deals again", "pcs", None])
    return good(tmp, sheets)


@case("facts-id-differs-only-by-case", "facts.csv", "row 2, column A (employee_id)",
      'unknown employee "e1": not in the Employees sheet (the Employees sheet has "E1": ids are compared exactly')
def _(tmp: Path) -> Inputs:
    return facts_csv(tmp, GOOD_FACTS.replace("E1,deals", "e1,deals"))


@case("personal-plan-id-differs-only-by-case", "plan.xlsx", "sheet Plan, row 6, column B (employee_id)",
      'unknown employee "e3": not in the Employees sheet (the Employees sheet has "E3"')
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    sheets["Plan"].append([None, "e3", "nps", 0.5, 30, 60, None, None, None, None])
    return good(tmp, sheets)


@case("raw-data-id-differs-only-by-case", "deals.csv, column employee_id", "people who are not in Employees",
      '"e1" (1 row) (the Employees sheet has "E1": ids are compared exactly', code=0)
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals where status = won")
    ph.write_csv(tmp / "deals.csv", [["employee_id", "status"], ["e1", "won"], ["E2", "won"], ["E2", "lost"]])
    facts = ph.facts_rows({("E1", "deals"): ..., ("E2", "deals"): ...})
    return ph.make_plan(tmp, sheets), [ph.write_csv(tmp / "facts.csv", facts), tmp / "deals.csv"]


def _crm_plan(tmp: Path, source: str, aliases: dict[str, str] | None = None, **extra: list) -> Path:
    """The small plan with an aliases column and ``source`` for the deals KPI (E1 and E2 have it)."""
    sheets = ph.plan_sheets()
    sheets["Employees"][0].append("Псевдонимы")
    for row in sheets["Employees"][1:]:
        row.append((aliases or {}).get(row[0]))
    ph.set_cell(sheets, "KPIs", 2, "source", source)
    sheets.update(extra)
    return ph.make_plan(tmp, sheets)


def _crm_data(tmp: Path, rows: list[list[str]], name: str = "deals.csv") -> list[Path]:
    facts = ph.facts_rows({("E1", "deals"): ..., ("E2", "deals"): ...})
    return [ph.write_csv(tmp / "facts.csv", facts), ph.write_csv(tmp / name, rows, sep=";")]


@case("alias-of-two-employees", "sheet Employees, row 3", 'the alias "анна" of employee E2 (row 3) is also an alias '
      "of employee E1 (row 2)")
def _(tmp: Path) -> Inputs:
    return (_crm_plan(tmp, "count deals by who", {"E1": "Анна", "E2": "анна"}),
            _crm_data(tmp, [["who"], ["Анна"]]))


@case("alias-is-another-employees-id", "sheet Employees, row 2", 'the alias "E2" of employee E1 (row 2) is the '
      "employee_id of employee E2 (row 3)")
def _(tmp: Path) -> Inputs:
    return _crm_plan(tmp, "count deals by who", {"E1": "E2"}), _crm_data(tmp, [["who"], ["E2"]])


@case("crm-names-without-aliases", "deals.csv, column Ответственный: 3 rows name people who are not in Employees",
      '"Иванов Иван" is the name of E1', "to the Employees column aliases (Псевдонимы)", code=0)
def _(tmp: Path) -> Inputs:
    return (_crm_plan(tmp, "count deals by Ответственный"),
            _crm_data(tmp, [["Ответственный"], ["Иванов Иван"], ["Иванов Иван"], ["Петров Пётр"]]))


@case("sources-glob-matches-several", "sheet Sources, row 2", '2 files match the path "DEAL_*.csv" of table bitrix: '
      "DEAL_1.csv, DEAL_2.csv")
def _(tmp: Path) -> Inputs:
    ph.write_csv(tmp / "DEAL_1.csv", [["employee_id"], ["E1"]])
    plan = _crm_plan(tmp, "count bitrix", Sources=[["table", "path"], ["bitrix", "DEAL_*.csv"]])
    return plan, _crm_data(tmp, [["employee_id"], ["E1"]], "DEAL_2.csv")[:1]


@case("sources-path-matches-nothing", "sheet Sources, row 2", 'no file matches the path "exports/*.csv" of table '
      "bitrix")
def _(tmp: Path) -> Inputs:
    return _crm_plan(tmp, "count bitrix", Sources=[["table", "path"], ["bitrix", "exports/*.csv"]]), _crm_data(
        tmp, [["employee_id"], ["E1"]])[:1]


@case("sources-unknown-encoding", "sheet Sources, row 2", 'unknown encoding "win-1251"')
def _(tmp: Path) -> Inputs:
    return _crm_plan(tmp, "count bitrix", Sources=[["table", "path", "encoding"], ["bitrix", "deals.csv",
                                                                                   "win-1251"]]), _crm_data(
        tmp, [["employee_id"], ["E1"]])


@case("data-binding-to-a-missing-file", "--data", 'table bitrix: the file "missing.csv" does not exist')
def _(tmp: Path) -> Inputs:
    return _crm_plan(tmp, "count bitrix"), [*_crm_data(tmp, [["employee_id"], ["E1"]])[:1], "bitrix=missing.csv"]


@case("currency-without-a-rate", "row 3, column C (Валюта)", "1 row of deals.csv is in USD (column "
      "Валюта), but the plan's Rates sheet has no rate from USD to RUB")
def _(tmp: Path) -> Inputs:
    return _crm_plan(tmp, "sum deals.amount"), _crm_data(
        tmp, [["employee_id", "amount", "Валюта"], ["E1", "150 000,00", "руб."], ["E1", "100", "USD"]])


@case("row-dated-before-the-first-rate", "row 2, column D (day)", "1 row of deals.csv in USD is dated "
      "before the first USD rate of the Rates sheet (valid from 01.10.2026)")
def _(tmp: Path) -> Inputs:
    plan = _crm_plan(tmp, "sum deals.amount dated day", Rates=[["currency", "rate", "date"], ["USD", "92,5",
                                                                                              "01.10.2026"]])
    return plan, _crm_data(tmp, [["employee_id", "amount", "Валюта", "day"], ["E1", "100", "$", "30.09.2026"],
                                 ["E1", "100", "$", "01.10.2026"]])


@case("rate-not-above-zero", "sheet Rates, row 2, column B (rate)", "a rate must be above 0")
def _(tmp: Path) -> Inputs:
    return _crm_plan(tmp, "count deals", Rates=[["currency", "rate"], ["USD", "0"]]), _crm_data(
        tmp, [["employee_id"], ["E1"]])


@case("manager-cycle-for-team", "sheet Employees, row 2, column E (manager)", "the manager chain goes round in a "
      "circle (E1 → E2 → E1)")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals for team")
    ph.set_cell(sheets, "Employees", 2, "manager", "E2")
    ph.set_cell(sheets, "Employees", 3, "manager", "E1")
    plan = ph.make_plan(tmp, sheets)
    return plan, _crm_data(tmp, [["employee_id"], ["E1"]])


@case("manager-id-differs-only-by-case", "sheet Employees, row 3, column E (manager)",
      "manager 'e1' is not an employee in the plan (the employee_id \"E1\" differs only in case",
      "team bundle of Employees rows 3–4 will not be mailed", code=0)
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Employees", 3, "manager", "e1")
    ph.set_cell(sheets, "Employees", 4, "manager", "e1")
    return good(tmp, sheets)


@case("manager-name-of-a-namesake-not-employee", "sheet Employees, row 2, column E (manager)",
      "manager 'Петрова' is the name of employee E3, who is in that very team (a namesake of the real manager",
      code=0)
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Employees", 4, "name", "Петрова")  # E3 is a namesake of the manager, who is not in the plan
    return good(tmp, sheets)


@case("manager-name-of-two-employees", "sheet Employees, row 4, column E (manager)",
      "manager 'Иванов Иван' matches several employees (E1, E2)", code=0)
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Employees", 3, "name", "Иванов Иван")
    ph.set_cell(sheets, "Employees", 4, "manager", "Иванов Иван")
    return good(tmp, sheets)



@pytest.mark.parametrize("other", ["e1", "E1"], ids=["look-alike", "duplicate"])
def test_skip_invalid_cards_neither_of_two_alike_ids(tmp_path, other):
    """With --skip-invalid the run goes on, but neither E1 nor its look-alike (or duplicate) row is carded."""
    plan, data = _rename_employee("E2", other)(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, [*_args("generate", plan, data, out), "--skip-invalid"])
    assert result.exit_code == 0, result.output
    carded = set(load_results(out).employees.query("status == 'ok'")["employee_id"])
    assert carded == {"E3"}, carded
    errors = (out / "errors.csv").read_text(encoding="utf-8-sig")
    assert "E1" in errors and ("looks like" in errors or "more than once" in errors), errors


# ---------------------------------------------------------------- second wave: sheets
# Which sheet holds the pay (issue 9). Cases of this family go below this line.


def _with_sheets(names: dict[str, str | None], states: dict[str, str] | None = None,
                 first: dict[str, list] | None = None) -> Callable[[Path], Inputs]:
    """The good plan with sheets renamed (``names``: old → new, None deletes), extra sheets put first
    (``first``: title → rows) and sheet states set (``states``: title → hidden/veryHidden)."""
    def build(tmp: Path) -> Inputs:
        sheets = {**(first or {})}
        for title, rows in ph.plan_sheets().items():
            new = names.get(title, title)
            if new is not None:
                sheets[new] = rows
        plan, data = good(tmp, sheets)

        def change(wb):
            for title, state in (states or {}).items():
                wb[title].sheet_state = state
        return bf.edit_workbook(plan, change), data
    return build


def staff_999999() -> list:
    rows = ph.plan_sheets()["Employees"]
    for r in rows[1:]:
        r[7] = 999_999
    return rows


case("hidden-staff-sheet-before-employees", "sheet Staff", "«Staff» (hidden) could also be the Employees sheet",
     "«Staff» (hidden) is not read", code=0)(
    _with_sheets({}, {"Staff": "hidden"}, first={"Staff": staff_999999()}))
case("two-candidate-employees-sheets", "plan.xlsx", "2 sheets could be the Employees sheet: «Staff», «Сотрудники»",
     "rename or delete the ones that are not the Employees sheet")(
    _with_sheets({"Employees": "Сотрудники"}, first={"Staff": staff_999999()}))
case("hidden-exact-sheet-next-to-an-alias", "2 sheets could be the Employees sheet: «Employees» (hidden), «Staff»")(
    _with_sheets({}, {"Employees": "hidden"}, first={"Staff": staff_999999()}))
case("only-candidate-is-hidden", "sheet Staff", "the sheet is hidden; it is read like every visible sheet", code=0)(
    _with_sheets({"Employees": "Staff"}, {"Staff": "hidden"}))
case("very-hidden-employees-sheet", "sheet Employees", "the sheet is very hidden", code=0)(
    _with_sheets({}, {"Employees": "veryHidden"}))
case("cyrillic-lookalike-sheet-name", "plan.xlsx", "missing sheet Employees",
     "sheet «\u0415mployees» looks like Employees but has a Cyrillic «\u0415» at position 1",
     "retype the name of sheet «\u0415mployees» in Latin letters")(_with_sheets({"Employees": "\u0415mployees"}))
case("latin-letter-in-russian-sheet-name", "missing sheet KPIs",
     "sheet «Пoказатели» looks like Показатели but has a Latin «o» at position 2")(
    _with_sheets({"KPIs": "Пoказатели"}))
case("greek-lookalike-settings-sheet-beside-the-real-one", "sheet «S\u03b5ttings» looks like Settings",
     "it is not read (sheet «Settings» is)", code=0)(
    _with_sheets({}, first={"S\u03b5ttings": [["setting", "value"], ["period", "2026-09"]]}))


@case("cyrillic-lookalike-column-header", "sheet Employees, row 1, column H (bоnus_pool)",
      "the header «bоnus_pool» looks like bonus_pool but has a Cyrillic «о» at position 2", "retype the header")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    sheets["Employees"][0][7] = "b\u043enus_pool"
    return good(tmp, sheets)


@case("hidden-facts-sheet-in-a-data-workbook", "facts.xlsx", "sheet Facts", "the sheet is hidden", code=0)
def _(tmp: Path) -> Inputs:
    facts = ph.write_workbook(tmp / "facts.xlsx", {"Notes": [["read me"]], "Facts": ph.facts_rows()})
    return ph.make_plan(tmp), [bf.edit_workbook(facts, lambda wb: setattr(wb["Facts"], "sheet_state", "hidden"))]



# ---------------------------------------------------------------- second wave: output
# The output folder belongs to the user (issue 9). Cases of this family go below this line.



# ---------------------------------------------------------------- second wave: money
# Plausible money (issue 9). Cases of this family go below this line.


def _employees_with(column: str, values: dict[str, object]) -> Callable[[Path], Inputs]:
    """The good plan with ``values`` (employee_id → value) in an Employees column (added if missing)."""
    def change(sheets: dict) -> None:
        rows = sheets["Employees"]
        if column not in rows[0]:
            rows[0].append(column)
            for r in rows[1:]:
                r.append(None)
        j = rows[0].index(column)
        for r in rows[1:]:
            if r[0] in values:
                r[j] = values[r[0]]
    return plan_with(change)


case("multiplier-100", "plan.xlsx", "sheet Employees, row 2, column I (multiplier)",
     "multiplier 100 is above 10: it would pay 100 times the bonus", "100 means 100%? write 1 or 100%")(
    _employees_with("multiplier", {"E1": 100}))
case("multiplier-1e6-with-pool-9.99e12", "sheet Employees, row 2, column I (multiplier)",
     "multiplier 1000000 is above 10")(
    lambda tmp: _pool_and_multiplier(tmp, 9.99e12, 1e6))
case("multiplier-5-is-a-warning", "sheet Employees, row 2, column I (multiplier)",
     "multiplier 5 pays 5 times the bonus; more than 3 times is unusual", code=0)(
    _employees_with("multiplier", {"E1": 5}))
case("multiplier-0-is-a-warning", "sheet Employees, row 3, column I (multiplier)", "multiplier 0: no bonus is paid",
     code=0)(_employees_with("multiplier", {"E2": 0}))


def _pool_and_multiplier(tmp: Path, pool: float, multiplier: float) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Employees", 2, "bonus_pool", pool)
    sheets["Employees"][0].append("multiplier")
    for r in sheets["Employees"][1:]:
        r.append(multiplier if r[0] == "E1" else None)
    return good(tmp, sheets)


@case("pool-times-multiplier-over-limit", "sheet Employees, row 2, column I (multiplier)",
      "employee E1 (Иванов Иван): the bonus 11 000 000 000 000 = KPI bonus 5 500 000 000 000 × multiplier 2 "
      "(Employees!I2) is not below 10 000 000 000 000", "check these cells for a typo")
def _(tmp: Path) -> Inputs:
    return _pool_and_multiplier(tmp, 5e12, 2)


@case("salary-plus-bonus-over-limit", "sheet Employees, row 2, column G (salary)",
      "the total pay 10 000 000 012 000 = salary 9 999 999 990 000 (Employees!G2) + bonus 22 000 is not below")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Employees", 2, "salary", 9_999_999_990_000)
    return good(tmp, sheets)


@case("line-bonus-overflows-to-infinity", "sheet Employees, row 4, column H (bonus_pool)",
      "employee E3 (Сидорова Анна): KPI nps: the bonus infinity = bonus_pool 10 000 (Employees!H4) × weight 0.5 "
      "(Plan!D5) × coefficient 1e+306 (scale lin)")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    sheets["Scales"][3][2] = 1e306  # lin: 150% → 1e306
    return good(tmp, sheets, facts={("E3", "nps"): 65})  # score 150%


@case("fact-1e308-no-raw-warnings", "facts.csv", "row 2, column C (fact)",
      "KPI deals is 2e+308%, too large to be a result")
def _(tmp: Path) -> Inputs:
    return good(tmp, facts={("E1", "deals"): "1e308"})


@pytest.mark.slow
def test_fact_1e308_and_an_overflowing_bonus_leave_nothing_raw_on_stderr(tmp_path):
    """fact-1e308-no-raw-warnings: a real ``python -m xl_kpi`` process (validate, generate, generate
    --skip-invalid) prints no NumPy RuntimeWarning on stderr and no "inf%" anywhere, in the terminal
    or in the output folder; the employee whose score or bonus cannot be computed is not carded."""
    builds = {
        "fact-1e308": lambda d: good(d, facts={("E1", "deals"): "1e308"}),
        "bonus-infinity": next(c.build for c in CASES if c.id == "line-bonus-overflows-to-infinity"),
    }
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONWARNINGS": "default"}
    for label, build in builds.items():
        folder = tmp_path / label
        folder.mkdir()
        plan, data = build(folder)
        out = tmp_path / f"out-{label}"
        for args, code in ((_args("validate", plan, data), 1), (_args("generate", plan, data, out), 1),
                           ([*_args("generate", plan, data, out), "--skip-invalid"], 0)):
            p = subprocess.run([sys.executable, "-m", "xl_kpi", *args], capture_output=True, text=True, timeout=120,
                               env=env)
            assert p.returncode == code, (label, args, p.stdout + p.stderr)
            assert p.stderr == "", (label, args, p.stderr)
            assert "inf%" not in p.stdout and "Traceback" not in p.stdout, (label, p.stdout)
        written = [f for f in out.rglob("*") if f.is_file()]
        assert len(list((out / "cards").rglob("*.xlsx"))) == 2, written
        for f in written:
            if f.suffix == ".xlsx":
                with zipfile.ZipFile(f) as z:
                    text = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
            else:
                text = f.read_bytes().decode("utf-8", "replace")
            assert "inf%" not in text and ",inf" not in text and ">inf<" not in text, (label, f)


@case("zero-employees", "plan.xlsx", "sheet Employees, row 2", "sheet Employees lists no employees",
      "add one row per employee below the header")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    sheets["Employees"] = sheets["Employees"][:1]
    return good(tmp, sheets)


@case("zero-employees-all-rows-blank", "sheet Employees lists no employees")
def _(tmp: Path) -> Inputs:
    sheets = ph.plan_sheets()
    sheets["Employees"] = sheets["Employees"][:1] + [[None, " ", "", None, None, None, None, None]] * 3
    return good(tmp, sheets)



# ---------------------------------------------------------------- second wave: audit
# An audit that cannot be fooled (issue 9). Cases of this family go below this line.



# ---------------------------------------------------------------- second wave: isolation
# The isolation proof sees everything (issue 9). Cases of this family go below this line.



# ---------------------------------------------------------------- second wave: mail
# Mail (issue 9). Cases of this family go below this line.



# ---------------------------------------------------------------- second wave: numbers
# Numbers and dates (issue 9). Cases of this family go below this line.


def _fact_typed(value: str) -> Callable[[Path], Inputs]:
    """The good facts CSV with E1's deals fact typed as ``value`` (other cells stay plain numbers)."""
    return lambda tmp: facts_csv(tmp, GOOD_FACTS.replace("E1,deals,160", f"E1,deals,{value}"))


case("number-1e9999999-percent", "facts.csv", "row 2", '"1e9999999%" is too large or too small to be a number')(
    _fact_typed("1e9999999%"))
case("number-only-a-percent-sign", "facts.csv", "row 2", '"%" holds no digits')(_fact_typed("%"))
case("number-only-rub", "facts.csv", "row 2", '"руб." holds no digits')(_fact_typed("руб."))
case("number-only-parentheses", "facts.csv", "row 2", '"()" holds no digits')(_fact_typed("()"))
case("number-negative-in-parentheses", "facts.csv", "row 2", '"(-5)" is contradictory', "write (5) or -5")(
    _fact_typed("(-5)"))
case("number-1e-400-underflows", "facts.csv", "row 2", '"1e-400" is too small to be a number')(_fact_typed("1e-400"))
case("number-309-digit-integer", "facts.csv", "row 2", "is too large to be a number")(_fact_typed("9" * 309))
case("number-arabic-digits-among-plain", code=0)(_fact_typed("١٦٠"))
case("number-full-width-digits-among-plain", code=0)(_fact_typed("１６０"))


def _employees_date(column: str, value: object) -> Callable[[Path], Inputs]:
    return _employees_with(column, {"E1": value})


case("left-31.12.9999-is-no-end-date", code=0)(_employees_date("left", "31.12.9999"))
case("left-9999-12-31-date-cell-is-no-end-date", code=0)(
    _employees_date("left", datetime.datetime(9999, 12, 31)))
case("hired-31.12.9999", "plan.xlsx", "sheet Employees, row 2", "hired", "(31.12.9999?) is not a hire date",
     "leave the cell empty or type the first working day")(_employees_date("hired", "31.12.9999"))
case("hired-01.01.0001", "plan.xlsx", "sheet Employees, row 2", "hired", '"01.01.0001" is before 22.09.1677',
     "leave the cell empty")(_employees_date("hired", "01.01.0001"))
case("left-N/A-text-in-xlsx", "sheet Employees, row 2",
     '"N/A" is not a date; leave the cell empty if there is none')(_employees_date("left", "N/A"))
case("multiplier-N/A-text-in-xlsx", "sheet Employees, row 2", "multiplier",
     '"N/A" is not a number; leave the cell empty if there is no value')(
    _employees_date("multiplier", "N/A"))
case("multiplier-NULL-text-in-xlsx", "sheet Employees, row 2", "multiplier", '"NULL" is not a number')(
    _employees_date("multiplier", "NULL"))


def _period_setting(value: object) -> Callable[[Path], Inputs]:
    def change(sheets: dict) -> None:
        sheets["Settings"][1][1] = value
    return plan_with(change)


case("settings-period-9999-12", "plan.xlsx", "period", '"9999-12" is not a plausible period',
     "between 1900 and 2200")(_period_setting("9999-12"))
case("settings-period-date-31.12.9999", "plan.xlsx", "period", "is not a plausible period")(
    _period_setting(datetime.datetime(9999, 12, 31)))
case("csv-line-one-value-short", "facts.csv", "line 3 has 2 values but the first line has 3",
     "add the missing values")(
    lambda tmp: facts_csv(tmp, GOOD_FACTS.replace("E1,complaints,4", "E1,complaints")))


@pytest.mark.parametrize("period", ["9999-12", "0001-01", "31.12.9999"])
def test_period_option_out_of_range_is_a_usage_error(tmp_path, period):
    plan, data = good(tmp_path)
    result = runner.invoke(app, [*_args("validate", plan, data), "--period", period])
    assert result.exit_code == 2, result.output
    assert "not a plausible period" in result.output and "Traceback" not in result.output



# -------------------------------------------------------------------------------- the tests


def _args(command: str, plan: Path, data: list[Path], out: Path | None = None) -> list[str]:
    args = [command, "--plan", str(plan)]
    if data:
        args += ["--data", *map(str, data)]
    return args + (["--out", str(out)] if out is not None else [])


def test_the_catalogue_is_big_enough():
    bad = [c for c in CASES if c.code == 1]
    assert len(CASES) >= 115 and len(bad) >= 85 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_catalogue(tmp_path, c):
    inputs = tmp_path / "in"
    inputs.mkdir()
    plan, data = c.build(inputs)
    out = tmp_path / "out"
    for command in ("generate", "validate"):
        result = runner.invoke(app, _args(command, plan, data, out if command == "generate" else None), env=c.env)
        text = result.output
        assert result.exit_code == c.code, text
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in text
        for expected in c.expect if c.code == 1 or command == "validate" else ():  # generate only counts warnings
            assert expected in text, f"{expected!r} not in:\n{text}"
        if c.code == 1:
            assert "✗ error" in text and "fix:" in text
            if command == "generate":
                assert "Nothing was written" in text
                assert not out.exists() or not any(out.iterdir()), list(out.rglob("*"))
    if c.code == 0:
        assert (out / "summary.xlsx").is_file() and len(list((out / "cards").rglob("*.xlsx"))) == 3


@pytest.mark.slow
def test_a_real_process_prints_no_traceback(tmp_path):
    """Two bad inputs through ``python -m xl_kpi``: exit 1, the reason on the terminal, no traceback, no output."""
    folder = tmp_path / "in"
    folder.mkdir()
    plan, _ = good(folder)
    encrypted = bf.encrypt(plan, folder / "locked.xlsx")
    far = bf.add_row_xml(bf.facts_workbook(folder, name="far.xlsx"), "Facts",
                         '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>')
    for args in (_args("generate", encrypted, [folder / "facts.csv"], tmp_path / "out"),
                 _args("generate", plan, [far], tmp_path / "out")):
        p = subprocess.run([sys.executable, "-m", "xl_kpi", *args], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONIOENCODING": "utf-8"})
        assert p.returncode == 1, p.stdout + p.stderr
        assert "Traceback" not in p.stdout + p.stderr
        assert ("password" in p.stdout) or ("XFD1048576" in p.stdout)
        assert not (tmp_path / "out").exists()


MEMORY_PROBE = """
import resource, sys, time
from xl_kpi.validate import validate
start = time.perf_counter()
problems = validate(sys.argv[1], sys.argv[2:])
print(round(time.perf_counter() - start, 2), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
      len(problems.errors), [p.message[:60] for p in problems.errors][:1])
"""


@pytest.mark.slow
def test_huge_claimed_ranges_stay_in_bounded_memory_and_time(tmp_path):
    """Cells at XFD1048576 / row 1048576 and a shared-string table claiming 4e9 strings would make calamine
    allocate gigabytes (or abort the process); the pre-scan refuses them with the interpreter's peak
    memory near its resting size (measured in a fresh process)."""
    folder = tmp_path / "in"
    folder.mkdir()
    plan = ph.make_plan(folder)
    cases = {
        "corner": bf.add_row_xml(bf.facts_workbook(folder, name="a.xlsx"), "Facts",
                                 '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'),
        "row": bf.add_row_xml(bf.facts_workbook(folder, name="b.xlsx"), "Facts",
                              '<row r="1048576"><c r="A1048576"><v>1</v></c></row>'),
        "no-refs": bf.add_row_xml(bf.facts_workbook(folder, name="c.xlsx"), "Facts",
                                  '<row r="1048576"><c><v>1</v></c><c><v>2</v></c></row>'),
        "sst": bf.shared_strings_claiming(bf.facts_workbook(folder, name="d.xlsx"), 4_000_000_000),
    }

    def cap(soft: int = 3 * 1024**3) -> None:  # the child may not take more than 3 GB of address space
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (soft, soft))

    for label, path in cases.items():
        p = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(plan), str(path)], capture_output=True, text=True,
                           timeout=60, preexec_fn=cap, cwd=Path(__file__).parent.parent)
        assert p.returncode == 0, (label, p.stderr[-2000:])
        seconds, peak_mb, errors, _ = p.stdout.split(" ", 3)
        assert int(errors) >= 1, (label, p.stdout)
        assert float(seconds) < 10 and int(peak_mb) < 400, (label, p.stdout)


# --------------------------------------------------------------------------- values, precisely


def test_a_saved_formula_value_is_used(tmp_path):
    facts = bf.set_cell_xml(bf.facts_workbook(tmp_path), "Facts", "C2", '<c r="C2"><f>80*2</f><v>161</v></c>')
    out = tmp_path / "out"
    result = runner.invoke(app, _args("generate", ph.make_plan(tmp_path), [facts], out))
    assert result.exit_code == 0, result.output
    lines = load_results(out).lines.set_index(["employee_id", "kpi_id"])
    assert lines.loc[("E1", "deals"), "fact"] == 161


def test_a_formula_in_an_unused_column_or_sheet_is_not_an_error(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Employees"][0].append("notes")
    sheets["Employees"][1].append("=H2*2")
    sheets["Notes"] = [["anything"], ["=1/0"]]
    plan = ph.make_plan(tmp_path, sheets)
    problems = validate(plan, [ph.make_facts(tmp_path)])
    assert not problems.has_errors, [str(p) for p in problems]


@pytest.mark.slow
def test_hostile_text_is_data_and_reaches_the_results_unchanged(tmp_path):
    plan, data = hostile_name_plan(tmp_path)
    assert load_plan(plan).employees.set_index("employee_id").loc["E1", "name"] == HOSTILE_NAME
    facts = tmp_path / "facts2.csv"
    facts.write_text(GOOD_FACTS.replace("E2,deals,130", "E2,deals,=cmd|' /C calc'!A0"), encoding="utf-8")
    result = runner.invoke(app, _args("validate", plan, [facts]))
    assert result.exit_code == 1 and "=cmd|' /C calc'!A0" in result.output  # quoted back as text, never run
    out = tmp_path / "out"
    result = runner.invoke(app, _args("generate", plan, data, out))
    assert result.exit_code == 0, result.output
    assert load_results(out).employees.set_index("employee_id").loc["E1", "name"] == HOSTILE_NAME


def test_limits_from_the_environment(monkeypatch):
    assert limits() == Limits()
    monkeypatch.setenv("XL_KPI_MAX_PLAN_MB", "80")
    monkeypatch.setenv("XL_KPI_MAX_ZIP_RATIO", "500")
    assert (limits().plan_bytes, limits().zip_ratio) == (80 * 1024 * 1024, 500.0)
    monkeypatch.setenv("XL_KPI_MAX_CELLS", "lots")
    with pytest.raises(KpiError, match="XL_KPI_MAX_CELLS"):
        limits()


def test_sniffing():
    assert sniff(b"") == "empty" and sniff(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") == "cfb"
    assert sniff(b'<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">') == "xml"
    assert sniff("факт;1\n".encode("cp1251")) == "text"


def test_openpyxl_uses_defusedxml():
    import openpyxl

    assert openpyxl.DEFUSEDXML is True


# ------------------------------------------------------------------------------- no tracebacks


def _main(monkeypatch, capsys, argv: list[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["xl-kpi", *argv])
    with pytest.raises(SystemExit) as e:
        cli.main()
    captured = capsys.readouterr()
    return e.value.code, captured.out + captured.err


class PanicException(BaseException):
    """Like pyo3's PanicException (a Rust panic in a native library): not an Exception."""


@pytest.mark.parametrize(("raised", "code", "text"), [
    (RuntimeError("boom\nsecond line"), 3, "xl-kpi: internal error: RuntimeError: boom second line — please report "
                                            "this with the command you ran"),
    (PanicException("called `Option::unwrap()` on a `None` value"), 3, "internal error: PanicException: called"),
    (KeyboardInterrupt(), 130, "xl-kpi: interrupted"),
    (KpiError("the plan is odd"), 1, "xl-kpi: error: the plan is odd"),
])
def test_main_turns_unexpected_exceptions_into_one_line(tmp_path, monkeypatch, capsys, raised, code, text):
    def explode(*a, **k):
        raise raised

    monkeypatch.setattr("xl_kpi.validate.validate", explode)
    monkeypatch.delenv("XL_KPI_DEBUG", raising=False)
    plan, data = good(tmp_path)
    got, output = _main(monkeypatch, capsys, _args("validate", plan, data))
    assert got == code and text in output and "Traceback" not in output


def test_main_keeps_the_ordinary_exit_codes(tmp_path, monkeypatch, capsys):
    plan, data = good(tmp_path)
    assert _main(monkeypatch, capsys, _args("validate", plan, data))[0] == 0
    assert _main(monkeypatch, capsys, ["validate", "--plan", str(tmp_path / "nope.xlsx")])[0] == 2
    plan.write_bytes(b"")
    assert _main(monkeypatch, capsys, _args("validate", plan, data))[0] == 1


# ------------------------------------------------------------------------ sources never run code

HOSTILE_TABLE = {
    "deals": Table("deals", "deals.csv", pd.DataFrame(
        {"employee_id": ["E1", "E2", "=1+1"], "status": ["=cmd|' /C calc'!A0", "won", "@SUM(1)"],
         "amount": ["+1", "-2", "__import__('os')"]}, index=pd.RangeIndex(2, 5)),
        {"employee_id": "A", "status": "B", "amount": "C"}),
}
WORDS = st.sampled_from(["count", "sum", "mean", "nps", "distinct", "deals", ".", "amount", "status", "where", "=",
                         "and", "or", "not", "(", ")", "/", "by", "in", ",", "is", "empty", "*", "100", ">", "<="])
QUOTED = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"\n\r'),
                 max_size=15).map(lambda s: f'"{s}"')
CODE = st.sampled_from(["__import__('os').system('x')", "os.system", "exec('1')", "eval", "lambda: 0", "@", ";",
                        "`id`", "${x}", "{{7*7}}", "=HYPERLINK(\"x\")", "__class__", "!", "|"])


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(WORDS, QUOTED, CODE), max_size=20))
def test_sources_with_quoted_and_code_like_text_never_run_code(words):
    """Token soup with arbitrary quoted values and code-like words, evaluated over formula-like cells."""
    def forbidden(*a, **k):
        raise AssertionError("code was run")

    saved = builtins.eval, builtins.exec, pd.eval, pd.DataFrame.query, pd.DataFrame.eval, os.system
    builtins.eval = builtins.exec = pd.eval = forbidden
    pd.DataFrame.query = pd.DataFrame.eval = forbidden
    os.system = forbidden
    try:
        try:
            source = parse(" ".join(words))
        except KpiError:
            return
        evaluate(source, HOSTILE_TABLE, problems=Problems())
    finally:
        builtins.eval, builtins.exec, pd.eval, pd.DataFrame.query, pd.DataFrame.eval, os.system = saved


@pytest.mark.slow
def test_the_prescan_of_an_ordinary_sheet_is_quick():
    """The pre-scan of a large ordinary sheet takes little time (guards against slow regular expressions)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        rows = [["employee_id", "kpi_id", "fact"]] + [[f"E{i}", "deals", i] for i in range(20_000)]
        path = ph.write_workbook(Path(d) / "big.xlsx", {"Facts": rows})
        from xl_kpi.inputs.readers import scan_xlsx

        start = time.perf_counter()
        info = scan_xlsx(path)["Facts"]
        assert time.perf_counter() - start < 2
        assert (info.rows, info.columns, info.filled) == (20_001, 3, 60_003)
