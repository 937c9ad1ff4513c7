"""Benchmark: ``xl-kpi validate`` on a large CRM export against pyarrow's bare read of the same file, same run.

    .venv/bin/python benchmarks/bench_sources.py [--rows 1000000] [--folder DIR]

Writes the sample company's plan and data with ``deals.csv`` replaced by an export of ``--rows`` rows as
CRMs write it (cp1251, ``;``, every value quoted, amounts as "150 000,00", dates as 31.10.2026 14:05:00,
some values over two lines), then

* baseline: ``pyarrow.csv.read_csv`` of that file (encoding, separator, multi-line values), in this process;
* validate: ``python -m xl_kpi validate --plan … --data … --period 2026-10`` as a whole process (imports,
  reading and hashing every file, the plan, every KPI source compiled and run on DuckDB, the report);

and prints both times, the ratio validate : pyarrow (target ≤ 3, goal 1.5) and the peak RSS of validate.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
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


def bare_read(path: Path) -> float:
    import pyarrow as pa
    from pyarrow import csv

    start = time.perf_counter()
    table = csv.read_csv(path, read_options=csv.ReadOptions(encoding="cp1251"),
                         parse_options=csv.ParseOptions(delimiter=";", newlines_in_values=True),
                         convert_options=csv.ConvertOptions(column_types=dict.fromkeys(HEADER, pa.string())))
    took = time.perf_counter() - start
    assert table.num_rows > 0
    return took


def run_validate(plan: Path, data: Path, rows: int) -> tuple[float, int, str]:
    env = dict(os.environ)
    if rows > 1_000_000:  # beyond one sheet's rows and the default sizes: raise the limits for this run
        env.update(XL_KPI_MAX_ROWS=str(rows * 102 // 100 + 10), XL_KPI_MAX_DATA_MB=str(rows // 1000 + 100),
                   XL_KPI_MAX_SOURCE_CELLS=str((rows * 102 // 100 + 10) * len(HEADER)))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "xl_kpi", "validate", "--plan", str(plan), "--data", str(data),
                           "--period", "2026-10"], capture_output=True, text=True, check=False, env=env)
    took = time.perf_counter() - start
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode not in (0, 1):
        raise SystemExit(f"validate failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return took, rss_kb, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, default=None, help="keep the inputs here (reused when present)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side, interleaved; the best is kept")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench_sources_"))
    plan, data = make_inputs(folder, args.rows)
    deals = data / "deals.csv"
    size = deals.stat().st_size / 1024 / 1024
    bare, took, out = float("inf"), float("inf"), ""
    for _ in range(max(args.repeat, 1)):  # interleaved, best of each: the machine may be shared
        bare = min(bare, bare_read(deals))
        t, rss_kb, out = run_validate(plan, data, args.rows)
        took = min(took, t)
    print(f"export: {args.rows:,} rows × {len(HEADER)} columns, {size:.0f} MB cp1251 ({deals})")
    print(f"pyarrow read_csv:  {bare:6.2f} s   (best of {args.repeat})")
    print(f"xl-kpi validate:   {took:6.2f} s   (whole process, best of {args.repeat})")
    print(f"ratio: {took / bare:.2f}× (target ≤ 3×, goal 1.5×); validate peak RSS {rss_kb / 1024:.0f} MB")
    print("validate said:", out.strip().splitlines()[-1] if out.strip() else "(nothing)")
    if args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
