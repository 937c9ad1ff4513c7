"""Payout kinds (issue 15): fixed, proportional, per_unit, share and tiered rates, worked by hand.

Every expected number below is computed by hand in the comment next to it (docs/plan.md "Payout kinds" shows
the same examples); the plans are real workbooks read by ``read_plan`` (English and Russian headers), scored by
``results.compute``, and the Excel formula text of each rule is checked against the engine here for literals
(the LibreOffice comparison is tests/test_formula_properties.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest

from tests import _plan_helpers as ph
from xl_kpi.engine import formulas as fx
from xl_kpi.engine import payout
from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.payout import Tiers
from xl_kpi.inputs.plan import read_plan
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.cards import write_cards
from xl_kpi.outputs.summary import write_summary
from xl_kpi.results import compute

PLAN_HEADER = ["position", "employee_id", "kpi_id", "weight", "base", "norm", "floor", "cap", "scale", "gate",
               "payout", "rate", "threshold", "amount", "max_payout", "tiers"]
REVENUE = [["tiers", "from", "to", "rate", "mode"], ["revenue", 0, 1_000_000, 0.03, None],
           ["revenue", 1_000_000, None, 0.05, None], ["revenue_r", 0, 1_000_000, 0.03, "retroactive"],
           ["revenue_r", 1_000_000, None, 0.05, "retroactive"], ["deals10", 0, 10, 0, None],
           ["deals10", 10, None, 500, None], ["deals10_r", 0, 10, 0, "retroactive"],
           ["deals10_r", 10, None, 500, "retroactive"]]


def sheets(rows: list[list[Any]], tiers: list[list[Any]] | None = None) -> dict[str, Any]:
    """One employee E1 (pool 20 000) with the Plan ``rows`` (weights given by the caller) and KPIs deals (pcs),
    revenue (₽) and calls (pcs)."""
    s = ph.plan_sheets()
    s["Employees"] = [ph.EMPLOYEES_HEADER, ["E1", "Иванов Иван", "Sales", "Sales", "", "", 50_000, 20_000]]
    s["KPIs"] = [["kpi_id", "name", "unit"], ["deals", "Closed deals", "pcs"], ["revenue", "Won revenue", "₽"],
                 ["calls", "Calls", "pcs"]]
    s["Plan"] = [PLAN_HEADER] + [["Sales", None, *r, *[None] * (len(PLAN_HEADER) - 2 - len(r))] for r in rows]
    if tiers is not None:
        s["Tiers"] = tiers
    return s


def run(tmp_path, rows, facts: dict[str, float], tiers=None, digits: int = 2):
    s = sheets(rows, tiers)
    s["Settings"].append(["digits", digits])
    problems = Problems()
    plan = read_plan(ph.make_plan(tmp_path, s), problems)
    assert not problems.errors, [str(p) for p in problems]
    frame = pd.DataFrame({"employee_id": "E1", "kpi_id": list(facts), "fact": list(facts.values())})
    return compute(plan, frame)


def bonuses(results) -> dict[str, float]:
    return dict(zip(results.lines["kpi_id"], results.lines["bonus"], strict=True))


# ------------------------------------------------------------------------------------------- worked examples


def test_fixed_pays_its_amount_from_the_threshold_on(tmp_path):
    # threshold 100%, amount 5 000: deals base 0 norm 10 → 10.4 deals = 104% → 5 000; calls 9.99/10 = 99.9% → 0
    r = run(tmp_path, [["deals", 0.5, 0, 10, None, None, None, None, "fixed", None, 1.0, 5_000],
                       ["calls", 0.5, 0, 10, None, None, None, None, "fixed", None, 1.0, 5_000]],
            {"deals": 10.4, "calls": 9.99})
    assert bonuses(r) == {"deals": 5_000.0, "calls": 0.0}
    assert r.employees["kpi_bonus"].iloc[0] == 5_000.0


def test_fixed_exactly_on_the_threshold_is_paid(tmp_path):
    # 3.3 / 3 is 1.0999999999999999 in binary; ROUND(score, 12) = 110% reaches a 110% threshold
    r = run(tmp_path, [["deals", 1.0, 0, 3, None, None, None, None, "fixed", None, 1.1, 700]], {"deals": 3.3})
    assert bonuses(r) == {"deals": 700.0}


def test_proportional_is_pool_times_weight_times_score_capped(tmp_path):
    # pool 20 000 × 30% × 70/80 = 5 250; the other line: 20 000 × 70% × 90/80 = 15 750, max_payout 10 000 → 10 000
    r = run(tmp_path, [["deals", 0.3, 0, 80, None, None, None, None, "proportional"],
                       ["calls", 0.7, 0, 80, None, None, None, None, "proportional", None, None, None, 10_000]],
            {"deals": 70, "calls": 90})
    assert bonuses(r) == {"deals": 5_250.0, "calls": 10_000.0}


def test_proportional_never_pays_a_negative_score(tmp_path):
    # fact 20 below base 40 → score −50% (no floor) → 0, not −5 000
    r = run(tmp_path, [["deals", 1.0, 40, 80, None, None, None, None, "proportional"]], {"deals": 20})
    assert bonuses(r) == {"deals": 0.0}


def test_per_unit_500_for_every_closed_deal_above_10(tmp_path):
    # "500 ₽ for every closed deal above 10": base 10, rate 500; 14 deals → 4 × 500 = 2 000; 8 deals → 0
    rows = [["deals", 1.0, 10, 20, None, None, None, None, "per_unit", 500]]
    assert bonuses(run(tmp_path, rows, {"deals": 14})) == {"deals": 2_000.0}
    assert bonuses(run(tmp_path, rows, {"deals": 8})) == {"deals": 0.0}


def test_per_unit_capped_by_max_payout(tmp_path):
    # 40 deals above 10 → 30 × 500 = 15 000, max_payout 12 000 → 12 000
    rows = [["deals", 1.0, 10, 20, None, None, None, None, "per_unit", 500, None, None, 12_000]]
    assert bonuses(run(tmp_path, rows, {"deals": 40})) == {"deals": 12_000.0}


def test_share_3_percent_of_won_revenue(tmp_path):
    # 3% × 1 234 567.89 = 37 037.0367 → 37 037.04 (digits 2), 37 037 (digits 0)
    rows = [["revenue", 1.0, 0, 1_000_000, None, None, None, None, "share", 0.03]]
    assert bonuses(run(tmp_path, rows, {"revenue": 1_234_567.89})) == {"revenue": 37_037.04}
    assert bonuses(run(tmp_path, rows, {"revenue": 1_234_567.89}, digits=0)) == {"revenue": 37_037.0}


@pytest.mark.parametrize(("tiers", "fact", "expected"), [
    # "3% of won revenue, 5% above plan (1 000 000)"
    ("revenue", 1_200_000, 40_000.0),     # marginal: 1 000 000 × 3% + 200 000 × 5% = 30 000 + 10 000
    ("revenue_r", 1_200_000, 60_000.0),   # retroactive: 1 200 000 × 5%
    ("revenue", 900_000, 27_000.0),       # below plan: 900 000 × 3% either way
    ("revenue_r", 900_000, 27_000.0),
    ("revenue", 1_000_000, 30_000.0),     # exactly on the plan: marginal 1 000 000 × 3%
    ("revenue_r", 1_000_000, 50_000.0),   # retroactive: reaching 1 000 000 takes the 5% tier for all of it
    ("revenue_r", -5_000, 0.0),           # refunds above sales: never a negative commission
])
def test_share_tiered_both_ways(tmp_path, tiers, fact, expected):
    rows = [["revenue", 1.0, 0, 1_000_000, None, None, None, None, "share", None, None, None, None, tiers]]
    assert bonuses(run(tmp_path, rows, {"revenue": fact}, REVENUE)) == {"revenue": expected}


@pytest.mark.parametrize(("tiers", "fact", "expected"), [
    ("deals10", 14, 2_000.0),     # marginal: deals 11..14 at 500 = 4 × 500
    ("deals10_r", 14, 7_000.0),   # retroactive: 14 ≥ 10 → every deal at 500 = 14 × 500
    ("deals10", 9, 0.0),
    ("deals10_r", 10, 5_000.0),   # exactly 10 reaches the tier: 10 × 500
])
def test_per_unit_tiered_both_ways(tmp_path, tiers, fact, expected):
    rows = [["deals", 1.0, 0, 20, None, None, None, None, "per_unit", None, None, None, None, tiers]]
    assert bonuses(run(tmp_path, rows, {"deals": fact}, REVENUE)) == {"deals": expected}


def test_kinds_mix_with_the_coefficient_rule_and_the_multiplier(tmp_path):
    # coefficient: 20 000 × 50% × coefficient(score 120% → 1.1) = 11 000; share 3% × 100 000 = 3 000;
    # KPI bonus 14 000
    r = run(tmp_path, [["deals", 0.5, 0, 10], ["revenue", 0.5, 0, 100_000, None, None, None, None, "share", 0.03]],
            {"deals": 12, "revenue": 100_000})
    assert bonuses(r) == {"deals": 11_000.0, "revenue": 3_000.0}
    assert r.employees["bonus"].iloc[0] == 14_000.0 and r.employees["total_pay"].iloc[0] == 64_000.0


def test_russian_headers_and_values(tmp_path):
    s = sheets([])
    s["Plan"] = [["Должность", "Показатель ID", "Вес", "База", "Норма", "Вид выплаты", "Ставка", "Ступени"],
                 ["Sales", "deals", 0.5, 10, 20, "за единицу", 500, None],
                 ["Sales", "revenue", 0.5, 0, 1_000_000, "доля", None, "выручка"]]
    s["Ступени"] = [["Название", "От", "До", "Ставка", "Режим"], ["выручка", 0, 1_000_000, 0.03, "прогрессивная"],
                    ["выручка", 1_000_000, None, 0.05, "прогрессивная"]]
    problems = Problems()
    plan = read_plan(ph.make_plan(tmp_path, s), problems)
    assert not problems.errors, [str(p) for p in problems]
    assert plan.tiers["выручка"] == Tiers((0, 1_000_000), (0.03, 0.05), "marginal")
    r = compute(plan, pd.DataFrame({"employee_id": "E1", "kpi_id": ["deals", "revenue"], "fact": [14, 1_200_000]}))
    assert bonuses(r) == {"deals": 2_000.0, "revenue": 40_000.0}
    assert list(r.lines["payout"]) == ["per_unit", "share"]


def test_an_empty_payout_is_todays_coefficient_rule(tmp_path):
    r = run(tmp_path, [["deals", 1.0, 100, 150]], {"deals": 160})
    assert bonuses(r) == {"deals": 22_000.0}  # 20 000 × 1 × coefficient(120%) 1.1
    assert list(r.lines["payout"]) == ["coefficient"]


# ------------------------------------------------------------------------------------------- the engine alone


def test_engine_rules_vectorised_match_scalars():
    t = Tiers((0, 10, 25), (1.0, 2.5, 4.0))
    q = np.array([0, 3, 10, 17.5, 25, 40, np.nan])
    # marginal: 17.5 → 10 × 1 + 7.5 × 2.5 = 28.75; 40 → 10 + 15 × 2.5 + 15 × 4 = 107.5
    assert np.array_equal(t.amount(q), [0, 3, 10, 28.75, 47.5, 107.5, np.nan], equal_nan=True)
    r = Tiers(t.starts, t.rates, "retroactive")
    assert np.array_equal(r.amount(q), [0, 3, 25, 43.75, 100, 160, np.nan], equal_nan=True)
    assert [t.amount(x) for x in (3, 17.5)] == [3.0, 28.75]


@pytest.mark.parametrize(("starts", "rates", "mode", "why"), [
    ((100, 200), (0.1, 0.2), "marginal", "start at 0"),
    ((0, 200, 200), (0.1, 0.2, 0.3), "marginal", "increase"),
    ((0, 100), (0.1, -0.2), "marginal", "negative"),
    ((0,), (0.1,), "progressive", "mode"),
])
def test_bad_tiers_are_refused_by_the_engine(starts, rates, mode, why):
    with pytest.raises(KpiError, match=why):
        Tiers(starts, rates, mode)


def test_negative_rates_are_refused_for_scalars():
    with pytest.raises(KpiError, match="negative"):
        payout.share_bonus(100, -0.03)
    assert math.isnan(payout.share_bonus(np.array([100.0]), np.array([-0.03]))[0])


@pytest.mark.parametrize("digits", [0, 1, 2, 3, 4])
def test_formula_text_spells_the_digits_in_every_round(digits):
    t = Tiers((0, 1e6), (0.03, 0.05))
    refs = fx.PayoutRefs("P", "W", "C", "S", "F", "B", "R", "T", "A", "M")
    for kind in payout.PAYOUT_KINDS:
        text = fx.payout_formula(kind, refs, digits)
        money = [d for d in round_digits(text) if d != "12"]  # ROUND(score,12) compares a score
        assert money == [str(digits)], (kind, text)
    assert round_digits(fx.share_formula("F", max_payout="M", digits=digits, tiers=t)) == [str(digits)]


def round_digits(text: str) -> list[str]:
    """The digits argument of every ROUND( in a formula (the text after its last top-level comma)."""
    out = []
    start = text.find("ROUND(")
    while start >= 0:
        depth, i, comma = 0, start + len("ROUND("), -1
        while True:
            ch = text[i]
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                comma = i
            i += 1
        out.append(text[comma + 1:i])
        start = text.find("ROUND(", start + 1)
    return out


# ------------------------------------------------------------------------------------------- validation


def problems_of(tmp_path, rows, tiers=None) -> Problems:
    problems = Problems()
    read_plan(ph.make_plan(tmp_path, sheets(rows, tiers)), problems)
    return problems


def _row(*payout_cells: Any, kpi: str = "deals") -> list[Any]:
    return [kpi, 1.0, 0, 10, None, None, None, None, *payout_cells]


@pytest.mark.parametrize(("row", "tiers", "text", "sheet", "column", "at_row"), [
    (_row("fixed", None, None, 5_000), None, "a fixed payout needs its threshold", "Plan", "M", 2),
    (_row("fixed", None, 1.0), None, "a fixed payout needs its amount", "Plan", "N", 2),
    (_row("per_unit"), None, "needs a rate or a tier set", "Plan", "L", 2),
    (_row("share", None, kpi="revenue"), None, "needs a rate or a tier set", "Plan", "L", 2),
    (_row("per_unit", -500), None, "rate -500 is below 0", "Plan", "L", 2),
    (_row("share", 0.03, None, None, None, "revenue", kpi="revenue"), REVENUE, "both a rate and a tier set", "Plan",
     "L", 2),
    (_row("bonus"), None, 'unknown payout kind "bonus"', "Plan", "K", 2),
    (_row("share", None, None, None, None, "rev", kpi="revenue"), REVENUE, 'unknown tier set "rev"', "Plan", "P", 2),
    (_row("share", None, None, None, None, "rev", kpi="revenue"), None, "has no Tiers sheet", "Plan", "P", 2),
    (_row(None, None, None, None, None, "revenue"), REVENUE, "tiers apply to per_unit and share", "Plan", "P", 2),
    (_row("share", 0.03), None, 'KPI deals is measured in "pcs"', "Plan", "K", 2),
    (_row("fixed", None, 1.0, -5), None, "amount -5 is below 0", "Plan", "N", 2),
    (_row("per_unit", None, None, None, None, "t"),
     [["tiers", "from", "to", "rate"], ["t", 0, 900, 1], ["t", 1000, None, 2]], "the tiers leave a gap", "Tiers", "C",
     2),
    (_row("per_unit", None, None, None, None, "t"),
     [["tiers", "from", "to", "rate"], ["t", 0, 1100, 1], ["t", 1000, None, 2]], "the tiers overlap", "Tiers", "C", 2),
    (_row("per_unit", None, None, None, None, "t"),
     [["tiers", "from", "to", "rate"], ["t", 0, None, 1], ["t", 0, None, 2]], "two tiers start at 0", "Tiers", "B", 3),
    (_row("per_unit", None, None, None, None, "t"),
     [["tiers", "from", "to", "rate"], ["t", 100, None, 1]], "the first tier starts at 100, not at 0", "Tiers", "B",
     2),
    (_row("per_unit", None, None, None, None, "t"),
     [["tiers", "from", "to", "rate"], ["t", 0, 10, 1], ["t", 10, 20, 2]], "the last tier (row 3) ends at 20", "Tiers",
     "C", 3),
    (_row("per_unit", None, None, None, None, "t"),
     [["tiers", "from", "to", "rate"], ["t", 0, None, -1]], "rate -1 is below 0", "Tiers", "D", 2),
    (_row("per_unit", None, None, None, None, "t"),
     [["tiers", "from", "to", "rate", "mode"], ["t", 0, None, 1, "marginal"], ["t", 5, None, 2, "retroactive"]],
     "mix marginal and retroactive", "Tiers", "E", 2),
])
def test_each_bad_payout_is_a_located_error_with_a_fix(tmp_path, row, tiers, text, sheet, column, at_row):
    p = ph.only(problems_of(tmp_path, [row], tiers), text)
    assert p.is_error and p.fix, str(p)
    assert (p.sheet, p.column, p.row) == (sheet, column, at_row), str(p)


def test_a_line_naming_a_broken_tier_set_says_so_not_unknown(tmp_path):
    tiers = [["tiers", "from", "to", "rate"], ["t", 0, 900, 1], ["t", 1000, None, 2]]
    problems = problems_of(tmp_path, [_row("per_unit", None, None, None, None, "t")], tiers)
    p = ph.only(problems, 'tier set "t" has errors')
    assert (p.sheet, p.column, p.row) == ("Plan", "P", 2)
    assert not ph.matching(problems, "unknown tier set")


def test_a_share_on_a_money_kpi_and_good_tiers_are_accepted(tmp_path):
    problems = problems_of(tmp_path, [_row("share", None, None, None, None, "revenue", kpi="revenue")], REVENUE)
    assert not problems.errors and not problems.warnings, [str(p) for p in problems]


def test_max_payout_on_a_coefficient_line_is_a_warning(tmp_path):
    p = ph.only(problems_of(tmp_path, [_row(None, None, None, None, 1000)]), "max_payout is not used")
    assert not p.is_error and p.column == "O"


def test_an_unpayable_line_is_an_error_in_the_results_not_a_guess(tmp_path):
    s = sheets([_row("per_unit")])
    plan = read_plan(ph.make_plan(tmp_path, s), Problems())
    r = compute(plan, pd.DataFrame({"employee_id": ["E1"], "kpi_id": ["deals"], "fact": [12]}))
    assert r.employees["status"].iloc[0] == "error" and math.isnan(r.employees["bonus"].iloc[0])
    assert "payout" in r.employees["reason"].iloc[0]


def test_a_payout_beyond_the_amount_limit_is_an_error_naming_the_line(tmp_path):
    # 3 000 000 000 per deal × 4 000 deals above 10 = 1.2e13, beyond the 1e13 an Excel cell keeps to the kopeck
    r = run(tmp_path, [["deals", 1.0, 10, 20, None, None, None, None, "per_unit", 3e9]], {"deals": 4_010})
    assert r.employees["status"].iloc[0] == "error" and math.isnan(r.employees["bonus"].iloc[0])
    (item,) = r.extra["over_limit"]
    assert "the per_unit payout 12 000 000 000 000 (Plan row 2, fact 4010)" in item["message"], item["message"]
    from xl_kpi.i18n import render

    assert render(item["message"], "ru").startswith("KPI deals: выплата вида per_unit 12 000 000 000 000 (строка Plan "
                                                    "2, факт 4010) не меньше "), render(item["message"], "ru")
    assert r.employees["reason"].iloc[0] == item["message"]  # the results' language: English here


# ------------------------------------------------------------------------------------------- summary and cards


def test_summary_payouts_sheet_totals_by_kind_and_only_when_used(tmp_path):
    r = run(tmp_path, [["deals", 0.5, 10, 20, None, None, None, None, "per_unit", 500],
                       ["revenue", 0.5, 0, 1_000_000, None, None, None, None, "share", None, None, None, None,
                        "revenue"]], {"deals": 14, "revenue": 1_200_000}, REVENUE)
    wb = openpyxl.load_workbook(write_summary(r, tmp_path / "summary.xlsx"))
    ws = wb["Payouts"]
    assert ws["O2"].value.startswith("=IF(ISNUMBER(G2)") and "SUMPRODUCT" in ws["O3"].value
    cached = openpyxl.load_workbook(tmp_path / "summary.xlsx", data_only=True)["Payouts"]
    assert (cached["O2"].value, cached["O3"].value) == (2_000.0, 40_000.0)
    by_kind = {cached.cell(row, 17).value: cached.cell(row, 19).value for row in range(2, 6)}
    assert by_kind == {"fixed": 0.0, "proportional": 0.0, "per_unit": 2_000.0, "share": 40_000.0}
    plain = run(tmp_path, [["deals", 1.0, 100, 150]], {"deals": 160})
    assert "Payouts" not in openpyxl.load_workbook(write_summary(plain, tmp_path / "plain.xlsx")).sheetnames


def test_card_bonus_cell_is_the_kinds_live_formula(tmp_path):
    r = run(tmp_path, [["deals", 0.5, 10, 20, None, None, None, None, "per_unit", 500],
                       ["revenue", 0.5, 0, 1_000_000, None, None, None, None, "share", None, None, None, None,
                        "revenue_r"]], {"deals": 14, "revenue": 1_200_000}, REVENUE)
    (rec,) = write_cards(r, tmp_path / "out", fsync=False)
    texts = [c.value for row in openpyxl.load_workbook(rec.path).worksheets[0].iter_rows() for c in row
             if isinstance(c.value, str) and c.value.startswith("=")]
    assert any("*MAX(" in t and "500*" in t for t in texts), texts  # 500 × MAX(fact − 10, 0)
    assert any("LOOKUP(MAX(" in t and "{0,1000000}" in t for t in texts), texts  # retroactive tiers


def test_card_leaves_the_coefficient_empty_on_a_line_another_kind_pays(tmp_path):
    """A per_unit or share line has no coefficient: the card shows none rather than the scale's, which pays nothing."""
    r = run(tmp_path, [["deals", 0.5, 10, 20, None, None, None, None, "per_unit", 500],
                       ["calls", 0.5, 100, 150]], {"deals": 14, "calls": 160})
    (rec,) = write_cards(r, tmp_path / "out", fsync=False)
    ws = openpyxl.load_workbook(rec.path).worksheets[0]
    name_cells = {c.value: c.row for row in ws.iter_rows() for c in row if c.value in ("Closed deals", "Calls")}
    formulas = {row: [c.value for c in ws[row] if isinstance(c.value, str) and c.value.startswith("=")]
                for row in name_cells.values()}
    coefficient = [f for f in formulas[name_cells["Calls"]] if "LOOKUP" in f or "IF(ROUND(" in f]
    assert coefficient, formulas  # the coefficient line keeps its live coefficient formula
    assert len(formulas[name_cells["Closed deals"]]) == len(formulas[name_cells["Calls"]]) - 1, formulas
