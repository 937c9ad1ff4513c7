"""Input problems: collect every one (not just the first), each pinned to file, sheet, row, column.

A :class:`Problem` says what is wrong and how to fix it, in plain language, and where: the row
number as Excel shows it and the column letter and header. :class:`Problems` collects them while
the plan, the facts and the raw data are read; :func:`validate` runs all the checks behind
``xl-kpi validate``; :func:`render` prints them with rich, grouped by file.

:class:`Table` (a sheet or CSV file whose index is the Excel row number) lives here because every
location in a message comes from one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .errors import KpiError

if TYPE_CHECKING:
    from rich.console import Console

Severity = Literal["error", "warning"]

ROW_LIMIT = 5
"""How many cells with the same problem in one column are listed one by one before a summary line."""


@dataclass(frozen=True)
class Problem:
    """One problem in the inputs: what, where, and how to fix it."""

    severity: Severity
    message: str
    fix: str = ""
    file: str | None = None
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    header: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def where(self) -> str:
        """'sheet Plan, row 7, column E (weight)', without the file; '' when nothing is known."""
        parts = []
        if self.sheet:
            parts.append(f"sheet {self.sheet}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}" + (f" ({self.header})" if self.header else ""))
        elif self.header:
            parts.append(f"column {self.header}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = ", ".join(p for p in (self.file or "", self.where()) if p)
        text = f"{self.severity}: {where + ': ' if where else ''}{self.message}"
        return text + (f". Fix: {self.fix}" if self.fix else "")


class Problems:
    """An ordered collection of :class:`Problem` s, filled in while inputs are read and checked."""

    def __init__(self, items: Iterable[Problem] = ()) -> None:
        self._items: list[Problem] = list(items)
        self._covered: set[tuple[Any, ...]] = set()

    def cover(self, file: str | None, sheet: str | None, row: int, column: str | None) -> None:
        """Mark a cell as explained (e.g. 'formula with no saved value'): :meth:`cells` skips it from now on,
        so one bad cell gives one error, not also 'the fact is empty'."""
        self._covered.add((file, sheet, int(row), column))

    def add(self, problem: Problem) -> None:
        self._items.append(problem)

    def error(self, message: str, fix: str = "", **where: Any) -> None:
        """Record an error; ``where`` takes file, sheet, row, column, header (see :meth:`Table.at`)."""
        self._items.append(Problem("error", message, fix, **where))

    def warning(self, message: str, fix: str = "", **where: Any) -> None:
        """Record a warning (reported, but does not fail validation)."""
        self._items.append(Problem("warning", message, fix, **where))

    def cells(
        self,
        severity: Severity,
        table: Table,
        rows: Sequence[int],
        column: str,
        messages: Sequence[str] | str,
        fix: str = "",
        limit: int = ROW_LIMIT,
    ) -> None:
        """One problem per bad cell of a column, the first ``limit`` of them, then one summary line.

        Cells already explained by another problem (see :meth:`cover`) are left out.
        """
        rows = list(rows)
        texts = [messages] * len(rows) if isinstance(messages, str) else list(messages)
        if self._covered:
            letter = table.letters.get(column)
            keep = [(table.file, table.sheet, int(r), letter) not in self._covered for r in rows]
            rows = [r for r, k in zip(rows, keep, strict=True) if k]
            texts = [t for t, k in zip(texts, keep, strict=True) if k]
        for r, text in zip(rows[:limit], texts[:limit], strict=True):
            self._items.append(Problem(severity, text, fix, **table.at(r, column)))
        if len(rows) > limit:
            more = len(rows) - limit
            self._items.append(
                Problem(
                    severity,
                    f"{more} more row{'s' if more > 1 else ''} with the same problem "
                    f"(rows {_ranges(rows[limit:])})",
                    fix,
                    **table.at(None, column),
                )
            )

    def extend(self, items: Iterable[Problem]) -> None:
        self._items.extend(items)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:  # a collection object is always "there", even when empty
        return True

    def __repr__(self) -> str:
        return f"<Problems: {len(self.errors)} errors, {len(self.warnings)} warnings>"

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self._items if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self._items if not p.is_error]

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self._items)

    def by_file(self) -> dict[str, list[Problem]]:
        """Problems grouped by file (in order of first appearance); '' for problems without a file."""
        out: dict[str, list[Problem]] = {}
        for p in self._items:
            out.setdefault(p.file or "", []).append(p)
        return out

    def summary(self) -> str:
        """'N errors, M warnings' ('1 error', '1 warning' when there is one)."""
        e, w = len(self.errors), len(self.warnings)
        return f"{e} error{'' if e == 1 else 's'}, {w} warning{'' if w == 1 else 's'}"

    def raise_for_errors(self, error: type[InputError] | None = None) -> None:
        """Raise ``error`` (default :class:`InputError`) carrying every problem when any is an error."""
        if self.has_errors:
            raise (error or InputError)(self)


class InputError(KpiError):
    """The inputs have errors; ``.problems`` holds all of them (and the warnings)."""

    def __init__(self, problems: Problems | Iterable[Problem]) -> None:
        self.problems = problems if isinstance(problems, Problems) else Problems(problems)
        errors = self.problems.errors
        head = "; ".join(str(p) for p in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(f"{len(errors)} input error{'s' if len(errors) != 1 else ''}: {head}{more}")


# ------------------------------------------------------------------------------------- tables


def header_key(text: Any) -> str:
    """A header reduced for matching: case, ё/е, spaces, '_', '-', '.', '*' and ':' do not matter.

    >>> header_key(" Табельный_номер* "), header_key("E-mail"), header_key("Ед. изм.")
    ('табельный номер', 'e mail', 'ед изм')
    """
    s = str(text).casefold().replace("ё", "е").replace("№", " no ")
    s = re.sub(r"[\s_\-.*:]+", " ", s)
    return s.strip()


def header_keys(text: Any) -> list[str]:
    """Keys to try for a header: the whole header, then the part before ',' or '(' ('Вес, %' → 'вес')."""
    keys = [header_key(text)]
    head = re.split(r"[,(]", str(text), maxsplit=1)[0]
    if head.strip() and header_key(head) not in keys:
        keys.append(header_key(head))
    return keys


@dataclass
class Table:
    """A sheet or CSV file as read: ``frame`` is indexed by the row number Excel shows.

    ``name`` is how raw-data sources refer to it (file stem, or ``stem:sheet`` for a workbook
    sheet); ``letters`` maps each header to its column letter. ``issues`` holds what reading found
    that could make a value wrong (a formula without a saved value, merged cells, hidden rows…), by
    header (``None``: the whole table); :meth:`report` adds them to a :class:`Problems` when the
    table or a column is actually used, so a sheet or column nobody uses does not fail a run.
    """

    name: str
    file: str
    frame: pd.DataFrame
    letters: dict[str, str] = field(default_factory=dict)
    sheet: str | None = None
    header_row: int = 1
    path: Path | None = None
    issues: dict[str | None, list[Problem]] = field(default_factory=dict, repr=False)
    issues_reported: set[Problem] = field(default_factory=set, repr=False)
    issue_cells: dict[Problem, list[tuple[int, str]]] = field(default_factory=dict, repr=False)
    """Further cells (row, letter) an issue explains, besides its own (e.g. every cell of a merge)."""

    def add_issue(self, column: str | None, problem: Problem, cells: Iterable[tuple[int, str]] = ()) -> None:
        """Keep a problem found while reading, to be reported when ``column`` (None: the table) is used."""
        self.issues.setdefault(column, []).append(problem)
        if cells:
            self.issue_cells.setdefault(problem, []).extend(cells)

    def report(self, problems: Problems, columns: Iterable[str | None] = ()) -> None:
        """Add the issues of the whole table and of ``columns`` to ``problems``, each only once.

        The cells an error explains are covered (:meth:`Problems.cover`), so they are not reported
        again as, say, empty.
        """
        for key in dict.fromkeys((None, *columns)):
            for p in self.issues.get(key, ()):
                if p in self.issues_reported:
                    continue
                self.issues_reported.add(p)
                problems.add(p)
                if p.is_error:
                    if p.row is not None and p.column:
                        problems.cover(p.file, p.sheet, p.row, p.column)
                    for r, letter in self.issue_cells.get(p, ()):
                        problems.cover(p.file, p.sheet, r, letter)

    def column(self, *aliases: str) -> str | None:
        """The header matching any alias (see :func:`header_key`), or None."""
        wanted = {header_key(a) for a in aliases}
        for h in self.frame.columns:
            if any(k in wanted for k in header_keys(h)):
                return h
        return None

    def at(self, row: int | None = None, column: str | None = None) -> dict[str, Any]:
        """Location keywords for :class:`Problems`: file, sheet, row, column letter and header."""
        return {
            "file": self.file,
            "sheet": self.sheet,
            "row": None if row is None else int(row),
            "column": self.letters.get(column) if column is not None else None,
            "header": column,
        }

    def __repr__(self) -> str:
        where = f"{self.file}:{self.sheet}" if self.sheet else self.file
        return f"<Table {self.name!r} from {where}: {len(self.frame)} rows, columns {list(self.frame.columns)}>"


def _ranges(rows: Sequence[int]) -> str:
    """'5–8, 11, 20–21' for rows 5, 6, 7, 8, 11, 20, 21 (at most 10 runs, then '…')."""
    runs: list[tuple[int, int]] = []
    for r in sorted(set(int(x) for x in rows)):
        if runs and r == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], r)
        else:
            runs.append((r, r))
    text = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs[:10])
    return text + (", …" if len(runs) > 10 else "")


def row_ranges(rows: Sequence[int]) -> str:
    """Public form of the row-run formatter used in messages ('5–8, 11')."""
    return _ranges(rows)


# --------------------------------------------------------------------------------- validate


def validate(plan: str | Path, data: Sequence[str | Path] = (), *, period: str | None = None) -> Problems:
    """Every problem in a plan workbook and its data files; nothing is written.

    Runs the plan checks, reads every data file, evaluates the raw-data sources, and checks that
    each employee × KPI has exactly one usable fact for the period.
    """
    return inspect(plan, data, period=period)[2]


def inspect(
    plan: str | Path, data: Sequence[str | Path] = (), *, period: str | None = None
) -> tuple[Any, Any, Problems]:
    """Read and check the inputs once: (plan, facts, problems); plan/facts are None when unreadable.

    :func:`validate` reports the problems; the batch run goes on to compute from the same objects.
    """
    from .facts import load_facts
    from .plan import check_employment, read_plan

    problems = Problems()
    the_plan = read_plan(plan, problems=problems)
    if the_plan.broken:
        return None, None, problems
    facts = load_facts(the_plan, data, period=period, problems=problems)
    if facts.period:
        check_employment(the_plan, facts.period, problems)
    elif the_plan.employees[["hired", "left"]].notna().to_numpy().any():
        problems.error(
            "the period is unknown, so the bonuses of people hired or leaving cannot be prorated",
            "set the period in the Settings sheet (e.g. 2026-10) or pass --period",
            file=the_plan.file, sheet="Settings",
        )
    check_coverage(the_plan, facts, problems)
    from .results import check_amounts

    check_amounts(the_plan, facts, problems, period=period)
    return the_plan, facts, problems


FAR_BELOW = -1.0
FAR_ABOVE = 3.0
"""A fact whose score is below −100% or above 300% is flagged as 'far outside base..norm'."""


def check_coverage(plan: Any, facts: Any, problems: Problems) -> None:
    """Missing facts (each employee × KPI of the plan needs one) and facts far outside base..norm.

    KPIs whose source could not be evaluated at all (already reported) are skipped; when many
    employees miss the same KPI, the first few are listed and the rest summed up in one line.
    """
    from .scoring import MAX_SCORE, score

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
            f"{len(missing)} facts are missing (KPIs {kpis}, {missing['employee_id'].nunique()} employees); "
            f"they may be in {files}, which could not be read",
            f"fix {files} (see above) and run again", **plan.at("Employees", None, "employee_id"))
        missing = missing.iloc[:0]
    for kpi_id, group in missing.groupby("kpi_id", sort=False):
        if kpi_id in plan.sources:
            fix = ("check the raw data for these rows (is the employee column filled in?) "
                   "or give the fact in a facts file")
        else:
            fix = "add a row 'employee_id, kpi_id, fact' for it to a facts file"
        for _, m in group.head(ROW_LIMIT).iterrows():
            note = m["note"] if isinstance(m["note"], str) and m["note"] else ""
            problems.error(
                f"missing fact: {_who(emp, m['employee_id'])}, KPI {kpi_id}" + (f" ({note})" if note else ""),
                fix,
                **plan.at("Employees", emp.loc[m["employee_id"], "row"], "employee_id"),
            )
        rest = list(group["employee_id"].iloc[ROW_LIMIT:])
        if rest:
            ids = ", ".join(rest[:20]) + (", …" if len(rest) > 20 else "")
            problems.error(f"missing fact: KPI {kpi_id} for {len(rest)} more employees ({ids})", fix,
                           **plan.at("Employees", None, "employee_id"))
    known = merged[merged["fact"].notna() & merged["base"].notna() & (merged["base"] != merged["norm"])]
    if known.empty:
        return
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        s = np.asarray(score(known["fact"].to_numpy(float), known["base"].to_numpy(float),
                             known["norm"].to_numpy(float)), dtype=float)
    absurd = ~np.isnan(s) & ~(np.abs(s) < MAX_SCORE)  # an overflow, or a result no KPI has: never a bonus
    for (_, m), sc in zip(known[absurd].iterrows(), s[absurd], strict=True):
        loc = facts.location(m["employee_id"], m["kpi_id"]) or {"file": plan.file}
        problems.error(
            f"the score of {_who(emp, m['employee_id'])}, KPI {m['kpi_id']} is "
            + ("infinite" if np.isinf(sc) else f"{_percent(sc)}, too large to be a result")
            + f": fact {m['fact']:.6g} with base {m['base']:.6g} and norm {m['norm']:.6g} is beyond what can be "
            "computed",
            "check the fact, the base and the norm (a number typed with too many digits, or base and norm "
            "almost equal?)", **loc)
    s = np.where(absurd, np.nan, s)
    far = (s < FAR_BELOW) | (s > FAR_ABOVE)
    for (_, m), sc in zip(known[far].iterrows(), s[far], strict=True):
        loc = facts.location(m["employee_id"], m["kpi_id"]) or {"file": plan.file}
        problems.warning(
            f"fact {m['fact']:.6g} for {_who(emp, m['employee_id'])}, KPI {m['kpi_id']} is far outside "
            f"base..norm ({m['base']:.6g}..{m['norm']:.6g}): score {_percent(sc)}",
            "check the units (a percentage typed as 40 instead of 40% or 0.4?) and the data",
            **loc,
        )


def _percent(x: float) -> str:
    """A score as a percentage for a message: '135%', or '1.3e+300%' when it is absurdly large."""
    if not np.isfinite(x):
        return "infinite"
    if abs(x) < 1e6:
        return f"{x * 100:.0f}%"
    return f"{(Decimal(repr(float(x))) * 100).normalize():.3g}%"  # in decimal: x * 100 may overflow a float


def _who(emp: pd.DataFrame, employee_id: str) -> str:
    name = emp["name"].get(employee_id) if employee_id in emp.index else None
    return f"employee {employee_id} ({name})" if isinstance(name, str) and name else f"employee {employee_id}"


# ----------------------------------------------------------------------------------- render


def render(problems: Problems, console: Console) -> None:
    """Print the problems grouped by file, then 'N errors, M warnings'."""
    from rich.markup import escape

    for file, items in problems.by_file().items():
        console.print(f"[bold]{escape(file) if file else '(inputs)'}[/bold]", soft_wrap=True)
        for p in items:
            mark = "[red]✗ error[/red]" if p.is_error else "[yellow]! warning[/yellow]"
            where = p.where()
            console.print(f"  {mark}  {escape(where) + ': ' if where else ''}{escape(p.message)}", soft_wrap=True)
            if p.fix:
                console.print(f"      [dim]fix:[/dim] {escape(p.fix)}", soft_wrap=True)
        console.print()
    style = "bold red" if problems.has_errors else ("bold yellow" if problems.warnings else "bold green")
    console.print(f"[{style}]{problems.summary()}[/{style}]", soft_wrap=True)
