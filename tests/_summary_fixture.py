"""Test input for the summary workbook: a ``Results``-like object built with the engine.

Same shape as ``xl_kpi.results.Results`` (``lines``, ``employees``, ``scales``, ``period``,
``currency``, ``company``, ``language``). Every number is computed with the engine
(``xl_kpi.score``, scales, ``xl_kpi.round_money``); nothing is hard-coded except the inputs.

The company is deliberately awkward: positions with different KPI sets, Cyrillic names, a name
that looks like an Excel formula, two employees with the same weighted score (a ranking tie), a
gated employee, prorated and multiplied bonuses, kopecks everywhere, and (``tricky=True``)
department names that mean something to COUNTIF (``*``, leading ``=``) or to XML (``<``, ``&``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import xl_kpi

FORMULA_NAME = '=HYPERLINK("http://x","click")'

LINEAR = xl_kpi.Scale.linear([(0.5, 0.0), (1.0, 1.0), (1.5, 1.3)], name="linear")
SCALES = {"default": xl_kpi.DEFAULT_SCALE, "linear": LINEAR}

# kpi_id: (name, unit)
KPIS = {
    "deals": ("Closed deals", "deals"),
    "complaints": ("Complaint rate", "%"),
    "regular": ("Share of regular clients", "%"),
    "response": ("Response time", "min"),
    "resolution": ("Resolution rate", "%"),
    "nps": ("NPS", "points"),
    "revenue": ("Renewal revenue", "RUB"),
}

# position: [(kpi_id, weight, base, norm, floor, cap, scale, gate)]
NAN = float("nan")
PLANS = {
    "Account manager": [
        ("deals", 0.4, 100, 150, NAN, NAN, "default", NAN),
        ("complaints", 0.3, 10, 5, NAN, NAN, "default", NAN),
        ("regular", 0.3, 40, 60, NAN, NAN, "default", NAN),
    ],
    "Support specialist": [
        ("response", 0.5, 60, 30, NAN, NAN, "default", NAN),
        ("resolution", 0.3, 70, 90, NAN, 1.5, "default", NAN),
        ("nps", 0.2, 0, 40, 0.0, NAN, "linear", NAN),
    ],
    "Sales lead": [
        ("revenue", 0.6, 1_000_000, 2_000_000, NAN, NAN, "default", 0.7),
        ("deals", 0.4, 100, 150, NAN, NAN, "default", NAN),
    ],
}


@dataclass
class FakeResults:
    """What ``xl_kpi.results.Results`` carries, as far as the summary needs it."""

    lines: pd.DataFrame
    employees: pd.DataFrame
    scales: dict[str, xl_kpi.Scale] = field(default_factory=lambda: dict(SCALES))
    period: str = "2026-10"
    currency: str = "RUB"
    company: str = "Romashka LLC"
    language: str = "en"


def _people(tricky: bool) -> list[dict]:
    # (id, name, position, department, manager, salary, pool, multiplier, proration, facts by kpi)
    sales = "Sales*" if tricky else "Sales"
    support = "Support & <Care>" if tricky else "Support"
    key = "=Key accounts" if tricky else "Key accounts"
    upper_sales = "SALES" if tricky else "Sales"  # COUNTIF ignores case: one department with "Sales"
    rows = [
        ("E001", "Иванова Мария Петровна", "Account manager", "Отдел продаж", "Смирнов А. В.",
         95_000.00, 23_456.78, 1.0, 1.0, {"deals": 160, "complaints": 4, "regular": 52}),
        ("E002", "Petrov Ivan", "Account manager", "Отдел продаж", "Смирнов А. В.",
         88_500.50, 20_000.00, 1.0, 1.0, {"deals": 160, "complaints": 4, "regular": 52}),  # tie with E001
        ("E003", FORMULA_NAME, "Account manager", sales, "@manager",
         70_000.00, 15_000.15, 1.2, 1.0, {"deals": 120, "complaints": 9, "regular": 30}),
        ("E004", "Sidorova Anna", "Support specialist", support, "+7 Kuznetsov",
         64_321.09, 12_345.67, 1.0, 0.5, {"response": 25, "resolution": 95, "nps": 38}),
        ("E005", "Кузнецов Пётр", "Support specialist", support, "-Kuznetsov",
         61_000.00, 12_000.00, 1.0, 1.0, {"response": 45, "resolution": 88, "nps": 52}),
        ("E006", "Orlova Elena", "Sales lead", key, "Board",
         150_000.00, 60_000.01, 1.0, 1.0, {"revenue": 1_500_000, "deals": 170}),  # gated: revenue 50% < 70%
        ("E007", "Volkov Dmitry", "Sales lead", key, "Board",
         140_000.00, 55_555.55, 1.1, 1.0, {"revenue": 2_300_000, "deals": 140}),
        ("E008", "Морозова Ольга", "Account manager", sales, "@manager",
         72_000.00, 16_666.66, 1.0, 0.75, {"deals": 150, "complaints": 5, "regular": 60}),
        ("E009", "Lebedev Oleg", "Support specialist", "Support", "+7 Kuznetsov",
         59_999.99, 11_111.11, 1.0, 1.0, {"response": 70, "resolution": 60, "nps": -10}),
        ("E010", "sales tester", "Account manager", upper_sales, "Board",
         50_000.00, 10_000.00, 1.0, 1.0, {"deals": 133, "complaints": 7, "regular": 47}),
    ]
    return [
        dict(employee_id=r[0], name=r[1], position=r[2], department=r[3], manager=r[4], salary=r[5],
             bonus_pool=r[6], multiplier=r[7], proration=r[8], facts=r[9])
        for r in rows
    ]


def build_results(language: str = "en", *, tricky: bool = True, with_error: bool = False,
                  currency: str = "RUB") -> FakeResults:
    """A small company scored by the engine; ``with_error`` adds an employee whose fact is missing."""
    people = _people(tricky)
    if with_error:
        people.append(dict(employee_id="E011", name="Error Case", position="Account manager",
                           department="Sales", manager="Board", salary=40_000.0, bonus_pool=9_000.0,
                           multiplier=1.0, proration=1.0,
                           facts={"deals": NAN, "complaints": 6, "regular": 50}))
    company = "ООО «Ромашка»" if language == "ru" else "Romashka LLC"
    return _score(people, language=language, currency=currency, company=company)


def _score(people: list[dict], *, language: str, currency: str, company: str) -> FakeResults:
    lines = []
    for p in people:
        for kpi_id, weight, base, norm, floor, cap, scale, gate in PLANS[p["position"]]:
            name, unit = KPIS[kpi_id]
            lines.append(dict(employee_id=p["employee_id"], kpi_id=kpi_id, kpi_name=name, unit=unit,
                              weight=weight, base=float(base), norm=float(norm), floor=floor, cap=cap,
                              scale=scale, gate=gate, fact=float(p["facts"][kpi_id]),
                              pool=p["bonus_pool"]))
    df = pd.DataFrame(lines)
    df["score"] = xl_kpi.score(df["fact"], df["base"], df["norm"], floor=df["floor"], cap=df["cap"])
    coeff = np.full(len(df), np.nan)
    for scale_name, scale in SCALES.items():
        mask = (df["scale"] == scale_name).to_numpy()
        coeff[mask] = scale(df.loc[mask, "score"].to_numpy())
    df["coefficient"] = coeff
    df["bonus"] = xl_kpi.round_money(df["pool"] * df["weight"] * df["coefficient"])
    lines_df = df.drop(columns="pool")

    emp_rows = []
    for p in people:
        mine = lines_df[lines_df["employee_id"] == p["employee_id"]]
        ok = not mine["score"].isna().any()
        kpi_bonus = float(mine["bonus"].sum()) if ok else NAN
        gated = bool(ok and (np.round(mine["score"], 12) < mine["gate"]).any())
        if not ok:
            bonus = total = NAN
        elif gated:
            bonus = 0.0
            total = xl_kpi.round_money(p["salary"])
        else:
            bonus = xl_kpi.round_money(kpi_bonus * p["multiplier"] * p["proration"])
            total = xl_kpi.round_money(p["salary"] + bonus)
        reason = "" if ok else "no fact for KPI deals"
        if gated:
            reason = "gate not reached: Renewal revenue below 70%"
        emp_rows.append(dict(employee_id=p["employee_id"], name=p["name"], position=p["position"],
                             department=p["department"], manager=p["manager"],
                             email=f"{p['employee_id'].lower()}@example.com", salary=p["salary"],
                             bonus_pool=p["bonus_pool"], multiplier=p["multiplier"],
                             proration=p["proration"], kpi_bonus=kpi_bonus, gated=gated, bonus=bonus,
                             total_pay=total, status="ok" if ok else "error", reason=reason))
    return FakeResults(lines=lines_df, employees=pd.DataFrame(emp_rows), language=language,
                       currency=currency, company=company)


def build_large(n: int, kpis_per_employee: int = 3) -> FakeResults:
    """``n`` employees in 7 departments, for timing; the same engine calls, generated facts."""
    rng = np.random.default_rng(12345)
    positions = list(PLANS)
    people = []
    for i in range(n):
        pos = positions[i % len(positions)]
        plan = PLANS[pos]
        facts = {k: float(base + (norm - base) * rng.uniform(0.3, 1.4)) for k, _, base, norm, *_ in plan}
        people.append(dict(employee_id=f"L{i:05d}", name=f"Employee {i}", position=pos,
                           department=f"Dept {i % 7}", manager="Boss", salary=50_000.0 + i,
                           bonus_pool=10_000.0 + i / 100, multiplier=1.0, proration=1.0, facts=facts))
    return _score(people, language="en", currency="RUB", company="Big Co")
