"""The payout rules as Excel formula text, for a cell layout the caller gives (references or literals).

Each function mirrors one rule of :mod:`xl_kpi.engine.scoring` / :mod:`xl_kpi.engine.payout` and returns the
formula without the leading ``=``; the arguments are cell references (``"G11"``, ``"$D$17"``), ranges or
number literals (:func:`literal`). The cards (and any sheet that wants live formulas) build every formula
with these, so a recalculating spreadsheet shows the very numbers the engine cached:

* scores are compared with thresholds as ``ROUND(score, 12)`` (:data:`~xl_kpi.engine.payout.SCORE_DECIMALS`);
* every money amount is ``ROUND(…, digits)``, ``digits`` being the plan's Settings digits;
* an empty input gives ``""`` down the chain (a missing fact is never scored as 0), and ``SUM`` skips it.

>>> score_formula("G11", "E11", "F11", floor="0")
'IF(ISNUMBER(G11),MAX((G11-E11)/(F11-E11),0),"")'
>>> line_bonus_formula("$D$17", "D11", "I11", 0)
'IF(ISNUMBER(I11),ROUND($D$17*D11*I11,0),"")'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from xl_kpi.engine.money import round_formula
from xl_kpi.engine.payout import PAYOUT_KINDS, SCORE_DECIMALS, Tiers
from xl_kpi.engine.scales import Scale

__all__ = [
    "PayoutRefs",
    "ScaleRefs",
    "adjustment_formula",
    "array_literal",
    "coefficient_formula",
    "fixed_formula",
    "gate_condition",
    "kpi_bonus_formula",
    "line_bonus_formula",
    "literal",
    "payout_formula",
    "per_unit_formula",
    "period_bonus_formula",
    "proportional_formula",
    "rows_ratio_formula",
    "rows_total_formula",
    "score_formula",
    "score_key_formula",
    "share_formula",
    "sum_formula",
    "tiered_formula",
    "total_pay_formula",
    "weighted_score_formula",
    "year_to_date_formula",
]


def _number(x: float) -> str:
    r = repr(float(x))
    return r[:-2] if r.endswith(".0") else r


def literal(x: Any) -> str:
    """A number as formula text (shortest round-trip form; a negative one in parentheses).

    >>> literal(0.7), literal(-5.0), literal(20000)
    ('0.7', '(-5)', '20000')
    """
    s = _number(float(x))
    return f"({s})" if s.startswith("-") else s


def array_literal(xs: Iterable[float]) -> str:
    """An Excel array constant: ``{0.7,1,1.1}``."""
    return "{" + ",".join(_number(float(x)) for x in xs) + "}"


@dataclass(frozen=True)
class ScaleRefs:
    """Where a coefficient formula reads a scale: thresholds and coefficients (ranges or array constants),
    their first and last elements, the coefficient below the first step and the coefficient cap (or None)."""

    kind: str
    thresholds: str
    coefficients: str
    first_threshold: str
    last_threshold: str
    first_coefficient: str
    last_coefficient: str
    below: str
    cap: str | None = None

    @classmethod
    def of(cls, scale: Scale) -> ScaleRefs:
        """The scale's numbers written into the formula (no scale table on the sheet)."""
        return cls(scale.kind, array_literal(scale.thresholds), array_literal(scale.coefficients),
                   literal(scale.thresholds[0]), literal(scale.thresholds[-1]),
                   literal(scale.coefficients[0]), literal(scale.coefficients[-1]), literal(scale.below),
                   None if scale.cap is None else literal(scale.cap))

    @classmethod
    def cells(cls, scale: Scale, threshold_col: str, coefficient_col: str, point_rows: Sequence[int],
              below_row: int | None = None, cap_row: int | None = None) -> ScaleRefs:
        """The scale as a table on the sheet: one row per point (threshold and coefficient columns), and
        optionally a row holding the coefficient below the first step and one holding the cap."""
        t, c = threshold_col, coefficient_col
        first, last = point_rows[0], point_rows[-1]
        below = f"${c}${below_row}" if below_row is not None else literal(scale.below)
        cap = None if scale.cap is None else (f"${c}${cap_row}" if cap_row is not None else literal(scale.cap))
        return cls(scale.kind, f"${t}${first}:${t}${last}", f"${c}${first}:${c}${last}", f"${t}${first}",
                   f"${t}${last}", f"${c}${first}", f"${c}${last}", below, cap)


def score_key_formula(score: str) -> str:
    """``ROUND(score,12)``: the score as thresholds and gates compare it (:func:`~xl_kpi.engine.payout.score_key`)."""
    return f"ROUND({score},{SCORE_DECIMALS})"


def score_formula(fact: str, base: str, norm: str, floor: str | None = None, cap: str | None = None) -> str:
    """The KPI score: ``(fact − base)/(norm − base)``, then MAX with the floor and MIN with the cap when given;
    ``""`` while the fact is empty. Lower-is-better KPIs need nothing else (base above norm); norm = base gives
    ``#DIV/0!``, as :func:`~xl_kpi.engine.scoring.score` refuses it."""
    x = f"({fact}-{base})/({norm}-{base})"
    if floor is not None:
        x = f"MAX({x},{floor})"
    if cap is not None:
        x = f"MIN({x},{cap})"
    return f'IF(ISNUMBER({fact}),{x},"")'


def coefficient_formula(score: str, scale: ScaleRefs) -> str:
    """The premium coefficient of ``score`` on a scale (:class:`~xl_kpi.engine.scales.Scale`):

    * steps: ``below`` under the first threshold, else ``LOOKUP`` of ``ROUND(score,12)`` in the half-open bands;
    * linear: flat outside the first/last points, straight lines between them (``MATCH`` + ``INDEX``);

    then ``MIN`` with the cap if the scale has one; ``""`` while the score is empty.
    """
    s, d = score, scale
    if d.kind == "steps":
        key = score_key_formula(s)
        y = f"IF({key}<{d.first_threshold},{d.below},LOOKUP({key},{d.thresholds},{d.coefficients}))"
    elif d.kind == "linear":
        m = f"MATCH({s},{d.thresholds},1)"
        t, c = d.thresholds, d.coefficients
        y = (f"IF({s}<={d.first_threshold},{d.first_coefficient},IF({s}>={d.last_threshold},{d.last_coefficient},"
             f"(INDEX({c},{m}+1)-INDEX({c},{m}))/(INDEX({t},{m}+1)-INDEX({t},{m}))*({s}-INDEX({t},{m}))"
             f"+INDEX({c},{m})))")
    else:
        raise ValueError(f"scale kind must be 'steps' or 'linear', not {d.kind!r}")
    if d.cap is not None:
        y = f"MIN({y},{d.cap})"
    return f'IF(ISNUMBER({s}),{y},"")'


def line_bonus_formula(pool: str, weight: str, coefficient: str, digits: int = 2) -> str:
    """One KPI line's bonus, ``ROUND(pool*weight*coefficient,digits)`` (:func:`~xl_kpi.engine.payout.line_bonus`);
    ``""`` while the coefficient is empty."""
    return f'IF(ISNUMBER({coefficient}),{round_formula(f"{pool}*{weight}*{coefficient}", digits)},"")'


def sum_formula(cells: str) -> str:
    """``SUM(cells)``: blanks and ``""`` are skipped."""
    return f"SUM({cells})"


_ROWS_REDUCERS = {"sum": "SUM", "count": "SUM", "distinct": "SUM", "mean": "AVERAGE", "min": "MIN", "max": "MAX",
                  "median": "MEDIAN"}


def rows_total_formula(func: str, contributions: str, factor: float = 1.0) -> str:
    """A derived fact from the contributions of its raw rows (:func:`xl_kpi.inputs.sources.drill.total`):
    ``SUM`` for sum, count and distinct (1 per row, 1 per first row of a value), ``AVERAGE``/``MIN``/``MAX``/
    ``MEDIAN`` for the values, ``100*SUM/COUNT`` of the answer classes (+1, 0, -1) for NPS; times ``factor``.

    >>> rows_total_formula("nps", "B5:B9")
    '100*SUM(B5:B9)/COUNT(B5:B9)'
    >>> rows_total_formula("sum", "B5:B9", 0.001)
    'SUM(B5:B9)*0.001'
    """
    if func == "nps":
        out = f"100*SUM({contributions})/COUNT({contributions})"
    else:
        out = f"{_ROWS_REDUCERS[func]}({contributions})"
    return out if factor == 1.0 else f"{out}*{literal(factor)}"


def rows_ratio_formula(numerator: str, denominator: str, factor: float = 1.0) -> str:
    """A ratio source's fact from its two totals (``""`` when the denominator is 0, as the fact is then missing)."""
    out = f"{numerator}/{denominator}" + ("" if factor == 1.0 else f"*{literal(factor)}")
    return f'IF({denominator}=0,"",{out})'


def kpi_bonus_formula(line_bonuses: str) -> str:
    """The KPI bonus: the sum of the (already rounded) line bonuses (:func:`~xl_kpi.engine.payout.kpi_bonus`)."""
    return sum_formula(line_bonuses)


def gate_condition(gates: Iterable[tuple[str, str]]) -> str | None:
    """TRUE when some gate failed: ``OR`` over the (score, gate) pairs of ``ROUND(score,12)<gate``
    (:func:`~xl_kpi.engine.payout.gate_failed`); an empty score or an error (#DIV/0!) never fails a gate.
    None when there are no gates.

    >>> gate_condition([("H11", "0.5")])
    'OR(IF(ISNUMBER(H11),ROUND(H11,12)<0.5,FALSE))'
    """
    conds = [f"IF(ISNUMBER({s}),{score_key_formula(s)}<{g},FALSE)" for s, g in gates]
    return f"OR({','.join(conds)})" if conds else None


def period_bonus_formula(kpi_bonus: str, multiplier: str, proration: str, digits: int = 2,
                         gate: str | None = None) -> str:
    """The bonus for the period, ``ROUND(kpi_bonus*multiplier*proration,digits)``, 0 when ``gate`` (a condition
    from :func:`gate_condition`) holds (:func:`~xl_kpi.engine.payout.period_bonus`)."""
    core = round_formula(f"{kpi_bonus}*{multiplier}*{proration}", digits)
    return f"IF({gate},0,{core})" if gate else core


def total_pay_formula(salary: str, bonus: str, digits: int = 2, adjustment: str | None = None) -> str:
    """Salary plus the period's bonus (plus the adjustments, when given), ``ROUND(salary+bonus+adjustment,digits)``
    (:func:`~xl_kpi.engine.payout.total_pay`). ``bonus`` and ``adjustment`` may be references or formulas (they
    are parenthesised when they are not plain references)."""
    b = bonus if _plain_ref(bonus) else f"({bonus})"
    if adjustment is None:
        return round_formula(f"{salary}+{b}", digits)
    a = adjustment if _plain_ref(adjustment) else f"({adjustment})"
    return round_formula(f"{salary}+{b}+{a}", digits)


def adjustment_formula(amounts: str, digits: int = 2) -> str:
    """The employee's adjustments added up, ``ROUND(SUM(amounts),digits)``
    (:func:`~xl_kpi.engine.payout.adjustment_total`)."""
    return round_formula(f"SUM({amounts})", digits)


def year_to_date_formula(bonuses: str, digits: int = 2) -> str:
    """The year-to-date total of the period bonuses in ``bonuses``, ``ROUND(SUM(bonuses),digits)``
    (:func:`~xl_kpi.engine.payout.year_to_date`)."""
    return round_formula(f"SUM({bonuses})", digits)


def weighted_score_formula(weights: str, scores: str) -> str:
    """Σ weight × score rounded to 12 decimals (:func:`~xl_kpi.engine.payout.weighted_score`):
    ``ROUND(SUMPRODUCT(weights,scores),12)``."""
    return f"ROUND(SUMPRODUCT({weights},{scores}),{SCORE_DECIMALS})"


def group_rank_formula(groups: str, group: str, scores: str, score: str) -> str:
    """Rank of ``score`` among the scores of its own group (position, department): 1 + how many in the
    group score higher, so ties share a rank as RANK does (pandas ``rank(method="min", ascending=False)``).
    ``SUMPRODUCT((groups=group)*ISNUMBER(scores)*(scores>score))+1``: an exact comparison, not COUNTIFS, whose
    criteria would take ``*``, ``?`` or a leading ``>`` in a department's name as a pattern; ``ISNUMBER`` keeps
    a blank score (an employee in error) out, which the comparison alone would take for 0, higher than a
    negative score. Excel compares text without regard to case, so "Sales" and "sales" are one group
    (:func:`group_key`)."""
    return f"SUMPRODUCT(({groups}={group})*ISNUMBER({scores})*({scores}>{score}))+1"


def group_key(text: str) -> str:
    """The key under which Excel's ``=`` puts a text in a group (case-insensitive; ё and е stay apart)."""
    return text.lower()


def _plain_ref(x: str) -> bool:
    return x.replace("$", "").replace("!", "").replace("'", "").isalnum()


# ---- payout kinds (issue 15) -------------------------------------------------------------------------------


def _capped_formula(raw: str, max_payout: str | None, digits: int) -> str:
    return round_formula(f"MIN({raw},{max_payout})" if max_payout is not None else raw, digits)


def tiered_formula(quantity: str, tiers: Tiers) -> str:
    """The unrounded amount of ``quantity`` on ``tiers`` (:meth:`~xl_kpi.engine.payout.Tiers.amount`), the tiers
    written into the formula as array constants:

    * marginal: ``SUMPRODUCT(rates,(q>starts)*(q-starts))-SUMPRODUCT(rates',(q>ends)*(q-ends))`` (rates' and ends:
      every tier but the last);
    * retroactive: ``q*LOOKUP(q,starts,rates)`` (the last tier whose start is <= q).

    >>> tiered_formula("B2", Tiers((0, 100), (0.03, 0.05), "retroactive"))
    'B2*LOOKUP(B2,{0,100},{0.03,0.05})'
    """
    q, s, r = quantity, array_literal(tiers.starts), array_literal(tiers.rates)
    if tiers.mode == "retroactive":
        return f"{q}*LOOKUP({q},{s},{r})"
    over = f"SUMPRODUCT({r},({q}>{s})*({q}-{s}))"
    if len(tiers.starts) == 1:
        return over
    e, r2 = array_literal(tiers.ends), array_literal(tiers.rates[:-1])
    return f"{over}-SUMPRODUCT({r2},({q}>{e})*({q}-{e}))"


def fixed_formula(score: str, threshold: str, amount: str, digits: int = 2) -> str:
    """A set amount when ``ROUND(score,12)>=threshold``, else 0 (:func:`~xl_kpi.engine.payout.fixed_bonus`);
    ``""`` while the score is empty."""
    return f'IF(ISNUMBER({score}),IF({score_key_formula(score)}>={threshold},{round_formula(amount, digits)},0),"")'


def proportional_formula(pool: str, weight: str, score: str, max_payout: str | None = None, digits: int = 2) -> str:
    """``ROUND(MIN(MAX(pool*weight*score,0),max_payout),digits)`` (:func:`~xl_kpi.engine.payout.proportional_bonus`)."""
    return f'IF(ISNUMBER({score}),{_capped_formula(f"MAX({pool}*{weight}*{score},0)", max_payout, digits)},"")'


def per_unit_formula(fact: str, base: str, rate: str | None = None, max_payout: str | None = None,
                     digits: int = 2, tiers: Tiers | None = None) -> str:
    """rate × ``MAX(fact-base,0)`` (or the tiers' amount of those units), at most max_payout, rounded
    (:func:`~xl_kpi.engine.payout.per_unit_bonus`); ``""`` while the fact is empty.

    >>> per_unit_formula("G11", "10", "500", digits=0)
    'IF(ISNUMBER(G11),ROUND(500*MAX(G11-10,0),0),"")'
    """
    q = f"MAX({fact}-{base},0)"
    raw = tiered_formula(q, tiers) if tiers is not None else f"{rate}*{q}"
    return f'IF(ISNUMBER({fact}),{_capped_formula(raw, max_payout, digits)},"")'


def share_formula(fact: str, rate: str | None = None, max_payout: str | None = None, digits: int = 2,
                  tiers: Tiers | None = None) -> str:
    """rate × ``MAX(fact,0)`` (or the tiers' amount of it), at most max_payout, rounded
    (:func:`~xl_kpi.engine.payout.share_bonus`); ``""`` while the fact is empty."""
    q = f"MAX({fact},0)"
    raw = tiered_formula(q, tiers) if tiers is not None else f"{rate}*{q}"
    return f'IF(ISNUMBER({fact}),{_capped_formula(raw, max_payout, digits)},"")'


@dataclass(frozen=True)
class PayoutRefs:
    """Where a line's payout formula reads its inputs: cell references or literals (None: not given)."""

    pool: str
    weight: str
    coefficient: str
    score: str
    fact: str
    base: str
    rate: str | None = None
    threshold: str | None = None
    amount: str | None = None
    max_payout: str | None = None


def payout_formula(kind: str, refs: PayoutRefs, digits: int = 2, tiers: Tiers | None = None) -> str:
    """The line bonus formula of a payout kind (:data:`~xl_kpi.engine.payout.PAYOUT_KINDS`), as
    :func:`~xl_kpi.engine.payout.kind_bonus` computes it."""
    x = refs
    if kind == "coefficient":
        return line_bonus_formula(x.pool, x.weight, x.coefficient, digits)
    if kind == "fixed":
        return fixed_formula(x.score, _given(x.threshold, "threshold"), _given(x.amount, "amount"), digits)
    if kind == "proportional":
        return proportional_formula(x.pool, x.weight, x.score, x.max_payout, digits)
    if kind == "per_unit":
        return per_unit_formula(x.fact, x.base, None if tiers else _given(x.rate, "rate"), x.max_payout, digits, tiers)
    if kind == "share":
        return share_formula(x.fact, None if tiers else _given(x.rate, "rate"), x.max_payout, digits, tiers)
    raise ValueError(f"payout kind must be one of {', '.join(PAYOUT_KINDS)}, not {kind!r}")


def _given(x: str | None, what: str) -> str:
    if x is None:
        raise ValueError(f"this payout kind needs its {what}")
    return x
