"""Plausible money (issue 9 §4): the multiplier's range, the amount limit after every multiplication,
absurd scores, zero employees."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from tests import _plan_helpers as ph
from xl_kpi.engine.money import MAX_MONEY, format_amount, over_limit
from xl_kpi.inputs.plan import plan_from_frames
from xl_kpi.inputs.problems import Problems
from xl_kpi.results import compute


def frames(change=None) -> dict[str, pd.DataFrame]:
    s = ph.plan_sheets()
    if change:
        change(s)
    return {k: pd.DataFrame(v[1:], columns=v[0]) for k, v in s.items() if k != "Settings"}


def plan_of(change=None, employees=None):
    f = frames(change)
    if employees is not None:
        employees(f["Employees"])
    problems = Problems()
    return plan_from_frames(f["Employees"], f["KPIs"], f["Plan"], f["Scales"], {"period": "2026-10"},
                            problems=problems), problems


FACTS = pd.DataFrame(ph.facts_rows()[1:], columns=["employee_id", "kpi_id", "fact"]).astype({"fact": float})


@pytest.mark.parametrize("value, severity, text", [
    (100, "error", "multiplier 100 is above 10"), (10.5, "error", "multiplier 10.5 is above 10"),
    (1e6, "error", "multiplier 1000000 is above 10"), (-1, "error", "multiplier -1 is below 0"),
    (10, "warning", "multiplier 10 pays 10 times the bonus"), (3.5, "warning", "more than 3 times is unusual"),
    (0, "warning", "multiplier 0: no bonus is paid"), (3, None, ""), (1.2, None, ""), (None, None, ""),
])
def test_the_multiplier_has_a_plausible_range(value, severity, text):
    plan, problems = plan_of(employees=lambda e: e.insert(len(e.columns), "multiplier", [value, None, None]))
    if severity is None:
        assert not ph.matching(problems, "multiplier"), [str(p) for p in problems]
        return
    found = ph.only(problems, text)
    assert found.severity == severity and (found.row, found.column, found.header) == (2, "I", "multiplier")
    if value == 100:
        assert found.fix.startswith("100 means 100%? write 1 or 100%")
    if severity == "error":
        assert math.isnan(plan.employees["multiplier"].iloc[0])


def test_the_amount_limit_applies_after_every_multiplication():
    cases = {  # what is changed → (employee, words of the reason)
        "pool × multiplier": (lambda e: (e.__setitem__("bonus_pool", [5e12, 20_000, 10_000]),
                                         e.insert(len(e.columns), "multiplier", [2, None, None])),
                              "E1", "the bonus 11 000 000 000 000 = KPI bonus 5 500 000 000 000 × multiplier 2"),
        "salary + bonus": (lambda e: e.__setitem__("salary", [9_999_999_990_000, 60_000, 40_000]),
                           "E1", "the total pay 10 000 000 012 000 = salary 9 999 999 990 000"),
        "sum of the lines": (lambda e: e.__setitem__("bonus_pool", [9.5e12, 20_000, 10_000]),
                             "E1", "the KPI bonuses add up to 10 450 000 000 000"),
    }
    for label, (change, who, words) in cases.items():
        plan, problems = plan_of(employees=change)
        assert not problems.has_errors, (label, [str(p) for p in problems])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            results = compute(plan, FACTS)
        emp = results.employees.set_index("employee_id")
        assert emp.loc[who, "status"] == "error" and words in emp.loc[who, "reason"], (label, emp.loc[who, "reason"])
        assert "is not below 10 000 000 000 000" in emp.loc[who, "reason"]
        assert math.isnan(emp.loc[who, "bonus"]) and math.isnan(emp.loc[who, "total_pay"])
        assert (emp.drop(index=who)["status"] == "ok").all(), label
        [item] = results.extra["over_limit"]
        assert item["employee_id"] == who and item["where"]["sheet"] == "Employees" and item["where"]["row"] == 2


def test_a_line_bonus_that_overflows_is_refused_without_a_raw_warning():
    def change(s):
        s["Scales"][3][2] = 1e306
    plan, _ = plan_of(change)
    facts = FACTS.copy()
    facts.loc[(facts["employee_id"] == "E3") & (facts["kpi_id"] == "nps"), "fact"] = 65
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = compute(plan, facts)
    e3 = results.employees.set_index("employee_id").loc["E3"]
    assert e3["status"] == "error" and "KPI nps: the bonus infinity = bonus_pool 10 000" in e3["reason"]
    assert not np.isinf(results.lines["bonus"].astype(float)).any()


@pytest.mark.parametrize("fact, base, norm", [(1e308, 100, 150), (1e308, 0, 1e-300), (1e15, 0, 10)])
def test_an_absurd_score_is_never_paid_the_top_coefficient(fact, base, norm):
    def change(s):
        s["Plan"][1][4], s["Plan"][1][5] = base, norm
    plan, _ = plan_of(change)
    facts = FACTS.copy()
    facts.loc[(facts["employee_id"] == "E1") & (facts["kpi_id"] == "deals"), "fact"] = fact
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = compute(plan, facts)
    e1 = results.employees.set_index("employee_id").loc["E1"]
    assert e1["status"] == "error" and "KPI deals: the score is infinite or too large" in e1["reason"]
    assert not np.isinf(results.lines["score"].astype(float)).any()


def test_zero_employees_is_an_error_not_an_empty_payroll():
    plan, problems = plan_of(change=lambda s: s.__setitem__("Employees", s["Employees"][:1]))
    assert plan.broken
    error = ph.only(problems.errors, "lists no employees")
    assert (error.sheet, error.row) == ("Employees", 2)


def test_amount_helpers():
    assert over_limit([MAX_MONEY * 0.999, -MAX_MONEY, np.inf, np.nan]).tolist() == [False, True, True, False]
    assert [format_amount(x) for x in (1234.5, 20_000.0, 1.5e20, np.inf, np.nan)] == [
        "1 234.50", "20 000", "1.5e+20", "infinity", "empty"]
