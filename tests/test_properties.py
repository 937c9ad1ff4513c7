"""Property-based tests of the engine (hypothesis)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import xl_kpi
from xl_kpi import Scale

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
scores = st.floats(min_value=-5, max_value=5, allow_nan=False)
coefs = st.floats(min_value=0, max_value=10, allow_nan=False)


@st.composite
def points(draw, min_size=1):
    thresholds = draw(st.lists(st.floats(-2, 3, allow_nan=False), min_size=min_size, max_size=8, unique=True))
    thresholds = sorted(thresholds)
    return [(t, draw(coefs)) for t in thresholds]


@st.composite
def monotone_points(draw):
    pts = draw(points())
    cs = sorted(c for _, c in pts)
    return [(t, c) for (t, _), c in zip(pts, cs, strict=False)]


@given(finite, finite, finite, finite)
def test_score_is_linear_in_fact(f1, f2, base, norm):
    assume(abs(norm - base) > 1e-3)
    s1, s2 = xl_kpi.score(f1, base, norm), xl_kpi.score(f2, base, norm)
    mid = xl_kpi.score((f1 + f2) / 2, base, norm)
    assert mid == pytest.approx((s1 + s2) / 2, rel=1e-9, abs=1e-6)
    # slope is 1/(norm − base)
    assert s2 - s1 == pytest.approx((f2 - f1) / (norm - base), rel=1e-9, abs=1e-6)


@given(finite, finite, finite)
def test_swapping_base_and_norm_maps_s_to_one_minus_s(fact, base, norm):
    assume(abs(norm - base) > 1e-3)
    s = xl_kpi.score(fact, base, norm)
    assert xl_kpi.score(fact, norm, base) == pytest.approx(1 - s, rel=1e-9, abs=1e-6)


@given(monotone_points(), st.floats(0, 5), scores, scores)
def test_step_coefficients_are_monotone_when_the_table_is(pts, below, a, b):
    below = min(below, pts[0][1])
    scale = Scale.steps(pts, below=below)
    lo, hi = sorted((a, b))
    assert scale(lo) <= scale(hi)


@given(monotone_points())
def test_default_like_scales_monotone_over_a_grid(pts):
    scale = Scale.steps(pts, below=0.0 if pts[0][1] >= 0 else pts[0][1])
    grid = np.linspace(-3, 4, 701)
    assert np.all(np.diff(scale(grid)) >= 0)


def test_default_scale_monotone():
    grid = np.linspace(-1, 3, 4001)
    assert np.all(np.diff(xl_kpi.coefficient(grid)) >= 0)


@given(points(min_size=2), st.floats(-3, 4, allow_nan=False))
def test_linear_scale_is_continuous(pts, x):
    scale = Scale.linear(pts)
    slopes = [abs((c2 - c1) / (t2 - t1)) for (t1, c1), (t2, c2) in itertools.pairwise(pts)]
    lip = max(slopes)
    eps = 1e-7
    assert abs(scale(x + eps) - scale(x)) <= lip * eps * 1.01 + 1e-9


@given(points(min_size=2))
def test_linear_scale_passes_through_points_and_is_flat_outside(pts):
    scale = Scale.linear(pts)
    for t, c in pts:
        assert scale(t) == pytest.approx(c)
    assert scale(pts[0][0] - 10) == pts[0][1]
    assert scale(pts[-1][0] + 10) == pts[-1][1]


@given(st.floats(0, 1e7), st.floats(0, 1), scores, points())
def test_bonus_never_negative_when_coefficients_are_not(pool, weight, s, pts):
    assert xl_kpi.bonus(pool, weight, s, Scale.steps(pts)) >= 0


@given(
    st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=30),
    st.sampled_from([None, 0.0]),
    st.sampled_from([None, 1.5]),
)
def test_vector_and_scalar_agree_elementwise(rows, floor, cap):
    fact, base, norm = (np.array(c, dtype=float) for c in zip(*rows, strict=False))
    vec = xl_kpi.score(fact, base, norm, floor=floor, cap=cap)
    vcoef = xl_kpi.coefficient(vec)
    vbonus = xl_kpi.bonus(20_000, 0.4, vec)
    for i, (f, b, n) in enumerate(rows):
        if n == b:
            assert math.isnan(vec[i])
            with pytest.raises(xl_kpi.ZeroRangeError):
                xl_kpi.score(f, b, n, floor=floor, cap=cap)
            continue
        s = xl_kpi.score(f, b, n, floor=floor, cap=cap)
        assert vec[i] == s
        assert vcoef[i] == xl_kpi.coefficient(s)
        assert vbonus[i] == xl_kpi.bonus(20_000, 0.4, s)


@given(st.lists(st.tuples(st.floats(0, 1e6), st.floats(1, 1e6)), min_size=1, max_size=20))
def test_metric_ratio_vector_scalar_agree(rows):
    part, whole = (np.array(c) for c in zip(*rows, strict=False))
    vec = xl_kpi.metrics.ratio(part, whole)
    for i, (p, w) in enumerate(rows):
        assert vec[i] == xl_kpi.metrics.ratio(p, w)


@pytest.mark.parametrize(
    "bad",
    [
        [],
        [(1.0, 1), (0.7, 0.9)],  # unsorted
        [(0.7, 1), (0.7, 0.9)],  # duplicate
        [(0.7, -1)],  # negative coefficient
        [(float("nan"), 1)],
        [("x", 1)],
    ],
)
def test_invalid_scales_raise(bad):
    with pytest.raises(xl_kpi.ScaleError):
        Scale.steps(bad)


def test_linear_needs_two_points_and_cap_applies():
    with pytest.raises(xl_kpi.ScaleError, match="two points"):
        Scale.linear([(1.0, 1.0)])
    capped = Scale.linear([(0.5, 0.0), (1.5, 2.0)], cap=1.5)
    assert capped(1.0) == 1.0 and capped(1.5) == 1.5 and capped(2.0) == 1.5
    assert Scale.steps([(1.0, 3.0)], cap=2.0)(1.2) == 2.0


def test_scale_error_messages_name_the_problem():
    with pytest.raises(xl_kpi.ScaleError, match="70% appears twice"):
        Scale.steps([(0.7, 1), (0.7, 0.9)], name="sales")
    with pytest.raises(xl_kpi.ScaleError, match="sorted ascending, but 70% comes after 100%"):
        Scale.steps([(1.0, 1), (0.7, 0.9)])
