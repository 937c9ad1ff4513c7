"""Property tests (hypothesis) of the number reader, the date reader and the source parser (issue 9 §8):
every input gives a value or the package's own error (a KpiError), never anything else."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xl_kpi import KpiError
from xl_kpi.engine.period import Period
from xl_kpi.inputs.cells import EARLIEST, FAR_FUTURE, parse_date, parse_number, to_dates, to_numbers
from xl_kpi.inputs.sources import Source, parse

FAST = settings(max_examples=300, deadline=None)

# pieces people (and fuzzers) type into number cells
NUMBER_BITS = st.sampled_from(["1", "0", "9", "12", "234", "١", "５", ".", ",", " ", "\u00a0", "'", "%", "(", ")",
                               "-", "+", "−", "e", "E", "e-400", "e9999999", "₽", "руб.", "EUR", "$", "N/A"])
number_text = st.one_of(st.text(max_size=30), st.lists(NUMBER_BITS, max_size=12).map("".join))
cells = st.one_of(number_text, st.none(), st.booleans(), st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
                  st.floats(), st.dates(), st.datetimes())


@FAST
@given(cells)
def test_parse_number_gives_a_finite_float_none_or_a_kpi_error(value):
    try:
        x = parse_number(value)
    except KpiError:
        return
    assert x is None or (isinstance(x, float) and math.isfinite(x))


@pytest.mark.slow
@FAST
@given(st.lists(number_text, min_size=1, max_size=6), st.sampled_from(["1", "2.5", "40"]))
def test_to_numbers_agrees_with_parse_number_cell_by_cell(texts, plain):
    column = pd.Series([plain, *texts], dtype=object)
    nums, errs = to_numbers(column)
    for v, n, e in zip(column, nums, errs, strict=True):
        try:
            x = parse_number(v)
        except KpiError:
            assert isinstance(e, str) and math.isnan(n)
            continue
        assert (x is None and math.isnan(n)) or n == x


DATE_BITS = st.sampled_from(["31", "12", "9999", "0001", "2026", "1677", "2262", "10", ".", "-", "/", " ", ":",
                             "T", "00", "99", "٣"])
date_text = st.one_of(st.text(max_size=25), st.lists(DATE_BITS, max_size=10).map("".join))
date_cells = st.one_of(date_text, st.none(), st.dates(), st.datetimes(), st.floats(), st.integers())


@pytest.mark.slow
@FAST
@given(st.lists(date_cells, min_size=1, max_size=6))
def test_to_dates_gives_dates_in_range_or_a_message(values):
    dates, errs = to_dates(pd.Series(values, dtype=object))
    assert dates.dtype == "datetime64[ns]"
    for d, e in zip(dates, errs, strict=True):
        assert pd.isna(d) or EARLIEST <= d <= FAR_FUTURE + pd.Timedelta(days=1)
        assert pd.isna(e) or (isinstance(e, str) and pd.isna(d))


@pytest.mark.slow
@FAST
@given(date_cells)
def test_parse_date_and_parse_period_give_a_value_or_a_kpi_error(value):
    for reader in (parse_date, Period.parse):
        try:
            reader(value)
        except KpiError:
            pass


@pytest.mark.slow
@FAST
@given(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)))
def test_every_calendar_date_is_a_date_the_far_future_or_an_error(moment):
    typed = f"{moment.day:02d}.{moment.month:02d}.{moment.year:04d}"
    dates, errs = to_dates(pd.Series([moment, typed], dtype=object))
    day = pd.Timestamp(moment.year, 1, 1) if 1678 <= moment.year <= 2261 else None
    if day is not None:
        assert errs.isna().all() and dates[1] == pd.Timestamp(moment.date())
    elif moment.year >= 2263:
        assert (dates == FAR_FUTURE).all() and errs.isna().all()
    elif moment.year <= 1676:
        assert dates.isna().all() and errs.map(lambda e: "before" in e).all()


SOURCE_WORDS = st.sampled_from([
    "count", "sum", "mean", "deals", ".", "amount", "where", "closed_at", "status", "=", ">=", "<", "won", "and",
    "not", "(", ")", "/", "by", "dated", "*", "100", "0.0000001", "1" + "0" * 320, "0." + "0" * 330 + "1",
    "9999-12-31", "0001-01-01", "2026-10-01", "2026-02-30", "yes", "40%", "-5", "١٢", "in", ",", "is", "empty"])


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(st.lists(SOURCE_WORDS, max_size=20))
def test_source_parses_or_raises_and_prints_back_to_the_same_source(words):
    try:
        s = parse(" ".join(words))
    except KpiError:
        return
    assert isinstance(s, Source)
    again = parse(str(s))
    assert again == s and str(again) == str(s)


def _decimal(x: float) -> str:
    return format(__import__("decimal").Decimal(repr(x)), "f")


literals = st.one_of(
    st.floats(min_value=1e-12, max_value=1e12).map(_decimal),
    st.integers(min_value=-10 ** 6, max_value=10 ** 6).map(str),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(lambda d: f"{d.year:04d}-{d:%m-%d}"),
    st.sampled_from(["yes", "нет", "won", '"x y"', "40%"]),
)
conditions = st.tuples(st.sampled_from(["status", "closed_at", "amount"]), st.sampled_from(["=", "!=", "<", ">="]),
                       literals).map(" ".join)
factors = st.one_of(st.floats(min_value=1e-12, max_value=1e15).map(_decimal),
                    st.sampled_from(["0.0000001", "100", "0.5 * 3"]))


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["count deals", "sum deals.amount", "mean deals.amount"]), st.lists(conditions, max_size=3),
       st.booleans(), st.lists(factors, max_size=2))
def test_structured_source_parses_or_raises_and_prints_back(head, conds, by, mult):
    text = head + (" where " + " and ".join(conds) if conds else "") + (" by manager_id" if by else "")
    text += "".join(f" * {f}" for f in mult)
    try:
        s = parse(text)
    except KpiError:
        return
    again = parse(str(s))
    assert again == s and str(again) == str(s)
