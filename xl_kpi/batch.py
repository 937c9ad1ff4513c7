"""The batch run: plan + data → KPI cards, summary, manifest (and errors) in one output folder.

Order of work, so that a failed or interrupted run never leaves a half-written result:

1. read and check every input (:func:`xl_kpi.validate.inspect`); any error stops the run before
   anything is written, unless ``skip_invalid`` (then employees whose inputs are incomplete are
   listed in ``errors.csv`` and everyone else gets a card);
2. compute the results table with the engine (:func:`xl_kpi.results.compute`);
3. write cards, summary, manifest, errors and the results table (``results/``, for later steps
   such as ``xl-kpi distribute``) into a hidden staging folder inside ``OUT``;
4. swap the staged output into place (``cards/`` folder and each file renamed in), and remove
   what a previous run left that this run does not produce.

Nobody is dropped silently: cards + errors = employees.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .cards import CardRecord, CardTemplate, write_cards
from .money import round_money
from .results import Results, compute
from .results_io import save_results
from .summary import write_errors, write_manifest, write_summary
from .validate import InputError, Problems, inspect

STAGING_PREFIX = ".xl-kpi-staging-"
OUTPUTS = ("cards", "summary.xlsx", "manifest.csv", "errors.csv", "results")
"""What a run owns in OUT; anything else there is left alone."""


@dataclass
class BatchReport:
    """What a run produced: records of the cards, the employees not carded and why, totals."""

    out_dir: Path
    cards: list[CardRecord]
    errors: list[dict[str, Any]]
    results: Results
    problems: Problems
    elapsed: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def total_bonus(self) -> float:
        """Sum of the carded employees' bonuses, to the kopeck."""
        return float(round_money(sum(float(r.total_bonus) for r in self.cards), self.results.digits))


def generate(
    plan: str | os.PathLike[str],
    data: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    template: str | os.PathLike[str] | None = None,
    period: str | None = None,
    jobs: int = 1,
    lang: str | None = None,
    skip_invalid: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BatchReport:
    """Run the whole batch; raise :class:`InputError` (listing every problem) before writing anything.

    ``lang`` (en/ru) picks the bundled card template and the summary's language; default: the
    plan's Settings. ``on_start(n_cards)`` and ``on_progress(n_done)`` drive a progress bar.
    """
    started = time.perf_counter()
    the_plan, facts, problems = inspect(plan, [Path(d) for d in data], period=period)
    if the_plan is None or (problems.has_errors and not skip_invalid):
        raise InputError(problems)
    results = compute(the_plan, facts, period=period)
    if lang:
        results = replace(results, language=lang)
    ok_results, errors = split_invalid(results)
    if errors and not skip_invalid:  # an employee the checks above let through but cannot be carded
        for e in errors:
            problems.error(f"employee {e['employee_id']} ({e['name']}): {e['reason']}",
                           "fix the plan or the data, or run with --skip-invalid to card everyone else",
                           file=Path(plan).name, sheet="Employees")
        raise InputError(problems)
    tpl = CardTemplate.load(template, lang=results.language)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    staging = out / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        if on_start:
            on_start(len(ok_results.employees))
        records = write_cards(ok_results, staging, tpl, lang=results.language, jobs=jobs, on_progress=on_progress)
        (staging / "cards").mkdir(exist_ok=True)
        write_summary(results, staging / "summary.xlsx")
        write_manifest(records, staging)
        write_errors(errors, staging)
        save_results(results, staging)
        _swap_into_place(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    moved = [replace(r, path=out / r.path.relative_to(staging)) for r in records]
    files = {name: out / name for name in OUTPUTS if (out / name).exists()}
    return BatchReport(out, moved, errors, results, problems, time.perf_counter() - started, files)


def split_invalid(results: Results) -> tuple[Results, list[dict[str, Any]]]:
    """(results of the employees that can be carded, [employee_id, name, reason] of the others)."""
    emp = results.employees
    bad = emp["status"].ne("ok")
    errors = [
        {"employee_id": e, "name": n, "reason": r}
        for e, n, r in zip(emp.loc[bad, "employee_id"], emp.loc[bad, "name"], emp.loc[bad, "reason"], strict=True)
    ]
    if not errors:
        return results, []
    keep = emp.loc[~bad]
    lines = results.lines[results.lines["employee_id"].isin(set(keep["employee_id"]))]
    return replace(results, employees=keep.reset_index(drop=True), lines=lines.reset_index(drop=True)), errors


def _swap_into_place(staging: Path, out: Path) -> None:
    """Move the staged outputs into OUT; a previous run's outputs are replaced, stale ones removed."""
    old = staging / ".previous"
    old.mkdir()
    for name in OUTPUTS:
        new, target = staging / name, out / name
        if target.exists():
            os.replace(target, old / name)
        if new.exists():
            os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _remove_stale_staging(out: Path) -> None:
    """Staging folders left by an interrupted run are never part of a result: remove them."""
    for p in out.glob(f"{STAGING_PREFIX}*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
