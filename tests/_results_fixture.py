"""Results for the card tests and the benchmark, computed by the real ``xl_kpi.results.compute``.

:func:`compute` turns a table of KPI lines (with facts) and a table of employees into a small
:class:`~xl_kpi.inputs.plan.Plan` and runs the batch's own computation on it, so every number a card
test compares with is the batch's (no rule is re-implemented here). A ``proration`` column of the
employees becomes a hire date inside the period (the share of its 31 days nearest to it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi import DEFAULT_SCALE, Scale
from xl_kpi.inputs.cells import to_ids
from xl_kpi.inputs.plan import Plan, Settings
from xl_kpi.results import Results
from xl_kpi.results import compute as compute_results

PERIOD = "2026-10"
PERIOD_DAYS = 31

SCALES: dict[str, Scale] = {
    "default": DEFAULT_SCALE,
    "sales_linear": Scale.linear([(0.5, 0.4), (1.0, 1.0), (1.5, 1.3)], name="sales_linear"),
    "service_steps": Scale.steps([(0.8, 0.8), (1.0, 1.0), (1.2, 1.3)], below=0.2, cap=1.25, name="service_steps"),
}

# kpi_id: (name, unit, base, norm, floor, cap, scale, gate)
KPIS: dict[str, tuple[Any, ...]] = {
    "deals": ("Closed deals", "pcs", 100, 150, math.nan, math.nan, "default", math.nan),
    "complaints": ("Complaint rate, %", "%", 10, 5, 0.0, 1.5, "default", math.nan),
    "regular": ("Share of regular clients, %", "%", 40, 60, math.nan, math.nan, "sales_linear", math.nan),
    "revenue": ("Key-client revenue, mln", "mln", 10, 20, 0.0, math.nan, "sales_linear", 0.5),
    "nps": ("NPS", "pts", 20, 50, math.nan, 1.5, "service_steps", math.nan),
    "churn": ("Churn rate, %", "%", 8, 4, 0.0, 2.0, "default", math.nan),
    "response": ("Response time, min", "min", 60, 30, math.nan, math.nan, "service_steps", math.nan),
    "conversion": ("Acquisition rate, %", "%", 20, 32, math.nan, math.nan, "default", math.nan),
    "upsell": ("Upsell revenue, thousand", "k", 100, 300, 0.0, 1.5, "sales_linear", math.nan),
    "retention": ("Retention rate, %", "%", 70, 85, math.nan, math.nan, "default", math.nan),
    "touches": ("Touches to resolution", "pcs", 6, 3, math.nan, math.nan, "service_steps", math.nan),
}

POSITIONS: dict[str, list[tuple[str, float]]] = {
    "Account manager": [("deals", 0.4), ("complaints", 0.3), ("regular", 0.3)],
    "Head of sales": [("deals", 0.15), ("complaints", 0.1), ("regular", 0.1), ("revenue", 0.15), ("nps", 0.1),
                      ("churn", 0.1), ("conversion", 0.1), ("upsell", 0.1), ("retention", 0.1)],
    "Support agent": [("complaints", 0.25), ("nps", 0.25), ("response", 0.2), ("touches", 0.2), ("churn", 0.1)],
    "Key account manager": [("revenue", 0.5), ("deals", 0.3), ("nps", 0.2)],
}
DEPARTMENTS = ["Sales", "Service / Support", "Key accounts", "Отдел продаж"]

FIRST = ["Ivan", "Maria", "Pyotr", "Anna", "Sergey", "Olga", "Dmitry", "Elena", "Alexey", "Natalia"]
LAST = ["Ivanov", "Petrova", "Sidorov", "Smirnova", "Kuznetsov", "Popova", "Volkov", "Sokolova"]


def compute(lines: pd.DataFrame, employees: pd.DataFrame, scales: dict[str, Scale], **kw: Any) -> Results:
    """Results of ``xl_kpi.results.compute`` for these lines (employee_id, kpi_id, kpi_name, unit, weight, base,
    norm, floor, cap, scale, gate, fact; optionally the payout columns payout, rate, threshold, amount, max_payout,
    tiers) and employees (employee_id, name, position, department, manager, email, salary, bonus_pool, multiplier,
    proration). ``kw``: period, company, language, currency, digits, tiers (name → Tiers)."""
    kw = {"period": PERIOD, "company": "Romashka LLC", **kw}
    if kw["period"] != PERIOD:
        raise ValueError(f"the fixture's prorations are days of {PERIOD}")
    lines = lines.reset_index(drop=True).copy()
    emp = employees.reset_index(drop=True).copy()
    emp["employee_id"] = to_ids(emp["employee_id"])
    lines["employee_id"] = to_ids(lines["employee_id"])
    share = emp["proration"].astype(float) if "proration" in emp else pd.Series(1.0, index=emp.index)
    days = np.floor(share.to_numpy(float) * PERIOD_DAYS + 0.5)
    hired = [pd.NaT if d >= PERIOD_DAYS else pd.Timestamp(f"{PERIOD}-01") + pd.Timedelta(days=PERIOD_DAYS - d)
             for d in days]
    emp["hired"] = pd.Series(hired, dtype="datetime64[ns]")
    emp["left"] = pd.Series(pd.NaT, index=emp.index, dtype="datetime64[ns]")
    emp["multiplier"] = emp["multiplier"].astype(float) if "multiplier" in emp else 1.0
    emp["row"] = np.arange(2, 2 + len(emp))
    kpis = (lines.drop_duplicates("kpi_id")[["kpi_id", "kpi_name", "unit"]]
            .rename(columns={"kpi_name": "name"}).assign(source=None, description=None, row=np.nan)
            .reset_index(drop=True))
    for col, default in (("payout", "coefficient"), ("rate", np.nan), ("threshold", np.nan), ("amount", np.nan),
                         ("max_payout", np.nan), ("tiers", "")):
        if col not in lines:
            lines[col] = default
    plan_lines = lines[["employee_id", "kpi_id", "weight", "base", "norm", "floor", "cap", "scale", "gate",
                        "payout", "rate", "threshold", "amount", "max_payout", "tiers"]].copy()
    for col in ("weight", "base", "norm", "floor", "cap", "gate", "rate", "threshold", "amount", "max_payout"):
        plan_lines[col] = plan_lines[col].astype(float)
    plan_lines["personal"] = False
    plan_lines["row"] = np.arange(2, 2 + len(plan_lines))
    settings = Settings(period=kw["period"], currency=kw.get("currency", "RUB"), language=kw.get("language", "en"),
                        digits=kw.get("digits", 2), company=kw["company"])
    plan = Plan(employees=emp, kpis=kpis, rows=plan_lines.copy(), lines=plan_lines, scales=dict(scales),
                settings=settings, tiers=dict(kw.get("tiers", {})))
    facts = lines.loc[lines["fact"].notna(), ["employee_id", "kpi_id", "fact"]]
    return compute_results(plan, facts)


def _lines_for(eid: Any, position: str, facts: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    for kpi_id, weight in POSITIONS[position]:
        name, unit, base, norm, floor, cap, scale, gate = KPIS[kpi_id]
        out.append(dict(employee_id=eid, kpi_id=kpi_id, kpi_name=name, unit=unit, weight=weight, base=float(base),
                        norm=float(norm), floor=floor, cap=cap, scale=scale, gate=gate, fact=facts[kpi_id]))
    return out


def sample_results(lang: str = "en") -> Results:
    """A dozen hand-picked employees covering the edge cases the card must get right."""
    rows: list[dict[str, Any]] = []
    emps: list[dict[str, Any]] = []

    def add(eid: Any, name: str, position: str, dept: str, facts: dict[str, float], *, salary: float = 80_000,
            pool: float = 20_000, multiplier: float = 1.0, proration: float = 1.0, manager: str = "Olga Popova",
            email: str = "") -> None:
        base_facts = {k: (KPIS[k][2] + KPIS[k][3]) / 2 + (KPIS[k][3] - KPIS[k][2]) * 0.6 for k in KPIS}
        base_facts.update(facts)
        emps.append(dict(employee_id=eid, name=name, position=position, department=dept, manager=manager,
                         email=email or f"{eid}@example.com", salary=salary, bonus_pool=pool,
                         multiplier=multiplier, proration=proration))
        rows.extend(_lines_for(eid, position, base_facts))

    # the source's worked example: 160 deals against base 100 / norm 150 → 120% → 1.1
    add("E001", "Ivan Petrov", "Account manager", "Sales", {"deals": 160, "complaints": 4, "regular": 52})
    add("E002", "Иванова Мария Сергеевна", "Head of sales", "Отдел продаж",
        {"deals": 150, "complaints": 5, "regular": 54, "revenue": 21.5, "nps": 56, "churn": 3.3,
         "conversion": 30.2, "upsell": 410, "retention": 83}, multiplier=1.2, salary=150_000, pool=60_000,
        manager="Сидоров Пётр")
    add("E003", "=HYPERLINK(\"http://evil\",\"x\")", "Account manager", "Sales",
        {"deals": 135, "complaints": 6.5, "regular": 40})  # exactly on 70% for deals, base for regular
    add("E004", "Tom <Jerry> & \"Co\" 'x'", "Support agent", "Service / Support",
        {"complaints": 4.5, "nps": 50, "response": 30, "touches": 2.4, "churn": 4.4}, proration=0.5)
    add("E005", "Gated Gordon", "Key account manager", "Key accounts", {"revenue": 14.0, "deals": 170, "nps": 80})
    add("E006", "+Plus Minus-", "Support agent", "Service / Support",
        {"complaints": 12, "nps": 10, "response": 90, "touches": 7, "churn": 9}, pool=15_000.55)
    add("E007", "-Minus @At", "Head of sales", "Sales",
        {"deals": 100, "complaints": 10, "regular": 40, "revenue": 10, "nps": 20, "churn": 8, "conversion": 20,
         "upsell": 100, "retention": 70}, multiplier=0.85, proration=0.75)
    add("E008", "Long Name " + "Aleksandrovich-" * 8, "Key account manager", "Key accounts",
        {"revenue": 25.0, "deals": 148.5, "nps": 44}, salary=123_456.78, pool=33_333.33)
    add(9, "Numeric Id", "Account manager", "Sales", {"deals": 155, "complaints": 5, "regular": 70})
    return compute(pd.DataFrame(rows), pd.DataFrame(emps), SCALES, language=lang,
                   company="ООО «Ромашка»" if lang == "ru" else "Romashka LLC")


def synthetic_results(n: int, seed: int = 0) -> Results:
    """``n`` employees with random facts, vectorised (the benchmark's 10,000-card batch)."""
    rng = np.random.default_rng(seed)
    positions = list(POSITIONS)
    pos = rng.integers(0, len(positions), n)
    ids = [f"E{i:06d}" for i in range(n)]
    emp = pd.DataFrame({
        "employee_id": ids,
        "name": [f"{FIRST[i % len(FIRST)]} {LAST[(i // 7) % len(LAST)]}" for i in range(n)],
        "position": [positions[p] for p in pos],
        "department": [DEPARTMENTS[i % len(DEPARTMENTS)] for i in range(n)],
        "manager": "Olga Popova",
        "email": [f"{e.lower()}@example.com" for e in ids],
        "salary": rng.integers(60, 200, n) * 1000.0,
        "bonus_pool": rng.integers(10, 80, n) * 500.0,
        "multiplier": np.where(rng.random(n) < 0.1, 1.2, 1.0),
        "proration": np.where(rng.random(n) < 0.05, 0.5, 1.0),
    })
    recs: dict[str, list[Any]] = {k: [] for k in ("employee_id", "kpi_id", "kpi_name", "unit", "weight", "base",
                                                  "norm", "floor", "cap", "scale", "gate")}
    for eid, p in zip(ids, pos, strict=True):
        for kpi_id, weight in POSITIONS[positions[p]]:
            name, unit, base, norm, floor, cap, scale, gate = KPIS[kpi_id]
            for k, v in zip(recs, (eid, kpi_id, name, unit, weight, base, norm, floor, cap, scale, gate), strict=True):
                recs[k].append(v)
    lines = pd.DataFrame(recs)
    base, norm = lines["base"].to_numpy(float), lines["norm"].to_numpy(float)
    lines["fact"] = np.round(base + (norm - base) * rng.normal(1.0, 0.25, len(lines)), 2)
    return compute(lines, emp, SCALES)
