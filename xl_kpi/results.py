"""The results table: every employee × KPI scored and every employee's bonus, computed vectorised.

:func:`compute` joins the plan's matrix with the facts and runs the engine on whole columns:
:func:`xl_kpi.score` for all lines at once, each named :class:`~xl_kpi.Scale` once on its lines,
:func:`xl_kpi.round_money` for money. Card and summary writers read :class:`Results`; they never
compute KPI math themselves.

Bonus of an employee (DOMAIN.md §4, plus the plan's extensions)::

    line bonus  = ROUND(pool × weight × coefficient(score), digits)       (score after floor/cap)
    kpi_bonus   = Σ line bonuses
    bonus       = 0 if a gate KPI scored below its gate, else ROUND(kpi_bonus × multiplier × proration)
    total_pay   = ROUND(salary + bonus)

An employee whose inputs are incomplete (a missing fact, weights not summing to 100%, …) gets
status "error", the reasons in ``reason``, and NaN money (not a guess).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .facts import Facts
from .money import round_money
from .numbers import parse_period
from .plan import Plan, proration
from .scales import COMPARE_DECIMALS, Scale
from .scoring import WEIGHT_TOLERANCE, bonus, coefficient, score

LINE_COLUMNS = (
    "employee_id", "kpi_id", "kpi_name", "unit", "weight", "base", "norm", "floor", "cap", "scale", "gate",
    "fact", "score", "coefficient", "bonus",
)
EMPLOYEE_COLUMNS = (
    "employee_id", "name", "position", "department", "manager", "email", "salary", "bonus_pool", "multiplier",
    "proration", "kpi_bonus", "gated", "bonus", "total_pay", "status", "reason",
)


@dataclass
class Results:
    """Scored lines (one per employee × KPI) and employee totals, plus the plan settings they used."""

    lines: pd.DataFrame
    employees: pd.DataFrame
    scales: dict[str, Scale]
    period: str = ""
    currency: str = "RUB"
    company: str = ""
    language: str = "en"
    digits: int = 2
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every employee's status is 'ok'."""
        return bool((self.employees["status"] == "ok").all())


def compute(plan: Plan, facts: Facts | pd.DataFrame | None = None, *, period: str | None = None) -> Results:
    """Score every line of ``plan`` with ``facts`` and total the bonuses (see the module doc).

    ``facts`` is a :class:`~xl_kpi.facts.Facts` (from :func:`~xl_kpi.facts.load_facts`) or a DataFrame
    with employee_id, kpi_id, fact (and optionally period). The period is ``period`` if given, else
    the one the facts were loaded for, else the plan's Settings period.
    """
    the_period = (parse_period(period) if period else None) or (
        facts.period if isinstance(facts, Facts) else None) or plan.settings.period
    digits = plan.settings.digits
    lines = _with_facts(plan, facts, the_period)
    lines = _score_lines(plan, lines, digits)
    employees = _employees(plan, lines, the_period, digits)
    return Results(
        lines=lines[list(LINE_COLUMNS)].reset_index(drop=True),
        employees=employees[list(EMPLOYEE_COLUMNS)].reset_index(drop=True),
        scales=dict(plan.scales),
        period=the_period or "",
        currency=plan.settings.currency,
        company=plan.settings.company,
        language=plan.settings.language,
        digits=digits,
    )


def _with_facts(plan: Plan, facts: Facts | pd.DataFrame | None, period: str | None) -> pd.DataFrame:
    lines = plan.lines.copy()
    kpis = plan.kpis.set_index("kpi_id")
    lines["kpi_name"] = _text_map(lines["kpi_id"], kpis["name"])
    lines["unit"] = _text_map(lines["kpi_id"], kpis["unit"])
    lines["known_kpi"] = lines["kpi_id"].isin(kpis.index)
    if facts is None:
        lines["fact"], lines["note"] = np.nan, np.nan
        return lines
    if isinstance(facts, pd.DataFrame):
        frame = facts
        if period and "period" in frame:
            periods = {v: parse_period(v) for v in frame["period"].dropna().unique()}
            mapped = frame["period"].map(periods)
            frame = frame[mapped.isna() | (mapped == period)]
        facts = Facts.from_frame(frame, period)
    return facts.attach(lines)


def _score_lines(plan: Plan, lines: pd.DataFrame, digits: int) -> pd.DataFrame:
    """score, coefficient and rounded bonus for every line (NaN where the inputs do not allow it)."""
    floor = lines["floor"].astype(float).to_numpy()
    cap = lines["cap"].astype(float).to_numpy()
    crossed = ~np.isnan(floor) & ~np.isnan(cap) & (floor > cap)
    lines["crossed"] = crossed
    floor, cap = np.where(crossed, np.nan, floor), np.where(crossed, np.nan, cap)
    s = np.asarray(score(lines["fact"].astype(float).to_numpy(), lines["base"].astype(float).to_numpy(),
                         lines["norm"].astype(float).to_numpy(), floor=floor, cap=cap), dtype=float)
    s = np.where(crossed, np.nan, s)
    lines["score"] = s
    pool = lines["employee_id"].map(plan.employees.set_index("employee_id")["bonus_pool"]).astype(float)
    lines["pool"] = pool
    weight = lines["weight"].astype(float).to_numpy()
    coeff = np.full(len(lines), np.nan)
    amount = np.full(len(lines), np.nan)
    for name, idx in lines.groupby("scale", sort=False).indices.items():
        scale = plan.scales.get(name)
        if scale is not None:
            coeff[idx] = np.asarray(coefficient(s[idx], scale), dtype=float)
            amount[idx] = np.asarray(bonus(pool.to_numpy()[idx], weight[idx], s[idx], scale, digits=digits),
                                     dtype=float)
    lines["coefficient"] = coeff
    lines["bonus"] = amount
    gate = lines["gate"].astype(float).to_numpy()
    with np.errstate(invalid="ignore", over="ignore"):
        lines["gated"] = ~np.isnan(gate) & ~np.isnan(s) & (np.round(s, COMPARE_DECIMALS) < gate)
    return lines


def _employees(plan: Plan, lines: pd.DataFrame, period: str | None, digits: int) -> pd.DataFrame:
    emp = plan.employees.copy()
    g = lines.groupby("employee_id", sort=False)
    kpi_bonus = g["bonus"].sum(skipna=False)
    emp["kpi_bonus"] = np.asarray(round_money(emp["employee_id"].map(kpi_bonus).astype(float).to_numpy(), digits),
                                  dtype=float)
    emp["gated"] = emp["employee_id"].map(g["gated"].any()).fillna(False).astype(bool)
    emp["proration"] = proration(emp, period)
    emp["multiplier"] = emp["multiplier"].astype(float)
    reasons = _reasons(plan, lines, emp, period)
    emp["reason"] = _text_map(emp["employee_id"], reasons)
    emp["status"] = np.where(emp["reason"] == "", "ok", "error")
    error = (emp["status"] == "error").to_numpy()
    prorated = np.asarray(round_money((emp["kpi_bonus"] * emp["multiplier"] * emp["proration"]).to_numpy(), digits),
                          dtype=float)
    bonus = np.where(emp["gated"].to_numpy(), 0.0, prorated)
    emp["bonus"] = np.where(error, np.nan, bonus)
    emp["total_pay"] = np.asarray(round_money((emp["salary"].astype(float) + emp["bonus"]).to_numpy(), digits),
                                  dtype=float)
    return emp


def _reasons(plan: Plan, lines: pd.DataFrame, emp: pd.DataFrame, period: str | None) -> pd.Series:
    """Why each employee's bonus cannot be computed ('; '-joined), only for employees with a reason."""
    found: list[pd.DataFrame] = []

    def add(ids: pd.Series, texts: Any) -> None:
        if len(ids):
            found.append(pd.DataFrame({"employee_id": ids.to_numpy(), "reason": texts}))

    k = lines["kpi_id"]
    line_checks = [
        (~lines["known_kpi"], "KPI " + k + " is not in the KPIs sheet"),
        (lines["weight"].isna(), "KPI " + k + ": the weight is missing"),
        (lines["base"].isna() | lines["norm"].isna(), "KPI " + k + ": the base or norm is missing"),
        (lines["base"].notna() & (lines["base"] == lines["norm"]), "KPI " + k + ": the norm equals the base"),
        (lines["crossed"], "KPI " + k + ": the score floor is above the cap"),
        (~lines["scale"].isin(set(plan.scales)), "KPI " + k + ": unknown scale " + lines["scale"]),
    ]
    bad_line = pd.Series(False, index=lines.index)
    for mask, text in line_checks:
        mask = mask.fillna(False).astype(bool) & ~bad_line
        add(lines.loc[mask, "employee_id"], text[mask].to_numpy())
        bad_line |= mask
    note = lines["note"].astype(object)
    note = (" (" + note.astype(str) + ")").where(note.notna() & note.ne(""), "")
    no_fact = lines["fact"].isna() & ~bad_line
    add(lines.loc[no_fact, "employee_id"], ("no fact for KPI " + k[no_fact] + note[no_fact]).to_numpy())
    sums = lines.groupby("employee_id", sort=False)["weight"].sum(min_count=1)
    has_nan = lines["weight"].isna().groupby(lines["employee_id"], sort=False).any()
    off = sums[((sums - 1.0).abs() > WEIGHT_TOLERANCE) & ~has_nan]
    add(pd.Series(off.index), [f"the weights sum to {v * 100:.10g}%, not 100%" for v in off])
    ambiguous = getattr(plan, "ambiguous", {})
    if ambiguous:  # in Employees twice, or looking like another id: never carded, not even with --skip-invalid
        hit = emp["employee_id"].isin(set(ambiguous))
        add(emp.loc[hit, "employee_id"], [ambiguous[e] for e in emp.loc[hit, "employee_id"]])
    no_plan = ~emp["employee_id"].isin(set(lines["employee_id"]))
    add(emp.loc[no_plan, "employee_id"], ("no KPI plan for the position " + emp["position"][no_plan]).to_numpy())
    for col, text in (("bonus_pool", "the bonus pool is missing or not a number"),
                      ("salary", "the salary is not a number"),
                      ("multiplier", "the individual multiplier is not a number")):
        bad = emp[col].isna()
        add(emp.loc[bad, "employee_id"], [text] * int(bad.sum()))
    no_period = emp["proration"].isna()
    add(emp.loc[no_period, "employee_id"],
        ["the hired/left dates need a period to prorate (set it in Settings)"] * int(no_period.sum()))
    if not found:
        return pd.Series(dtype=object)
    all_reasons = pd.concat(found, ignore_index=True)
    return all_reasons.groupby("employee_id", sort=False)["reason"].agg("; ".join)


def _text_map(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    """Look keys up in a text Series; '' where there is no value."""
    out = keys.map(mapping).astype(object)
    return out.where(out.notna(), "")
