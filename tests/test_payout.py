"""engine/payout.py and engine/formulas.py: the one home of the money rules (issue 10 §1).

The figures are docs/domain.md's worked examples and hand-derived amounts; the library's public functions
(``xl_kpi.bonus``, ``total_bonus``) must give what the payout rules give, and the formula text must name
the cells it is given and carry ``digits`` into every ROUND.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xl_kpi
from xl_kpi import DEFAULT_SCALE, Scale
from xl_kpi.engine import formulas as fx
from xl_kpi.engine import payout

# ---------------------------------------------------------------------------------------------- payout


def test_domain_worked_example():
    # pool 20 000, weight 0.4, 160 deals against base 100 / norm 150 → 120% → 1.1 → 8 800
    s = xl_kpi.score(160, 100, 150)
    assert payout.line_bonus(20_000, 0.4, xl_kpi.coefficient(s)) == 8_800.0
    # lower is better: base 10 complaints, norm 5, fact 4 → 120% → 1.1; weight 0.6 → 13 200
    lines = [payout.line_bonus(20_000, 0.4, 1.1), payout.line_bonus(20_000, 0.6, xl_kpi.coefficient(
        xl_kpi.score(4, 10, 5)))]
    assert lines == [8_800.0, 13_200.0]
    assert payout.kpi_bonus(lines) == 22_000.0


def test_digits_reach_the_line_and_the_period_bonus():
    assert payout.line_bonus(20_000.55, 0.4, 1.1) == 8_800.24
    assert payout.line_bonus(20_000.55, 0.4, 1.1, digits=0) == 8_800.0
    assert payout.line_bonus(20_000.55, 0.4, 1.1, digits=None) == pytest.approx(8_800.242)
    assert payout.period_bonus(8_800.5, digits=0) == 8_801.0  # half away from zero, not to even
    assert payout.period_bonus(12_345.678, 1.0, 1.0, digits=-2) == 12_300.0
    assert payout.total_pay(50_000.4444, 8_800.5, digits=1) == 58_800.9


def test_kpi_bonus_per_employee_keeps_first_seen_order_and_nan():
    out = payout.kpi_bonus([100.0, 0.1, 0.2, np.nan, 5.0], ["b", "a", "a", "c", "c"])
    assert list(out.index) == ["b", "a", "c"]
    assert out["b"] == 100.0 and out["a"] == 0.3  # 0.1 + 0.2 = 0.30000000000000004, rounded
    assert math.isnan(out["c"])  # a missing line is no guess
    with pytest.raises(xl_kpi.KpiError, match="one employee id per line"):
        payout.kpi_bonus([1.0, 2.0], ["a"])


def test_gate_compares_the_rounded_score():
    # 0.7 − 1e-13 is 70% on paper: it reaches a 70% gate; 0.7 − 1e-11 does not
    assert payout.gate_failed(0.7 - 1e-13, 0.7) is False
    assert payout.gate_failed(0.7 - 1e-11, 0.7) is True
    assert payout.gate_failed(3.3 / 3, 1.1) is False  # 1.0999999999999999
    assert payout.gate_failed(float("nan"), 0.5) is False and payout.gate_failed(0.1, float("nan")) is False
    g = payout.gated([0.4, 1.2, 1.0, 0.2], [0.5, np.nan, 0.5, np.nan], ["a", "a", "b", "c"])
    assert g.to_dict() == {"a": True, "b": False, "c": False}


def test_bands_and_gates_round_the_score_like_excel():
    """ROUND(0.7000000000005, 12) is 0.700000000001 in Excel (half away from zero); np.round gives 0.7 (to even).
    The card compares with Excel's ROUND, so the engine must too: bands and gates alike."""
    t = 0.700000000001
    x = 0.7000000000005
    assert Scale.steps([(t, 1.0)])(x) == 1.0
    assert payout.gate_failed(x, t) is False
    assert float(payout.score_key(x)) == t


@settings(max_examples=300, deadline=None, derandomize=True)
@given(x=st.one_of(st.floats(-5e3, 5e3, allow_nan=False),
                   st.integers(-10**15, 10**15).map(lambda n: n / 10**13),  # 13 decimals: ties at the 12th
                   st.integers(-10**14, 10**14).map(lambda n: n / 10**14 + 5e-13)))
def test_round_score_is_round_money_at_12_decimals(x):
    """The vectorised score rounding gives exactly what the decimal-exact money rounding gives."""
    from xl_kpi.engine.money import round_money, round_score

    assert round_score(np.array([x]))[0] == round_money(x, 12)


def test_period_bonus_gate_multiplier_proration():
    assert payout.period_bonus(20_800, multiplier=1.2, proration=0.5) == 12_480.0
    assert payout.period_bonus(20_800, 1.2, payout.prorate(15, 31)) == 12_077.42  # ROUND(20800×1.2×15/31)
    got = payout.period_bonus(np.array([1000.0, 1000.0, np.nan]), np.array([1.0, 0.85, 1.0]), 1.0,
                              gated=np.array([True, False, False]))
    assert got[0] == 0.0 and got[1] == 850.0 and math.isnan(got[2])


def test_prorate():
    assert payout.prorate(19, 31) == 19 / 31
    assert payout.prorate(40, 31) == 1.0 and payout.prorate(-3, 31) == 0.0
    assert np.isnan(payout.prorate([5.0], [0.0])[0])
    with pytest.raises(xl_kpi.KpiError, match="at least one day"):
        payout.prorate(5, 0)


def test_weighted_score_is_excel_rounded():
    assert payout.weighted_score([0.4, 0.6], [1.2, 1.0]) == 1.08
    # 0.1×3 = 0.30000000000000004: equal on paper, equal after the 12-decimal ROUND
    assert payout.weighted_score([0.1, 0.9], [3.0, 0.0]) == payout.weighted_score([1.0], [0.3])
    # a tie at the 13th decimal goes away from zero (np.round would go to even: 0.000000000002)
    assert payout.weighted_score([1.0], [2.5e-12]) == 3e-12
    ws = payout.weighted_score([0.5, 0.5, 1.0, 1.0], [1.0, np.nan, 0.9, np.inf], ["a", "a", "b", "c"])
    assert math.isnan(ws["a"]) and ws["b"] == 0.9 and ws["c"] == np.inf
    assert ws.name == "weighted_score"


def test_summary_weighted_scores_is_the_engine():
    from xl_kpi.outputs.summary import weighted_scores

    lines = pd.DataFrame({"employee_id": ["a", "a", "b"], "weight": [0.4, 0.6, 1.0], "score": [1.2, 1.0, 2.5e-12]})
    got = weighted_scores(lines)
    exp = payout.weighted_score(lines["weight"], lines["score"], lines["employee_id"])
    pd.testing.assert_series_equal(got, exp)
    assert got["b"] == 3e-12


scores_st = st.floats(-1.0, 3.0, allow_nan=False).map(lambda x: round(x, 6))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(pool=st.integers(0, 200_000).map(lambda x: x / 4), s1=scores_st, s2=scores_st,
       w=st.integers(0, 20).map(lambda x: x / 20), m=st.sampled_from([1.0, 0.85, 1.2]),
       p=st.sampled_from([1.0, 0.5, 19 / 31]), digits=st.integers(0, 4), gate=st.sampled_from([None, 0.7]))
def test_library_total_bonus_is_the_batch_rule(pool, s1, s2, w, m, p, digits, gate):
    """The public total_bonus gives the batch's period bonus: multiplier, proration, gate and digits included."""
    weights, scores = [w, 1.0 - w], [s1, s2]
    pairs = list(zip(weights, scores, strict=True))
    lines = [payout.line_bonus(pool, wi, xl_kpi.coefficient(si), digits=digits) for wi, si in pairs]
    assert lines == [xl_kpi.bonus(pool, wi, si, digits=digits) for wi, si in pairs]
    kb = payout.kpi_bonus(lines, digits=digits)
    gated = gate is not None and bool(payout.gate_failed(s1, gate))
    expected = payout.period_bonus(kb, m, p, gated=gated, digits=digits)
    got = xl_kpi.total_bonus(pool, weights, scores, gate={0: gate} if gate is not None else None, multiplier=m,
                             proration=p, digits=digits)
    assert got == expected


def test_total_bonus_2d_with_a_multiplier_per_row():
    scores = pd.DataFrame({"deals": [1.2, 1.2], "complaints": [1.0, 0.5]}, index=["E1", "E2"])
    got = xl_kpi.total_bonus(20_000, [0.4, 0.6], scores, multiplier=np.array([1.2, 1.0]), gate={"complaints": 0.7})
    assert got.to_dict() == {"E1": 24_960.0, "E2": 0.0}


# ---------------------------------------------------------------------------------------------- formulas


def test_score_formula_names_its_cells():
    assert fx.score_formula("G11", "E11", "F11") == 'IF(ISNUMBER(G11),(G11-E11)/(F11-E11),"")'
    assert fx.score_formula("G11", "100", "150", fx.literal(0), fx.literal(1.5)) == \
        'IF(ISNUMBER(G11),MIN(MAX((G11-100)/(150-100),0),1.5),"")'
    assert fx.literal(-5) == "(-5)"  # G11-(-5), never G11--5


def test_coefficient_formula_steps_linear_cap():
    steps = fx.coefficient_formula("H11", fx.ScaleRefs.of(DEFAULT_SCALE))
    assert steps == 'IF(ISNUMBER(H11),IF(ROUND(H11,12)<0.7,0,LOOKUP(ROUND(H11,12),{0.7,1,1.1},{0.9,1,1.1})),"")'
    sc = Scale.linear([(0.5, 0.4), (1.0, 1.0)], cap=0.9)
    lin = fx.coefficient_formula("H11", fx.ScaleRefs.cells(sc, "D", "E", [30, 31], cap_row=32))
    assert lin.startswith('IF(ISNUMBER(H11),MIN(IF(H11<=$D$30,$E$30,IF(H11>=$D$31,$E$31,')
    assert "MATCH(H11,$D$30:$D$31,1)" in lin and lin.endswith(',$E$32),"")')


@pytest.mark.parametrize("digits", [0, 1, 2, 3, 4])
def test_digits_reach_every_round(digits):
    texts = [fx.line_bonus_formula("$D$17", "D11", "I11", digits),
             fx.period_bonus_formula("J20", "$D$18", "$D$19", digits, fx.gate_condition([("H11", "0.5")])),
             fx.total_pay_formula("$D$16", "J21", digits)]
    for t in texts:
        money_rounds = [m for m in re.findall(r"ROUND\((.*?),(-?\d+)\)", t) if m[1] != "12"]
        assert money_rounds and all(d == str(digits) for _, d in money_rounds), t
    assert texts[1] == f"IF(OR(IF(ISNUMBER(H11),ROUND(H11,12)<0.5,FALSE)),0,ROUND(J20*$D$18*$D$19,{digits}))"
    assert fx.total_pay_formula("80000", "ROUND(J20*1*1,2)", digits) == f"ROUND(80000+(ROUND(J20*1*1,2)),{digits})"


def test_gate_condition_and_weighted_score_formula():
    assert fx.gate_condition([]) is None
    assert fx.period_bonus_formula("J20", "1", "1", 2, None) == "ROUND(J20*1*1,2)"
    assert fx.weighted_score_formula("B2:B4", "C2:C4") == "ROUND(SUMPRODUCT(B2:B4,C2:C4),12)"


# ---------------------------------------------------------------------------------------------- cards


def _fixture():
    from tests import _results_fixture

    return _results_fixture


def test_card_caches_only_what_results_hold():
    """No Python fallback on the card: an employee in error (no fact) gets no cached totals, and the
    card asks the office suite to recalculate; the others cache exactly the results' amounts."""
    from xl_kpi.outputs.cards import CardTemplate, render_card
    from xl_kpi.outputs.ooxml import read_parts

    fx_ = _fixture()
    res = fx_.sample_results()
    lines = res.lines.copy()
    lines.loc[(lines["employee_id"] == "E001") & (lines["kpi_id"] == "deals"), "fact"] = np.nan
    emps = res.employees[["employee_id", "name", "position", "department", "manager", "email", "salary",
                          "bonus_pool", "multiplier", "proration"]]
    broken = fx_.compute(lines, emps, fx_.SCALES)
    assert broken.employees.set_index("employee_id").loc["E001", "status"] == "error"
    tpl = CardTemplate.load(lang="en")
    parts = read_parts(render_card(tpl, broken, "E001"))
    sheet = parts[tpl.sheet_part].decode()
    assert 'fullCalcOnLoad="1"' in parts["xl/workbook.xml"].decode()
    assert re.search(r"<f>ROUND\([^<]*\+[^<]*\)</f></c>", sheet)  # total pay: a formula without a value
    ok = read_parts(render_card(tpl, broken, "E002"))
    total = float(broken.employees.set_index("employee_id").loc["E002", "total_pay"])
    assert f"<v>{total:.15g}</v>" in ok[tpl.sheet_part].decode()  # number_text drops a trailing .0


@pytest.mark.parametrize("digits", [0, 3])
def test_card_formulas_round_to_the_results_digits(digits):
    from xl_kpi.outputs.cards import CardTemplate, render_card
    from xl_kpi.outputs.ooxml import read_parts

    fx_ = _fixture()
    res = fx_.sample_results()
    emps = res.employees[["employee_id", "name", "position", "department", "manager", "email", "salary",
                          "bonus_pool", "multiplier", "proration"]]
    again = fx_.compute(res.lines, emps, fx_.SCALES, digits=digits)
    tpl = CardTemplate.load(lang="en")
    sheet = read_parts(render_card(tpl, again, "E004"))[tpl.sheet_part].decode()
    rounds = re.findall(r"ROUND\(((?:[^()]|\([^()]*\))*),(-?\d+)\)", sheet.replace("&amp;", "&"))
    money = [d for _, d in rounds if d != "12"]
    assert len(money) >= 5 and set(money) == {str(digits)}
