"""Which sheet holds the pay (issue 9 §2): exact names win over aliases, several candidates are an error,
hidden sheets are never read silently, look-alike names are pointed out."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import _bad_files as bf
from tests import _plan_helpers as ph
from xl_kpi.inputs.lookalike import describe, foreign_letters, lookalike, skeleton
from xl_kpi.inputs.plan import PlanError, load_plan, read_plan
from xl_kpi.inputs.readers import scan_xlsx


def workbook(tmp: Path, sheets: dict[str, list], states: dict[str, str] | None = None) -> Path:
    plan = ph.make_plan(tmp, sheets)
    if states:
        bf.edit_workbook(plan, lambda wb: [setattr(wb[t], "sheet_state", s) for t, s in states.items()])
    return plan


def staff(pool: float = 999_999) -> list:
    rows = ph.plan_sheets()["Employees"]
    for r in rows[1:]:
        r[7] = pool
    return rows


def test_a_hidden_staff_sheet_before_employees_does_not_supply_the_pay(tmp_path):
    plan = load_plan(workbook(tmp_path, {"Staff": staff(), **ph.plan_sheets()}, {"Staff": "hidden"}))
    assert plan.employees["bonus_pool"].tolist() == [20_000, 20_000, 10_000]
    warning = ph.only(plan.problems.warnings, "could also be the Employees sheet")
    assert warning.sheet == "Staff" and "(hidden)" in warning.message and "is not read" in warning.message


def test_a_visible_alias_next_to_the_exact_name_is_ignored_with_a_warning(tmp_path):
    plan = load_plan(workbook(tmp_path, {"People": staff(), **ph.plan_sheets()}))
    assert plan.tables["Employees"].sheet == "Employees"
    assert ph.only(plan.problems.warnings, "«People» could also be the Employees sheet").sheet == "People"


@pytest.mark.parametrize("names, states, listed", [
    (("Staff", "Сотрудники"), {}, "«Staff», «Сотрудники»"),
    (("Employees", "Staff"), {"Employees": "hidden"}, "«Employees» (hidden), «Staff»"),
    (("Employees", "employees_"), {}, "«Employees», «employees_»"),
    (("Staff", "People"), {"People": "veryHidden"}, "«Staff», «People» (very hidden)"),
])
def test_several_candidates_are_an_error_listing_them_never_a_choice_by_order(tmp_path, names, states, listed):
    sheets = ph.plan_sheets()
    rows = sheets.pop("Employees")
    plan = workbook(tmp_path, {names[0]: rows, names[1]: staff(), **sheets}, states)
    with pytest.raises(PlanError) as e:
        load_plan(plan)
    problems = e.value.problems
    error = ph.only(problems.errors, "could be the Employees sheet")
    assert f"2 sheets could be the Employees sheet: {listed}" in error.message and error.file == "plan.xlsx"
    assert "rename or delete the ones that are not the Employees sheet" in error.fix
    assert not ph.matching(problems, "missing sheet")


@pytest.mark.parametrize("state, words", [("hidden", "the sheet is hidden"), ("veryHidden", "very hidden")])
def test_a_hidden_sheet_that_is_the_only_candidate_is_read_with_a_warning(tmp_path, state, words):
    sheets = ph.plan_sheets()
    sheets = {("Staff" if k == "Employees" else k): v for k, v in sheets.items()}
    plan = load_plan(workbook(tmp_path, sheets, {"Staff": state}))
    assert len(plan.employees) == 3
    assert ph.only(plan.problems.warnings, words).sheet == "Staff"


def test_every_plan_sheet_is_chosen_the_same_way(tmp_path):
    sheets = ph.plan_sheets()
    sheets = {"Matrix": sheets["Plan"], "Шкалы": sheets["Scales"], **sheets}
    plan = load_plan(workbook(tmp_path, sheets, {"Matrix": "hidden"}))
    assert {p.sheet for p in plan.problems.warnings} == {"Matrix", "Шкалы"}


def test_sheet_states_come_from_workbook_xml(tmp_path):
    plan = workbook(tmp_path, {"A": [["x"]], "B": [["y"]], "C": [["z"]]}, {"B": "hidden", "C": "veryHidden"})
    assert {k: v.state for k, v in scan_xlsx(plan).items()} == {"A": "visible", "B": "hidden", "C": "veryHidden"}


def test_lookalike_names_in_every_direction():
    assert lookalike("\u0415mployees", ["Employees", "Staff"]) == "Employees"  # Cyrillic Е
    assert lookalike("S\u03b5ttings", ["Settings"]) == "Settings"  # Greek ε
    assert lookalike("Пoказатели", ["Показатели"]) == "Показатели"  # Latin o in a Russian name
    assert lookalike("Employees", ["Employees"]) is None and lookalike("Emploees", ["Employees"]) is None
    assert skeleton("КРI") == skeleton("kpi")
    assert foreign_letters("Еmplоyees", "Employees") == "Cyrillic letters: «Е» at position 1, «о» at position 5"
    assert describe("Пoказатели", "Показатели") == (
        "sheet «Пoказатели» looks like Показатели but has a Latin «o» at position 2")


def test_a_lookalike_plan_sheet_is_named_in_the_missing_sheet_error(tmp_path):
    sheets = ph.plan_sheets()
    sheets["\u041aPIs"] = sheets.pop("KPIs")  # Cyrillic К
    problems = read_plan(workbook(tmp_path, sheets)).problems
    error = ph.only(problems.errors, "missing sheet KPIs")
    assert "sheet «\u041aPIs» looks like KPIs but has a Cyrillic «\u041a» at position 1" in error.message
    assert error.fix.startswith("retype the name of sheet «\u041aPIs» in Latin letters (KPIs)")
