"""Benchmark: ``xl-kpi generate`` end to end against a naive openpyxl load-fill-save loop, same run.

    .venv/bin/python benchmarks/bench_batch.py [--n 10000] [--jobs 2] [--naive 200] [--big 0] [--repeat 1]
                                               [--compare DIR]

Builds a plan workbook of N employees (the sample plan's positions, KPIs and scales, each employee
a copy of a sample employee with a new id) and a facts.csv with one fact per employee and KPI, then

* naive: per employee, openpyxl loads the card template, fills the header and the KPI rows,
  saves the card to disk (on ``--naive`` employees, reported as a rate);
* generate: ``python -m xl_kpi generate --jobs J`` as a whole process (reading the plan and the
  facts, the engine, every card, the summary, the manifest, the swap into place);

and prints both rates, the ratio, the CPU time a card of each (generate's counts its workers: the ratio
of CPU times moves less than that of rates when other work shares the machine) and the peak RSS of the
generate process (its own and its workers').
``--big M`` also runs generate on M employees and prints the peak RSS ratio M : N (flat memory).
``--repeat R`` measures the pair (naive loop, generate) R times, each generate into a fresh folder (nothing is
deleted until the end: ext4 creates files slowly for a while after a mass delete), and prints every ratio and
their median. CPU is split into user (Python) and system (kernel: file creation, writes, flushes) seconds: on a
shared machine the system part moves with what the other processes do to the same file system.
``--compare DIR``: another version of xl_kpi in DIR (``git archive REV | tar -x -C DIR``) runs the same generate in
every round, right after this one, against the same naive loop: a before/after under the same load.
"""

from __future__ import annotations

import argparse
import compileall
import csv
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import openpyxl  # noqa: E402
from xlkpi_process import Run, run_xl_kpi  # noqa: E402

from xl_kpi.inputs.plan import sample_inputs  # noqa: E402
from xl_kpi.outputs.cards import TEMPLATE_DIR  # noqa: E402


def _letters(i: int, width: int = 4) -> str:
    """``i`` as a fixed-width word of Latin letters (aaaa, aaab, …): unique names without numbers in them."""
    out = ""
    for _ in range(width):
        i, r = divmod(i, 26)
        out = chr(ord("a") + r) + out
    return out.capitalize()


def make_inputs(n: int, folder: Path, seed: int = 1) -> tuple[Path, Path]:
    """plan.xlsx with ``n`` employees and facts.csv with all their facts; KPI sources are cleared so the
    facts file is the only data (the benchmark times the batch, not the CRM derivation)."""
    plan_path, _ = sample_inputs()
    wb = openpyxl.load_workbook(plan_path)
    emp = wb["Employees"]
    header = [c.value for c in emp[1]]
    samples = [list(r) for r in emp.iter_rows(min_row=2, values_only=True) if r[0] is not None]
    emp.delete_rows(2, emp.max_row)
    for i in range(n):
        row = list(samples[i % len(samples)])
        eid = 100_000 + i
        row[0], row[1] = eid, f"{row[1]} {_letters(i)}"  # no digits: a name must not read as an amount
        row[4] = None  # managers by name would not resolve among the copies
        row[5] = f"e{eid}@example.com"
        emp.append(row)
    for r in wb["KPIs"].iter_rows(min_row=2):
        r[3].value = None
    plan_rows = [r for r in wb["Plan"].iter_rows(min_row=2, values_only=True) if r[0]]
    for r in list(wb["Plan"].iter_rows(min_row=2)):
        if r[1].value is not None:  # the personal row of one sample employee
            for c in r:
                c.value = None
    kpis: dict[str, list[tuple[str, float, float]]] = {}
    for position, _eid, kpi, _w, base, norm, *_ in plan_rows:
        to_num = (lambda v: float(str(v).replace(" ", "")))  # noqa: E731
        kpis.setdefault(position, []).append((kpi, to_num(base), to_num(norm)))
    folder.mkdir(parents=True, exist_ok=True)
    out_plan = folder / "plan.xlsx"
    wb.save(out_plan)
    rng = random.Random(seed)
    pos_col = header.index("Должность")
    facts = folder / "facts.csv"
    with facts.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["employee_id", "kpi_id", "fact"])
        for i in range(n):
            for kpi, base, norm in kpis[samples[i % len(samples)][pos_col]]:
                w.writerow([100_000 + i, kpi, round(base + (norm - base) * rng.gauss(1.0, 0.25), 2)])
    return out_plan, facts


def naive_cards(n: int, template: Path, out: Path) -> tuple[float, float]:
    """(cards per second, CPU seconds per card) of the straightforward loop: load the template, fill one
    employee, save."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    c0 = _cpu()
    t0 = time.perf_counter()
    for i in range(n):
        wb = openpyxl.load_workbook(template)
        ws = wb.active
        markers = {c.value: c for row in ws.iter_rows() for c in row if isinstance(c.value, str) and "{{" in c.value}
        kpi_row = markers["{{kpi.fact}}"].row
        ws.insert_rows(kpi_row + 1, 3)
        for key in ("name", "position", "department", "employee_id"):
            if "{{" + key + "}}" in markers:
                markers["{{" + key + "}}"].value = f"{key} {i}"
        markers["{{bonus_pool}}"].value = 20_000
        markers["{{salary}}"].value = 80_000
        for k in range(4):
            r = kpi_row + k
            ws[f"A{r}"], ws[f"B{r}"], ws[f"D{r}"], ws[f"E{r}"], ws[f"F{r}"] = k + 1, f"KPI {k}", 0.25, 100, 150
            ws[f"G{r}"] = round(rng.uniform(90, 170), 2)
            ws[f"H{r}"] = f"=(G{r}-E{r})/(F{r}-E{r})"
            ws[f"I{r}"] = f"=LOOKUP(ROUND(H{r},12),{{0,0.7,1,1.1}},{{0,0.9,1,1.1}})"
            ws[f"J{r}"] = f"=ROUND(D{r}*I{r}*20000,2)"
        buf = BytesIO()
        wb.save(buf)
        (out / f"{i}.xlsx").write_bytes(buf.getvalue())
    return n / (time.perf_counter() - t0), (_cpu() - c0) / n


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def generate(plan: Path, facts: Path, out: Path, jobs: int, code: Path = ROOT) -> Run:
    """One measured ``xl-kpi generate`` process (wall seconds, peak RSS of it and its workers, their CPU), with the
    xl_kpi of the folder ``code``."""
    run = run_xl_kpi("generate", "--plan", str(plan), "--data", str(facts), "--out", str(out), "--jobs", str(jobs),
                     code=code)
    with (out / "manifest.csv").open(encoding="utf-8") as f:
        carded = sum(1 for row in csv.DictReader(f) if row["status"] == "ok")
    print(f"  ({carded} cards written)")
    return run


def main() -> None:
    """Run the benchmark and print the rates."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="employees (default 10000)")
    ap.add_argument("--jobs", type=int, default=2, help="generate --jobs (default 2)")
    ap.add_argument("--naive", type=int, default=200, help="employees for the naive loop (default 200)")
    ap.add_argument("--big", type=int, default=0, help="also generate this many employees for the memory ratio")
    ap.add_argument("--repeat", type=int, default=1, help="measure naive loop and generate this many times")
    ap.add_argument("--compare", type=Path, default=None, help="a folder holding another version of xl_kpi: its "
                    "generate runs in every round too")
    args = ap.parse_args()
    for code in (ROOT, args.compare) if args.compare else (ROOT,):
        compileall.compile_dir(code / "xl_kpi", quiet=1)  # an installed package has its bytecode

    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        t0 = time.perf_counter()
        plan, facts = make_inputs(args.n, work / "in")
        print(f"inputs: {args.n} employees ({time.perf_counter() - t0:.1f} s to build)  cpus={os.cpu_count()}  "
              f"load={os.getloadavg()[0]:.2f}")
        ratios, cpu_ratios = [], []
        other_ratios, other_cpu_ratios = [], []
        for r in range(args.repeat):
            naive_rate, naive_cpu = naive_cards(args.naive, TEMPLATE_DIR / "kpi_card_ru.xlsx", work / f"naive{r}")
            print(f"naive openpyxl loop:     {naive_rate:8.1f} cards/s  ({args.naive} cards; "
                  f"{naive_cpu * 1000:.1f} ms CPU a card)  load={os.getloadavg()[0]:.2f}")
            run = generate(plan, facts, work / f"out{r}", args.jobs)
            dt, rss, cpu = run.seconds, run.rss_mb, run.cpu
            rate = args.n / dt
            print(f"generate --jobs {args.jobs}:       {rate:8.1f} cards/s  ({args.n} employees in {dt:.2f} s, "
                  f"end to end; {cpu * 1000 / args.n:.2f} ms CPU a card, all processes: "
                  f"{run.user * 1000 / args.n:.2f} user + {run.system * 1000 / args.n:.2f} system)")
            ratios.append(rate / naive_rate)
            cpu_ratios.append(naive_cpu * args.n / cpu)
            print(f"ratio:                   {ratios[-1]:8.1f}x the naive loop  (CPU a card: "
                  f"{cpu_ratios[-1]:.1f}x less; on a shared machine the CPU ratio varies less)")
            print(f"peak RSS:                {rss:8.0f} MB at {args.n} employees  load={os.getloadavg()[0]:.2f}")
            if args.compare:
                other = generate(plan, facts, work / f"other{r}", args.jobs, args.compare)
                other_ratios.append(args.n / other.seconds / naive_rate)
                other_cpu_ratios.append(naive_cpu * args.n / other.cpu)
                print(f"compared ({args.compare}): {args.n / other.seconds:8.1f} cards/s  ({other.seconds:.2f} s; "
                      f"{other.cpu * 1000 / args.n:.2f} ms CPU a card: {other.user * 1000 / args.n:.2f} user + "
                      f"{other.system * 1000 / args.n:.2f} system); ratio {other_ratios[-1]:.1f}x, CPU ratio "
                      f"{other_cpu_ratios[-1]:.1f}x; peak RSS {other.rss_mb:.0f} MB  load={os.getloadavg()[0]:.2f}")
        if args.repeat > 1:
            print(f"ratios:                  {' '.join(f'{x:.1f}' for x in ratios)}  median "
                  f"{statistics.median(ratios):.1f}x; CPU ratios {' '.join(f'{x:.1f}' for x in cpu_ratios)}  "
                  f"median {statistics.median(cpu_ratios):.1f}x")
            if args.compare:
                print(f"compared ratios:         {' '.join(f'{x:.1f}' for x in other_ratios)}  median "
                      f"{statistics.median(other_ratios):.1f}x; CPU ratios "
                      f"{' '.join(f'{x:.1f}' for x in other_cpu_ratios)}  median "
                      f"{statistics.median(other_cpu_ratios):.1f}x")
        if args.big:
            plan, facts = make_inputs(args.big, work / "big")
            big = generate(plan, facts, work / "out-big", args.jobs)
            dt_big, rss_big = big.seconds, big.rss_mb
            print(f"generate {args.big}:       {args.big / dt_big:8.1f} cards/s  ({dt_big:.2f} s); peak RSS "
                  f"{rss_big:.0f} MB = {rss_big / rss:.2f}x that at {args.n}")
        me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"(this script's own peak RSS: {me:.0f} MB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
