"""The results table: every employee × KPI scored and every employee's bonus, computed vectorised.

:func:`compute` joins the plan's matrix with the facts and runs the engine on whole columns:
:func:`xl_kpi.score` for all lines at once, each named :class:`~xl_kpi.Scale` once on its lines,
and :mod:`xl_kpi.engine.payout` for every amount (no money rule is spelled here). Card and summary
writers read :class:`Results`; they never compute KPI math themselves.

Bonus of an employee (docs/domain.md §4, plus the plan's extensions)::

    line bonus  = ROUND(pool × weight × coefficient(score), digits)       (score after floor/cap)
    kpi_bonus   = Σ line bonuses
    bonus       = 0 if a gate KPI scored below its gate, else ROUND(kpi_bonus × multiplier × proration)
    adjustment  = ROUND(Σ the employee's rows of the Adjustments sheet)      (0 without any)
    total_pay   = ROUND(salary + bonus + adjustment)

Every amount, after every multiplication and sum, must stay below ``money.MAX_MONEY`` (see
:func:`amount_limits`); an employee whose pay breaks it gets status "error", like one whose score
is infinite or absurdly large (``scoring.MAX_SCORE``).

An employee whose inputs are incomplete (a missing fact, weights not summing to 100%, …) gets
status "error", the reasons in ``reason``, and NaN money (not a guess).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.bonus_notes import bonus_notes
from xl_kpi.engine import payout
from xl_kpi.engine.money import MAX_MONEY, format_amount, over_limit
from xl_kpi.engine.period import Period, period_of
from xl_kpi.engine.scales import Scale
from xl_kpi.engine.scoring import MAX_SCORE, WEIGHT_TOLERANCE, coefficient, score
from xl_kpi.i18n import English, Msg, render, tr, using
from xl_kpi.inputs.facts import Facts
from xl_kpi.inputs.plan import Plan, proration
from xl_kpi.inputs.problems import Problems

LINE_COLUMNS = (
    "employee_id", "kpi_id", "kpi_name", "unit", "weight", "base", "norm", "floor", "cap", "scale", "gate",
    "fact", "score", "coefficient", "bonus", "payout", "rate", "threshold", "amount", "max_payout", "tiers",
)
EMPLOYEE_COLUMNS = (
    "employee_id", "name", "position", "department", "manager", "email", "salary", "bonus_pool", "multiplier",
    "proration", "kpi_bonus", "gated", "bonus", "adjustment", "adjustment_reason", "total_pay", "status", "reason",
    "bonus_note",
)


@dataclass
class Results:
    """Scored lines (one per employee × KPI) and employee totals, plus the plan settings they used."""

    lines: pd.DataFrame
    employees: pd.DataFrame
    scales: dict[str, Scale]
    period: str = ""
    """The period's key (``2026-10``, ``2026-Q4``, …; "" when unknown): :meth:`Period.parse` gives the value."""
    currency: str = "RUB"
    company: str = ""
    language: str = "en"
    digits: int = 2
    extra: dict[str, Any] = field(default_factory=dict)
    tiers: dict[str, payout.Tiers] = field(default_factory=dict)
    """The tier sets the lines' ``tiers`` name (for the cards' and summary's formulas)."""
    rows: dict[str, Any] = field(default_factory=dict, repr=False)
    """kpi_id → the raw rows behind its derived facts (:class:`xl_kpi.inputs.sources.drill.KpiRows`), listed
    on the cards' rows sheet; empty when no fact comes from raw data."""

    @property
    def ok(self) -> bool:
        """True when every employee's status is 'ok'."""
        return bool((self.employees["status"] == "ok").all())


def compute(plan: Plan, facts: Facts | pd.DataFrame | None = None, *, period: Period | str | None = None,
            language: str | None = None) -> Results:
    """Score every line of ``plan`` with ``facts`` and total the bonuses (see the module doc).

    ``facts`` is a :class:`~xl_kpi.inputs.facts.Facts` (from :func:`~xl_kpi.inputs.facts.load_facts`) or a DataFrame
    with employee_id, kpi_id, fact (and optionally period). The period (a :class:`Period` or any text
    it parses) is ``period`` if given, else the one the facts were loaded for, else the plan's Settings period.
    ``language`` (en/ru; default: the plan's Settings) is the results' language, the bonus notes' too.
    """
    the_period = period_of(period) or (
        facts.period if isinstance(facts, Facts) else None) or plan.settings.period
    digits = plan.settings.digits
    lines = _with_facts(plan, facts, the_period)
    lines = _score_lines(plan, lines, digits)
    lang = language or plan.settings.language
    employees, over = _employees(plan, lines, the_period, digits, lang)
    # what cannot be paid or shown is not kept as a number (inf would reach the CSVs and cards); the reason says why
    lines["score"] = lines["score"].where(np.isfinite(lines["score"].astype(float)) | lines["score"].isna(), np.nan)
    lines["bonus"] = lines["bonus"].where(~over_limit(lines["bonus"].to_numpy(float)), np.nan)
    employees["kpi_bonus"] = employees["kpi_bonus"].where(~over_limit(employees["kpi_bonus"].to_numpy(float)), np.nan)
    return Results(
        lines=lines[list(LINE_COLUMNS)].reset_index(drop=True),
        employees=employees[list(EMPLOYEE_COLUMNS)].reset_index(drop=True),
        scales=dict(plan.scales),
        period=the_period.key if the_period else "",
        currency=plan.settings.currency,
        company=plan.settings.company,
        language=lang,
        digits=digits,
        extra={"over_limit": over} if over else {},
        tiers=dict(getattr(plan, "tiers", {})),
        rows=dict(facts.rows) if isinstance(facts, Facts) else {},
    )


def _with_facts(plan: Plan, facts: Facts | pd.DataFrame | None, period: Period | None) -> pd.DataFrame:
    lines = plan.lines.copy(deep=False)  # copy on write: the columns added here never reach plan.lines
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
            periods = {v: Period.parse(v).key for v in frame["period"].dropna().unique()}
            mapped = frame["period"].map(periods)
            frame = frame[mapped.isna() | (mapped == period.key)]
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
    coeff = np.full(len(lines), np.nan)
    for name, idx in lines.groupby("scale", sort=False).indices.items():
        scale = plan.scales.get(name)
        if scale is not None:
            coeff[idx] = np.asarray(coefficient(s[idx], scale), dtype=float)
    lines["coefficient"] = coeff
    for col, default in (("payout", "coefficient"), ("tiers", "")):
        lines[col] = _shared_text(lines[col].fillna(default)) if col in lines else default
    for col in ("rate", "threshold", "amount", "max_payout"):
        lines[col] = lines[col].astype(float) if col in lines else np.nan
    lines["bonus"] = payout.kind_bonus(
        lines["payout"].to_numpy(object), pool=pool.to_numpy(float), weight=lines["weight"].astype(float).to_numpy(),
        coefficient=coeff, score=s, fact=lines["fact"].astype(float).to_numpy(),
        base=lines["base"].astype(float).to_numpy(), rate=lines["rate"].to_numpy(float),
        threshold=lines["threshold"].to_numpy(float), amount=lines["amount"].to_numpy(float),
        max_payout=lines["max_payout"].to_numpy(float), tiers=lines["tiers"].to_numpy(object),
        tier_sets=getattr(plan, "tiers", {}), digits=digits)
    lines["gated"] = np.asarray(payout.gate_failed(s, lines["gate"].astype(float).to_numpy()), dtype=bool)
    return lines


def _employees(plan: Plan, lines: pd.DataFrame, period: Period | None, digits: int, lang: str = "en"
               ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    emp = plan.employees.copy(deep=False)  # copy on write: plan.employees is never changed through it
    ids = emp["employee_id"]
    with np.errstate(over="ignore", invalid="ignore"):  # overflows become inf, refused by the amount limits below
        kpi_bonus = payout.kpi_bonus(lines["bonus"].to_numpy(float), lines["employee_id"], digits=digits)
        emp["kpi_bonus"] = ids.map(kpi_bonus).astype(float).to_numpy()
        gated = payout.gated(lines["score"].to_numpy(float), lines["gate"].astype(float).to_numpy(),
                             lines["employee_id"])
        emp["gated"] = ids.map(gated).fillna(False).astype(bool)
        emp["proration"] = proration(emp, period)
        emp["multiplier"] = emp["multiplier"].astype(float)
        bonus = np.asarray(payout.period_bonus(emp["kpi_bonus"].to_numpy(float), emp["multiplier"].to_numpy(float),
                                               emp["proration"].to_numpy(float), gated=emp["gated"].to_numpy(bool),
                                               digits=digits), dtype=float)
        adj, emp["adjustment_reason"] = _adjustments(plan, ids, digits)
        emp["adjustment"] = adj
        total = np.asarray(payout.total_pay(emp["salary"].to_numpy(float), bonus, adj, digits=digits), dtype=float)
    limits = amount_limits(plan, lines, emp.assign(bonus=bonus, total_pay=total))
    with using(lang):  # errors.csv and the summary say why in the results' language
        reasons = _reasons(plan, lines, emp, period, limits)
    negative = _negative(plan, emp.assign(bonus=bonus, total_pay=total))
    if negative:
        more = pd.Series({e: render(x["message"], lang) for e, x in negative.items()})
        reasons = pd.concat([reasons, more]).groupby(level=0, sort=False).agg("; ".join)
        limits = [*limits, *(x for e, x in negative.items() if e not in {y["employee_id"] for y in limits})]
    emp["reason"] = _text_map(emp["employee_id"], reasons)
    emp["status"] = np.where(emp["reason"] == "", "ok", "error")
    error = (emp["status"] == "error").to_numpy()
    emp["bonus"] = np.where(error, np.nan, bonus)
    emp["total_pay"] = np.where(error, np.nan, total)
    notes = bonus_notes(lines, emp, period, lang)
    emp["bonus_note"] = notes.where(~error, "")
    return emp, limits


def _adjustments(plan: Plan, ids: pd.Series, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """Each employee's adjustments (the engine's rounded sum, 0 without any) and their reasons ('; '-joined)."""
    adj = getattr(plan, "adjustments", None)
    if adj is None or adj.empty:
        return np.zeros(len(ids)), np.full(len(ids), "", dtype=object)
    total = payout.adjustment_total(adj["amount"].to_numpy(float), adj["employee_id"], digits=digits)
    why = adj.groupby("employee_id", sort=False)["reason"].agg("; ".join)
    return (ids.map(total).fillna(0.0).to_numpy(float),
            ids.map(why).fillna("").to_numpy(object))


def _negative(plan: Plan, emp: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Employees whose adjustments make the total pay negative: the message, the fix and the Adjustments cell."""
    out: dict[str, dict[str, Any]] = {}
    adj = getattr(plan, "adjustments", None)
    if adj is None or adj.empty:
        return out
    hit = emp[(emp["adjustment"] < 0) & (emp["total_pay"] < 0)]
    for _, x in hit.iterrows():
        rows = adj.loc[adj["employee_id"] == x["employee_id"], "row"]
        out[x["employee_id"]] = {
            "employee_id": x["employee_id"],
            "message": English(Msg("the adjustments {adjustment} make the total pay negative ({total} = salary "
                                   "{salary} + bonus {bonus} + adjustments)", adjustment=format_amount(x["adjustment"]),
                           total=format_amount(x["total_pay"]), salary=format_amount(x["salary"]),
                           bonus=format_amount(x["bonus"]))),
            "fix": English(Msg("check the adjustment's amount and sign (a deduction cannot exceed the pay); split it "
                               "over periods if it must")),
            "where": plan.at("Adjustments", rows.iloc[0] if len(rows) else None, "amount")}
    return out


LIMIT_TEXT = Msg("is not below {limit}, the largest amount paid to the kopeck", limit=format_amount(MAX_MONEY))
LIMIT_FIX = Msg("check these cells for a typo (an extra digit, a percentage typed as a whole number?)")


def amount_limits(plan: Plan, lines: pd.DataFrame, emp: pd.DataFrame) -> list[dict[str, Any]]:
    """Every employee one of whose amounts is beyond :data:`~xl_kpi.engine.money.MAX_MONEY` after a multiplication
    or a sum: a line bonus (pool × weight × coefficient), the KPI bonuses' sum, the bonus after the multiplier
    and proration, salary + bonus. One entry per employee (the first amount over the limit): employee_id,
    message (naming the amount and the cells it came from), fix, and where (the Employees cell to point at).

    ``emp`` holds the unrounded-by-status amounts (bonus, total_pay computed for everyone).
    """
    out: dict[str, dict[str, Any]] = {}
    rows = emp.set_index("employee_id")["row"]

    def cell(sheet: str, row: Any, column: str, value: float) -> str:
        w = plan.at(sheet, row, column)
        ref = f" ({w['sheet']}!{w['column']}{w['row']})" if w.get("column") and w.get("row") else ""
        text = format_amount(value) if column in ("bonus_pool", "salary") else f"{value:.10g}"
        return f"{column} {text}{ref}"

    def add(employee: str, text: Msg, column: str) -> None:
        if employee not in out:
            out[employee] = {"employee_id": employee, "message": English(text), "fix": English(LIMIT_FIX),
                             "where": plan.at("Employees", rows.get(employee), column)}

    bad_lines = lines[over_limit(lines["bonus"].to_numpy(float))]
    for _, ln in bad_lines.iterrows():
        e = ln["employee_id"]
        kind = ln.get("payout", "coefficient")
        if kind != "coefficient":  # a payout kind: the line's own numbers made it
            add(e, Msg("KPI {kpi}: the {kind} payout {amount} (Plan row {row}, fact {fact}) {limit}",
                       kpi=ln["kpi_id"], kind=kind, amount=format_amount(ln["bonus"]), row=int(ln["row"]),
                       fact=f"{ln['fact']:.10g}", limit=LIMIT_TEXT), "bonus_pool")
            continue
        add(e, Msg("KPI {kpi}: the bonus {amount} = {pool} × {weight} × coefficient {coefficient} (scale {scale}) "
                   "{limit}", kpi=ln["kpi_id"], amount=format_amount(ln["bonus"]),
                   pool=cell("Employees", rows.get(e), "bonus_pool", ln["pool"]),
                   weight=cell("Plan", ln["row"], "weight", ln["weight"]),
                   coefficient=format_amount(ln["coefficient"]), scale=ln["scale"], limit=LIMIT_TEXT), "bonus_pool")
    for _, x in emp[over_limit(emp["kpi_bonus"].to_numpy(float))].iterrows():
        add(x["employee_id"], Msg("the KPI bonuses add up to {amount}, which {limit}",
                                  amount=format_amount(x["kpi_bonus"]), limit=LIMIT_TEXT), "bonus_pool")
    for _, x in emp[over_limit(emp["bonus"].to_numpy(float))].iterrows():
        prorated = Msg(" × proration {p}", p=f"{x['proration']:.6g}") if x["proration"] != 1 else ""
        add(x["employee_id"], Msg("the bonus {amount} = KPI bonus {kpi_bonus} × {multiplier}{prorated} {limit}",
                                  amount=format_amount(x["bonus"]), kpi_bonus=format_amount(x["kpi_bonus"]),
                                  multiplier=cell("Employees", x["row"], "multiplier", x["multiplier"]),
                                  prorated=prorated, limit=LIMIT_TEXT), "multiplier")
    for _, x in emp[over_limit(emp["total_pay"].to_numpy(float))].iterrows():
        add(x["employee_id"], Msg("the total pay {amount} = {salary} + bonus {bonus} {limit}",
                                  amount=format_amount(x["total_pay"]),
                                  salary=cell("Employees", x["row"], "salary", x["salary"]),
                                  bonus=format_amount(x["bonus"]), limit=LIMIT_TEXT), "salary")
    return list(out.values())


def check_amounts(plan: Plan, facts: Facts | pd.DataFrame | None, problems: Problems,
                  period: Period | str | None = None, language: str | None = None) -> Results:
    """Report (as located errors) every employee whose pay would break the amount limit (see
    :func:`amount_limits`), so ``validate`` refuses what ``generate`` could not pay; return the results
    computed for it (``generate`` goes on with them rather than computing them again)."""
    results = compute(plan, facts, period=period, language=language)
    names = plan.employees.set_index("employee_id")["name"]
    for item in results.extra.get("over_limit", []):
        e = item["employee_id"]
        problems.error(Msg("employee {e} ({get}): {message}", e=e, get=names.get(e, ""),
                           message=item["message"]), item["fix"], **item["where"])
    return results


def _reasons(plan: Plan, lines: pd.DataFrame, emp: pd.DataFrame, period: Period | None,
             limits: Sequence[dict[str, Any]] = ()) -> pd.Series:
    """Why each employee's bonus cannot be computed ('; '-joined), only for employees with a reason."""
    found: list[pd.DataFrame] = []

    def add(ids: pd.Series, texts: Any) -> None:
        if len(ids):
            found.append(pd.DataFrame({"employee_id": ids.to_numpy(), "reason": texts}))

    k = lines["kpi_id"]
    # (which lines, the reason's text after "KPI <id>"; a callable gets the lines hit): the texts are made
    # for the lines hit only (made for every line, 100,000 employees cost 400 MB of strings for a few reasons)
    line_checks: list[tuple[pd.Series, Any]] = [
        (~lines["known_kpi"], tr(" is not in the KPIs sheet")),
        (lines["weight"].isna(), tr(": the weight is missing")),
        (lines["base"].isna() | lines["norm"].isna(), tr(": the base or norm is missing")),
        (lines["base"].notna() & (lines["base"] == lines["norm"]), tr(": the norm equals the base")),
        (lines["crossed"], tr(": the score floor is above the cap")),
        (~lines["scale"].isin(set(plan.scales)), lambda hit: tr(": unknown scale ") + lines["scale"][hit]),
        (_implausible(lines["score"]), tr(": the score is infinite or too large to compute with")),
        (_unpayable(plan, lines), tr(": the payout (kind, rate, threshold, amount or tiers) is incomplete")),
    ]
    bad_line = pd.Series(False, index=lines.index)
    for mask, tail in line_checks:
        mask = mask.fillna(False).astype(bool) & ~bad_line
        if mask.any():
            text = "KPI " + k[mask] + (tail(mask) if callable(tail) else tail)
            add(lines.loc[mask, "employee_id"], text.to_numpy())
        bad_line |= mask
    no_fact = lines["fact"].isna() & ~bad_line
    note = lines["note"][no_fact].astype(object)
    # a note kept as English(Msg) (a source's "no rows in …") is rendered in the results' language, not cut to str
    note = (" (" + note.map(lambda x: render(x) if isinstance(x, str) else str(x)) + ")").where(
        note.notna() & note.ne(""), "")
    add(lines.loc[no_fact, "employee_id"], (tr("no fact for KPI ") + k[no_fact] + note).to_numpy())
    sums = lines.groupby("employee_id", sort=False)["weight"].sum(min_count=1)
    has_nan = lines["weight"].isna().groupby(lines["employee_id"], sort=False).any()
    off = sums[((sums - 1.0).abs() > WEIGHT_TOLERANCE) & ~has_nan]
    add(pd.Series(off.index), [tr("the weights sum to {percent:.10g}%, not 100%", percent=v * 100) for v in off])
    ambiguous = getattr(plan, "ambiguous", {})
    if ambiguous:  # in Employees twice, or looking like another id: never carded, not even with --skip-invalid
        hit = emp["employee_id"].isin(set(ambiguous))
        add(emp.loc[hit, "employee_id"], [render(ambiguous[e]) for e in emp.loc[hit, "employee_id"]])
    no_plan = ~emp["employee_id"].isin(set(lines["employee_id"]))
    add(emp.loc[no_plan, "employee_id"],
        (tr("no KPI plan for the position ") + emp["position"][no_plan]).to_numpy())
    for col, text in (("bonus_pool", tr("the bonus pool is missing or not a number")),
                      ("salary", tr("the salary is not a number")),
                      ("multiplier", tr("the individual multiplier is not a number"))):
        bad = emp[col].isna()
        add(emp.loc[bad, "employee_id"], [text] * int(bad.sum()))
    no_period = emp["proration"].isna()
    add(emp.loc[no_period, "employee_id"],
        [tr("the hired/left dates need a period to prorate (set it in Settings)")] * int(no_period.sum()))
    if limits:
        add(pd.Series([x["employee_id"] for x in limits]), [render(x["message"]) for x in limits])
    if not found:
        return pd.Series(dtype=object)
    all_reasons = pd.concat(found, ignore_index=True)
    return all_reasons.groupby("employee_id", sort=False)["reason"].agg("; ".join)


def _implausible(scores: pd.Series) -> pd.Series:
    """Scores that are infinite or at least :data:`~xl_kpi.engine.scoring.MAX_SCORE` in size (NaN is not)."""
    s = scores.astype(float)
    return s.notna() & ~(s.abs() < MAX_SCORE)


def _text_map(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    """Look keys up in a text Series; '' where there is no value. The values are ``mapping``'s own objects, shared by
    every key that finds them (``Series.map`` gives a text column that ``astype(object)`` turns into one new string
    a row: 100,000 employees' KPI names and units held ~60 MB instead of ~6)."""
    if not mapping.index.is_unique:
        out = keys.map(mapping).astype(object)
        return out.where(out.notna(), "")
    values = np.append(mapping.to_numpy(dtype=object), None)  # the last slot: a key not found
    out = values[mapping.index.get_indexer(keys)]
    out[pd.isna(out)] = ""
    return pd.Series(out, index=keys.index, dtype=object)


def _shared_text(column: pd.Series) -> pd.Series:
    """A text column as Python objects, one per distinct value shared by the rows holding it (NaN kept): what a card
    or the summary reads of a few distinct values (the payout kind of 400,000 lines) without a string a row."""
    codes, uniques = pd.factorize(column)
    values = np.append(np.asarray(uniques, dtype=object), np.nan)  # code -1: missing
    return pd.Series(values[codes], index=column.index, dtype=object)


def _unpayable(plan: Plan, lines: pd.DataFrame) -> pd.Series:
    """Lines whose payout kind lacks what it needs (the plan check names the cell): an unknown kind, a fixed line
    without threshold or amount, a per_unit or share line without a rate or a known tier set."""
    k = lines["payout"]
    tiers = lines["tiers"].isin(set(getattr(plan, "tiers", {})))
    return (~k.isin(payout.PAYOUT_KINDS)
            | ((k == "fixed") & (lines["threshold"].isna() | lines["amount"].isna()))
            | (k.isin(["per_unit", "share"]) & ((lines["tiers"] != "") & ~tiers
                                                 | (lines["tiers"] == "") & lines["rate"].isna())))
