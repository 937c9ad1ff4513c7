"""Benchmark: ``xl-kpi validate`` on a large CRM export against pyarrow's bare read of the same file, same run.

    .venv/bin/python benchmarks/bench_sources.py [--rows 1000000] [--repeat 3] [--folder DIR] [--compare DIR]
                                                 [--no-stages]

Writes the sample company's plan and data with ``deals.csv`` replaced by an export of ``--rows`` rows as
CRMs write it (cp1251, ``;``, every value quoted, amounts as "150 000,00", dates as 31.10.2026 14:05:00,
some values over two lines), then, ``--repeat`` times in turn:

* baseline, whole process: ``python -c "import pyarrow.csv; read_csv(…)"`` of that file (cp1251 transcoded by
  pyarrow, ``;``, multi-line values, every column as text): what the shortest program that reads the export
  costs, Python's start and pyarrow's import included;
* baseline, in process: the same ``read_csv`` in this process (pyarrow already imported, the file in the page
  cache): the read alone;
* validate: ``python -m xl_kpi validate --plan … --data … --period 2026-10`` as a whole process (imports,
  reading and checking every file, the plan, every KPI source compiled and run on DuckDB, the report).

The target (issue 11 §5: within 3×, goal 1.5×) is judged on **validate : whole-process baseline**, both being
whole processes; validate : in-process read is printed beside it. Each ratio is taken within one round (the
machine is shared: the rounds differ more than the sides of a round) and its median and spread are printed,
with the CPU seconds (user + system) of both processes and the peak RSS of validate. xl_kpi's modules are
byte-compiled first, as an installed package is (with PYTHONDONTWRITEBYTECODE set, every run
would compile them again).

Then (unless ``--no-stages``) ``--repeat`` more validate processes time their stages (:data:`STAGES`: imports,
plan, the wait for the CSV read and the tables, the sources, the checks, the report), printed as medians.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xl_kpi.inputs.plan import sample_inputs  # noqa: E402

HEADER = ["deal_id", "created_at", "closed_at", "manager_id", "client_id", "status", "amount", "key_client"]


def _amount(rng: random.Random) -> str:
    whole, cents = rng.randrange(1_000, 900_000), rng.randrange(100)
    text = f"{whole:,}".replace(",", " ")
    return f"{text},{cents:02d}"


def write_export(path: Path, rows: int, managers: list[str], seed: int = 1) -> None:
    """A deals export of ``rows`` rows in the sample's columns, as a Russian CRM writes it."""
    rng = random.Random(seed)
    statuses = ["won", "won", "lost", "open"]
    chunk: list[str] = ['"' + '";"'.join(HEADER) + '"']
    with path.open("w", encoding="cp1251", newline="") as f:
        for i in range(rows):
            day, hour, minute = rng.randrange(1, 32), rng.randrange(8, 20), rng.randrange(60)
            status = statuses[i % 4]
            closed = "" if status == "open" else f"{day:02d}.10.2026 {hour:02d}:{minute:02d}:00"
            client = f"К-{rng.randrange(1000, 9999)}" + ("\nдоп. соглашение" if i % 97 == 0 else "")
            values = [str(60_000 + i), f"{max(day - 3, 1):02d}.10.2026 09:00:00", closed, managers[i % len(managers)],
                      client, status, _amount(rng), "да" if i % 5 == 0 else "нет"]
            chunk.append('"' + '";"'.join(values) + '"')
            if len(chunk) >= 50_000:
                f.write("\r\n".join(chunk) + "\r\n")
                chunk = []
        if chunk:
            f.write("\r\n".join(chunk) + "\r\n")


def make_inputs(folder: Path, rows: int) -> tuple[Path, Path]:
    """plan.xlsx and a data folder: the sample's files with deals.csv replaced by the large export."""
    plan, data = sample_inputs()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(plan, folder / "plan.xlsx")
    out = folder / "data"
    out.mkdir(exist_ok=True)
    for p in data:
        if p.name != "deals.csv":
            shutil.copy(p, out / p.name)
    sample_deals = next(p for p in data if p.name == "deals.csv")
    with sample_deals.open(encoding="cp1251") as f:  # the sales managers of the sample company
        managers = sorted({line.split(";")[3] for line in list(f)[1:] if line.count(";") >= 7})
    deals = out / "deals.csv"
    if not deals.exists() or deals.stat().st_size < rows * 60:
        write_export(deals, rows, managers)
    return folder / "plan.xlsx", out


BASELINE = (
    "import sys\n"
    "import pyarrow as pa\n"
    "from pyarrow import csv\n"
    "names = sys.argv[2].split(',')\n"
    "table = csv.read_csv(sys.argv[1], read_options=csv.ReadOptions(encoding='cp1251'),\n"
    "                     parse_options=csv.ParseOptions(delimiter=';', newlines_in_values=True),\n"
    "                     convert_options=csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())))\n"
    "assert table.num_rows > 0\n"
)
"""The whole-process baseline: the bare read, as a program of its own."""


STAGES = (
    "import importlib.machinery, json, sys, time\n"
    "start = time.perf_counter()\n"
    "took = {}\n"
    "WRAP = {'xl_kpi.inputs.plan.workbook': [('read_plan', 'plan read')],\n"
    "        'xl_kpi.inputs.facts': [('load_tables', 'data files (waiting for the read ahead, tables)'),\n"
    "                                ('_derived', 'sources (columns converted, DuckDB queries)')],\n"
    "        'xl_kpi.validate': [('check_coverage', 'checks (coverage, amounts)'), ('render', 'report printed')],\n"
    "        'xl_kpi.results': [('check_amounts', 'checks (coverage, amounts)')], 'xl_kpi.cli': []}\n"
    "def timed(f, label):\n"
    "    def wrapper(*args, **kwargs):\n"
    "        t = time.perf_counter()\n"
    "        try:\n"
    "            return f(*args, **kwargs)\n"
    "        finally:\n"
    "            took[label] = took.get(label, 0.0) + time.perf_counter() - t\n"
    "    return wrapper\n"
    "class Hook:  # wraps the stages' functions as their modules are imported, when validate imports them\n"
    "    @staticmethod\n"
    "    def find_spec(name, path, target=None):\n"
    "        if name not in WRAP:\n"
    "            return None\n"
    "        spec = importlib.machinery.PathFinder.find_spec(name, path)\n"
    "        run = spec.loader.exec_module\n"
    "        def exec_module(module):\n"
    "            run(module)\n"
    "            if name == 'xl_kpi.cli':  # the CLI imported: typer, rich, xl_kpi and pandas with it\n"
    "                took['imports (xl_kpi, pandas, the CLI)'] = time.perf_counter() - start\n"
    "            for attr, label in WRAP[name]:\n"
    "                setattr(module, attr, timed(getattr(module, attr), label))\n"
    "        spec.loader.exec_module = exec_module\n"
    "        return spec\n"
    "sys.meta_path.insert(0, Hook)\n"
    "out = sys.argv.pop(1)\n"
    "sys.argv[0] = 'xl-kpi'\n"
    "from xl_kpi.__main__ import main  # as python -m xl_kpi does: the early read of the CSV files, then the CLI\n"
    "assert not set(WRAP) & set(sys.modules), 'imported before the hook'\n"
    "def save():  # an atexit hook: a finished validate ends at once (os._exit) after running the hooks\n"
    "    took['whole'] = time.perf_counter() - start\n"
    "    with open(out, 'w') as f:\n"
    "        json.dump(took, f)\n"
    "__import__('atexit').register(save)\n"
    "main()\n"
)
"""A validate process timing its stages (wrapped in place as their modules are imported: the same code, in the same
order, as ``python -m xl_kpi validate``); the seconds of each stage go to the JSON file named first."""


@dataclass(frozen=True)
class Measured:
    """One process: wall seconds, CPU seconds (user + system) and peak RSS in MB."""

    seconds: float
    cpu: float
    rss_mb: float
    stdout: str = ""


def run_process(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Measured:
    """Run ``args`` in ``cwd`` and measure that process alone (``os.wait4``: its own CPU time and peak RSS)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        if code not in (0, 1):
            raise SystemExit(f"{' '.join(args[:4])} failed ({code}):\n{text[-2000:]}\n{err.read()[-2000:]}")
    return Measured(took, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text)


def bare_read(path: Path) -> float:
    """The baseline in this process: pyarrow's read_csv of the export (cp1251, ``;``, multi-line values)."""
    import pyarrow as pa
    from pyarrow import csv

    start = time.perf_counter()
    table = csv.read_csv(path, read_options=csv.ReadOptions(encoding="cp1251"),
                         parse_options=csv.ParseOptions(delimiter=";", newlines_in_values=True),
                         convert_options=csv.ConvertOptions(column_types=dict.fromkeys(HEADER, pa.string())))
    took = time.perf_counter() - start
    assert table.num_rows > 0
    return took


def bare_process(path: Path) -> Measured:
    """The baseline as a whole process (see :data:`BASELINE`)."""
    return run_process([sys.executable, "-c", BASELINE, str(path), ",".join(HEADER)])


def run_validate(plan: Path, data: Path, rows: int, code: Path = ROOT, stages: Path | None = None) -> Measured:
    """``xl-kpi validate`` of the plan and data as a whole process, with the xl_kpi of the folder ``code``;
    with ``stages``, the process times its stages into that JSON file (see :data:`STAGES`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    if rows > 1_000_000:  # beyond one sheet's rows and the default sizes: raise the limits for this run
        env.update(XL_KPI_MAX_ROWS=str(rows * 102 // 100 + 10), XL_KPI_MAX_DATA_MB=str(rows // 1000 + 100),
                   XL_KPI_MAX_SOURCE_CELLS=str((rows * 102 // 100 + 10) * len(HEADER)))
    start = [sys.executable, "-c", STAGES, str(stages)] if stages else [sys.executable, "-m", "xl_kpi"]
    return run_process([*start, "validate", "--plan", str(plan), "--data", str(data),
                        "--period", "2026-10"], env, cwd=code)  # python -m looks in cwd first


def _spread(values: list[float], unit: str = "", digits: int = 2) -> str:
    """'median (min–max)' of the values."""
    return (f"{statistics.median(values):.{digits}f}{unit} "
            f"({min(values):.{digits}f}–{max(values):.{digits}f}{unit})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, default=None, help="keep the inputs here (reused when present)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (baseline process, in-process read, "
                        "validate, in turn); medians and spreads are printed")
    parser.add_argument("--compare", type=Path, default=None, help="a folder holding another version of xl_kpi "
                        "(e.g. `git archive REV | tar -x -C DIR`): its validate runs in the same rounds, for a "
                        "before/after under the same load")
    parser.add_argument("--stages", action=argparse.BooleanOptionalAction, default=True,
                        help="after the rounds, time validate's stages in --repeat more runs (not in the ratios)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench_sources_"))
    plan, data = make_inputs(folder, args.rows)
    deals = data / "deals.csv"
    size = deals.stat().st_size / 1024 / 1024
    for code in (ROOT, args.compare) if args.compare else (ROOT,):
        compileall.compile_dir(code / "xl_kpi", quiet=1)  # an installed package has its bytecode
    bare_read(deals)  # warm up: the file in the page cache, pyarrow imported
    rounds: list[tuple[Measured, float, Measured]] = []
    others: list[Measured] = []
    for _ in range(max(args.repeat, 1)):
        rounds.append((bare_process(deals), bare_read(deals), run_validate(plan, data, args.rows)))
        if args.compare:
            others.append(run_validate(plan, data, args.rows, args.compare))
    procs, reads, vals = zip(*rounds, strict=True)
    n = len(rounds)
    print(f"export: {args.rows:,} rows × {len(HEADER)} columns, {size:.0f} MB cp1251 ({deals}); {n} rounds, "
          f"median (min–max); load average {os.getloadavg()[0]:.1f}")
    print(f"pyarrow read_csv, whole process: {_spread([p.seconds for p in procs], ' s')}, "
          f"CPU {_spread([p.cpu for p in procs], ' s')}, peak RSS {_spread([p.rss_mb for p in procs], ' MB', 0)}")
    print(f"pyarrow read_csv, in process:    {_spread(list(reads), ' s')}")
    print(f"xl-kpi validate, whole process:  {_spread([v.seconds for v in vals], ' s')}, "
          f"CPU {_spread([v.cpu for v in vals], ' s')}, peak RSS {_spread([v.rss_mb for v in vals], ' MB', 0)}")
    print(f"ratio validate : pyarrow whole process = {_spread([v.seconds / p.seconds for p, _, v in rounds], '×')}"
          f"  <- the target (≤ 3×, goal 1.5×); CPU {_spread([v.cpu / p.cpu for p, _, v in rounds], '×')}")
    print(f"ratio validate : pyarrow in process    = {_spread([v.seconds / r for _, r, v in rounds], '×')}"
          "  (the read alone, for reference)")
    if others:
        print(f"compared ({args.compare}): validate {_spread([o.seconds for o in others], ' s')}, "
              f"CPU {_spread([o.cpu for o in others], ' s')}, "
              f"peak RSS {_spread([o.rss_mb for o in others], ' MB', 0)}; ratio to pyarrow whole process "
              f"{_spread([o.seconds / p.seconds for o, (p, _, _) in zip(others, rounds, strict=True)], '×')}")
    if args.stages:
        runs: list[dict[str, float]] = []
        for _ in range(max(args.repeat, 1)):
            with tempfile.TemporaryDirectory() as tmp:
                run_validate(plan, data, args.rows, stages=Path(tmp) / "stages.json")
                runs.append(json.loads((Path(tmp) / "stages.json").read_text()))
        labels = list(dict.fromkeys(label for run in runs for label in run if label != "whole"))
        print(f"validate's stages ({len(runs)} more runs, wall seconds, median (min–max); the CSV is read in a "
              "background thread from the start on, so the data files' stage is the wait for it and the tables):")
        for label in labels:
            print(f"  {label:55s} {_spread([run.get(label, 0.0) for run in runs], ' s')}")
        rest = [run["whole"] - sum(run.get(label, 0.0) for label in labels) for run in runs]
        print(f"  {'the rest (arguments, engine set-up, employment check)':55s} {_spread(rest, ' s')}")
        print(f"  {'whole':55s} {_spread([run['whole'] for run in runs], ' s')}")
    last = vals[-1].stdout.strip()
    print("validate said:", last.splitlines()[-1] if last else "(nothing)")
    if args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
