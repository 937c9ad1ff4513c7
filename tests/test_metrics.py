"""Indicator formulas of docs/domain.md §5."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import xl_kpi
from xl_kpi import metrics as m


def test_rates_are_fractions_in_formula_order():
    assert m.churn_rate(5, 200) == pytest.approx(0.025)
    assert m.dropout_rate(5, 100) == pytest.approx(0.05)
    assert m.regular_client_share(30, 120) == pytest.approx(0.25)
    assert m.key_client_revenue_share(600_000, 1_000_000) == pytest.approx(0.6)
    assert m.close_ratio(12, 48) == pytest.approx(0.25)
    assert m.meeting_acceptance_rate(4, 16) == pytest.approx(0.25)
    assert m.employee_turnover(2, 40) == pytest.approx(0.05)


def test_retention_rate_common_definition():
    # (clients at end − new clients) / clients at start
    assert m.retention_rate(110, 20, 100) == pytest.approx(0.9)


def test_clv_cac_cost_per_lead():
    assert m.clv(2_000, 12, 3) == 72_000
    assert m.cac(100_000, 25) == 4_000
    assert m.cac_to_clv(4_000, 72_000) == pytest.approx(1 / 18)
    assert m.cost_per_lead(50_000, 200) == 250


def test_deals():
    assert m.average_deal_size(1_500_000, 30) == 50_000
    assert m.win_rate(30, 70) == pytest.approx(0.3)  # won / (won + lost)


def test_nps_from_counts_matches_raw_answers():
    answers = [10, 9, 9, 8, 7, 6, 0, 10, 5, 9]
    assert m.nps_from_counts(5, 2, 3) == pytest.approx(m.nps(answers))
    per_emp = m.nps_from_counts(pd.Series([5, 0]), pd.Series([2, 0]), pd.Series([3, 0]))
    assert per_emp.iloc[0] == pytest.approx(20) and math.isnan(per_emp.iloc[1])


def test_durations_and_touches():
    start = np.array(["2026-10-01T09:00", "2026-10-01T10:00", "2026-10-02T09:00"], dtype="datetime64[ns]")
    end = np.array(["2026-10-01T11:00", "2026-10-01T14:00", "NaT"], dtype="datetime64[ns]")
    assert m.mean_duration(start, end) == pytest.approx(3.0)  # (2 h + 4 h) / 2, open request skipped
    assert m.mean_duration(start[:2], end[:2], unit="min") == pytest.approx(180.0)
    with pytest.raises(xl_kpi.KpiError):
        m.mean_duration(end[:1], start[:1])
    assert m.touches_to_resolution([1, 2, 3], [0, 1, 1]) == pytest.approx(8 / 3)


def test_division_by_zero_scalar_raises_array_nan():
    with pytest.raises(xl_kpi.DivisionByZeroError):
        m.churn_rate(3, 0)
    with pytest.raises(xl_kpi.DivisionByZeroError):
        m.win_rate(0, 0)
    with pytest.raises(xl_kpi.DivisionByZeroError):
        m.retention_rate(10, 0, 0)
    out = m.churn_rate(np.array([3, 3]), np.array([0, 30]))
    assert math.isnan(out[0]) and out[1] == pytest.approx(0.1)
    assert issubclass(xl_kpi.DivisionByZeroError, xl_kpi.KpiError)


def test_series_index_preserved():
    s = m.ratio(pd.Series([1, 2], index=["x", "y"]), pd.Series([4, 4], index=["x", "y"]))
    assert list(s.index) == ["x", "y"] and list(s) == [0.25, 0.5]
    with pytest.raises(xl_kpi.KpiError, match="different indexes"):
        m.ratio(pd.Series([1], index=["x"]), pd.Series([1], index=["y"]))


def test_every_metric_has_a_formula_docstring():
    funcs = [getattr(m, n) for n in m.__all__]
    assert all(callable(f) for f in funcs)
    assert len(funcs) >= 20
    for f in funcs:
        assert f.__doc__ and len(f.__doc__.strip()) > 20, f.__name__


def test_mean_duration_far_future_end_is_no_end_and_year_1_start_an_error():
    import datetime as dt

    start = [dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1)]
    end = [dt.datetime(9999, 12, 31), dt.datetime(2026, 1, 1, 2)]  # 31.12.9999: not answered yet
    assert m.mean_duration(start, end) == pytest.approx(2.0)
    with pytest.raises(xl_kpi.KpiError, match=r"outside 22\.09\.1677"):
        m.mean_duration([dt.datetime(1, 1, 1)], [dt.datetime(2026, 1, 1)])
