"""The payout-kind Excel functions (issue 15): KPI_FIXED, KPI_PROPORTIONAL, KPI_PER_UNIT, KPI_SHARE.

They call the engine's rules (the numbers are those of docs/plan.md "Payout kinds", worked by hand), take tiers
as a two-column range, spill over ranges, and turn bad input into Excel error values; the demo workbook's rows
give the documented numbers.
"""

from __future__ import annotations

import openpyxl
import pytest

import udfs
from tests.test_udfs import DEMO, _Sheet
from udfs import ERR_NA, ERR_NUM, ERR_VALUE
from xl_kpi.engine import payout

TIERS = [["from", "rate"], [0, 0.03], [1_000_000, 0.05]]


def test_worked_examples():
    assert udfs.KPI_FIXED(1.04, 1.0, 5_000) == 5_000.0 and udfs.KPI_FIXED(0.999, 1.0, 5_000) == 0.0
    assert udfs.KPI_FIXED(3.3 / 3, 1.1, 700) == 700.0  # 1.0999999999999999 is 110% at 12 decimals
    assert udfs.KPI_PROPORTIONAL(20_000, 0.3, 0.875) == 5_250.0  # 20 000 × 30% × 87.5%
    assert udfs.KPI_PROPORTIONAL(20_000, 0.3, 0.875, 5_000) == 5_000.0
    assert udfs.KPI_PROPORTIONAL(20_000, 0.3, -0.5) == 0.0
    assert udfs.KPI_PER_UNIT(14, 10, 500) == 2_000.0  # 4 deals above 10 × 500
    assert udfs.KPI_PER_UNIT(8, 10, 500) == 0.0
    assert udfs.KPI_SHARE(1_200_000, 0.03) == 36_000.0
    assert udfs.KPI_SHARE(1_234_567.89, 0.03, None, None, 0) == 37_037.0  # 37 037.0367 to whole roubles


def test_tiers_as_a_range_both_modes():
    # marginal: 1 000 000 × 3% + 200 000 × 5% = 40 000; retroactive 1 200 000 × 5% = 60 000
    assert udfs.KPI_SHARE(1_200_000, TIERS) == 40_000.0
    assert udfs.KPI_SHARE(1_200_000, TIERS, None, "retroactive") == 60_000.0
    assert udfs.KPI_SHARE(1_200_000, TIERS, None, "Ретроактивная") == 60_000.0
    assert udfs.KPI_SHARE(1_200_000, TIERS, 50_000, "retroactive") == 50_000.0
    deals = [[0, 0], [10, 500]]  # every deal above 10 pays 500; retroactive: reaching 10 pays all of them
    assert udfs.KPI_PER_UNIT(14, 0, deals) == 2_000.0
    assert udfs.KPI_PER_UNIT(14, 0, deals, None, "retroactive") == 7_000.0


def test_a_range_of_facts_spills_and_a_missing_fact_is_na():
    assert udfs.KPI_SHARE([[1_200_000], [900_000], [None]], TIERS) == [[40_000.0], [27_000.0], [ERR_NA]]


@pytest.mark.parametrize(("call", "error"), [
    (lambda: udfs.KPI_SHARE(100, -0.03), ERR_NUM),                       # a negative rate
    (lambda: udfs.KPI_SHARE(100, [[100, 0.03], [200, 0.05]]), ERR_NUM),  # the first tier not at 0
    (lambda: udfs.KPI_SHARE(100, [[0, 0.03], [0, 0.05]]), ERR_NUM),      # two tiers from 0: they overlap
    (lambda: udfs.KPI_SHARE(100, [[0, 0.03, 1]]), ERR_VALUE),            # not two columns
    (lambda: udfs.KPI_SHARE(100, TIERS, None, "progressive"), ERR_VALUE),
    (lambda: udfs.KPI_SHARE("lots", 0.03), ERR_VALUE),
    (lambda: udfs.KPI_FIXED(1, None, 5_000), ERR_NA),
    (lambda: udfs.KPI_PER_UNIT(14, 10, 500, None, None, 0.5), ERR_NUM),  # digits must be whole
])
def test_bad_input_is_an_excel_error(call, error):
    assert call() == error


def test_the_functions_are_the_engine():
    t = payout.Tiers((0, 1_000_000), (0.03, 0.05), "retroactive")
    for fact in (0.0, 999_999.99, 1_000_000.0, 1_234_567.89):
        assert udfs.KPI_SHARE(fact, TIERS, None, "retroactive") == payout.share_bonus(fact, tiers=t)


def test_demo_rows_give_the_documented_numbers():
    s = _Sheet(openpyxl.load_workbook(DEMO)["KPI matrix"])
    assert s.value("B54") == 5_000.0       # deals score 120% ≥ 100%
    assert s.value("B56") == 9_600.0       # 20 000 × 40% × 120%
    assert s.value("B58") == 2_000.0       # 14 deals: 4 above 10 × 500
    assert s.value("B60") == 36_000.0      # 3% of 1 200 000
    assert s.value("B61") == 40_000.0      # tiered, marginal
    assert s.value("B64") == 60_000.0      # tiered, retroactive, below the 100 000 cap
