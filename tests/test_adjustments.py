"""The Adjustments sheet (issue 13 §5): one-off corrections with reasons, added to the total pay.

The worked example is computed by hand in the comments; the plans are real workbooks read by ``read_plan``
(English and Russian headers) and scored by ``results.compute``. The LibreOffice recalculation of a card and the
summary with adjustments is in tests/test_adjustments_lo.py; verify's check in tests/test_batch.py-style runs here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from tests import _plan_helpers as ph
from xl_kpi.engine import formulas as fx
from xl_kpi.engine import payout
from xl_kpi.inputs.plan import read_plan
from xl_kpi.inputs.problems import Problems
from xl_kpi.results import check_amounts, compute

ADJ_HEADER = ["employee_id", "amount", "reason", "kpi_id"]


def with_adjustments(rows: list[list[Any]], header: list[str] | None = None, sheet: str = "Adjustments"
                     ) -> dict[str, Any]:
    s = ph.plan_sheets()
    s[sheet] = [header or ADJ_HEADER, *rows]
    return s


def read(tmp_path, s):
    problems = Problems()
    plan = read_plan(ph.make_plan(tmp_path, s), problems)
    return plan, problems


def facts() -> pd.DataFrame:
    rows = ph.facts_rows()
    return pd.DataFrame(rows[1:], columns=rows[0])


# ------------------------------------------------------------------------------------------- worked example


def test_worked_example_total_pay_adds_the_adjustments(tmp_path):
    # E1: deals 160 → (160−100)/(150−100) = 120% → 1.1; complaints 4 → (4−10)/(5−10) = 120% → 1.1
    #     20 000 × 0.4 × 1.1 = 8 800; 20 000 × 0.6 × 1.1 = 13 200; bonus 22 000 (no multiplier, whole month)
    #     adjustments 5 000 − 1 200.25 = 3 799.75; total = 50 000 + 22 000 + 3 799.75 = 75 799.75
    s = with_adjustments([["E1", 5000, "Retention bonus", None], ["E1", "-1 200,25", "Overpayment returned", "deals"]])
    plan, problems = read(tmp_path, s)
    assert not problems.errors, [str(p) for p in problems]
    r = compute(plan, facts()).employees.set_index("employee_id")
    assert r.loc["E1", "bonus"] == 22_000.0
    assert r.loc["E1", "adjustment"] == 3_799.75
    assert r.loc["E1", "adjustment_reason"] == "Retention bonus; Overpayment returned"
    assert r.loc["E1", "total_pay"] == 75_799.75
    # E2 has no adjustment: total = salary + bonus, as before
    assert r.loc["E2", "adjustment"] == 0.0 and r.loc["E2", "adjustment_reason"] == ""
    assert r.loc["E2", "total_pay"] == r.loc["E2", "salary"] + r.loc["E2", "bonus"]


def test_adjustments_are_rounded_with_the_plans_digits(tmp_path):
    # digits 0: 100.5 + 0.2 = 100.7 → ROUND(100.7, 0) = 101 (half away from zero); total 50 000 + 22 000 + 101
    s = with_adjustments([["E1", 100.5, "a", None], ["E1", 0.2, "b", None]])
    s["Settings"].append(["digits", 0])
    plan, problems = read(tmp_path, s)
    assert not problems.errors
    r = compute(plan, facts()).employees.set_index("employee_id")
    assert r.loc["E1", "adjustment"] == 101.0 and r.loc["E1", "total_pay"] == 72_101.0


def test_russian_sheet_and_headers(tmp_path):
    s = with_adjustments([["E2", "2 500,50", "Премия за наставничество", None]],
                         header=["Табельный номер", "Сумма", "Причина", "Код показателя"], sheet="Корректировки")
    plan, problems = read(tmp_path, s)
    assert not problems.errors, [str(p) for p in problems]
    r = compute(plan, facts()).employees.set_index("employee_id")
    assert r.loc["E2", "adjustment"] == 2_500.5
    assert r.loc["E2", "total_pay"] == payout.total_pay(60_000, r.loc["E2", "bonus"], 2_500.5)


def test_engine_rule_and_its_formula_text():
    assert payout.total_pay(80_000, 12_480, -1_500.5) == 90_979.5
    assert payout.adjustment_total([1000, -250.255, 40], ["E1", "E1", "E2"]).to_dict() == {"E1": 749.75, "E2": 40.0}
    assert fx.total_pay_formula("D21", "D20", 2, "D22") == "ROUND(D21+D20+D22,2)"
    assert fx.total_pay_formula("D21", "D20", 0) == "ROUND(D21+D20,0)"
    assert fx.adjustment_formula("H2:H4", 0) == "ROUND(SUM(H2:H4),0)"


# ------------------------------------------------------------------------------------------- located checks


@pytest.mark.parametrize(("row", "text", "column"), [
    (["E9", 100, "x", None], 'unknown employee "E9"', "A"),
    (["e1", 100, "x", None], 'the Employees sheet has "E1"', "A"),
    (["E1", "five thousand", "x", None], "amount", "B"),
    (["E1", None, "x", None], "amount is empty", "B"),
    (["E1", 100, None, None], "reason is empty", "C"),
    (["E1", 100, "x", "revnue"], 'unknown kpi_id "revnue"', "D"),
])
def test_each_bad_row_is_a_located_error_with_a_fix(tmp_path, row, text, column):
    plan, problems = read(tmp_path, with_adjustments([["E2", 10, "fine", None], row]))
    p = ph.only(problems.errors, text)
    assert (p.sheet, p.row, p.column) == ("Adjustments", 3, column) and p.fix
    if row[0] == "E1":  # a correction that cannot be applied: its employee is not paid without it
        r = compute(plan, facts()).employees.set_index("employee_id")
        assert r.loc["E1", "status"] == "error" and "Adjustments" in r.loc["E1", "reason"]
        assert r.loc["E2", "adjustment"] == 10.0


def test_an_id_two_employees_could_be_is_never_resolved_by_order(tmp_path):
    s = with_adjustments([["AB", 100, "x", None], ["Ab", 100, "y", None]])
    s["Employees"] += [["Ab", "Один", "Support", "Service", "", "", 1, 1], ["aB", "Два", "Support", "Service", "", "",
                                                                             1, 1]]
    _, problems = read(tmp_path, s)
    p = ph.only(problems.errors, 'employee id "AB" could be any of')
    assert (p.sheet, p.row) == ("Adjustments", 2) and "Ab" in p.message and "aB" in p.message
    p = ph.only(problems.errors, 'employee id "Ab" cannot be told for sure')
    assert (p.sheet, p.row) == ("Adjustments", 3)


def test_an_adjustment_making_the_total_negative_is_a_located_error(tmp_path):
    # E3: salary 40 000 + bonus; −500 000 makes the total negative
    plan, problems = read(tmp_path, with_adjustments([["E3", -500_000, "Damage recovered", None]]))
    assert not problems.errors
    r = compute(plan, facts()).employees.set_index("employee_id")
    assert r.loc["E3", "status"] == "error" and "negative" in r.loc["E3", "reason"]
    check_amounts(plan, facts(), problems)
    p = ph.only(problems.errors, "make the total pay negative")
    assert (p.sheet, p.row, p.column) == ("Adjustments", 2, "B") and p.fix


def test_a_deduction_within_the_pay_is_fine(tmp_path):
    plan, problems = read(tmp_path, with_adjustments([["E3", -40_000, "Advance repaid", None]]))
    assert not problems.errors
    r = compute(plan, facts()).employees.set_index("employee_id")
    assert r.loc["E3", "status"] == "ok" and r.loc["E3", "total_pay"] == r.loc["E3", "bonus"]
