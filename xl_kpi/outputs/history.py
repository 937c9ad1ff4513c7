"""Earlier runs' recorded results (``--history``), checked before they are trusted: the card's history sheet.

A history path is the output folder of an earlier ``xl-kpi generate`` (it holds ``manifest.json``) or a folder
whose sub-folders are such outputs. Each run is used only when its ``manifest.json`` vouches for it:

* the record is whole: its ``fingerprint`` is the hash of what it records of the run's inputs (an edited
  period, plan or option breaks it);
* ``results/run.json``, ``results/employees.csv`` and ``results/lines.csv`` have the sha256 it records;
* it names a period, the same as ``results/run.json``; the currency and the company are this run's.

Anything else is an error naming the file and the fix: never a run used silently. Two runs whose periods
share a day (the same month twice, a month inside a quarter) are reported, never chosen between by order.
An earlier run of a period after this one is left out with a warning; the run in this run's own ``--out``
(about to be replaced) is skipped. Employees are matched by ``employee_id``; a run listing one id twice is an
error. The hashes prove the files are the ones the run wrote, not who wrote them: keep history folders where
only HR can write.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.payout import weighted_score
from xl_kpi.engine.period import Period, PeriodError
from xl_kpi.i18n import Msg
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.layout import RESULTS
from xl_kpi.outputs.results_files import load_results

AUDIT = "manifest.json"
RESULT_FILES = (f"{RESULTS}/run.json", f"{RESULTS}/employees.csv", f"{RESULTS}/lines.csv")
"""What the history reads of an earlier run; each must have the sha256 its manifest.json records."""
_AFTER_FINGERPRINT = ("fingerprint", "outputs", "cards", "files")
"""Keys ``generate`` adds to manifest.json after hashing the record into its fingerprint."""
SHOWN = 12
"""Earlier periods shown on a card (the latest ones); the year-to-date total counts every recorded one."""
_FIX = "run 'xl-kpi generate' for that period again into that folder, or leave it out of --history"


@dataclass(frozen=True)
class HistoryRun:
    """One earlier run, checked: its folder, period and the hashes that vouched for it."""

    folder: Path
    period: Period
    manifest_sha256: str
    results_sha256: dict[str, str]


@dataclass(frozen=True)
class HistoryRow:
    """One employee in one earlier period: the weighted score and the period bonus that run recorded."""

    period: str
    """The period's key (``2026-09``); the card names it in its language."""
    score: float
    bonus: float


@dataclass
class History:
    """The checked earlier runs and, per employee (``employee_id`` as text), their rows in period order."""

    runs: list[HistoryRun] = field(default_factory=list)
    rows: dict[str, tuple[HistoryRow, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.runs)

    def of(self, employee_id: Any) -> tuple[HistoryRow, ...]:
        """The employee's earlier rows, oldest first (none when no earlier run lists them)."""
        return self.rows.get(str(employee_id).strip(), ())

    def year_to_date(self, employee_id: Any, period: Period | str) -> list[HistoryRow]:
        """The employee's earlier rows whose bonuses the year-to-date total of ``period`` adds to its own
        (:meth:`~xl_kpi.engine.period.Period.counts_toward_year_to_date`)."""
        here = Period.parse(period)
        return [r for r in self.of(employee_id) if here.counts_toward_year_to_date(Period.parse(r.period))]

    def record(self) -> list[dict[str, Any]]:
        """What manifest.json records of the history (``verify`` re-checks it before recomputing the cards)."""
        return [{"folder": str(r.folder), "period": r.period.key, "manifest_sha256": r.manifest_sha256,
                 "results": dict(r.results_sha256)} for r in self.runs]


def run_folders(path: str | os.PathLike[str]) -> list[Path]:
    """The run folders a ``--history`` path names: itself when it holds manifest.json, else its sub-folders
    that do (sorted by name; the order decides nothing)."""
    p = Path(path)
    if (p / AUDIT).is_file():
        return [p]
    if not p.is_dir():
        return []
    return sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".") and (c / AUDIT).is_file())


def load_history(paths: Sequence[str | os.PathLike[str]], period: Period | str | None, *, currency: str,
                 company: str, problems: Problems, out_dir: str | os.PathLike[str] | None = None) -> History:
    """The earlier runs under ``paths`` for a run of ``period``, each checked (see the module doc).

    Every problem goes to ``problems`` (file, fix); the History holds only the runs that passed. Periods of
    two runs that overlap are an error (the runs are dropped), and so is a run overlapping this period.
    """
    history = History()
    if not paths:
        return history
    here = Period.parse(period) if period else None
    if here is None:
        problems.error(Msg("--history needs the run's period: the earlier periods are placed before it"),
                       Msg("give --period (or the plan's Settings period)"), file="--history")
        return history
    own = Path(out_dir).resolve() if out_dir is not None else None
    folders: list[Path] = []
    for p in paths:
        found = run_folders(p)
        if not found:
            problems.error(Msg("{p}: no output of 'xl-kpi generate' here (no {audit} in it or in its "
                               "sub-folders)", p=p, audit=AUDIT),
                           Msg("give an earlier run's --out folder, or a folder holding several"), file=str(p))
        for f in found:
            r = f.resolve()
            if r != own and r not in folders:
                folders.append(r)
    checked: list[tuple[HistoryRun, Any]] = []
    for folder in folders:
        got = _checked_run(folder, currency, company, problems)
        if got is None:
            continue
        run, results = got
        if run.period.start > here.end:
            problems.warning(Msg("{folder}: its period {key} comes after this run's {key2}; not shown",
                                 folder=folder, key=run.period.key, key2=here.key),
                             Msg("leave it out of --history"), file=str(folder / AUDIT))
        elif run.period.overlaps(here):
            problems.error(Msg("{folder}: its period {key} overlaps this run's {key2}", folder=folder,
                               key=run.period.key, key2=here.key),
                           Msg("give only runs of earlier periods in --history"), file=str(folder / AUDIT))
        else:
            checked.append((run, results))
    clash: set[int] = set()
    for i, (a, _) in enumerate(checked):
        for j in range(i + 1, len(checked)):
            b = checked[j][0]
            if a.period.overlaps(b.period):
                clash |= {i, j}
                problems.error(Msg("two earlier runs for overlapping periods: {folder} ({key}) and {folder2} "
                                   "({key2}); which one is right is not decided by order", folder=a.folder,
                                   key=a.period.key, folder2=b.folder, key2=b.period.key),
                               Msg("keep one of them in --history (move the other out of the history folder)"),
                               file=str(b.folder / AUDIT))
    kept = sorted((c for k, c in enumerate(checked) if k not in clash), key=lambda c: c[0].period.start)
    per: dict[str, list[HistoryRow]] = {}
    for run, results in kept:
        for eid, row in _rows(run, results).items():
            per.setdefault(eid, []).append(row)
    history.runs = [r for r, _ in kept]
    history.rows = {e: tuple(rows) for e, rows in per.items()}
    return history


def check_recorded(record: Iterable[dict[str, Any]]) -> list[str]:
    """What changed in the history runs a manifest.json records since that run ([] = every hash as recorded)."""
    changed = []
    for r in record:
        folder = Path(r["folder"])
        if _sha256_or_none(folder / AUDIT) != r["manifest_sha256"]:
            changed.append(f"history {folder / AUDIT} changed")
            continue
        changed += [f"history {folder / n} changed" for n, d in r["results"].items()
                    if _sha256_or_none(folder / n) != d]
    return changed


# --------------------------------------------------------------------------------- internals


def _checked_run(folder: Path, currency: str, company: str, problems: Problems) -> tuple[HistoryRun, Any] | None:
    """(the run, its results) when its manifest.json vouches for its results files; else problems, None."""
    audit_path = folder / AUDIT
    where = {"file": str(audit_path)}
    try:
        raw = _read_plain(audit_path)
        audit = json.loads(raw.decode("utf-8"))
        if not isinstance(audit, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        problems.error(Msg("cannot read it as an xl-kpi manifest ({e})", e=e), _FIX, **where)
        return None
    record = {k: v for k, v in audit.items() if k not in _AFTER_FINGERPRINT}
    if audit.get("fingerprint") != hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest():
        problems.error(Msg("edited after its run: the fingerprint no longer matches what it records"), _FIX, **where)
        return None
    outputs = audit.get("outputs") if isinstance(audit.get("outputs"), dict) else {}
    digests: dict[str, str] = {}
    for name in RESULT_FILES:
        want = outputs.get(name)
        try:
            have = hashlib.sha256(_read_plain(folder / name)).hexdigest()
        except OSError as e:
            problems.error(Msg("{name}: cannot be read ({why})", name=name, why=e.strerror or e), _FIX,
                           file=str(folder / name))
            return None
        if want is None:
            problems.error(Msg("{name} is not recorded in {audit}: the run cannot vouch for it", name=name,
                               audit=AUDIT), _FIX,
                           file=str(folder / name))
            return None
        if have != want:
            problems.error(Msg("{name} changed since its run (its sha256 differs from the one in {audit})",
                               name=name, audit=AUDIT), _FIX,
                           file=str(folder / name))
            return None
        digests[name] = have
    try:
        results = load_results(folder)
    except KpiError as e:
        problems.error(str(e), _FIX, **where)
        return None
    try:
        period = Period.parse(audit.get("period") or "")
        saved = Period.parse(results.period) if results.period else None
    except PeriodError as e:
        problems.error(Msg("the run has no usable period ({e})", e=e), _FIX, **where)
        return None
    if saved is None or saved.key != period.key:
        problems.error(Msg("records the period {key}, its {result_file} {period!r}", key=period.key,
                           result_file=RESULT_FILES[0], period=results.period), _FIX, **where)
        return None
    for what, theirs, ours in (("currency", results.currency, currency), ("company", results.company, company)):
        if str(theirs or "") != str(ours or ""):
            problems.error(Msg("another {what}: {theirs!r}, this run's is {ours!r}", what=what,
                               theirs=theirs, ours=ours),
                           Msg("leave it out of --history (a card adds up only the same {what}'s pay)",
                               what=what), **where)
            return None
    ids = results.employees["employee_id"].astype(str).str.strip()
    twice = ids[ids.duplicated(keep=False)]
    if len(twice):
        rows = ", ".join(str(i + 2) for i in twice.index[:5])
        problems.error(Msg("employee_id {iloc!r} is listed more than once; whose row is whose is not guessed",
                           iloc=twice.iloc[0]), _FIX, file=str(folder / RESULT_FILES[1]), row=int(twice.index[0]) + 2,
                       column="employee_id", header=f"rows {rows}")
        return None
    return HistoryRun(folder, period, hashlib.sha256(raw).hexdigest(), digests), results


def _rows(run: HistoryRun, results: Any) -> dict[str, HistoryRow]:
    """employee_id → the row of this run: the weighted score (the engine's, as the summary ranks) and the bonus."""
    emp, lines = results.employees, results.lines
    scores = weighted_score(lines["weight"].to_numpy(float), lines["score"].to_numpy(float),
                            lines["employee_id"].astype(str).str.strip()) if len(lines) else None
    out = {}
    for eid, bonus in zip(emp["employee_id"].astype(str).str.strip(), emp["bonus"].to_numpy(float), strict=True):
        s = float(scores.get(eid, math.nan)) if scores is not None else math.nan
        out[eid] = HistoryRow(run.period.key, s, float(bonus) if np.isfinite(bonus) else math.nan)
    return out


def _read_plain(path: Path) -> bytes:
    """The bytes of a regular file, refusing a symbolic link (a run's files are its own, never a link)."""
    if path.is_symlink():
        raise OSError(f"{path} is a symbolic link; xl-kpi never writes one")
    return path.read_bytes()


def _sha256_or_none(path: Path) -> str | None:
    try:
        return hashlib.sha256(_read_plain(path)).hexdigest()
    except OSError:
        return None
