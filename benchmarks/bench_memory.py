"""Benchmark: where the memory of reading, checking and computing goes, stage by stage, at N and M employees.

    .venv/bin/python benchmarks/bench_memory.py [--n 10000] [--big 100000] [--inputs DIR] [--generate]
                                                [--generate-stages] [--jobs 2] [--no-stages]

Builds the inputs of bench_batch.py (a plan workbook of N employees and a facts.csv with one fact per
employee and KPI; kept in ``--inputs DIR`` and reused when already there), then, in a fresh process for
each size, runs what ``xl-kpi generate`` runs before the cards (:func:`xl_kpi.validate.inspect_computed`)
with every stage wrapped: the resident memory (RSS) when the stage starts, its peak while it runs (a thread
samples /proc/self/statm every millisecond) and when it ends. It prints one table per size, then the
process peaks of both sizes and their ratio (issue 10 §6: at most 1.5).

``--generate`` also runs ``xl-kpi generate --jobs J`` end to end at both sizes (a fresh output folder each) and
samples its whole process tree (the parent and every worker it forks) every few milliseconds: the peak of the
parent alone, of the sum of the tree's RSS (counts pages the workers share with the parent by fork twice) and of
the sum of its PSS (each shared page split between the processes sharing it: what the tree really holds), and
the ratios of the three. ``--generate-stages`` makes the stage tables those of the whole of generate, run in the
measured process (the summary's thread and the cards' parent side get rows too; the workers are not counted
there). ``--no-stages`` leaves the stage tables out.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PAGE = os.sysconf("SC_PAGE_SIZE")

STAGES = [  # (module, function): each call is one row of the table, nested calls are indented
    ("xl_kpi.validate", "inspect_computed"),
    ("xl_kpi.inputs.plan", "read_plan"),
    ("xl_kpi.inputs.plan.workbook", "read_workbook"),
    ("xl_kpi.inputs.readers.workbook", "scan_xlsx"),
    ("pandas", "read_excel"),
    ("xl_kpi.inputs.plan.workbook", "table_from_grid"),
    ("xl_kpi.inputs.plan.workbook", "build_plan"),
    ("xl_kpi.inputs.facts", "load_facts"),
    ("xl_kpi.inputs.facts", "load_tables"),
    ("xl_kpi.inputs.facts", "_facts_files"),
    ("xl_kpi.inputs.facts", "build_teams"),
    ("xl_kpi.inputs.facts", "_select_period"),
    ("xl_kpi.inputs.facts", "_derived"),
    ("xl_kpi.inputs.plan", "check_employment"),
    ("xl_kpi.validate", "check_coverage"),
    ("xl_kpi.results", "check_amounts"),
    ("xl_kpi.results", "compute"),
    ("xl_kpi.results", "_with_facts"),
    ("xl_kpi.results", "_score_lines"),
    ("xl_kpi.results", "_employees"),
    ("xl_kpi.results", "amount_limits"),
    ("xl_kpi.results", "_reasons"),
    ("xl_kpi.results", "bonus_notes"),
]
GENERATE_STAGES = [  # with --generate-stages: what generate does after inspect_computed (in the parent)
    ("xl_kpi.batch", "split_invalid"),
    ("xl_kpi.batch", "audit_record"),
    ("xl_kpi.batch", "_write_staged"),
    ("xl_kpi.batch", "write_summary"),
    ("xl_kpi.batch", "write_errors"),
    ("xl_kpi.batch", "save_results"),
    ("xl_kpi.batch", "write_cards"),
    ("xl_kpi.outputs.cards.write", "_CardSource"),
    ("xl_kpi.outputs.cards.write", "flush_files"),
    ("xl_kpi.batch", "write_manifest"),
    ("xl_kpi.batch", "_swap_into_place"),
]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Sampler(threading.Thread):
    """Samples the RSS every millisecond; ``peak(mark())`` is the highest since that mark (marks may overlap)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.marks: dict[int, int] = {}
        self.lock = threading.Lock()
        self.stop = False
        self.next = 0

    def run(self) -> None:
        while not self.stop:
            r = _rss()
            with self.lock:
                for k, m in self.marks.items():
                    if r > m:
                        self.marks[k] = r
            time.sleep(0.001)

    def mark(self) -> int:
        with self.lock:
            self.next += 1
            self.marks[self.next] = _rss()
            return self.next

    def peak(self, i: int) -> int:
        with self.lock:
            return max(self.marks.pop(i), _rss())


def _profile(plan: str, facts: str, jobs: int = 0) -> dict[str, Any]:
    """Run inspect_computed on the inputs with every stage measured (in this process); ``jobs``: run the whole of
    generate with that many workers (its own stages measured too, in this process only)."""
    sampler = Sampler()
    sampler.start()
    rows: list[tuple[int, str, int, int, int, float]] = []
    local = threading.local()  # the summary's thread nests its own stages

    def wrap(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def inner(*a: Any, **k: Any) -> Any:
            start, t0 = _rss(), time.perf_counter()
            i = sampler.mark()
            slot = len(rows)
            depth = getattr(local, "depth", 0)
            rows.append((depth, name, start, 0, 0, 0.0))
            local.depth = depth + 1
            try:
                return fn(*a, **k)
            finally:
                local.depth = depth
                rows[slot] = (rows[slot][0], name, start, sampler.peak(i), _rss(), time.perf_counter() - t0)
        return inner

    for mod_name, fn_name in STAGES + (GENERATE_STAGES if jobs else []):
        mod = importlib.import_module(mod_name)
        setattr(mod, fn_name, wrap(fn_name, getattr(mod, fn_name)))
    from xl_kpi.validate import inspect_computed

    base = _rss()
    if jobs:
        from xl_kpi.batch import generate

        out = Path(tempfile.mkdtemp(prefix="bench-memory-out-"))
        try:
            report = generate(plan, [facts], out / "out", jobs=jobs)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        problems, results = report.problems, report.results
    else:
        _, _, problems, results = inspect_computed(plan, [facts])
    sampler.stop = True
    import resource

    return {"base": base, "rows": rows, "errors": len(problems.errors),
            "employees": 0 if results is None else len(results.employees),
            "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _tree(root: int) -> list[int]:
    """``root`` and every process below it (found by their parent ids in /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, ()))
    return out


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _statm_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _generate(plan: Path, facts: Path, out: Path, jobs: int) -> dict[str, float]:
    """One ``xl-kpi generate`` process tree, sampled: wall seconds, workers seen, and the peaks (bytes) of the
    parent's RSS, of the tree's summed RSS and of its summed PSS."""
    proc = subprocess.Popen([sys.executable, "-m", "xl_kpi", "generate", "--plan", str(plan), "--data", str(facts),
                             "--out", str(out), "--jobs", str(jobs)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    peaks = {"parent": 0, "rss": 0, "pss": 0}
    seen: set[int] = set()
    t0, k = time.perf_counter(), 0
    while proc.poll() is None:
        pids = _tree(proc.pid)
        seen.update(pids)
        rss = [_statm_rss(p) for p in pids]
        peaks["parent"] = max(peaks["parent"], rss[0])
        peaks["rss"] = max(peaks["rss"], sum(rss))
        if k % 4 == 0:  # PSS walks every page table: every 4th sample
            peaks["pss"] = max(peaks["pss"], sum(_pss(p) for p in pids))
        k += 1
        time.sleep(0.005)
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode:
        sys.exit(f"generate failed (exit {proc.returncode}):\n{err}")
    return {**peaks, "seconds": time.perf_counter() - t0, "processes": len(seen)}


def _table(n: int, got: dict[str, Any]) -> None:
    mb = 1024 * 1024
    print(f"\n{n} employees ({got['employees']} computed, {got['errors']} errors); RSS after imports "
          f"{got['base'] / mb:.0f} MB, process peak {got['maxrss'] / mb:.0f} MB")
    print(f"  {'stage':<30} {'start':>7} {'peak':>7} {'end':>7} {'+peak':>7} {'seconds':>8}")
    for depth, name, start, peak, end, dt in got["rows"]:
        label = "  " * depth + name
        print(f"  {label:<30} {start / mb:7.0f} {peak / mb:7.0f} {end / mb:7.0f} {(peak - start) / mb:7.0f} "
              f"{dt:8.2f}")


def main() -> None:
    """Build the inputs, profile each size in its own process, print the tables and the ratio."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="employees (default 10000)")
    ap.add_argument("--big", type=int, default=100_000, help="employees of the large run (default 100000)")
    ap.add_argument("--inputs", default=None, help="folder for the inputs (kept, reused; default: a temp folder)")
    ap.add_argument("--generate", action="store_true", help="also run xl-kpi generate end to end, its process tree "
                    "sampled")
    ap.add_argument("--jobs", type=int, default=2, help="generate --jobs (default 2)")
    ap.add_argument("--stages", action=argparse.BooleanOptionalAction, default=True,
                    help="the per-stage tables of inspect_computed (default on)")
    ap.add_argument("--generate-stages", action="store_true", help="the per-stage tables of the whole of generate "
                    "(in one process: the parent's stages; its workers are not counted there)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_profile(args.child[0], args.child[1], int(args.child[2]))))
        return

    from bench_batch import make_inputs

    work = Path(args.inputs) if args.inputs else Path(tempfile.mkdtemp(prefix="bench-memory-"))
    peaks, gen = {}, {}
    mb = 1024 * 1024
    for n in (args.n, args.big):
        folder = work / f"in{n}"
        plan, facts = folder / "plan.xlsx", folder / "facts.csv"
        if not (plan.exists() and facts.exists()):
            make_inputs(n, folder)
        if args.stages:
            proc = subprocess.run([sys.executable, __file__, "--child", str(plan), str(facts),
                                   str(args.jobs if args.generate_stages else 0)], capture_output=True, text=True,
                                  cwd=ROOT)
            if proc.returncode:
                sys.exit(proc.stderr)
            got = json.loads(proc.stdout.splitlines()[-1])
            _table(n, got)
            peaks[n] = got["maxrss"]
        if args.generate:
            out = Path(tempfile.mkdtemp(prefix="bench-memory-out-"))
            try:
                gen[n] = g = _generate(plan, facts, out / "out", args.jobs)
            finally:
                shutil.rmtree(out, ignore_errors=True)
            print(f"\ngenerate --jobs {args.jobs}, {n} employees: {g['seconds']:.1f} s, {g['processes']} "
                  f"processes; peak RSS of the parent {g['parent'] / mb:.0f} MB, of the tree {g['rss'] / mb:.0f} MB "
                  "(RSS summed), "
                  f"{g['pss'] / mb:.0f} MB (PSS summed)  load={os.getloadavg()[0]:.2f}")
    if args.stages:
        print(f"\npeak RSS {peaks[args.n] / mb:.0f} MB at {args.n}, {peaks[args.big] / mb:.0f} MB at {args.big}: "
              f"{peaks[args.big] / peaks[args.n]:.2f}x  load={os.getloadavg()[0]:.2f}")
    if args.generate:
        small, big = gen[args.n], gen[args.big]
        print("generate " + ", ".join(f"{what} {big[key] / mb:.0f} / {small[key] / mb:.0f} MB = "
                                      f"{big[key] / small[key]:.2f}x" for what, key in
                                      (("parent", "parent"), ("tree RSS", "rss"), ("tree PSS", "pss")))
              + f" at {args.big} / {args.n}")


if __name__ == "__main__":
    main()
