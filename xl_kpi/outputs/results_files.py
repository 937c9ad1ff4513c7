"""Save and load a :class:`~xl_kpi.results.Results` as plain files, so later steps need no re-run.

``OUT/results/`` holds ``lines.csv``, ``employees.csv`` (UTF-8, every float at full precision, so a
reload gives the very same numbers; text neutralised by :mod:`xl_kpi.outputs.csvsafe`, so Excel runs no formula
and the text reads back as it was) and ``run.json`` (period, currency, company, language, digits and
the scales). ``xl-kpi distribute`` rebuilds team summaries from it. The folder holds everyone's pay:
it is for HR, never part of a bundle. JSON and CSV only: loading runs no code (no pickle).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.payout import Tiers
from xl_kpi.engine.scales import Scale
from xl_kpi.outputs.atomic import open_atomic, write_atomic
from xl_kpi.outputs.csvsafe import DANGEROUS, neutralise, restore
from xl_kpi.results import EMPLOYEE_COLUMNS, LINE_COLUMNS, Results

FOLDER = "results"
_TEXT = {"employee_id", "kpi_id", "kpi_name", "unit", "scale", "name", "position", "department", "manager",
         "email", "status", "reason", "payout", "tiers", "adjustment_reason", "bonus_note"}
_OPTIONAL = {"payout": "coefficient", "rate": None, "threshold": None, "amount": None, "max_payout": None,
             "tiers": "", "adjustment": 0.0, "adjustment_reason": "",
             "bonus_note": ""}
"""Columns added later (issue 15's line columns, issue 13's adjustments): results saved before them read as
coefficient lines without adjustments."""
FORMAT_VERSION = 1
_CHUNK_ROWS = 5_000
"""Rows neutralised and written at a time (100,000 employees: the lines table copied whole cost ~150 MB, in
20,000-row pieces ~50 MB, in 5,000-row pieces ~30 MB, in the same time)."""


def save_results(results: Results, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``out_dir/results/`` (lines.csv, employees.csv, run.json); return the folder."""
    folder = Path(out_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame, cols in (("lines", results.lines, LINE_COLUMNS), ("employees", results.employees,
                                                                      EMPLOYEE_COLUMNS)):
        with open_atomic(folder / f"{name}.csv") as f:  # streamed: the CSV is never held whole in memory,
            for start in range(0, max(len(frame), 1), _CHUNK_ROWS):  # nor a neutralised copy of the table
                part = _neutralised(frame.iloc[start: start + _CHUNK_ROWS][list(cols)])
                part.to_csv(f, index=False, header=start == 0, lineterminator="\r\n", encoding="utf-8")
            # (a \r in text is quoted)
    run = {
        "format": FORMAT_VERSION,
        "period": results.period,
        "currency": results.currency,
        "company": results.company,
        "language": results.language,
        "digits": results.digits,
        "scales": {n: _scale_dict(s) for n, s in sorted(results.scales.items())},
        "tiers": {n: {"starts": list(t.starts), "rates": list(t.rates), "mode": t.mode}
                  for n, t in sorted(results.tiers.items())},
    }
    write_atomic(folder / "run.json", json.dumps(run, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8"))
    return folder


def load_results(out_dir: str | os.PathLike[str]) -> Results:
    """Read back what :func:`save_results` wrote; :class:`KpiError` naming the file if it is missing or bad."""
    folder = Path(out_dir) / FOLDER
    try:
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        lines = _read(folder / "lines.csv", LINE_COLUMNS)
        employees = _read(folder / "employees.csv", EMPLOYEE_COLUMNS)
    except FileNotFoundError as e:
        raise KpiError(f"{e.filename}: not found; is {out_dir} the output folder of 'xl-kpi generate'?") from None
    except (ValueError, KeyError) as e:
        raise KpiError(f"{folder}: the saved results are damaged ({e}); run 'xl-kpi generate' again") from None
    if run.get("format") != FORMAT_VERSION:
        raise KpiError(f"{folder / 'run.json'}: format {run.get('format')!r} is not one this version reads")
    employees["gated"] = employees["gated"].astype(str).str.lower().eq("true")
    scales = {n: _scale(n, d) for n, d in run["scales"].items()}
    tiers = {n: Tiers(tuple(d["starts"]), tuple(d["rates"]), d["mode"]) for n, d in run.get("tiers", {}).items()}
    return Results(lines=lines, employees=employees, scales=scales, period=run["period"], currency=run["currency"],
                   company=run["company"], language=run["language"], digits=int(run["digits"]), tiers=tiers)


def _read(path: Path, cols: tuple[str, ...]) -> pd.DataFrame:
    head = pd.read_csv(path, nrows=0).columns
    missing = [c for c in cols if c not in head and c not in _OPTIONAL]
    if missing:
        raise ValueError(f"{path.name} lacks the columns {', '.join(missing)}")
    dtypes = {c: str for c in cols if c in _TEXT}
    frame = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values={c: [""] for c in cols
                                                                                if c not in _TEXT})
    for c in cols:
        if c not in frame:
            frame[c] = np.nan if _OPTIONAL[c] is None else _OPTIONAL[c]
    for c in cols:
        if c in _TEXT:
            frame[c] = frame[c].map(restore).astype(object)
        elif c != "gated":
            frame[c] = pd.to_numeric(frame[c], errors="raise").astype(float)
    return frame[list(cols)]


def _neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell of the text columns neutralised (numbers are written as numbers, float columns
    already as the text ``to_csv`` would write: :func:`float_texts`)."""
    out = frame.copy()
    for c in out.columns:
        if out[c].dtype == np.float64:
            out[c] = pd.Series(float_texts(out[c].to_numpy()), index=out.index, dtype=object)
        elif c in _TEXT:
            values = out[c].to_numpy(dtype=object)
            # each distinct text checked once (360,000 text cells at 10,000 employees, a few thousand distinct,
            # almost none to change); a column with none is written as it is
            bad = {v for v in set(values) if isinstance(v, str) and v.startswith(DANGEROUS)}
            if bad:
                out[c] = pd.Series([neutralise(v) if v in bad else v for v in values], index=out.index, dtype=object)
    return out


def float_texts(values: np.ndarray) -> np.ndarray:
    """Each float64 as pandas' ``to_csv`` writes it, NaN as an empty field: the shortest text that reads back as the
    same float (Python's ``repr``, which NumPy's ``astype(str)`` in ``to_csv`` matches digit for digit), made by
    ``float.__repr__`` at half the CPU (results/ at 10,000 employees: about 0.15 s less, on the side thread that
    shares the cores with the card workers)."""
    texts = np.array(list(map(float.__repr__, values.tolist())), dtype=object)
    texts[np.isnan(values)] = ""
    return texts


def _scale_dict(s: Scale) -> dict[str, Any]:
    return {"kind": s.kind, "thresholds": list(s.thresholds), "coefficients": list(s.coefficients),
            "below": s.below, "cap": s.cap}


def _scale(name: str, d: dict[str, Any]) -> Scale:
    return Scale(d["kind"], tuple(map(float, d["thresholds"])), tuple(map(float, d["coefficients"])),
                 float(d["below"]), None if d["cap"] is None else float(d["cap"]), name)


def same_results(a: Results, b: Results) -> bool:
    """True when two results hold the same numbers and texts (NaN equal to NaN)."""
    def eq(x: pd.DataFrame, y: pd.DataFrame) -> bool:
        if list(x.columns) != list(y.columns) or len(x) != len(y):
            return False
        for c in x.columns:
            u, v = x[c].to_numpy(), y[c].to_numpy()
            if u.dtype.kind == "f" or v.dtype.kind == "f":
                if not np.array_equal(u.astype(float), v.astype(float), equal_nan=True):
                    return False
            elif [("" if pd.isna(p) else str(p)) for p in u] != [("" if pd.isna(q) else str(q)) for q in v]:
                return False
        return True

    return (eq(a.lines, b.lines) and eq(a.employees, b.employees) and a.scales == b.scales
            and (a.period, a.currency, a.company, a.language, a.digits)
            == (b.period, b.currency, b.company, b.language, b.digits))
