"""What people by alias, ``for team`` and currency conversion cost, against the same source by employee_id.

Run: .venv/bin/python benchmarks/bench_people.py [--n 200000] [--repeat 3]
One export of N rows (employee ids, CRM names, amounts as text, 10% in USD) and 200 employees in a
5-wide reporting tree; each source is evaluated by the evaluator, best of ``--repeat``, and printed with
its ratio to the baseline (``sum d.amount by id currency none``: no transform) measured in the same run.
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from xl_kpi.inputs.people import build_people
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.rates import Rates
from xl_kpi.inputs.sources import Evaluator
from xl_kpi.inputs.tables import Table
from xl_kpi.inputs.team import build_teams

STAFF = 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(11)
    employees = pd.DataFrame({
        "employee_id": [f"E{i}" for i in range(STAFF)], "name": [f"Сотрудник {i}" for i in range(STAFF)],
        "manager": [None] + [f"E{(i - 1) // 5}" for i in range(1, STAFF)],
        "aliases": [f"Имя {i}; login{i}" for i in range(STAFF)], "row": range(2, STAFF + 2)})
    who = rng.integers(0, STAFF, args.n)
    frame = pd.DataFrame({
        "id": [f"E{i}" for i in who], "name": [f"имя {i}" for i in who],
        "amount": [f"{v // 100} {v % 100:02d},00" for v in rng.integers(10_000, 10_000_000, args.n)],
        "cur": np.where(rng.random(args.n) < 0.1, "USD", "RUB")}, index=pd.RangeIndex(2, args.n + 2))
    table = Table("d", "d.csv", frame, {c: chr(65 + i) for i, c in enumerate(frame.columns)})
    people = build_people(employees, Problems())
    teams = build_teams(employees)
    rates = Rates("RUB", {"USD": pd.DataFrame({"currency": ["USD"], "rate": [92.5], "date": [pd.NaT], "row": [2]})})
    runs = [
        ("by employee_id (baseline)", "sum d.amount by id currency none", {}),
        ("by alias (CRM names)", "sum d.amount by name currency none", {"people": people}),
        ("by alias, USD converted", "sum d.amount by name currency cur", {"people": people, "rates": rates}),
        ("by alias, for team", "sum d.amount by name currency none for team", {"people": people, "teams": teams}),
    ]
    base = None
    print(f"{args.n:,} rows, {STAFF} employees, best of {args.repeat}")
    for label, source, kw in runs:
        best = float("inf")
        for _ in range(args.repeat):
            fresh = {k: build_teams(employees) if k == "teams" else v.fresh() for k, v in kw.items()}
            ev = Evaluator([table], Problems(), **fresh)  # nothing converted or transformed yet
            started = time.perf_counter()
            ev.evaluate(source)
            best = min(best, time.perf_counter() - started)
        base = base or best
        print(f"  {label:28} {best:7.3f} s   {best / base:5.2f}× the baseline")


if __name__ == "__main__":
    main()
