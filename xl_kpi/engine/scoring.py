"""KPI score, premium coefficient and weighted bonus (docs/domain.md §2–4): the library's per-KPI functions.

The money rules themselves (line bonus, KPI bonus, gate, multiplier, proration, rounding) live in
:mod:`xl_kpi.engine.payout`; :func:`bonus` and :func:`total_bonus` call them, and :func:`period_bonus` and
:func:`total_pay` are re-exported from there.

Pure, vectorised functions: scalars, NumPy arrays and pandas Series in, the same kind out.
Scalar calls raise a :class:`~xl_kpi.engine.errors.KpiError` on bad input; array calls put NaN in the
bad position and compute the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine import payout
from xl_kpi.engine.arrays import as_float_array, as_floats
from xl_kpi.engine.errors import KpiError, KpiText, WeightError, ZeroRangeError
from xl_kpi.engine.payout import period_bonus, total_pay
from xl_kpi.engine.scales import DEFAULT_SCALE, Scale

__all__ = ["MAX_SCORE", "WEIGHT_TOLERANCE", "bonus", "clamp", "coefficient", "period_bonus", "score",
           "total_bonus", "total_pay"]

WEIGHT_TOLERANCE = 1e-9
"""How far one employee's weights may sum from 1."""
MAX_SCORE = 1e13
"""A score this large (1e15%, more digits than Excel keeps) or larger is no result but a typo or an overflow:
the batch refuses it rather than pay the top coefficient for it."""


def score(fact: Any, base: Any, norm: Any, *, floor: Any = None, cap: Any = None) -> Any:
    """KPI score as a fraction: (fact − base) / (norm − base); 1.2 means 120%.

    Lower-is-better KPIs need no flag: put base above norm (base 10 complaints, norm 5,
    fact 4 → 1.2). ``norm == base`` is an input error: :class:`ZeroRangeError` for a scalar
    call, NaN in that position for arrays. ``floor``/``cap`` clamp the score when given
    (NaN in an array of floors/caps means "no limit" for that element).

    >>> score(160, 100, 150)
    1.2
    """
    (f, b, n), shape = as_floats(fact=fact, base=base, norm=norm)
    span = n - b
    if shape.scalar and span == 0:
        raise ZeroRangeError(
            KpiText("norm ({norm}) equals base ({base}): the KPI has no range to score against; "
                    "set the norm (target) different from the base (minimum)", norm=_num(norm), base=_num(base))
        )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # an overflow is inf: refused by the batch
        s = np.where(span == 0, np.nan, (f - b) / np.where(span == 0, 1.0, span))
    s = clamp(s, floor, cap)
    return shape.restore(s, name="score")


def clamp(values: Any, floor: Any = None, cap: Any = None) -> Any:
    """Clamp scores to [floor, cap]; None or NaN means no limit on that side. NaN scores stay NaN.

    A floor above its cap is an input error: :class:`KpiError` when every input is a scalar,
    NaN in that position for arrays.
    """
    v = as_float_array(values, "score")
    lo = _limit(floor, "floor")
    hi = _limit(cap, "cap")
    if lo is not None and hi is not None:
        crossed = lo > hi
        if np.ndim(crossed) == 0 and np.ndim(v) == 0 and crossed:
            raise KpiError(KpiText("floor ({floor}) is above cap ({cap}); the floor must not exceed the cap",
                                   floor=_num(floor), cap=_num(cap)))
        v = np.where(crossed, np.nan, v)
    if lo is not None:
        v = np.where(np.isnan(lo) | np.isnan(v), v, np.maximum(v, np.nan_to_num(lo, nan=-np.inf)))
    if hi is not None:
        v = np.where(np.isnan(hi) | np.isnan(v), v, np.minimum(v, np.nan_to_num(hi, nan=np.inf)))
    return v


def _limit(x: Any, name: str) -> np.ndarray | None:
    return None if x is None else as_float_array(x, name)


def coefficient(score: Any, scale: Scale | None = None) -> Any:
    """Premium coefficient for a score on ``scale`` (``None`` = :data:`DEFAULT_SCALE`).

    >>> coefficient(1.2)
    1.1
    """
    return (scale or DEFAULT_SCALE)(score)


def bonus(pool: Any, weight: Any, score: Any, scale: Scale | None = None, *, digits: int | None = 2) -> Any:
    """One KPI's bonus: pool × weight × coefficient(score), rounded like Excel to ``digits``
    (:func:`xl_kpi.engine.payout.line_bonus` of the coefficient).

    ``digits=None`` returns the unrounded amount. NaN score (missing fact) → NaN bonus.
    A negative pool or weight is an input error (:class:`WeightError` for scalars, NaN in arrays).

    >>> bonus(20_000, 0.4, 1.2)
    8800.0
    """
    as_floats(pool=pool, weight=weight)  # text and booleans are refused before the scale sees them
    return payout.line_bonus(pool, weight, coefficient(score, scale), digits=digits)


def total_bonus(
    pool: Any,
    weights: Any,
    scores: Any,
    scale: Scale | Sequence[Scale | None] | None = None,
    *,
    gate: Mapping[Any, float] | None = None,
    multiplier: Any = 1.0,
    proration: Any = 1.0,
    digits: int | None = 2,
) -> Any:
    """One employee's bonus for the period, as the batch pays it: Σ over the KPIs of :func:`bonus` (the sum
    of the *rounded* line items), × ``multiplier`` × ``proration``, rounded to ``digits``; 0 if a gate failed.

    ``weights`` and ``scores`` run along the last axis (one employee: 1-D; many employees: 2-D
    arrays or DataFrames with one row per employee, which give one total per row). Weights must
    be >= 0 and sum to 1 within 1e-9. ``scale`` is one scale for all KPIs or one per KPI.
    ``gate`` maps a KPI (its position, or its label in a Series/DataFrame) to a score threshold:
    if that KPI scores below it (``ROUND(score, 12) < gate``), the whole total is 0. ``multiplier``
    (the individual multiplier) and ``proration`` (the share of the period worked) are scalars or one
    per employee row; both default to 1. A NaN score makes the total NaN. The same numbers as
    :func:`xl_kpi.engine.payout.period_bonus` of the batch's KPI bonus.

    >>> total_bonus(20_000, [0.4, 0.6], [1.2, 1.0])
    20800.0
    >>> total_bonus(20_000, [0.4, 0.6], [1.2, 1.0], multiplier=1.2, proration=0.5)
    12480.0
    """
    labels = _labels(weights, scores)
    row_index = scores.index if isinstance(scores, pd.DataFrame) else (
        weights.index if isinstance(weights, pd.DataFrame) else None
    )
    w = as_float_array(weights, "weights")
    s = as_float_array(scores, "scores")
    p = as_float_array(pool, "pool")
    if w.ndim == 0 or s.ndim == 0:
        raise KpiError(KpiText("weights and scores must be sequences (one element per KPI)"))
    w, s = np.broadcast_arrays(w, s)
    _check_weights(w)
    coeff = _coefficients(s, scale)
    pool_b = p[..., None] if p.ndim else p
    items = np.asarray(payout.line_bonus(pool_b, w, coeff, digits=digits), dtype=float)
    kpi = np.asarray(payout.kpi_bonus(items, digits=digits), dtype=float)
    gated = np.zeros(kpi.shape, dtype=bool)
    for kpi_label, threshold in (gate or {}).items():
        pos = _position(kpi_label, labels, s.shape[-1])
        gated |= np.asarray(payout.gate_failed(s[..., pos], float(threshold)), dtype=bool)
    gated &= ~np.isnan(kpi)
    m = as_float_array(multiplier, "multiplier")
    r = as_float_array(proration, "proration")
    if digits is None:
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.where(gated, 0.0, kpi * m * r)
    else:
        total = np.asarray(payout.period_bonus(kpi, m, r, gated=gated, digits=digits), dtype=float)
    if total.ndim == 0:
        return float(total)
    if row_index is not None:
        return pd.Series(total, index=row_index, name="total_bonus")
    return total


def _check_weights(w: np.ndarray) -> None:
    if np.any(w < 0):
        raise WeightError(KpiText("weights must not be negative: {weight} found", weight=_num(w[w < 0].ravel()[0])))
    if np.any(np.isnan(w)):
        raise WeightError(KpiText("a weight is missing (empty or NaN); every KPI needs a weight"))
    sums = w.sum(axis=-1)
    bad = np.abs(sums - 1.0) > WEIGHT_TOLERANCE
    if np.any(bad):
        first = float(np.ravel(sums)[np.flatnonzero(np.ravel(bad))[0]])
        raise WeightError(KpiText("weights sum to {percent:.10g}%, not 100%; adjust them so they add up to 1",
                                  percent=first * 100))


def _coefficients(s: np.ndarray, scale: Scale | Sequence[Scale | None] | None) -> np.ndarray:
    if scale is None or isinstance(scale, Scale):
        return np.asarray((scale or DEFAULT_SCALE)(s))
    scales = list(scale)
    if len(scales) != s.shape[-1]:
        raise KpiError(KpiText("{scales} scales given for {kpis} KPIs; give one scale per KPI or one for all",
                               scales=len(scales), kpis=s.shape[-1]))
    out = np.empty_like(s)
    for j, sc in enumerate(scales):
        out[..., j] = (sc or DEFAULT_SCALE)(s[..., j])
    return out


def _labels(weights: Any, scores: Any) -> list[Any] | None:
    for x in (scores, weights):
        if isinstance(x, pd.DataFrame):
            return list(x.columns)
        if isinstance(x, pd.Series):
            return list(x.index)
    return None


def _position(kpi: Any, labels: list[Any] | None, n: int) -> int:
    if labels is not None and kpi in labels:
        return labels.index(kpi)
    if isinstance(kpi, (int, np.integer)) and not isinstance(kpi, bool) and -n <= kpi < n:
        return int(kpi)
    raise KpiError(KpiText("gate names KPI {kpi}, which is not among this employee's KPIs", kpi=repr(kpi)))


def _num(x: Any) -> str:
    try:
        return f"{float(x):g}"
    except (TypeError, ValueError):
        return repr(x)
