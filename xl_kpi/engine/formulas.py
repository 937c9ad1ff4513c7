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
from xl_kpi.engine.payout import SCORE_DECIMALS
from xl_kpi.engine.scales import Scale

__all__ = [
    "ScaleRefs",
    "array_literal",
    "coefficient_formula",
    "gate_condition",
    "kpi_bonus_formula",
    "line_bonus_formula",
    "literal",
    "period_bonus_formula",
    "score_formula",
    "score_key_formula",
    "sum_formula",
    "total_pay_formula",
    "weighted_score_formula",
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


def total_pay_formula(salary: str, bonus: str, digits: int = 2) -> str:
    """Salary plus the period's bonus, ``ROUND(salary+bonus,digits)`` (:func:`~xl_kpi.engine.payout.total_pay`).
    ``bonus`` may be a reference or a formula (it is parenthesised when it is not a plain reference)."""
    b = bonus if _plain_ref(bonus) else f"({bonus})"
    return round_formula(f"{salary}+{b}", digits)


def weighted_score_formula(weights: str, scores: str) -> str:
    """Σ weight × score rounded to 12 decimals (:func:`~xl_kpi.engine.payout.weighted_score`):
    ``ROUND(SUMPRODUCT(weights,scores),12)``."""
    return f"ROUND(SUMPRODUCT({weights},{scores}),{SCORE_DECIMALS})"


def _plain_ref(x: str) -> bool:
    return x.replace("$", "").replace("!", "").replace("'", "").isalnum()
