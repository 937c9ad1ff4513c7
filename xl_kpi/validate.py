"""``xl-kpi validate``: every problem in a plan workbook and its data, and how it is printed.

:class:`~xl_kpi.inputs.problems.Problems` collects the problems while
the plan, the facts and the raw data are read (:mod:`xl_kpi.inputs.problems`); :func:`validate`
runs all the checks behind ``xl-kpi validate``; :func:`render` prints them with rich, grouped by file.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xl_kpi.engine.period import Period
from xl_kpi.i18n import Msg, Plural, tr, using
from xl_kpi.inputs.datafiles import DataFile
from xl_kpi.inputs.problems import ROW_LIMIT, Problems

if TYPE_CHECKING:
    from rich.console import Console

def validate(
    plan: str | Path, data: Sequence[str | Path | DataFile] = (), *, period: Period | str | None = None,
    engine: str | None = None,
) -> Problems:
    """Every problem in a plan workbook and its data files; nothing is written.

    Runs the plan checks, reads every data file, evaluates the raw-data sources, and checks that
    each employee × KPI has exactly one usable fact for the period.
    """
    return inspect_computed(plan, data, period=period, engine=engine, drill=False)[2]


def inspect(
    plan: str | Path, data: Sequence[str | Path | DataFile] = (), *, period: Period | str | None = None,
    engine: str | None = None,
) -> tuple[Any, Any, Problems]:
    """Read and check the inputs once: (plan, facts, problems); plan/facts are None when unreadable.

    ``engine`` (duckdb or spark, default ``XL_KPI_ENGINE``) runs the raw-data sources.

    :func:`validate` reports the problems; the batch run goes on to compute from the same objects.
    """
    return inspect_computed(plan, data, period=period, engine=engine)[:3]


def inspect_computed(
    plan: str | Path, data: Sequence[str | Path | DataFile] = (), *, period: Period | str | None = None,
    engine: str | None = None, language: str | None = None, default_language: str | None = None,
    drill: bool = True,
) -> tuple[Any, Any, Problems, Any]:
    """:func:`inspect` and the results its amount check computed from the same plan and facts (None when
    the plan is unreadable): the batch run uses them instead of computing them a second time. The results
    speak ``language``, else the plan's Settings language, else ``default_language``, else en.
    ``drill=False`` skips the raw rows behind the facts (the cards' drill-down; validation needs none)."""
    from xl_kpi.inputs.readers.ahead import reading_ahead

    problems = Problems()
    with reading_ahead(_data_paths(data)):  # the CSV exports are parsed while the plan is read
        from xl_kpi.inputs.facts import load_facts
        from xl_kpi.inputs.plan import check_employment, read_plan

        the_plan = read_plan(plan, problems=problems)
        if the_plan.broken:
            return None, None, problems, None
        facts = load_facts(the_plan, data, period=period, problems=problems, engine=engine, drill=drill)
    if facts.period:
        check_employment(the_plan, facts.period, problems)
    elif the_plan.employees[["hired", "left"]].notna().to_numpy().any():
        problems.error(
            Msg("the period is unknown, so the bonuses of people hired or leaving cannot be prorated"),
            Msg("set the period in the Settings sheet (e.g. 2026-10) or pass --period"),
            file=the_plan.file, sheet="Settings",
        )
    check_coverage(the_plan, facts, problems)
    from xl_kpi.results import check_amounts

    if not language and problems.language is None:  # the plan's Settings name no language
        language = default_language
    results = check_amounts(the_plan, facts, problems, period=period, language=language)
    return the_plan, facts, problems, results


def _data_paths(data: Sequence[str | Path | DataFile]) -> list[Path]:
    """The files the plain ``--data`` paths name (folders listed), to be read ahead; none if a folder cannot be
    listed (the reading of the data reports it, after the plan)."""
    from xl_kpi.inputs.datafiles import parse_data_arg, plain_paths
    from xl_kpi.inputs.tables import expand_paths

    try:
        return expand_paths(plain_paths(d if isinstance(d, DataFile | Path) else parse_data_arg(d) for d in data))
    except OSError:
        return []


FAR_BELOW = -1.0
FAR_ABOVE = 3.0
"""A fact whose score is below −100% or above 300% is flagged as 'far outside base..norm'."""


def check_coverage(plan: Any, facts: Any, problems: Problems) -> None:
    """Missing facts (each employee × KPI of the plan needs one) and facts far outside base..norm.

    KPIs whose source could not be evaluated at all (already reported) are skipped; when many
    employees miss the same KPI, the first few are listed and the rest summed up in one line.
    """
    from xl_kpi.engine.scoring import MAX_SCORE, score

    lines = plan.lines
    lines = lines[lines["kpi_id"].isin(set(plan.kpis["kpi_id"])) & ~lines["kpi_id"].isin(facts.failed)]
    if facts.reported:
        done = pd.Series(list(zip(lines["employee_id"], lines["kpi_id"], strict=True)), index=lines.index,
                         dtype=object).isin(facts.reported)
        lines = lines[~done]
    if lines.empty:
        return
    merged = facts.attach(lines)
    emp = plan.employees.set_index("employee_id")
    missing = merged[merged["fact"].isna()]
    unreadable = list(getattr(facts, "unreadable", []))
    if unreadable and not missing.empty:  # one line instead of a list the unreadable file may explain
        files = ", ".join(unreadable)
        kpis = ", ".join(dict.fromkeys(missing["kpi_id"]))
        problems.error(
            Plural("{n} fact is missing (KPIs {kpis}, {employees} employees); "
                   "it may be in {files}, which could not be read",
                   "{n} facts are missing (KPIs {kpis}, {employees} employees); "
                   "they may be in {files}, which could not be read",
                   len(missing), kpis=kpis, employees=missing['employee_id'].nunique(), files=files),
            Msg("fix {files} (see above) and run again", files=files), **plan.at("Employees", None, "employee_id"))
        missing = missing.iloc[:0]
    for kpi_id, group in missing.groupby("kpi_id", sort=False):
        if kpi_id in plan.sources:
            fix = Msg("check the raw data for these rows (is the employee column filled in?) "
                      "or give the fact in a facts file")
        else:
            fix = Msg("add a row 'employee_id, kpi_id, fact' for it to a facts file")
        for _, m in group.head(ROW_LIMIT).iterrows():
            note = m["note"] if isinstance(m["note"], str) and m["note"] else ""
            problems.error(
                Msg("missing fact: {who}, KPI {kpi} ({note})", who=_who(emp, m['employee_id']), kpi=kpi_id, note=note)
                if note else Msg("missing fact: {who}, KPI {kpi}", who=_who(emp, m['employee_id']), kpi=kpi_id),
                fix,
                **plan.at("Employees", emp.loc[m["employee_id"], "row"], "employee_id"),
            )
        rest = list(group["employee_id"].iloc[ROW_LIMIT:])
        if rest:
            ids = ", ".join(rest[:20]) + (", …" if len(rest) > 20 else "")
            problems.error(Plural("missing fact: KPI {kpi} for {n} more employee ({ids})",
                                  "missing fact: KPI {kpi} for {n} more employees ({ids})", len(rest),
                                  kpi=kpi_id, ids=ids), fix,
                           **plan.at("Employees", None, "employee_id"))
    known = merged[merged["fact"].notna() & merged["base"].notna() & (merged["base"] != merged["norm"])]
    if known.empty:
        return
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        s = np.asarray(score(known["fact"].to_numpy(float), known["base"].to_numpy(float),
                             known["norm"].to_numpy(float)), dtype=float)
    absurd = ~np.isnan(s) & ~(np.abs(s) < MAX_SCORE)  # an overflow, or a result no KPI has: never a bonus
    kept = np.where(absurd, np.nan, s)
    far = (kept < FAR_BELOW) | (kept > FAR_ABOVE)
    flagged = known[absurd | far]
    where = facts.locations(zip(flagged["employee_id"], flagged["kpi_id"], strict=True))
    for (_, m), sc in zip(known[absurd].iterrows(), s[absurd], strict=True):
        loc = where.get((m["employee_id"], m["kpi_id"])) or {"file": plan.file}
        values = {"who": _who(emp, m['employee_id']), "kpi": m['kpi_id'], "fact": m['fact'], "base": m['base'],
                  "norm": m['norm']}
        problems.error(
            Msg("the score of {who}, KPI {kpi} is infinite: fact {fact:.6g} with base {base:.6g} and norm "
                "{norm:.6g} is beyond what can be computed", **values) if np.isinf(sc) else
            Msg("the score of {who}, KPI {kpi} is {score}, too large to be a result: fact {fact:.6g} with base "
                "{base:.6g} and norm {norm:.6g} is beyond what can be computed", score=_percent(sc), **values),
            Msg("check the fact, the base and the norm (a number typed with too many digits, or base and norm "
                "almost equal?)"), **loc)
    for (_, m), sc in zip(known[far].iterrows(), kept[far], strict=True):
        loc = where.get((m["employee_id"], m["kpi_id"])) or {"file": plan.file}
        problems.warning(
            Msg("fact {fact:.6g} for {who}, KPI {kpi} is far outside base..norm ({base:.6g}..{norm:.6g}): "
                "score {score}", fact=m['fact'], who=_who(emp, m['employee_id']), kpi=m['kpi_id'], base=m['base'],
                norm=m['norm'], score=_percent(sc)),
            Msg("check the units (a percentage typed as 40 instead of 40% or 0.4?) and the data"),
            **loc,
        )


def _percent(x: float) -> str | Msg:
    """A score as a percentage for a message: '135%', or '1.3e+300%' when it is absurdly large."""
    if not np.isfinite(x):
        return Msg("infinite")
    if abs(x) < 1e6:
        return f"{x * 100:.0f}%"
    return f"{(Decimal(repr(float(x))) * 100).normalize():.3g}%"  # in decimal: x * 100 may overflow a float


def _who(emp: pd.DataFrame, employee_id: str) -> Msg:
    name = emp["name"].get(employee_id) if employee_id in emp.index else None
    if isinstance(name, str) and name:
        return Msg("employee {id} ({name})", id=employee_id, name=name)
    return Msg("employee {id}", id=employee_id)


# ----------------------------------------------------------------------------------- render


def render(problems: Problems, console: Console, lang: str | None = None) -> None:
    """Print the problems grouped by file, then 'N errors, M warnings', in ``lang`` (default: the current one)."""
    from functools import partial

    from rich.markup import escape

    # rich colours numbers, quotes and paths in every line: a tenth of a second for a hundred problems, for nothing
    # when no terminal shows the colours (a pipe, a file: the text is the same without them)
    print_ = partial(console.print, highlight=None if console.is_terminal else False)  # None: the console's own
    with using(lang):
        inputs, error, warning, fix_label = tr("(inputs)"), tr("error"), tr("warning"), tr("fix:")
        for file, items in problems.by_file().items():
            print_(f"[bold]{escape(file or inputs)}[/bold]", soft_wrap=True)
            for p in items:
                mark = f"[red]✗ {error}[/red]" if p.is_error else f"[yellow]! {warning}[/yellow]"
                where = p.where()
                print_(f"  {mark}  {escape(where) + ': ' if where else ''}{escape(p.message_in())}", soft_wrap=True)
                fix = p.fix_in()
                if fix:
                    print_(f"      [dim]{fix_label}[/dim] {escape(fix)}", soft_wrap=True)
            print_()
        style = "bold red" if problems.has_errors else ("bold yellow" if problems.warnings else "bold green")
        print_(f"[{style}]{problems.summary()}[/{style}]", soft_wrap=True)
