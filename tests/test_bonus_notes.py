"""Why a bonus is zero or reduced (issue 13 §3, first bullet): notes computed with the results, shown in the summary.

Each expected note is worked by hand from tests/_plan_helpers.plan_sheets() (default scale: below 70% → 0,
[70%, 100%) → 0.9, [100%, 110%) → 1.0, above → 1.1).
"""

from __future__ import annotations

import io

import openpyxl
import pandas as pd

from tests import _plan_helpers as ph
from xl_kpi.inputs.plan import read_plan
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.summary import summary_bytes
from xl_kpi.results import compute


def run(tmp_path, s, facts_values=None):
    problems = Problems()
    plan = read_plan(ph.make_plan(tmp_path, s), problems)
    assert not problems.errors, [str(p) for p in problems]
    rows = ph.facts_rows(facts_values)
    return compute(plan, pd.DataFrame(rows[1:], columns=rows[0]))


def sheets(gate=None, lang=None):
    s = ph.plan_sheets()
    s["Employees"][0] += ["multiplier", "hired"]
    s["Employees"][1] += [0.8, "2026-10-17"]  # E1: multiplier 0.8, hired 17 October
    s["Employees"][2] += [None, None]
    s["Employees"][3] += [None, None]
    if gate is not None:
        ph.set_cell(s, "Plan", 2, "gate", gate)  # Account manager, deals
    if lang:
        s["Settings"].append(["language", lang])
    return s


def notes(results) -> dict[str, str]:
    e = results.employees
    return dict(zip(e["employee_id"], e["bonus_note"], strict=True))


def test_each_reduction_is_named_with_its_numbers(tmp_path):
    # E1: deals 160 → 120% → 1.1, complaints 4 → 120% → 1.1 (full), but hired 17.10: 17..31 = 15 of 31 days
    #     (15/31 = 48.387% → "48.4%"), multiplier 0.8
    # E2: deals 130 → (130−100)/50 = 60% → 0; complaints 8 → (8−10)/(5−10) = 40% → 0: bonus 0
    # E3: complaints 5 → 100% → 1.0 (no note); nps 35 → (35−20)/30 = 50% → linear scale "lin" at 50% → 0
    got = notes(run(tmp_path, sheets()))
    assert got["E1"] == "prorated: 15 of 31 days of the period worked (48.4%); personal multiplier 0.8"
    assert got["E2"] == ("Closed deals: score 60% is below the scale, coefficient 0; "
                         "Complaints: score 40% is below the scale, coefficient 0")
    assert got["E3"] == "NPS: score 50% is below the scale, coefficient 0"


def test_a_reduced_coefficient_and_a_full_bonus(tmp_path):
    # E2: deals 140 → 80% → 0.9; complaints 5 → 100% → 1.0; E1 with no dates and multiplier 1 → no note
    s = ph.plan_sheets()
    got = notes(run(tmp_path, s, {("E2", "deals"): 140, ("E2", "complaints"): 5}))
    assert got["E2"] == "Closed deals: score 80% gives coefficient 0.9"
    assert got["E1"] == ""


def test_nobody_with_a_note(tmp_path):
    # every KPI at or above its norm, no dates, multiplier 1: no employee has a note (an empty set of notes)
    s = ph.plan_sheets()
    got = notes(run(tmp_path, s, {("E2", "deals"): 160, ("E2", "complaints"): 4, ("E3", "nps"): 50}))
    assert got == {"E1": "", "E2": "", "E3": ""}


def test_a_failed_gate_says_which_kpi_and_replaces_the_line_notes(tmp_path):
    # gate 70% on deals: E2's 60% fails it (the bonus is 0 whatever the lines); E1's 120% passes
    r = run(tmp_path, sheets(gate=0.7))
    got = notes(r)
    assert got["E2"] == "gate failed: Closed deals scored 60% below its gate 70%, so no bonus"
    assert r.employees.set_index("employee_id").loc["E2", "bonus"] == 0


def test_russian_notes_with_decimal_commas(tmp_path):
    got = notes(run(tmp_path, sheets(gate=0.7, lang="ru")))
    assert got["E1"] == "пропорционально отработанному: 15 из 31 дней периода (48,4%); персональный множитель 0,8"
    assert got["E2"] == "стоп-показатель Closed deals: выполнение 60% ниже порога 70%, премия не начислена"


def test_the_summary_shows_the_note_and_a_missing_fact_as_the_reason(tmp_path):
    r = run(tmp_path, sheets(gate=0.7), {("E3", "nps"): ...})  # E3 without an NPS fact: status error
    ws = openpyxl.load_workbook(io.BytesIO(summary_bytes(r))).worksheets[0]
    head = [c.value for c in ws[1]]
    col = head.index("Note")
    rows = {row[0].value: row[col].value for row in ws.iter_rows(min_row=2, max_row=4)}
    assert rows["E2"] == "gate failed: Closed deals scored 60% below its gate 70%, so no bonus"
    assert rows["E1"].startswith("prorated: 15 of 31 days")
    assert "no fact for KPI nps" in rows["E3"]
    assert notes(r)["E3"] == ""  # an employee in error has the reason, not a bonus note


def test_the_notes_follow_the_language_asked_for(tmp_path):
    from xl_kpi.inputs.plan import load_plan

    plan = load_plan(ph.make_plan(tmp_path, sheets(lang="ru")))
    rows = ph.facts_rows()
    r = compute(plan, pd.DataFrame(rows[1:], columns=rows[0]), language="en")  # xl-kpi generate --lang en
    assert r.language == "en" and notes(r)["E1"].startswith("prorated: 15 of 31 days")
