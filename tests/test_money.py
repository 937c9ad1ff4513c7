"""round_money must agree with Excel's ROUND: half away from zero on the shown decimal."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xl_kpi import round_money


@pytest.mark.parametrize(
    ("x", "digits", "expected"),
    [
        (2.675, 2, 2.68),
        (-2.675, 2, -2.68),
        (-0.5, 0, -1.0),
        (0.5, 0, 1.0),
        (1.5, 0, 2.0),
        (2.5, 0, 3.0),
        (0.125, 2, 0.13),
        (1.005, 2, 1.01),
        (8800.0, 2, 8800.0),
        (1234.5, -1, 1230.0),
        (1235.0, -1, 1240.0),
        (-0.004, 2, 0.0),
        (0.285, 2, 0.29),
        (1e20, 2, 1e20),
    ],
)
def test_excel_round_examples(x, digits, expected):
    assert round_money(x, digits) == expected


def test_negative_zero_is_plain_zero():
    assert math.copysign(1.0, round_money(-0.001)) == 1.0


def test_python_round_would_be_wrong_here():
    # the reason round_money exists: banker's rounding on binary values
    assert round(2.675, 2) == 2.67 and round(0.5) == 0
    assert round_money(2.675) == 2.68 and round_money(0.5, 0) == 1.0


def test_vector_nan_and_series():
    out = round_money(np.array([2.675, np.nan, -0.125]))
    assert out[0] == 2.68 and math.isnan(out[1]) and out[2] == -0.13
    s = round_money(pd.Series([1.115, 2.5], index=["a", "b"], name="bonus"), 1)
    assert list(s.index) == ["a", "b"] and s.name == "bonus"


def test_digits_must_be_whole():
    with pytest.raises(TypeError):
        round_money(1.0, 1.5)


def _excel_reference(x: float, digits: int) -> float:
    q = Decimal(1).scaleb(-digits)
    return float(Decimal(format(x, ".15g")).quantize(q, rounding=ROUND_HALF_UP))


@given(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=4),
)
def test_fast_path_agrees_with_decimal_reference(x, digits):
    assert round_money(x, digits) == _excel_reference(x, digits)


@given(st.integers(min_value=-10**9, max_value=10**9), st.integers(min_value=0, max_value=3))
def test_exact_ties_round_away_from_zero(n, digits):
    # n + 0.5 units of the last digit, written as decimal text: always a tie on paper
    x = float(Decimal(n).scaleb(-digits) + Decimal(5).scaleb(-digits - 1))
    expected = float((Decimal(n).scaleb(-digits) + Decimal(5).scaleb(-digits - 1)).quantize(
        Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))
    assert round_money(x, digits) == expected
