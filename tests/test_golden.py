"""Golden tests: every worked example of docs/domain.md, and the band boundaries it decides."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import xl_kpi
from xl_kpi import metrics


def test_score_worked_example_deals():
    # base 100 deals, norm 150, fact 160 → 120%
    assert xl_kpi.score(160, 100, 150) == pytest.approx(1.2, abs=1e-15)


def test_score_lower_is_better_by_base_above_norm():
    # base 10 complaints, norm 5, fact 4 → 120%
    assert xl_kpi.score(4, 10, 5) == pytest.approx(1.2, abs=1e-15)


def test_bonus_worked_example():
    # pool 20 000, weight 0.4, score 120% → coefficient 1.1 → 8 800
    assert xl_kpi.coefficient(1.2) == 1.1
    assert xl_kpi.bonus(20_000, 0.4, 1.2) == 8800.0


def test_total_is_sum_of_per_kpi_bonuses():
    # "compute the possible premium per indicator and add them up"
    expected = xl_kpi.bonus(20_000, 0.4, 1.2) + xl_kpi.bonus(20_000, 0.6, 0.8)
    assert xl_kpi.total_bonus(20_000, [0.4, 0.6], [1.2, 0.8]) == expected == 8800 + 10800


@pytest.mark.parametrize(
    ("score", "coefficient"),
    [
        (0.6999, 0.0),
        (0.70, 0.9),
        (0.995, 0.9),
        (0.9999999, 0.9),
        (1.0, 1.0),
        (1.0999, 1.0),
        (1.10, 1.1),
        (5.0, 1.1),
        (-0.3, 0.0),
    ],
)
def test_default_scale_bands_are_half_open(score, coefficient):
    assert xl_kpi.coefficient(score) == coefficient


def test_threshold_reached_through_float_arithmetic_counts():
    # 3.3 / 3 is 1.0999999999999999 in binary but exactly 110% on paper
    s = xl_kpi.score(3.3, 0, 3)
    assert s < 1.1
    assert xl_kpi.coefficient(s) == 1.1


def test_conversion_rate_example():
    assert metrics.conversion_rate(480, 1500) == pytest.approx(0.32)


def test_positive_reply_rate_example():
    assert metrics.positive_reply_rate(3, 50) == pytest.approx(0.06)


def test_complaint_rate_definition():
    # clients who complained / all client requests
    assert metrics.complaint_rate(12, 400) == pytest.approx(0.03)


def test_nps_definition():
    # promoters 9–10, passives 7–8, detractors 0–6
    answers = [10, 9, 9, 8, 7, 6, 0, 10, 5, 9]  # 5 promoters, 2 passives, 3 detractors
    assert metrics.nps(answers) == pytest.approx(20.0)
    assert metrics.nps([10] * 4) == 100.0
    assert metrics.nps([0, 6]) == -100.0
    assert metrics.nps([7, 8]) == 0.0
    assert metrics.nps([9, None, float("nan")]) == 100.0  # empty answers are skipped


def test_nps_rejects_non_scale_answers():
    with pytest.raises(xl_kpi.KpiError, match="0 to 10"):
        metrics.nps([11, 9])
    with pytest.raises(xl_kpi.KpiError, match="0 to 10"):
        metrics.nps([8.5])
    with pytest.raises(xl_kpi.KpiError):
        metrics.nps([])


def test_norm_equal_base_scalar_raises_with_values():
    with pytest.raises(xl_kpi.ZeroRangeError, match=r"norm \(150\) equals base \(150\)"):
        xl_kpi.score(160, 150, 150)
    assert issubclass(xl_kpi.ZeroRangeError, xl_kpi.KpiError)


def test_norm_equal_base_array_gives_nan_only_there():
    out = xl_kpi.score(np.array([160, 160, 4]), np.array([100, 150, 10]), np.array([150, 150, 5]))
    assert out[0] == pytest.approx(1.2)
    assert math.isnan(out[1])
    assert out[2] == pytest.approx(1.2)


def test_nan_inputs_propagate_not_zero():
    assert math.isnan(xl_kpi.score(float("nan"), 100, 150))
    assert math.isnan(xl_kpi.score(None, 100, 150))
    assert math.isnan(xl_kpi.coefficient(float("nan")))
    assert math.isnan(xl_kpi.bonus(20_000, 0.4, float("nan")))
    assert math.isnan(xl_kpi.total_bonus(20_000, [0.5, 0.5], [1.2, float("nan")]))


def test_text_input_is_kpi_error():
    with pytest.raises(xl_kpi.NotANumberError):
        xl_kpi.score("many", 100, 150)


def test_floor_and_cap():
    assert xl_kpi.score(50, 100, 150, floor=0) == 0.0
    assert xl_kpi.score(50, 100, 150) == pytest.approx(-1.0)
    assert xl_kpi.score(300, 100, 150, cap=1.5) == 1.5
    assert xl_kpi.score(300, 100, 150) == pytest.approx(4.0)
    # per-element limits, NaN meaning none
    out = xl_kpi.score(np.array([50, 300, 300]), 100, 150, floor=np.array([0, np.nan, 0]), cap=[np.nan, 1.5, np.nan])
    np.testing.assert_allclose(out, [0.0, 1.5, 4.0])
    with pytest.raises(xl_kpi.KpiError, match="floor"):
        xl_kpi.score(1, 0, 1, floor=2, cap=1)


def test_series_keep_their_index():
    idx = pd.Index(["ivanov", "petrova"], name="employee")
    s = xl_kpi.score(pd.Series([160, 140], index=idx), 100, 150)
    assert list(s.index) == ["ivanov", "petrova"]
    assert s.name == "score"
    np.testing.assert_allclose(s, [1.2, 0.8])
    c = xl_kpi.coefficient(s)
    assert list(c.index) == ["ivanov", "petrova"] and list(c) == [1.1, 0.9]
    b = xl_kpi.bonus(20_000, 0.4, s)
    assert list(b) == [8800.0, 7200.0] and b.index.equals(idx)


def test_total_bonus_many_employees_as_dataframe():
    scores = pd.DataFrame({"deals": [1.2, 0.5, 1.0], "nps": [1.0, 1.0, 0.7]}, index=["a", "b", "c"])
    pools = pd.Series([20_000, 10_000, 30_000], index=scores.index)
    out = xl_kpi.total_bonus(pools, [0.4, 0.6], scores)
    assert list(out.index) == ["a", "b", "c"]
    assert list(out) == [8800 + 12000, 0 + 6000, 12000 + 16200]


def test_total_bonus_gate():
    # a gate KPI below its threshold zeroes the whole bonus
    assert xl_kpi.total_bonus(20_000, [0.4, 0.6], [1.2, 0.65], gate={1: 0.7}) == 0.0
    assert xl_kpi.total_bonus(20_000, [0.4, 0.6], [1.2, 0.7], gate={1: 0.7}) == 8800 + 10800
    s = pd.Series([1.2, 0.65], index=["deals", "complaints"])
    assert xl_kpi.total_bonus(20_000, [0.4, 0.6], s, gate={"complaints": 0.7}) == 0.0
    with pytest.raises(xl_kpi.KpiError, match="gate names KPI 'nps'"):
        xl_kpi.total_bonus(20_000, [0.4, 0.6], s, gate={"nps": 0.7})


def test_total_bonus_weights_must_sum_to_one():
    with pytest.raises(xl_kpi.WeightError, match="sum to 90%"):
        xl_kpi.total_bonus(20_000, [0.4, 0.5], [1.2, 1.0])
    with pytest.raises(xl_kpi.WeightError, match="negative"):
        xl_kpi.total_bonus(20_000, [1.2, -0.2], [1.2, 1.0])
    # 0.1 + 0.2 + 0.7 is not exactly 1.0 in binary, but within 1e-9
    assert xl_kpi.total_bonus(1000, [0.1, 0.2, 0.7], [1, 1, 1]) == 1000.0


def test_total_bonus_per_kpi_scales():
    generous = xl_kpi.Scale.steps([(0.5, 1.0)])
    assert xl_kpi.total_bonus(1000, [0.5, 0.5], [0.6, 0.6], [generous, None]) == 500.0
    with pytest.raises(xl_kpi.KpiError, match="one scale per KPI"):
        xl_kpi.total_bonus(1000, [0.5, 0.5], [0.6, 0.6], [generous])


def test_total_is_sum_of_rounded_items():
    # three items of 1/3 rouble each: each rounds to 0.33, the card adds up to 0.99, not 1.00
    assert xl_kpi.bonus(1, 1 / 3, 1.0) == 0.33
    assert xl_kpi.total_bonus(1, [1 / 3, 1 / 3, 1 / 3], [1.0, 1.0, 1.0]) == 0.99


@pytest.mark.parametrize("bad", ["160", True, np.array([True, False]), ["160", 150]])
def test_engine_takes_numbers_only(bad):
    # text and TRUE/FALSE are parsed (or rejected) at the edges, never guessed by the engine
    with pytest.raises(xl_kpi.NotANumberError):
        xl_kpi.score(bad, 100, 150)


def test_negative_pool_or_weight_rejected():
    with pytest.raises(xl_kpi.WeightError):
        xl_kpi.bonus(20_000, -0.4, 1.2)
    with pytest.raises(xl_kpi.WeightError):
        xl_kpi.bonus(-1, 0.4, 1.2)
    out = xl_kpi.bonus(20_000, np.array([0.4, -0.4]), 1.2)
    assert out[0] == 8800.0 and math.isnan(out[1])


def test_floor_above_cap_in_arrays_is_nan_only_there():
    out = xl_kpi.score(np.array([120, 120]), 100, 150, floor=np.array([0.0, 2.0]), cap=np.array([1.5, 1.0]))
    assert out[0] == pytest.approx(0.4) and math.isnan(out[1])
