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


# ------------------------------------------------------------------------------------------- outputs


def _adjusted_results(tmp_path):
    s = with_adjustments([["E1", 5000, "Retention bonus", None], ["E1", "-1 200,25", "Overpayment returned", "deals"],
                          ["E3", 777.77, "Mentoring", None]])
    plan, problems = read(tmp_path, s)
    assert not problems.errors
    return compute(plan, facts())


def test_card_shows_the_adjustment_row_and_its_total_formula_adds_it(tmp_path):
    import openpyxl

    from xl_kpi.outputs.cards import CardTemplate, render_card

    results = _adjusted_results(tmp_path)
    tpl = CardTemplate.load(lang="en")
    p = tmp_path / "E1.xlsx"
    p.write_bytes(render_card(tpl, results, "E1"))
    ws = openpyxl.load_workbook(p).active
    row = next(c.row for r in ws.iter_rows(min_col=1, max_col=1) for c in r
               if str(c.value).startswith("Adjustments:"))
    assert ws.cell(row, 1).value == "Adjustments: Retention bonus; Overpayment returned"
    assert ws.cell(row, 4).value == 3_799.75 and not ws.row_dimensions[row].hidden
    total = ws.cell(row + 1, 4).value
    assert total.startswith("=ROUND(") and total.endswith(f"+$D${row},2)"), total
    # E2 has none: the row is hidden and the total formula is salary + bonus
    p2 = tmp_path / "E2.xlsx"
    p2.write_bytes(render_card(tpl, results, "E2"))
    ws2 = openpyxl.load_workbook(p2).active
    assert ws2.row_dimensions[row].hidden


def test_summary_has_the_adjustment_column_reason_and_total(tmp_path):
    import io

    import openpyxl

    from xl_kpi.outputs.summary import summary_bytes

    results = _adjusted_results(tmp_path)
    ws = openpyxl.load_workbook(io.BytesIO(summary_bytes(results))).worksheets[0]
    head = [c.value for c in ws[1]]
    a, why, tot = head.index("Adjustment"), head.index("Adjustment reason"), head.index("Total pay")
    assert head.index("Bonus") < a < tot < why
    rows = {r[0].value: r for r in ws.iter_rows(min_row=2, max_row=4)}
    assert rows["E1"][a].value == 3_799.75 and rows["E1"][why].value == "Retention bonus; Overpayment returned"
    assert rows["E1"][tot].value == 75_799.75 and rows["E2"][a].value is None
    assert ws.cell(5, a + 1).value.startswith("=SUBTOTAL(109,")


def test_libreoffice_recalculates_cards_and_summary_with_adjustments_as_the_engine(tmp_path, recalc):
    from tests import lo
    from xl_kpi.outputs.cards import CardTemplate, iter_cards
    from xl_kpi.outputs.summary import summary_bytes

    results = _adjusted_results(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    files = []
    for lang in ("en", "ru"):
        for eid, data in iter_cards(CardTemplate.load(lang=lang), results):
            files.append(src / f"{lang}-{eid}.xlsx")
            files[-1].write_bytes(data)
    files.append(src / "summary.xlsx")
    files[-1].write_bytes(summary_bytes(results))
    outs = recalc(files, tmp_path / "out")
    bad = [(f.name, m) for f, o in zip(files, outs, strict=True) for m in lo.formula_cells_vs_cached(f, o)]
    assert bad == []
    # and the recalculated total pay is the engine's (E1: 75 799.75), not merely the cache agreeing with itself
    want = results.employees.set_index("employee_id")["total_pay"]
    for f, o in zip(files, outs, strict=True):
        if f.stem.endswith("E1"):
            values = [c.value for r in lo._load(o, data_only=True).active.iter_rows() for c in r]
            assert want["E1"] == 75_799.75 and 75_799.75 in values and 3_799.75 in values


def test_verify_catches_a_tampered_adjustment(tmp_path):
    import json

    from xl_kpi import batch

    s = with_adjustments([["E1", 5000, "Retention bonus", None]])
    plan = ph.make_plan(tmp_path, s)
    data = ph.make_facts(tmp_path)
    out = tmp_path / "out"
    batch.generate(plan, [data], out)
    audit = json.loads((out / batch.AUDIT).read_text(encoding="utf-8"))
    assert audit["adjustments"] == {"employees": 1, "total": 5000.0,
                                    "by_employee": {"E1": {"amount": 5000.0, "reason": "Retention bonus"}}}
    assert batch.verify(out) == []
    audit["adjustments"]["by_employee"]["E1"]["amount"] = 50000.0  # a forger raises the bonus in the record
    (out / batch.AUDIT).write_text(json.dumps(audit, ensure_ascii=False, indent=1), encoding="utf-8")
    found = batch.verify(out)
    assert any(f.file == batch.AUDIT and "adjustments" in f.message for f in found), found
    # and an adjusted amount edited in the results (re-hashed) differs from the fresh computation
    audit["adjustments"]["by_employee"]["E1"]["amount"] = 5000.0
    (out / batch.AUDIT).write_text(json.dumps(audit, ensure_ascii=False, indent=1), encoding="utf-8")
    emp = out / "results" / "employees.csv"
    text = emp.read_text(encoding="utf-8")
    assert ",5000.0," in text
    emp.write_text(text.replace(",5000.0,", ",50000.0,", 1), encoding="utf-8")
    import hashlib
    audit["outputs"]["results/employees.csv"] = hashlib.sha256(emp.read_bytes()).hexdigest()
    (out / batch.AUDIT).write_text(json.dumps(audit, ensure_ascii=False, indent=1), encoding="utf-8")
    found = batch.verify(out)
    assert any(f.file == "results/" for f in found), found
