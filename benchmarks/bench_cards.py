"""Benchmark: KPI cards per second, compiled writer vs the naive openpyxl loop.

    .venv/bin/python benchmarks/bench_cards.py [--n 10000] [--naive 200] [--out DIR] [--no-fsync]

Builds a synthetic Results for N employees (tests/_results_fixture.py, computed by the engine),
then times

* naive: per employee, openpyxl loads the template, inserts the KPI rows, fills values and
  formulas, saves (on a subset, reported as a rate);
* compiled, in memory: ``iter_cards`` (bytes only, no files) on all N;
* compiled: ``xl_kpi.outputs.cards.write_cards`` with jobs=1 and jobs=2 on all N (atomic writes to disk,
  one flush per chunk unless --no-fsync);

and prints cards/s for each, the speed-up over naive, and the peak RSS of the parent and of the
worker processes.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openpyxl  # noqa: E402

from tests._results_fixture import synthetic_results  # noqa: E402
from xl_kpi.outputs.cards import TEMPLATE_DIR, CardTemplate, iter_cards, write_cards  # noqa: E402


def naive_cards(results, template_path: Path, limit: int) -> int:
    """The straightforward loop: load the template, fill one employee, save. Returns cards made."""
    emps = results.employees.head(limit)
    lines = results.lines
    made = 0
    for emp in emps.itertuples(index=False):
        rows = lines[lines["employee_id"] == emp.employee_id]
        wb = openpyxl.load_workbook(template_path)
        ws = wb.active
        markers = {c.value: c for row in ws.iter_rows() for c in row if isinstance(c.value, str) and "{{" in c.value}
        kpi_row = markers["{{kpi.fact}}"].row
        if len(rows) > 1:
            ws.insert_rows(kpi_row + 1, len(rows) - 1)
        for key in ("name", "position", "department", "manager", "employee_id"):
            if "{{" + key + "}}" in markers:
                markers["{{" + key + "}}"].value = getattr(emp, key)
        markers["{{company}}"].value = results.company
        markers["{{bonus_pool}}"].value = emp.bonus_pool
        markers["{{salary}}"].value = emp.salary
        for i, ln in enumerate(rows.itertuples(index=False)):
            r = kpi_row + i
            ws[f"A{r}"] = i + 1
            ws[f"B{r}"] = ln.kpi_name
            ws[f"C{r}"] = ln.unit
            ws[f"D{r}"] = ln.weight
            ws[f"E{r}"] = ln.base
            ws[f"F{r}"] = ln.norm
            ws[f"G{r}"] = ln.fact
            ws[f"H{r}"] = f"=(G{r}-E{r})/(F{r}-E{r})"
            ws[f"I{r}"] = f"=LOOKUP(ROUND(H{r},12),{{0,0.7,1,1.1}},{{0,0.9,1,1.1}})"
            ws[f"J{r}"] = f"=ROUND(D{r}*I{r}*20000,2)"
        buf = BytesIO()
        wb.save(buf)
        made += 1
    return made


def peak_rss_mb() -> tuple[float, float]:
    """(parent, largest child) peak resident set size in MB (Linux reports KB)."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 / 1024
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return me, kids


def main() -> None:
    """Run the benchmark and print the rates."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="employees (default 10000)")
    ap.add_argument("--naive", type=int, default=200, help="employees for the naive loop (default 200)")
    ap.add_argument("--no-fsync", action="store_true", help="skip fsync per card")
    ap.add_argument("--lang", default="en")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()),
                    help="folder under which the cards are written and then deleted (default: the system "
                         "temp folder); the file system's cost of creating a file is printed")
    args = ap.parse_args()

    t0 = time.perf_counter()
    results = synthetic_results(args.n)
    print(f"synthetic results: {args.n} employees, {len(results.lines)} KPI lines "
          f"({time.perf_counter() - t0:.2f} s)  cpus={os.cpu_count()}")

    template_path = TEMPLATE_DIR / f"kpi_card_{args.lang}.xlsx"
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    made = naive_cards(results, template_path, args.naive)
    naive_rate = made / (time.perf_counter() - t0)
    print(f"naive openpyxl loop:  {naive_rate:8.0f} cards/s  ({made} cards, {1000 / naive_rate:.2f} ms/card)")

    tpl = CardTemplate.load(template_path, args.lang)
    t0 = time.perf_counter()
    n_mem = sum(1 for _ in iter_cards(tpl, results))
    mem_rate = n_mem / (time.perf_counter() - t0)
    print(f"compiled, in memory:  {mem_rate:8.0f} cards/s  (iter_cards, jobs=1, no files; "
          f"{1000 / mem_rate:.3f} ms/card)")
    probe = Path(tempfile.mkdtemp(prefix="bench-fs-", dir=args.out))
    t0 = time.perf_counter()
    for i in range(500):
        os.close(os.open(probe / f"probe {i}.xlsx", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    create_ms = (time.perf_counter() - t0) / 500 * 1000
    shutil.rmtree(probe, ignore_errors=True)
    print(f"file system:          creating one empty file in {args.out} costs {create_ms:.3f} ms here")

    rates = {}
    for jobs in (1, 2):
        out = Path(tempfile.mkdtemp(prefix=f"bench-cards-j{jobs}-", dir=args.out))
        try:
            tpl = CardTemplate.load(template_path, args.lang)  # fresh: compile time is included
            t0 = time.perf_counter()
            recs = write_cards(results, out, tpl, jobs=jobs, fsync=not args.no_fsync)
            dt = time.perf_counter() - t0
            size = sum(r.path.stat().st_size for r in recs[:200]) / min(200, len(recs))
        finally:
            shutil.rmtree(out, ignore_errors=True)
        rates[jobs] = len(recs) / dt
        print(f"compiled, jobs={jobs}:    {rates[jobs]:8.0f} cards/s  ({len(recs)} cards in {dt:.2f} s, "
              f"{1000 * dt / len(recs):.3f} ms/card, ~{size / 1024:.1f} KiB each)")

    print(f"speed-up vs naive:    jobs=1 {rates[1] / naive_rate:5.1f}x   jobs=2 {rates[2] / naive_rate:5.1f}x   "
          f"in memory {mem_rate / naive_rate:5.1f}x")
    me, kids = peak_rss_mb()
    print(f"peak RSS:             parent {me:.0f} MB, largest worker {kids:.0f} MB")


if __name__ == "__main__":
    main()
