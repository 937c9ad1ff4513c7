"""A ``Results``-like object for the card tests and the benchmark, computed with the xl_kpi engine.

Same shape as ``xl_kpi.results`` produces (lines, employees, scales, period, currency, company,
language). Every number is computed by xl_kpi.score / Scale / xl_kpi.bonus / period_bonus / total_pay, never
typed in, so the card tests compare the card against the engine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

import xl_kpi
from xl_kpi import DEFAULT_SCALE, Scale
from xl_kpi.results import Results

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
    """Fill score/coefficient/bonus and the employee totals with the engine (what results.py does)."""
    lines = lines.reset_index(drop=True).copy()
    lines["score"] = xl_kpi.score(
        lines["fact"].to_numpy(float), lines["base"].to_numpy(float), lines["norm"].to_numpy(float),
        floor=lines["floor"].to_numpy(float), cap=lines["cap"].to_numpy(float),
    )
    coef = np.full(len(lines), np.nan)
    bonus = np.full(len(lines), np.nan)
    pools = lines["employee_id"].map(employees.set_index("employee_id")["bonus_pool"]).to_numpy(float)
    for name, idx in lines.groupby("scale", sort=False).indices.items():
        sc = scales.get(name) or DEFAULT_SCALE
        coef[idx] = sc(lines["score"].to_numpy(float)[idx])
        bonus[idx] = xl_kpi.bonus(pools[idx], lines["weight"].to_numpy(float)[idx],
                                  lines["score"].to_numpy(float)[idx], sc)
    lines["coefficient"] = coef
    lines["bonus"] = bonus
    emp = employees.reset_index(drop=True).copy()
    kpi_bonus = lines.groupby("employee_id", sort=False)["bonus"].sum(min_count=1)
    emp["kpi_bonus"] = emp["employee_id"].map(kpi_bonus).to_numpy(float)
    g = lines[lines["gate"].notna()]
    below = np.round(g["score"].to_numpy(float), 12) < g["gate"].to_numpy(float)
    gated_ids = set(g["employee_id"][below])
    emp["gated"] = emp["employee_id"].isin(gated_ids)
    emp["bonus"] = xl_kpi.period_bonus(emp["kpi_bonus"].to_numpy(float), emp["multiplier"].to_numpy(float),
                                       emp["proration"].to_numpy(float), gated=emp["gated"].to_numpy(bool))
    emp["total_pay"] = xl_kpi.total_pay(emp["salary"].to_numpy(float), emp["bonus"].to_numpy(float))
    emp["status"] = "ok"  # as xl_kpi.results: a gated employee is valid, with bonus 0 and gated=True
    emp["reason"] = ""
    kw = {"period": "2026-10", "company": "Romashka LLC", **kw}
    return Results(lines=lines, employees=emp, scales=dict(scales), **kw)


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
