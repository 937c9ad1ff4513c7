"""results.compute against hand-computed bonuses: the docs/domain.md example, gates, caps, multiplier, proration."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests import _plan_helpers as ph
from xl_kpi import DEFAULT_SCALE
from xl_kpi.inputs.facts import load_facts
from xl_kpi.inputs.plan import load_plan, plan_from_frames, read_plan, sample_inputs
from xl_kpi.results import EMPLOYEE_COLUMNS, LINE_COLUMNS, Results, compute


def run(tmp_path: Path, sheets=None, facts=None) -> Results:
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    return compute(plan, load_facts(plan, [ph.make_facts(tmp_path, facts)]))


def by_id(results: Results) -> pd.DataFrame:
    return results.employees.set_index("employee_id")


def test_columns_exactly_as_agreed(tmp_path):
    r = run(tmp_path)
    assert list(r.lines.columns) == list(LINE_COLUMNS) == [
        "employee_id", "kpi_id", "kpi_name", "unit", "weight", "base", "norm", "floor", "cap", "scale", "gate",
        "fact", "score", "coefficient", "bonus", "payout", "rate", "threshold", "amount", "max_payout", "tiers"]
    assert list(r.employees.columns) == list(EMPLOYEE_COLUMNS) == [
        "employee_id", "name", "position", "department", "manager", "email", "salary", "bonus_pool", "multiplier",
        "proration", "kpi_bonus", "gated", "bonus", "adjustment", "adjustment_reason", "total_pay", "status", "reason",
        "bonus_note"]
    assert (r.period, r.currency, r.company, r.language) == ("2026-10", "RUB", "Ромашка", "en")
    assert r.scales["default"] == DEFAULT_SCALE and r.scales["lin"].kind == "linear"
    assert r.employees["gated"].dtype == bool


def test_low_cardinality_line_texts_share_one_string_per_value(tmp_path):
    # 100,000 employees' lines held a new string a row for the KPI names, units and payout kinds (~90 MB)
    r = run(tmp_path)
    assert r.lines["kpi_id"].nunique() < len(r.lines)
    for col in ("kpi_name", "unit", "payout"):
        values = r.lines[col].to_numpy(dtype=object)
        assert len({id(v) for v in values}) == len(set(values)), col
    assert set(r.lines["payout"]) == {"coefficient"}


def test_release_memory_gives_back_without_touching_what_is_in_use(tmp_path):
    import sys

    from xl_kpi import memory

    r = run(tmp_path)
    before = r.lines.copy(deep=True)
    memory.release_memory()
    memory.release_memory(collect=False)
    pd.testing.assert_frame_equal(r.lines, before)
    if sys.platform.startswith("linux") and __import__("platform").libc_ver()[0] == "glibc":
        assert memory._glibc_trim() is not None


def test_domain_worked_example_and_hand_computed_totals(tmp_path):
    r = run(tmp_path)
    lines = r.lines.set_index(["employee_id", "kpi_id"])
    # docs/domain.md: pool 20 000, weight 0.4, base 100, norm 150, fact 160 → 120% → 1.1 → 8 800
    e1 = lines.loc[("E1", "deals")]
    assert (e1["score"], e1["coefficient"], e1["bonus"]) == (pytest.approx(1.2), 1.1, 8800.0)
    # lower is better: base 10, norm 5, fact 4 → 120% → 1.1 → 20 000 × 0.6 × 1.1 = 13 200
    assert lines.loc[("E1", "complaints"), "bonus"] == 13200.0
    # E2: deals 130 → 60% → 0; complaints 8 → 40% → 0
    assert lines.loc[("E2", "deals"), "score"] == pytest.approx(0.6)
    assert lines.loc[("E2", "complaints"), "score"] == pytest.approx(0.4)
    # E3: complaints 5 → 100% → 1.0 → 10 000 × 0.5 = 5 000; nps 35 → 50% on the linear scale → 0
    assert lines.loc[("E3", "complaints"), "bonus"] == 5000.0
    assert lines.loc[("E3", "nps"), "coefficient"] == 0.0
    emp = by_id(r)
    assert emp["kpi_bonus"].tolist() == [22000.0, 0.0, 5000.0]
    assert emp["bonus"].tolist() == [22000.0, 0.0, 5000.0]
    assert emp["total_pay"].tolist() == [72000.0, 60000.0, 45000.0]
    assert emp["status"].tolist() == ["ok"] * 3 and emp["reason"].tolist() == [""] * 3


def test_linear_scale_interpolates(tmp_path):
    r = run(tmp_path, facts={("E3", "nps"): 41})  # (41 − 20)/30 = 0.7 → linear 0.5..1.0 → 0.4
    line = r.lines.set_index(["employee_id", "kpi_id"]).loc[("E3", "nps")]
    assert line["coefficient"] == pytest.approx(0.4)
    assert line["bonus"] == 2000.0  # 10 000 × 0.5 × 0.4


def test_floor_and_cap_clamp_the_score(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 2, "cap", 1.05)
    ph.set_cell(sheets, "Plan", 3, "floor", 0)
    r = run(tmp_path, sheets, facts={("E2", "complaints"): 30})  # raw (30 − 10)/(5 − 10) = −4
    lines = r.lines.set_index(["employee_id", "kpi_id"])
    assert lines.loc[("E1", "deals"), "score"] == 1.05  # 1.2 capped
    assert lines.loc[("E1", "deals"), "coefficient"] == 1.0  # the cap keeps it in the 100% band
    assert lines.loc[("E1", "deals"), "bonus"] == 8000.0
    assert lines.loc[("E2", "complaints"), "score"] == 0.0


def test_gate_below_threshold_zeroes_the_whole_bonus(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 2, "gate", 0.7)  # deals gate for account managers
    r = run(tmp_path, sheets, facts={("E2", "deals"): 134, ("E2", "complaints"): 4})
    emp = by_id(r)
    # E2: deals (134 − 100)/50 = 68% < 70% → gated, although complaints earn 13 200
    assert emp.loc["E2", "kpi_bonus"] == 13200.0
    assert bool(emp.loc["E2", "gated"]) and emp.loc["E2", "bonus"] == 0.0
    assert emp.loc["E2", "total_pay"] == 60000.0 and emp.loc["E2", "status"] == "ok"
    assert not emp.loc["E1", "gated"] and emp.loc["E1", "bonus"] == 22000.0
    assert r.lines["gate"].tolist()[:4] == [0.7, pytest.approx(float("nan"), nan_ok=True), 0.7,
                                            pytest.approx(float("nan"), nan_ok=True)]


def test_gate_exactly_on_the_threshold_is_not_below_it_even_in_binary(tmp_path):
    sheets = ph.plan_sheets()
    # score = (fact − base)/(norm − base) with base 0, norm 3, fact 3.3 → 1.0999999999999999 in binary
    ph.set_cell(sheets, "Plan", 2, "base", 0)
    ph.set_cell(sheets, "Plan", 2, "norm", 3)
    ph.set_cell(sheets, "Plan", 2, "gate", 1.1)
    r = run(tmp_path, sheets, facts={("E1", "deals"): 3.3})
    assert (3.3 - 0) / (3 - 0) < 1.1  # the float really is below
    assert not by_id(r).loc["E1", "gated"]
    assert r.lines.iloc[0]["coefficient"] == 1.1  # and the step scale gives the 110% band


def test_multiplier_and_proration(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Employees"][0] += ["multiplier", "hired", "left"]
    sheets["Employees"][1] += [1.2, "13.10.2026", None]
    sheets["Employees"][2] += [None, None, None]
    sheets["Employees"][3] += ["0,5", "2026-09-01", "2026-10-20"]
    r = run(tmp_path, sheets)
    emp = by_id(r)
    assert emp["multiplier"].tolist() == [1.2, 1.0, 0.5]
    assert emp["proration"].tolist() == [pytest.approx(19 / 31), 1.0, pytest.approx(20 / 31)]
    # 22 000 × 1.2 × 19/31 = 16 180.645… → 16 180.65; 5 000 × 0.5 × 20/31 = 1 612.903… → 1 612.90
    assert emp.loc["E1", "bonus"] == 16180.65 and emp.loc["E1", "kpi_bonus"] == 22000.0
    assert emp.loc["E3", "bonus"] == 1612.9
    assert emp.loc["E1", "total_pay"] == 66180.65


def test_line_bonuses_are_rounded_before_they_are_added(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Employees", 2, "bonus_pool", 33333.33)
    ph.set_cell(sheets, "Plan", 2, "weight", 0.3)
    ph.set_cell(sheets, "Plan", 3, "weight", 0.7)
    r = run(tmp_path, sheets, facts={("E1", "deals"): 140, ("E1", "complaints"): 5})
    # deals 80% → 0.9: 33 333.33 × 0.3 × 0.9 = 8 999.9991 → 9 000.00
    # complaints 100% → 1.0: 33 333.33 × 0.7 = 23 333.331 → 23 333.33
    lines = r.lines[r.lines.employee_id == "E1"]
    assert lines["bonus"].tolist() == [9000.0, 23333.33]
    assert by_id(r).loc["E1", "kpi_bonus"] == 32333.33


def test_rounding_digits_from_settings(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Settings"].append(["digits", 0])
    ph.set_cell(sheets, "Employees", 2, "bonus_pool", 20001)
    r = run(tmp_path, sheets)
    # 20 001 × 0.4 × 1.1 = 8 800.44 → 8 800; × 0.6 × 1.1 = 13 200.66 → 13 201
    assert r.lines["bonus"].tolist()[:2] == [8800.0, 13201.0]
    assert r.digits == 0


def test_missing_fact_and_bad_weights_make_status_error_with_reasons(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 5, "weight", 0.4)  # support: 0.5 + 0.4
    plan = read_plan(ph.make_plan(tmp_path, sheets))  # read_plan: keep going despite the weights error
    facts = pd.DataFrame(ph.facts_rows({("E2", "complaints"): ...})[1:], columns=["employee_id", "kpi_id", "fact"])
    r = compute(plan, facts)
    emp = by_id(r)
    assert emp.loc["E1", "status"] == "ok"
    assert emp.loc["E2", "status"] == "error" and "no fact for KPI complaints" in emp.loc["E2", "reason"]
    assert math.isnan(emp.loc["E2", "bonus"]) and math.isnan(emp.loc["E2", "total_pay"])
    assert emp.loc["E3", "status"] == "error" and "weights sum to 90%" in emp.loc["E3", "reason"]
    line = r.lines.set_index(["employee_id", "kpi_id"]).loc[("E2", "complaints")]
    assert math.isnan(line["fact"]) and math.isnan(line["score"]) and math.isnan(line["bonus"])
    assert not r.ok


def test_norm_equal_to_base_is_an_error_line_not_a_crash(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 2, "norm", 100)
    r = compute(read_plan(ph.make_plan(tmp_path, sheets)), pd.DataFrame(ph.facts_rows()[1:],
                                                                         columns=["employee_id", "kpi_id", "fact"]))
    assert "norm equals the base" in by_id(r).loc["E1", "reason"]


def test_facts_frame_with_periods_and_text_numbers(tmp_path):
    plan = load_plan(ph.make_plan(tmp_path))
    rows = [[e, k, str(v).replace(".", ","), "2026-10"] for e, k, v in ph.facts_rows()[1:]]
    rows.append(["E1", "deals", "10", "2026-09"])  # another period: ignored
    r = compute(plan, pd.DataFrame(rows, columns=["employee_id", "kpi_id", "fact", "period"]))
    assert by_id(r)["bonus"].tolist() == [22000.0, 0.0, 5000.0]


def test_sample_results():
    plan_path, data = sample_inputs()
    plan = load_plan(plan_path)
    r = compute(plan, load_facts(plan, data))
    emp, lines = r.employees, r.lines
    assert r.ok and len(emp) == len(plan.employees) and (r.period, r.language) == ("2026-10", "ru")
    assert lines["employee_id"].unique().tolist() == emp["employee_id"].tolist()  # Employees order
    assert lines["fact"].notna().all() and lines["bonus"].notna().all()
    # every employee: bonus = ROUND(Σ rounded line bonuses × multiplier × proration) unless gated
    sums = lines.groupby("employee_id", sort=False)["bonus"].sum().round(2)
    e = emp.set_index("employee_id")
    assert np.allclose(e["kpi_bonus"], sums.loc[e.index])
    expected = np.where(e["gated"], 0.0, np.round(e["kpi_bonus"] * e["multiplier"] * e["proration"] + 1e-9, 2))
    assert np.allclose(e["bonus"], expected)
    assert np.allclose(e["total_pay"], e["salary"] + e["bonus"])
    # the stories of the sample
    assert e["gated"].sum() >= 1 and (e.loc[e["gated"], "bonus"] == 0).all()
    assert sorted(e.loc[e["proration"] < 1, "proration"].round(6)) == [round(19 / 31, 6), round(20 / 31, 6)]
    assert (e["multiplier"] == 1.2).sum() == 1
    assert {"default", "kam_linear"} <= set(lines["scale"])
    assert lines["gate"].notna().sum() == (emp["position"] == "Менеджер по работе с клиентами").sum()


@pytest.mark.slow
def test_compute_is_vectorised_on_a_large_company():
    n = 20_000
    emp = pd.DataFrame({"employee_id": [f"E{i}" for i in range(n)], "name": "N", "position": "P",
                        "bonus_pool": 10_000.0})
    kpis = pd.DataFrame({"kpi_id": ["a", "b", "c"], "name": ["A", "B", "C"]})
    plan_rows = pd.DataFrame({"position": "P", "kpi_id": ["a", "b", "c"], "weight": [0.5, 0.3, 0.2],
                              "base": [0, 10, 0], "norm": [100, 5, 1], "scale": [None, "lin", None],
                              "gate": [None, None, 0.5]})
    scales = pd.DataFrame({"scale": ["lin", "lin"], "threshold": [0.5, 1.5], "coefficient": [0, 1.5],
                           "kind": "linear"})
    plan = plan_from_frames(emp, kpis, plan_rows, scales, {"period": "2026-10"})
    rng = np.random.default_rng(0)
    facts = pd.DataFrame({"employee_id": np.repeat(emp["employee_id"].to_numpy(), 3),
                          "kpi_id": np.tile(["a", "b", "c"], n),
                          "fact": np.column_stack([rng.uniform(50, 150, n), rng.uniform(3, 12, n),
                                                   rng.uniform(0, 1, n)]).ravel()})
    start = time.perf_counter()
    r = compute(plan, facts)
    elapsed = time.perf_counter() - start
    assert len(r.lines) == 3 * n and r.ok
    assert elapsed < 10
    one = r.lines.iloc[:3]
    a = one.iloc[0]
    expected_a = round(10_000 * 0.5 * DEFAULT_SCALE(a["fact"] / 100) + 1e-9, 2)
    assert a["bonus"] == pytest.approx(expected_a)


def test_the_library_pays_the_period_bonus_the_batch_pays():
    """Issue 10: ``total_bonus`` knew no multiplier or proration; ``period_bonus`` is the batch's own rule."""
    import xl_kpi

    plan_path, data = sample_inputs()
    plan = load_plan(plan_path)
    plan.employees["multiplier"] = np.where(np.arange(len(plan.employees)) % 3 == 0, 1.25, 1.0)
    r = compute(plan, load_facts(plan, data))
    emp = r.employees
    assert (emp["multiplier"] != 1).any() and (emp["proration"] < 1).any()  # both rules exercised
    ok = emp["status"] == "ok"
    got = xl_kpi.period_bonus(emp["kpi_bonus"].to_numpy(float), emp["multiplier"].to_numpy(float),
                              emp["proration"].to_numpy(float), gated=emp["gated"].to_numpy(bool))
    assert np.array_equal(got[ok], emp["bonus"].to_numpy(float)[ok])
    pay = xl_kpi.total_pay(emp["salary"].to_numpy(float), got)
    assert np.array_equal(pay[ok], emp["total_pay"].to_numpy(float)[ok])
    # one employee by hand, through the public functions only
    e = emp[ok & (emp["multiplier"] != 1)].iloc[0]
    ln = r.lines[r.lines["employee_id"] == e["employee_id"]]
    kb = xl_kpi.total_bonus(e["bonus_pool"], ln["weight"].to_numpy(float), ln["score"].to_numpy(float),
                            [r.scales.get(s) if isinstance(s, str) and s else None for s in ln["scale"]])
    assert xl_kpi.period_bonus(kb, e["multiplier"], e["proration"]) == e["bonus"]
