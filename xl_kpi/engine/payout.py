"""The payout: every rule that turns scored KPI lines into money (docs/domain.md §4 plus the plan's extensions).

One home for the money, used by the batch (``results``), the cards' cached values, the summary, the
Excel functions (``udfs``) and the library::

    line bonus  = ROUND(pool × weight × coefficient, digits)
    KPI bonus   = ROUND(Σ line bonuses of the employee, digits)        (the sum of the *rounded* lines)
    gated       = some gate KPI has ROUND(score, 12) < its gate
    bonus       = 0 if gated, else ROUND(KPI bonus × multiplier × proration, digits)
    total pay   = ROUND(salary + bonus, digits)
    weighted    = ROUND(Σ weight × score, 12)                            (the summary's ranking score)

Every ROUND is Excel's (:func:`~xl_kpi.engine.money.round_money`, half away from zero); the Excel text of
the same rules is in :mod:`xl_kpi.engine.formulas`. Pure and vectorised: scalars, NumPy arrays or pandas
Series in (elementwise, broadcasting), the same kind out; NaN (a missing input) gives NaN, never a guess.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.arrays import as_float_array, as_floats
from xl_kpi.engine.errors import KpiError, WeightError
from xl_kpi.engine.money import round_money, round_score
from xl_kpi.engine.scales import COMPARE_DECIMALS

SCORE_DECIMALS = COMPARE_DECIMALS
"""Scores are rounded to this many decimals (Excel ROUND) before a gate or a band threshold compares them, and
weighted scores are rounded to it, so a score that is 110% on paper (3.3/3 = 1.0999999999999999) is 110%."""


def score_key(score: Any) -> np.ndarray:
    """``ROUND(score, 12)`` as Excel computes it: the value a score is compared with thresholds as (NaN stays NaN).

    >>> float(score_key(3.3 / 3))
    1.1
    """
    return round_score(as_float_array(score, "score"), SCORE_DECIMALS)


def line_bonus(pool: Any, weight: Any, coefficient: Any, *, digits: int | None = 2) -> Any:
    """One KPI line's bonus: ROUND(pool × weight × coefficient, digits); ``digits=None`` leaves it unrounded.

    A negative pool or weight is an input error (:class:`WeightError` for scalars, NaN in arrays); a NaN
    coefficient (no fact, no score) gives NaN.

    >>> line_bonus(20_000, 0.4, 1.1)
    8800.0
    >>> line_bonus(20_000.55, 0.35, 0.9, digits=0)
    6300.0
    """
    (p, w, c), shape = as_floats(pool=pool, weight=weight, coefficient=coefficient)
    negative = (p < 0) | (w < 0)
    if shape.scalar and negative:
        raise WeightError(f"pool ({_num(pool)}) and weight ({_num(weight)}) must not be negative")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is inf, caught by the amount limits
        raw = np.where(negative, np.nan, p * w * c)
    out = raw if digits is None else np.asarray(round_money(raw, digits), dtype=float)
    return shape.restore(np.asarray(out, dtype=float), name="bonus")


def kpi_bonus(line_bonuses: Any, employee_ids: Any = None, *, digits: int | None = 2) -> Any:
    """The KPI bonus: the sum of the (rounded) line bonuses, rounded to ``digits`` to drop float noise.

    Without ``employee_ids``: the lines run along the last axis (one employee: 1-D → a float; 2-D → one per
    row). With ``employee_ids`` (one per line): a Series indexed by employee, in first-seen order. A NaN line
    (a missing fact) makes that employee's KPI bonus NaN; the batch says why in the employee's reason.

    >>> kpi_bonus([8800.0, 12000.0])
    20800.0
    >>> kpi_bonus([1.0, 2.0, 5.0], ["a", "b", "a"]).to_dict()
    {'a': 6.0, 'b': 2.0}
    """
    if employee_ids is None:
        b = as_float_array(line_bonuses, "line bonuses")
        if b.ndim == 0:
            raise KpiError("line bonuses must be a sequence (one element per KPI)")
        with np.errstate(over="ignore", invalid="ignore"):
            total = b.sum(axis=-1)
        out = total if digits is None else np.asarray(round_money(total, digits), dtype=float)
        return float(out) if np.ndim(out) == 0 else np.asarray(out)
    b = pd.Series(as_float_array(line_bonuses, "line bonuses"))
    ids = _ids(employee_ids, len(b))
    with np.errstate(over="ignore", invalid="ignore"):
        total = b.groupby(ids, sort=False).sum(min_count=1)
        missing = b.isna().groupby(ids, sort=False).any()
    total = total.where(~missing, np.nan)
    values = total.to_numpy(float) if digits is None else np.asarray(round_money(total.to_numpy(float), digits))
    return pd.Series(values, index=total.index, name="kpi_bonus")


def gate_failed(score: Any, gate: Any) -> Any:
    """Per line: the score is below its gate, compared as the card compares, ``ROUND(score, 12) < gate``.

    A NaN gate (no gate on that KPI) or a NaN score (no fact; the employee is in error anyway) never fails.

    >>> gate_failed([0.49, 0.5, 0.2], [0.5, 0.5, float("nan")]).tolist()
    [True, False, False]
    """
    (s, g), shape = as_floats(score=score, gate=gate)
    with np.errstate(invalid="ignore"):
        out = ~np.isnan(g) & ~np.isnan(s) & (score_key(s) < g)
    return bool(out) if shape.scalar else (pd.Series(out, index=shape.index, name="gated")
                                            if shape.index is not None else np.asarray(out))


def gated(score: Any, gate: Any, employee_ids: Any) -> pd.Series:
    """Per employee (first-seen order of ``employee_ids``, one per line): some gate KPI failed (:func:`gate_failed`).

    >>> gated([0.4, 1.2, 1.0], [0.5, None, 0.5], ["a", "a", "b"]).to_dict()
    {'a': True, 'b': False}
    """
    failed = np.atleast_1d(np.asarray(gate_failed(score, gate), dtype=bool))
    ids = _ids(employee_ids, len(failed))
    return pd.Series(failed).groupby(ids, sort=False).any().rename("gated")


def prorate(days_worked: Any, days_in_period: Any) -> Any:
    """The share of the period worked: days employed inside the period / days of the period, within [0, 1].

    >>> round(prorate(19, 31), 6)
    0.612903
    """
    (d, n), shape = as_floats(days_worked=days_worked, days_in_period=days_in_period)
    if shape.scalar and not n > 0:
        raise KpiError(f"the period has {_num(days_in_period)} days; a period needs at least one day")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, np.clip(d / np.where(n > 0, n, 1.0), 0.0, 1.0), np.nan)
    return shape.restore(np.asarray(out, dtype=float), name="proration")


def period_bonus(
    kpi_bonus: Any,
    multiplier: Any = 1.0,
    proration: Any = 1.0,
    *,
    gated: Any = False,
    digits: int = 2,
) -> Any:
    """The bonus for the period as ``xl-kpi generate`` pays it: ROUND(KPI bonus × multiplier × proration, digits),
    and 0 for an employee who failed a gate.

    ``kpi_bonus`` is the sum of the rounded line items (:func:`kpi_bonus`); ``multiplier`` is the individual
    multiplier (empty in the plan = 1), ``proration`` the share of the period worked (1 = all of it).
    Scalars or arrays of one shape; the batch, the cards and this function use this one rule.

    >>> period_bonus(20_800, multiplier=1.2, proration=0.5)
    12480.0
    >>> period_bonus(20_800, gated=True)
    0.0
    """
    (k, m, p), shape = as_floats(kpi_bonus=kpi_bonus, multiplier=multiplier, proration=proration)
    g = np.asarray(gated, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is inf, caught by the amount limits
        out = np.where(g, 0.0, np.asarray(round_money(k * m * p, digits), dtype=float))
    return shape.restore(np.asarray(out, dtype=float), name="period_bonus")


def total_pay(salary: Any, bonus: Any, *, digits: int = 2) -> Any:
    """Salary plus the period's bonus, rounded like Excel's ROUND to ``digits``.

    >>> total_pay(80_000, 12_480.004)
    92480.0
    """
    (s, b), shape = as_floats(salary=salary, bonus=bonus)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(round_money(s + b, digits), dtype=float)
    return shape.restore(out, name="total_pay")


def weighted_score(weights: Any, scores: Any, employee_ids: Any = None) -> Any:
    """Σ weight × score, rounded with Excel's ROUND to :data:`SCORE_DECIMALS`, so equal scores on paper tie.

    Without ``employee_ids``: along the last axis (1-D → a float). With ``employee_ids`` (one per line): a
    Series indexed by employee in first-seen order, named ``weighted_score``. A NaN score or weight makes
    that employee's weighted score NaN; an absurd score gives inf (the employee is in error), not noise.

    >>> weighted_score([0.4, 0.6], [1.2, 1.0])
    1.08
    """
    w = as_float_array(weights, "weights")
    s = as_float_array(scores, "scores")
    with np.errstate(over="ignore", invalid="ignore"):
        product = w * s
    if employee_ids is None:
        if np.ndim(product) == 0:
            raise KpiError("weights and scores must be sequences (one element per KPI)")
        with np.errstate(over="ignore", invalid="ignore"):
            total = product.sum(axis=-1)
        out = round_score(total, SCORE_DECIMALS)
        return float(out) if out.ndim == 0 else out
    flat = pd.Series(np.atleast_1d(product).astype(float))
    ids = _ids(employee_ids, len(flat))
    with np.errstate(over="ignore", invalid="ignore"):
        total = flat.groupby(ids, sort=False).sum(min_count=1)
        missing = flat.isna().groupby(ids, sort=False).any()
    total = total.where(~missing, np.nan)
    return pd.Series(round_score(total.to_numpy(float), SCORE_DECIMALS), index=total.index, name="weighted_score")


def _ids(employee_ids: Any, n: int) -> pd.Index:
    ids = pd.Index(employee_ids.to_numpy() if isinstance(employee_ids, (pd.Series, pd.Index)) else
                   np.asarray(employee_ids, dtype=object), name="employee_id")
    if len(ids) != n:
        raise KpiError(f"{len(ids)} employee ids for {n} lines; give one employee id per line")
    return ids


def _num(x: Any) -> str:
    try:
        return f"{float(x):g}"
    except (TypeError, ValueError):
        return repr(x)
