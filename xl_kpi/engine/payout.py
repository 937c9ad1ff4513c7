"""The payout: every rule that turns scored KPI lines into money (docs/domain.md §4 plus the plan's extensions).

One home for the money, used by the batch (``results``), the cards' cached values, the summary, the
Excel functions (``udfs``) and the library::

    line bonus  = ROUND(pool × weight × coefficient, digits)
    KPI bonus   = ROUND(Σ line bonuses of the employee, digits)        (the sum of the *rounded* lines)
    gated       = some gate KPI has ROUND(score, 12) < its gate
    bonus       = 0 if gated, else ROUND(KPI bonus × multiplier × proration, digits)
    total pay   = ROUND(salary + bonus, digits)
    weighted    = ROUND(Σ weight × score, 12)                            (the summary's ranking score)
    year to date = ROUND(Σ bonuses of this period and the earlier ones of its year, digits)   (the card's history)

Every ROUND is Excel's (:func:`~xl_kpi.engine.money.round_money`, half away from zero); the Excel text of
the same rules is in :mod:`xl_kpi.engine.formulas`. Pure and vectorised: scalars, NumPy arrays or pandas
Series in (elementwise, broadcasting), the same kind out; NaN (a missing input) gives NaN, never a guess.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.arrays import as_float_array, as_floats
from xl_kpi.engine.errors import KpiError, KpiText, WeightError
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
        raise KpiError(KpiText("the period has {days} days; a period needs at least one day",
                               days=_num(days_in_period)))
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


def total_pay(salary: Any, bonus: Any, adjustment: Any = 0.0, *, digits: int = 2) -> Any:
    """Salary plus the period's bonus plus the employee's adjustments (the Adjustments sheet's one-off
    corrections and bonuses agreed outside the KPIs, already summed by :func:`adjustment_total`), rounded like
    Excel's ROUND to ``digits``.

    >>> total_pay(80_000, 12_480.004)
    92480.0
    >>> total_pay(80_000, 12_480, -1_500.5)
    90979.5
    """
    (s, b, a), shape = as_floats(salary=salary, bonus=bonus, adjustment=adjustment)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(round_money(s + b + a, digits), dtype=float)
    return shape.restore(out, name="total_pay")


def adjustment_total(amounts: Any, employee_ids: Any, *, digits: int = 2) -> pd.Series:
    """Each employee's adjustments added up and rounded to ``digits`` (Excel's ROUND of the SUM the card shows):
    a Series indexed by employee in first-seen order, named ``adjustment``.

    >>> adjustment_total([1000, -250.255, 40], ["E1", "E1", "E2"]).to_dict()
    {'E1': 749.75, 'E2': 40.0}
    """
    a = pd.Series(np.atleast_1d(as_float_array(amounts, "amounts")).astype(float))
    ids = _ids(employee_ids, len(a))
    with np.errstate(over="ignore", invalid="ignore"):
        total = a.groupby(ids, sort=False).sum(min_count=1)
    return pd.Series(np.asarray(round_money(total.to_numpy(float), digits), dtype=float), index=total.index,
                     name="adjustment")


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


def year_to_date(bonuses: Any, *, digits: int = 2) -> float:
    """The year-to-date total of one employee's period bonuses (this period's and the earlier ones that count,
    :meth:`~xl_kpi.engine.period.Period.counts_toward_year_to_date`): ``ROUND(SUM(bonuses), digits)``, an empty
    (NaN) bonus skipped as Excel's SUM skips a blank cell.

    >>> year_to_date([1500.5, float("nan"), 2250.25])
    3750.75
    """
    b = np.atleast_1d(as_float_array(bonuses, "bonuses")).astype(float)
    return float(round_money(math.fsum(b[~np.isnan(b)]), digits))


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


# ---- payout kinds (issue 15): what a line pays besides pool × weight × coefficient --------------------------

PAYOUT_KINDS = ("coefficient", "fixed", "proportional", "per_unit", "share")
"""What a KPI line pays (the Plan's ``payout`` column):

* ``coefficient`` (the default, docs/domain.md §4): ROUND(pool × weight × coefficient(score), digits);
* ``fixed``: ROUND(amount, digits) when ROUND(score, 12) >= threshold, else 0;
* ``proportional``: ROUND(MIN(MAX(pool × weight × score, 0), max_payout), digits), the score after floor and cap;
* ``per_unit``: ROUND(MIN(rate × MAX(fact − base, 0), max_payout), digits) (or the tiers' amount of those units);
* ``share``: ROUND(MIN(rate × MAX(fact, 0), max_payout), digits) (or the tiers' amount of the fact).

No kind pays a negative amount: a fact below the base (or a negative revenue) counts as 0 units."""

TIER_MODES = ("marginal", "retroactive")
TIER_MODE_WORDS: dict[str, str] = {
    "marginal": "marginal", "прогрессивная": "marginal", "по ступеням": "marginal", "маржинальная": "marginal",
    "retroactive": "retroactive", "ретроактивная": "retroactive", "на всю сумму": "retroactive",
}
"""How a tier mode may be written (the Tiers sheet's ``mode``, the Excel functions' ``mode``; lower case, spaces
between words) → :data:`TIER_MODES`."""


@dataclass(frozen=True)
class Tiers:
    """Tiered rates: tier *i* runs from ``starts[i]`` to ``starts[i+1]`` (the last one has no end) at ``rates[i]``.

    * ``marginal``: each tier's rate applies to the part of the quantity inside that tier;
    * ``retroactive``: the tier reached (the last one whose start is <= the quantity) sets the rate for all of it.

    The first tier starts at 0, starts increase strictly, rates are not negative (:class:`KpiError` otherwise).

    >>> t = Tiers((0, 1_000_000), (0.03, 0.05))
    >>> t.amount(1_200_000), Tiers((0, 1_000_000), (0.03, 0.05), "retroactive").amount(1_200_000)
    (40000.0, 60000.0)
    """

    starts: tuple[float, ...]
    rates: tuple[float, ...]
    mode: str = "marginal"

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts", tuple(float(x) for x in self.starts))
        object.__setattr__(self, "rates", tuple(float(x) for x in self.rates))
        s, r = self.starts, self.rates
        if not s or len(s) != len(r):
            raise KpiError(KpiText("tiers need one rate per start and at least one tier ({starts} starts, {rates} "
                                   "rates)", starts=len(s), rates=len(r)))
        if self.mode not in TIER_MODES:
            raise KpiError(KpiText("tier mode must be 'marginal' or 'retroactive', not {mode}", mode=repr(self.mode)))
        if not all(np.isfinite(s)) or not all(np.isfinite(r)):
            raise KpiError(KpiText("tier starts and rates must be finite numbers"))
        if s[0] != 0:
            raise KpiError(KpiText("the first tier must start at 0, not {start}", start=_num(s[0])))
        if any(b <= a for a, b in itertools.pairwise(s)):
            raise KpiError(KpiText("tier starts must increase: {starts}", starts=", ".join(map(_num, s))))
        if any(x < 0 for x in r):
            raise KpiError(KpiText("tier rates must not be negative: {rates}", rates=", ".join(map(_num, r))))

    @property
    def ends(self) -> tuple[float, ...]:
        """Where each tier but the last ends (the next one's start)."""
        return self.starts[1:]

    def amount(self, quantity: Any) -> Any:
        """The unrounded amount the tiers give for ``quantity`` (>= 0; NaN stays NaN), computed in the order
        the Excel formula (:func:`~xl_kpi.engine.formulas.tiered_formula`) computes it."""
        (q,), shape = as_floats(quantity=quantity)
        with np.errstate(over="ignore", invalid="ignore"):
            if self.mode == "retroactive":
                idx = np.searchsorted(np.asarray(self.starts), np.nan_to_num(q, nan=0.0), side="right") - 1
                rate = np.asarray(self.rates)[np.clip(idx, 0, None)]
                out = np.where(np.isnan(q), np.nan, q * rate)
            else:
                over = np.zeros_like(q)
                for f, r in zip(self.starts, self.rates, strict=True):
                    over = over + r * np.where(q > f, q - f, 0.0)
                under = np.zeros_like(q)
                for t, r in zip(self.ends, self.rates[:-1], strict=True):
                    under = under + r * np.where(q > t, q - t, 0.0)
                out = np.where(np.isnan(q), np.nan, over - under)
        return shape.restore(np.asarray(out, dtype=float), name="amount")


def _capped(raw: np.ndarray, max_payout: np.ndarray, digits: int | None) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        out = np.where(np.isnan(max_payout), raw, np.minimum(raw, max_payout))
    out = np.where(np.isnan(raw), np.nan, out)
    return out if digits is None else np.asarray(round_money(out, digits), dtype=float)


def _check_rate(shape: Any, **named: Any) -> None:
    if shape.scalar:
        for k, v in named.items():
            if v is not None and float(v) < 0:
                raise KpiError(KpiText("{name} ({value}) must not be negative", name=k, value=_num(v)))


def fixed_bonus(score: Any, threshold: Any, amount: Any, *, digits: int | None = 2) -> Any:
    """A set amount when the score reaches the threshold (``ROUND(score, 12) >= threshold``), else 0; NaN score → NaN.

    >>> fixed_bonus(1.0, 1.0, 5_000), fixed_bonus(0.99, 1.0, 5_000)
    (5000.0, 0.0)
    """
    (s, t, a), shape = as_floats(score=score, threshold=threshold, amount=amount)
    _check_rate(shape, amount=amount)
    with np.errstate(invalid="ignore"):
        raw = np.where(np.isnan(s) | np.isnan(t) | (a < 0), np.nan, np.where(score_key(s) >= t, a, 0.0))
    out = raw if digits is None else np.asarray(round_money(raw, digits), dtype=float)
    return shape.restore(np.asarray(out, dtype=float), name="bonus")


def proportional_bonus(pool: Any, weight: Any, score: Any, max_payout: Any = np.nan, *,
                       digits: int | None = 2) -> Any:
    """pool × weight × score (the score after the line's floor and cap), never below 0, at most ``max_payout``.

    >>> proportional_bonus(20_000, 0.5, 1.234), proportional_bonus(20_000, 0.5, -0.2)
    (12340.0, 0.0)
    """
    (p, w, s, m), shape = as_floats(pool=pool, weight=weight, score=score, max_payout=max_payout)
    if shape.scalar and (p < 0 or w < 0):
        raise WeightError(f"pool ({_num(pool)}) and weight ({_num(weight)}) must not be negative")
    with np.errstate(over="ignore", invalid="ignore"):
        raw = np.where((p < 0) | (w < 0), np.nan, np.maximum(p * w * s, 0.0))
        raw = np.where(np.isnan(s), np.nan, raw)
    return shape.restore(_capped(raw, m, digits), name="bonus")


def _units_amount(q: np.ndarray, rate: np.ndarray, tiers: Tiers | None) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        if tiers is not None:
            return np.asarray(tiers.amount(q), dtype=float)
        return np.where(rate < 0, np.nan, rate * q)


def per_unit_bonus(fact: Any, base: Any, rate: Any = np.nan, max_payout: Any = np.nan, *,
                   tiers: Tiers | None = None, digits: int | None = 2) -> Any:
    """rate × the units of the fact above the base (``MAX(fact − base, 0)``), or the tiers' amount of those units
    (then ``rate`` is not used), at most ``max_payout``.

    "500 ₽ for every closed deal above 10", 14 deals:

    >>> per_unit_bonus(14, 10, 500)
    2000.0
    """
    (f, b, r, m), shape = as_floats(fact=fact, base=base, rate=rate, max_payout=max_payout)
    if tiers is None:
        _check_rate(shape, rate=rate)
    with np.errstate(invalid="ignore"):
        q = np.maximum(f - b, 0.0)
        q = np.where(np.isnan(f) | np.isnan(b), np.nan, q)
    return shape.restore(_capped(_units_amount(q, r, tiers), m, digits), name="bonus")


def share_bonus(fact: Any, rate: Any = np.nan, max_payout: Any = np.nan, *, tiers: Tiers | None = None,
                digits: int | None = 2) -> Any:
    """rate × the fact (an amount of money, e.g. won revenue; a negative one counts as 0), or the tiers' amount
    of it, at most ``max_payout``.

    "3% of won revenue, 5% above the plan of 1 000 000", marginal, 1 200 000 won:

    >>> share_bonus(1_200_000, tiers=Tiers((0, 1_000_000), (0.03, 0.05)))
    40000.0
    """
    (f, r, m), shape = as_floats(fact=fact, rate=rate, max_payout=max_payout)
    if tiers is None:
        _check_rate(shape, rate=rate)
    with np.errstate(invalid="ignore"):
        q = np.where(np.isnan(f), np.nan, np.maximum(f, 0.0))
    return shape.restore(_capped(_units_amount(q, r, tiers), m, digits), name="bonus")


def kind_bonus(kind: Any, *, pool: Any, weight: Any, coefficient: Any, score: Any, fact: Any, base: Any,
               rate: Any = np.nan, threshold: Any = np.nan, amount: Any = np.nan, max_payout: Any = np.nan,
               tiers: Any = None, tier_sets: dict[str, Tiers] | None = None, digits: int | None = 2) -> np.ndarray:
    """Every line's bonus by its kind (one of :data:`PAYOUT_KINDS` per line), vectorised: each kind's rule runs once
    on its lines, each tier set once on the lines that name it (``tiers``: one name or "" per line, looked up in
    ``tier_sets``; an unknown name gives NaN). An unknown kind gives NaN."""
    k = np.asarray(kind, dtype=object)
    n = len(k)

    def col(x: Any) -> np.ndarray:
        return np.broadcast_to(as_float_array(x, "payout input"), (n,)).astype(float)

    p, w, c, s, f, b = map(col, (pool, weight, coefficient, score, fact, base))
    r, t, a, m = map(col, (rate, threshold, amount, max_payout))
    names = np.full(n, "", dtype=object) if tiers is None else np.asarray(
        [x if isinstance(x, str) else "" for x in np.broadcast_to(np.asarray(tiers, dtype=object), (n,))],
        dtype=object)
    sets = tier_sets or {}
    out = np.full(n, np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        i = k == "coefficient"
        out[i] = line_bonus(p[i], w[i], c[i], digits=digits)
        i = k == "fixed"
        out[i] = fixed_bonus(s[i], t[i], a[i], digits=digits)
        i = k == "proportional"
        out[i] = proportional_bonus(p[i], w[i], s[i], m[i], digits=digits)
        for kname in ("per_unit", "share"):
            for tname in dict.fromkeys(names[k == kname]):
                i = (k == kname) & (names == tname)
                tier = sets.get(tname) if tname else None
                if tname and tier is None:
                    continue
                if kname == "per_unit":
                    v = per_unit_bonus(f[i], b[i], r[i], m[i], tiers=tier, digits=digits)
                else:
                    v = share_bonus(f[i], r[i], m[i], tiers=tier, digits=digits)
                out[i] = np.asarray(v, dtype=float)
    return out
