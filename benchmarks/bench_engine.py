"""Engine speed: 1,000,000 scores + coefficients + bonuses, against a plain-Python loop baseline.

Run: .venv/bin/python benchmarks/bench_engine.py [--n 1000000]
Prints the vectorised time, the baseline's rate measured in the same run (on a slice, then
extrapolated), and the ratio. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import xl_kpi


def python_loop(fact, base, norm, pool, weight) -> list[float]:
    """Baseline: what a hand-written per-row loop does (same bands, no NumPy)."""
    out = []
    for f, b, n in zip(fact, base, norm, strict=True):
        s = (f - b) / (n - b)
        k = round(s, 12)
        c = 0.0 if k < 0.7 else 0.9 if k < 1.0 else 1.0 if k < 1.1 else 1.1
        out.append(pool * weight * c)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    base = rng.uniform(0, 100, args.n).round(0)
    norm = base + rng.uniform(1, 100, args.n).round(0)
    fact = base + (norm - base) * rng.uniform(0.3, 1.5, args.n)

    best = {}
    for _ in range(args.repeat):
        for label, fn in (
            ("score", lambda: xl_kpi.score(fact, base, norm)),
            ("score+coefficient", lambda: xl_kpi.coefficient(xl_kpi.score(fact, base, norm))),
            ("score+coefficient+bonus (rounded)", lambda: xl_kpi.bonus(20_000, 0.4, xl_kpi.score(fact, base, norm))),
        ):
            t = time.perf_counter()
            fn()
            best[label] = min(best.get(label, float("inf")), time.perf_counter() - t)

    m = min(args.n, 200_000)
    t = time.perf_counter()
    python_loop(fact[:m].tolist(), base[:m].tolist(), norm[:m].tolist(), 20_000, 0.4)
    loop_rate = m / (time.perf_counter() - t)

    print(f"n = {args.n:,} KPI rows, best of {args.repeat}")
    for label, secs in best.items():
        print(f"  {label:<36} {secs * 1000:8.1f} ms   {args.n / secs / 1e6:6.1f} M rows/s")
    full = best["score+coefficient+bonus (rounded)"]
    print(f"  plain-Python loop baseline           {args.n / loop_rate * 1000:8.1f} ms   "
          f"{loop_rate / 1e6:6.1f} M rows/s (measured on {m:,} rows)")
    print(f"  ratio (engine vs loop, score+coefficient+bonus): {args.n / loop_rate / full:.1f}x")


if __name__ == "__main__":
    main()
