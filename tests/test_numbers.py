"""The number, date, period and yes/no readers (issue 9 §8): a value or the package's own error."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from xl_kpi.engine.period import Period, PeriodError
from xl_kpi.inputs.cells import (
    FAR_FUTURE,
    NumberFormatError,
    parse_number,
    to_dates,
    to_flags_checked,
    to_numbers,
)


@pytest.mark.parametrize("text", ["%", "₽", "руб.", "EUR", "()", "-", "( )", "$ %"])
def test_a_cell_of_only_a_sign_is_not_a_number(text):
    with pytest.raises(NumberFormatError, match="holds no digits"):
        parse_number(text)


def test_decimal_overflow_is_a_number_error():
    with pytest.raises(NumberFormatError, match="too large or too small"):
        parse_number("1e9999999%")


def test_negative_in_parentheses_is_contradictory():
    with pytest.raises(NumberFormatError, match="contradictory"):
        parse_number("(-5)")
    assert parse_number("(5)") == -5.0


def test_underflow_is_an_error_not_zero():
    with pytest.raises(NumberFormatError, match="too small"):
        parse_number("1e-400")
    assert parse_number("0e-400") == 0.0


def test_unicode_digits_read_alike_in_a_mixed_column():
    nums, errs = to_numbers(pd.Series(["100", "١٦٠", "１６０"]))
    assert nums.tolist() == [100.0, 160.0, 160.0] and errs.isna().all()


def test_309_digit_integer_in_an_integer_column_is_a_cell_error():
    nums, errs = to_numbers(pd.Series(["9" * 309, "2"]))
    assert pd.isna(nums[0]) and nums[1] == 2.0 and "too large" in errs[0]


def test_huge_python_int_cell_is_a_number_error():
    with pytest.raises(NumberFormatError, match="too large"):
        parse_number(10 ** 400)


@pytest.mark.parametrize("value", ["31.12.9999", "9999-12-31", dt.datetime(9999, 12, 31), dt.date(3000, 1, 1)])
def test_dates_after_pandas_range_are_the_far_future(value):
    dates, errs = to_dates(pd.Series([value, "01.10.2026"], dtype=object))
    assert dates[0] == FAR_FUTURE and dates[1] == pd.Timestamp("2026-10-01") and errs.isna().all()
    assert dates.dtype == "datetime64[ns]"


@pytest.mark.parametrize("value", ["01.01.0001", "0001-01-01", dt.date(1, 1, 1), "01.01.1600"])
def test_dates_before_pandas_range_are_cell_errors(value):
    dates, errs = to_dates(pd.Series([value], dtype=object))
    assert pd.isna(dates[0]) and "before 22.09.1677" in errs[0]


def test_datetime_column_of_wide_unit_fits_nanoseconds():
    dates, errs = to_dates(pd.Series(pd.to_datetime(["9999-12-31", "2026-01-01"])).astype("datetime64[s]"))
    assert dates.dtype == "datetime64[ns]" and dates[0] == FAR_FUTURE and errs.isna().all()


@pytest.mark.parametrize("value", ["9999-12", "01.0001", "31.12.9999", dt.date(9999, 12, 31), "1899-12"])
def test_implausible_periods_are_errors(value):
    with pytest.raises(PeriodError, match="not a plausible period"):
        Period.parse(value)


def test_yes_no_junk_is_named():
    flags, errs = to_flags_checked(pd.Series(["maybe", "да", None, "", "x", 2], dtype=object))
    assert flags.tolist()[1] is True and flags.tolist()[4] is True
    assert "neither yes nor no" in errs[0] and "neither yes nor no" in errs[5]
    assert errs[[1, 2, 3, 4]].isna().all()
