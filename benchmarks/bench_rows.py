"""Benchmark: the cards' Source rows sheet (issue 13 §1) against the same cards without it, same run.

    .venv/bin/python benchmarks/bench_rows.py [--repeat 3]

On the bundled sample company (every card has facts derived from raw data): the facts are loaded and
scored once, then

* baseline: every card rendered from results without rows (``Results.rows`` empty: no rows sheet);
* rows: every card rendered with its rows sheet;
* explain: the extra engine queries that find the rows (``rows_of_source`` for every derived KPI), against
  evaluating the same sources (``Evaluator.evaluate``), both on one evaluator;

and prints the best time of each, per card, and the ratios rows / baseline and explain / evaluate.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xl_kpi.inputs.facts import load_facts  # noqa: E402
from xl_kpi.inputs.plan import load_plan, sample_inputs  # noqa: E402
from xl_kpi.inputs.sources import Evaluator  # noqa: E402
from xl_kpi.inputs.sources.drill import rows_of_source  # noqa: E402
from xl_kpi.outputs.cards import CardTemplate, iter_cards  # noqa: E402
from xl_kpi.results import compute  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    plan_path, data = sample_inputs()
    plan = load_plan(plan_path)
    facts = load_facts(plan, data)
    results = compute(plan, facts)
    bare = replace(results, rows={})
    tpl = CardTemplate.load(None, results.language)
    n = len(results.employees)
    listed = sum(len(t.frame) for k in results.rows.values() for t in k.terms)

    def render(res):
        return lambda: sum(len(b) for _, b in iter_cards(tpl, res))

    render(results)()  # compile the card shapes once
    base = best(render(bare), args.repeat)
    rows = best(render(results), args.repeat)
    ev = Evaluator(facts.tables)
    who = {k: list(plan.lines.loc[plan.lines["kpi_id"] == k, "employee_id"]) for k in plan.sources}
    evaluate = best(lambda: [ev.evaluate(s, period=facts.period, employees=who[k]) for k, s in plan.sources.items()],
                    args.repeat)
    explain = best(lambda: [rows_of_source(ev, s, k, facts.period, who[k]) for k, s in plan.sources.items()],
                   args.repeat)
    print(f"cards: {n}, derived KPIs: {len(results.rows)}, listed rows: {listed}")
    print(f"baseline (no rows sheet): {base:.3f} s  ({base / n * 1000:.2f} ms/card)")
    print(f"with the rows sheet:      {rows:.3f} s  ({rows / n * 1000:.2f} ms/card)  ratio {rows / base:.2f}")
    print(f"evaluate the sources:     {evaluate:.3f} s")
    print(f"explain (find the rows):  {explain:.3f} s  ratio {explain / evaluate:.2f}")


if __name__ == "__main__":
    main()
