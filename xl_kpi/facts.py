"""Facts: the actual result of each employee × KPI for the period, from files or from raw data.

Two ways in, both through ``--data`` files:

* a facts file (``employee_id, kpi_id, fact[, period]``, CSV or XLSX), for KPIs without a source;
* raw tables (CRM exports: deals, client requests, survey answers…), from which a KPI's
  ``KPIs.source`` derives the fact (see :mod:`xl_kpi.sources`). A table is named after its file
  stem (``deals.csv`` → ``deals``); each sheet of a workbook is ``stem:sheet`` and the first sheet
  is also plain ``stem``.

CSV files may use ``,``, ``;`` or tab separators and UTF-8 (with or without BOM), UTF-16 or cp1251
encoding, as Russian Excel saves them; they are read with pandas' C parser, all cells as text, and
numbers are parsed where they are used (:mod:`xl_kpi.numbers`). Workbooks (.xlsx) are pre-scanned and
then read with calamine. Files are opened through :mod:`xl_kpi.readers`, which refuses what is too
large, damaged, encrypted or not what its name says, and records what a sheet hides (formulas without
saved values, merged cells, hidden rows…) as issues on each :class:`Table`, reported when the table
or column is used.
A fact given in a facts file wins over the one derived from raw data (with a warning), so HR can
correct one person's figure by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from openpyxl.utils import get_column_letter

from .errors import KpiError
from .identity import alike_hint, key_index
from .numbers import DateFormatError, parse_period, to_ids, to_numbers
from .readers import (
    CSV_SUFFIXES,
    WORKBOOK_SUFFIXES,
    FileReadError,
    SheetInfo,
    detect_encoding,
    detect_separator,
    read_csv_grid,
    read_workbook,
    read_workbook_grids,
)
from .sources import UNEVALUATED, Evaluator
from .validate import InputError, Problem, Problems, Table, header_key, row_ranges

__all__ = [
    "CSV_SUFFIXES", "EMPLOYEE_ID", "FACT", "FACTS_KPI_ID", "HEADER_SEARCH_ROWS", "KPI_ID", "PERIOD",
    "WORKBOOK_SUFFIXES", "Facts", "FactsError", "FileReadError", "detect_encoding", "detect_separator",
    "expand_paths", "load_facts", "load_tables", "read_csv_grid", "read_tables", "read_workbook_grids",
    "table_from_grid",
]

if TYPE_CHECKING:
    from .plan import Plan

HEADER_SEARCH_ROWS = 10
"""The header row is looked for among the first rows of a sheet (a title may sit above it)."""
HEADER_LOOK_FURTHER = 200
"""Filled rows below those searched in which a header that clearly matches is reported as misplaced."""

EMPLOYEE_ID = (
    "employee_id", "employee id", "employee", "emp id", "id", "табельный номер", "таб номер", "таб no",
    "табельный no", "табельный", "id сотрудника", "код сотрудника", "сотрудник id",
)
KPI_ID = ("kpi_id", "kpi id", "kpi", "код kpi", "код показателя", "kpi code", "показатель id", "id kpi")
FACTS_KPI_ID = (*KPI_ID, "показатель", "indicator")
"""kpi_id in a facts file, where a 'Показатель' column can only mean the KPI."""
FACT = ("fact", "value", "actual", "result", "факт", "значение", "фактическое значение", "результат")
PERIOD = ("period", "month", "период", "месяц")


class FactsError(InputError):
    """The facts or raw data have errors; ``.problems`` holds all of them."""


# ------------------------------------------------------------------------------------ reading


def read_tables(
    path: str | Path,
    *,
    expected: Sequence[Sequence[str]] | None = None,
    problems: Problems | None = None,
) -> list[Table]:
    """Every sheet of a workbook (or the one table of a CSV file) as :class:`Table` s.

    ``expected`` lists alias groups of the columns the caller looks for; the header row is the one
    among the first rows that names most of them (default: the first non-empty row).
    Raises :class:`FileReadError` if the file cannot be read. What a sheet hides (formulas without
    a saved value, merged cells, hidden rows, repeated headers…) is kept in each table's ``issues``.
    """
    path = Path(path)
    suffix = path.suffix.casefold()
    if suffix in CSV_SUFFIXES:
        sheets: list[tuple[str | None, pd.DataFrame, SheetInfo | None]] = [(None, read_csv_grid(path), None)]
    elif suffix in WORKBOOK_SUFFIXES:
        sheets = [(s.name, s.grid, s.info) for s in read_workbook(path)]
    else:
        raise FileReadError(
            path.name, f"unknown file type {path.suffix or '(none)'}; xl_kpi reads .csv and .xlsx files",
            "save it as CSV or Excel Workbook (.xlsx), or remove it from --data",
        )
    tables = []
    for i, (sheet, grid, info) in enumerate(sheets):
        name = path.stem if sheet is None else f"{path.stem}:{sheet}"
        table = table_from_grid(grid, name=name, file=path.name, sheet=sheet, path=path, expected=expected,
                                problems=problems, info=info)
        if table is not None:
            tables.append(table)
        if i == 0 and sheet is not None and table is not None:
            tables.append(Table(path.stem, table.file, table.frame, table.letters, table.sheet, table.header_row,
                                path, table.issues, table.issues_reported))
    return tables


def table_from_grid(
    grid: pd.DataFrame,
    *,
    name: str,
    file: str,
    sheet: str | None = None,
    path: Path | None = None,
    expected: Sequence[Sequence[str]] | None = None,
    problems: Problems | None = None,
    info: SheetInfo | None = None,
) -> Table | None:
    """Find the header row of a grid and turn the rows below it into a :class:`Table` (None if empty).

    What could make the table read wrong is kept in the table's ``issues`` (reported by
    :meth:`Table.report` when the table or a column is used): a header row below the rows searched,
    a header repeated, and, from the pre-scan ``info`` of a worksheet, merged cells, formulas without
    a saved value, error values, hidden rows and possibly stale formula results. ``problems`` is
    accepted for compatibility and not used.
    """
    if grid.empty:
        return None
    filled = _non_empty(grid)
    rows_filled = np.flatnonzero(filled.any(axis=1).to_numpy())
    candidates = list(rows_filled[:HEADER_SEARCH_ROWS])
    if not candidates:
        return None
    header_idx = candidates[0]
    misplaced: Problem | None = None
    if expected:
        groups = [{header_key(a) for a in g} for g in expected]

        def hits(i: int) -> int:
            keys = [header_key(v) for v in grid.iloc[i] if _is_filled(v)]
            return sum(any(k in g for k in keys) for g in groups)

        scores = [hits(i) for i in candidates]
        if max(scores) >= min(2, len(groups)):  # two known headers: a title row or a data row will not do
            header_idx = candidates[int(np.argmax(scores))]
        else:  # a header that clearly matches further down: say so rather than read the wrong row
            strong = min(3, len(groups))
            later = (int(i) for i in rows_filled[HEADER_SEARCH_ROWS:HEADER_SEARCH_ROWS + HEADER_LOOK_FURTHER])
            found = next((i for i in later if hits(i) >= strong), None)
            if found is not None:
                header_idx = found
                misplaced = Problem(
                    "error", f"the header row is row {found + 1}, below the first {HEADER_SEARCH_ROWS} filled rows "
                    "where the header is looked for; the rows above it would be left out",
                    "delete the rows above the header (a title row or two may stay), or move the table up",
                    file=file, sheet=sheet, row=found + 1)
    header = grid.iloc[header_idx]
    keep: list[int] = []
    names: list[str] = []
    letters: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for j, v in enumerate(header):
        if not _is_filled(v):
            continue
        label = _label(v)
        if label in letters:
            repeated.setdefault(label, [letters[label]]).append(get_column_letter(j + 1))
            continue
        keep.append(j)
        names.append(label)
        letters[label] = get_column_letter(j + 1)
    body = grid.iloc[header_idx + 1 :, keep]
    body.columns = names
    body.index = pd.RangeIndex(header_idx + 2, header_idx + 2 + len(body))
    body = body[_non_empty(body).any(axis=1).to_numpy()] if len(body) else body
    table = Table(name=name, file=file, frame=body, letters=letters, sheet=sheet, header_row=int(header_idx) + 1,
                  path=path)
    if misplaced is not None:
        table.add_issue(None, misplaced)
    for label, cols in repeated.items():
        table.add_issue(label, Problem(
            "error", f'the header "{label}" appears {len(cols)} times (columns {", ".join(cols)}): which column '
            "holds the data is not clear", "rename or delete the extra columns",
            file=file, sheet=sheet, row=table.header_row, column=cols[1], header=label))
    if info is not None:
        _sheet_issues(table, info, {j + 1: lab for j, lab in zip(keep, names, strict=True)})
    return table


def _sheet_issues(table: Table, info: SheetInfo, columns: Mapping[int, str]) -> None:
    """Turn what the pre-scan of a worksheet found into issues of the table read from it."""
    head = table.header_row
    where = {"file": table.file, "sheet": table.sheet}
    for r1, c1, r2, c2 in info.merged:
        hit = [lab for c, lab in columns.items() if c1 <= c <= c2]
        if r2 < head or not hit:
            continue  # a title above the header, or cells outside the table
        ref = f"{get_column_letter(c1)}{r1}:{get_column_letter(c2)}{r2}"
        if r1 <= head:
            problem = Problem("error", f"cells {ref} are merged across the header row", "unmerge them (Home → Merge "
                              "& Center) and give every column its own header, all in one row", **where, row=r1,
                              column=get_column_letter(c1), header=hit[0])
        else:
            problem = Problem("error", f"cells {ref} are merged: only {get_column_letter(c1)}{r1} holds the value, "
                              "the other cells of the merge read as empty", "unmerge them (Home → Merge & Center) "
                              "and type the value in every row", **where, row=r1, column=get_column_letter(c1),
                              header=hit[0])
        rows = range(max(r1, head + 1), min(r2, head + 2000) + 1)  # the cells that read as empty
        cover = [(r, get_column_letter(c)) for c in columns if c1 <= c <= c2 for r in rows]
        for lab in hit:
            table.add_issue(lab, problem, cover)
    cells = [
        ("error", info.no_value, lambda f: f"formula with no saved value ({_short(f)}): the file was saved by a "
         "program that does not calculate", "open and save the file in Excel (or LibreOffice), which stores the "
         "results of the formulas; then run again"),
        ("error", info.bad_values, lambda v: f"the cell holds {v}, not a number" if v[:1] != "#" else
         f"the cell shows the Excel error {v}", "correct the formula or the value in Excel"),
        ("warning", info.external, lambda f: f"formula refers to another workbook ({_short(f)}); the value saved with "
         "this file is used and may be out of date", "open both workbooks in Excel and save this one, or replace the "
         "formula with its value"),
    ]
    for severity, found, message, fix in cells:
        by_column: dict[int, list[int]] = {}
        for (r, c), _ in sorted(found.items()):
            if r > head and c in columns:
                by_column.setdefault(c, []).append(r)
        for c, rows in by_column.items():
            sink = Problems()
            sink.cells(severity, table, rows, columns[c], [message(found[(r, c)]) for r in rows], fix)
            for p in sink:
                table.add_issue(columns[c], p)
    data_rows = set(table.frame.index)
    hidden = [r for r in info.hidden_rows if r in data_rows]
    if hidden:
        how = " by a filter" if info.filtered else ""
        table.add_issue(None, Problem(
            "warning", f"{len(hidden)} row{'s are' if len(hidden) > 1 else ' is'} hidden{how} "
            f"(row{'s' if len(hidden) > 1 else ''} {row_ranges(hidden)}); hidden rows are read as data like every "
            "other row",
            "unhide them to check (or clear the filter); delete the rows that must not count", **where))
    if info.state in HIDDEN_STATES:
        table.add_issue(None, Problem("warning", *HIDDEN_STATES[info.state], **where))
    if info.stale:
        table.add_issue(None, Problem(
            "warning", f"{info.stale}, so the saved results of its {info.formulas} formulas may be out of date",
            "open the file in Excel, recalculate (Ctrl+Alt+F9) and save it", **where))


HIDDEN_STATES = {
    "hidden": ("the sheet is hidden; it is read like every visible sheet",
               "unhide it (right-click a sheet tab → Unhide) to check what it holds; delete it if it must not count"),
    "veryHidden": ("the sheet is very hidden (Excel's Unhide does not even list it); it is read like every visible "
                   "sheet", "make it visible to check it (VBA editor, Alt+F11: the sheet's Visible property), or "
                   "delete it if it must not count"),
}
"""Warning and fix for a sheet that is read although the user cannot see it, by its state in workbook.xml."""


def _short(formula: str, width: int = 60) -> str:
    return formula if len(formula) <= width else formula[: width - 1] + "…"


def _is_filled(v: Any) -> bool:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return False
    return not (isinstance(v, str) and not v.strip())


def _non_empty(frame: pd.DataFrame) -> pd.DataFrame:
    """Cell-wise 'has a value' (NaN, None and blank text count as empty)."""
    mask = frame.notna()
    for c in frame.columns[_text_cols(frame)]:
        col = frame[c]
        mask[c] = mask[c] & ~col.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    return mask


def _text_cols(frame: pd.DataFrame) -> np.ndarray:
    """Columns that may hold text (object or string dtype)."""
    return np.array([pd.api.types.is_object_dtype(t) or pd.api.types.is_string_dtype(t) for t in frame.dtypes],
                    dtype=bool)


def _label(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return " ".join(str(v).split())


def expand_paths(paths: Iterable[str | Path], *, exclude: Iterable[str | Path] = ()) -> list[Path]:
    """Data paths with folders expanded to the CSV and workbook files in them (sorted), minus ``exclude``."""
    skip = {Path(p).resolve() for p in exclude}
    out: list[Path] = []
    for p in map(Path, paths):
        items = sorted(q for q in p.iterdir() if q.suffix.casefold() in CSV_SUFFIXES + WORKBOOK_SUFFIXES
                       and not q.name.startswith(("~$", "."))) if p.is_dir() else [p]
        out.extend(q for q in items if q.resolve() not in skip and q not in out)
    return out


def load_tables(
    paths: Iterable[str | Path], problems: Problems | None = None, *, unreadable: list[str] | None = None
) -> dict[str, Table]:
    """Read every data file into tables keyed by their case-folded names (see module doc).

    Unreadable files and two files with the same name are reported to ``problems`` (raised as
    :class:`FactsError` when ``problems`` is None); the names of unreadable files are appended
    to ``unreadable``.
    """
    own = problems is None
    sink = Problems() if own else problems
    tables: dict[str, Table] = {}
    for path in paths:
        path = Path(path)
        try:
            found = read_tables(path, expected=[EMPLOYEE_ID, FACTS_KPI_ID, FACT], problems=sink)
        except FileReadError as e:
            sink.error(e.reason, e.fix or "check that the file exists and is a CSV or Excel file",
                       **{**e.where, "file": path.name})
            if unreadable is not None:
                unreadable.append(path.name)
            continue
        if not found:
            sink.warning("the file is empty", "remove it from --data or fill it in", file=path.name)
        for t in found:
            key = t.name.casefold()
            if key in tables and tables[key].file != t.file:
                sink.error(
                    f'two data files are both called "{t.name}": {tables[key].file} and {t.file}',
                    "rename one of them (sources refer to tables by file name)",
                    file=t.file,
                )
                continue
            tables.setdefault(key, t)
    if own:
        sink.raise_for_errors(FactsError)
    return tables


# ---------------------------------------------------------------------------------- facts


@dataclass
class Facts:
    """The facts for one period: one row per employee × KPI that has a value.

    ``values`` columns: employee_id, kpi_id, fact, period, origin ('file' or 'source'), file,
    sheet, row (where the fact comes from: the facts file row, or the KPIs row of the source),
    note (why a derived fact is missing).
    """

    values: pd.DataFrame
    period: str | None = None
    tables: dict[str, Table] = field(default_factory=dict)
    problems: Problems = field(default_factory=Problems)
    failed: set[str] = field(default_factory=set)
    """KPIs whose source could not be evaluated at all (missing table or column, unknown period)."""
    reported: set[tuple[str, str]] = field(default_factory=set)
    """(employee_id, kpi_id) pairs whose facts-file row was bad (already reported, so not 'missing')."""
    unreadable: list[str] = field(default_factory=list)
    """Data files that could not be read (already reported); missing facts may be in them."""

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, period: str | None = None) -> Facts:
        """Facts from a DataFrame with columns employee_id, kpi_id, fact (numbers or accountant text)."""
        values = frame.copy()
        values["employee_id"] = to_ids(values["employee_id"])
        values["kpi_id"] = to_ids(values["kpi_id"])
        values["fact"], errors = to_numbers(values["fact"])
        if errors.notna().any():
            raise KpiError(f"fact: {errors.dropna().iloc[0]}")
        twice = values.duplicated(["employee_id", "kpi_id"], keep=False) & values["employee_id"].notna()
        if twice.any():
            e, k = values.loc[twice, ["employee_id", "kpi_id"]].iloc[0]
            raise KpiError(f"facts: {int(twice.sum())} rows for employee {e}, KPI {k} (and maybe others); "
                           "give one fact per employee and KPI")
        for col, default in (("period", np.nan), ("origin", "frame"), ("file", None), ("sheet", None),
                             ("row", np.nan), ("note", np.nan)):
            if col not in values:
                values[col] = default
        return cls(values[list(_VALUE_COLUMNS)].reset_index(drop=True), period)

    def attach(self, lines: pd.DataFrame) -> pd.DataFrame:
        """``lines`` (employee_id, kpi_id, …) with the fact and note columns joined on."""
        vals = self.values[["employee_id", "kpi_id", "fact", "note"]].drop_duplicates(["employee_id", "kpi_id"])
        out = lines.drop(columns=[c for c in ("fact", "note") if c in lines]).merge(
            vals, on=["employee_id", "kpi_id"], how="left"
        )
        out.index = lines.index
        return out

    def location(self, employee_id: str, kpi_id: str) -> dict[str, Any] | None:
        """Where the fact of an employee × KPI came from, as Problems location keywords."""
        hit = self.values[(self.values["employee_id"] == employee_id) & (self.values["kpi_id"] == kpi_id)]
        if hit.empty:
            return None
        r = hit.iloc[0]
        row = None if pd.isna(r["row"]) else int(r["row"])
        return {"file": r["file"], "sheet": r["sheet"], "row": row, "column": r.get("column"),
                "header": r.get("header")}


_VALUE_COLUMNS = ("employee_id", "kpi_id", "fact", "period", "origin", "file", "sheet", "row", "note")


def load_facts(
    plan: Plan,
    data: Iterable[str | Path] = (),
    *,
    period: str | None = None,
    problems: Problems | None = None,
) -> Facts:
    """Read the --data files and produce the facts of ``plan``'s employees for the period.

    The period is ``period`` if given, else the plan's Settings period, else the single period
    found in the facts files or dated raw data. Problems go to ``problems``; without it, errors
    raise :class:`FactsError`.
    """
    own = problems is None
    sink = Problems() if own else problems
    paths = expand_paths(data, exclude=[plan.path] if plan.path else [])
    unreadable: list[str] = []
    tables = load_tables(paths, sink, unreadable=unreadable)
    explicit = _explicit_period(period, plan)
    file_facts = _facts_files(plan, tables, sink)
    reported = set(zip(file_facts.loc[file_facts["bad"], "employee_id"], file_facts.loc[file_facts["bad"], "kpi_id"],
                       strict=True)) if "bad" in file_facts else set()
    file_facts = file_facts[~file_facts["bad"].astype(bool)] if "bad" in file_facts else file_facts
    evaluator = Evaluator(tables, sink)
    the_period = explicit or _infer_period(plan, file_facts, evaluator, sink)
    twice: set[tuple[str, str]] = set()
    parts = [_select_period(file_facts, the_period, sink, twice)]
    reported |= twice
    failed: set[str] = set()
    derived = _derived(plan, evaluator, the_period, parts[0], sink, failed)
    if twice and not derived.empty:  # given twice: neither given value, nor the raw data's, is used
        derived = derived[[(e, k) not in twice for e, k in zip(derived["employee_id"], derived["kpi_id"],
                                                                 strict=True)]]
    parts.append(derived)
    values = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(
        not p.empty for p in parts) else _empty_values()
    values = values.drop_duplicates(["employee_id", "kpi_id"], keep="first").reset_index(drop=True)
    facts = Facts(values[[*_VALUE_COLUMNS, "column", "header"]], the_period, tables, sink, failed, reported,
                  unreadable)
    if own:
        sink.raise_for_errors(FactsError)
    return facts


def _explicit_period(period: str | None, plan: Plan) -> str | None:
    if period is not None:
        try:
            return parse_period(period)
        except DateFormatError as e:
            raise KpiError(f"--period: {e}") from None
    return plan.settings.period


def _empty_values() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (*_VALUE_COLUMNS, "column", "header")}).astype(
        {"fact": float, "row": float})


def _facts_files(plan: Plan, tables: Mapping[str, Table], problems: Problems) -> pd.DataFrame:
    """Rows of every facts file (a table with employee, KPI and fact columns), checked cell by cell."""
    frames = []
    seen: set[int] = set()
    for t in tables.values():
        if id(t.frame) in seen:
            continue
        seen.add(id(t.frame))
        ecol, kcol, fcol = t.column(*EMPLOYEE_ID), t.column(*FACTS_KPI_ID), t.column(*FACT)
        if not (kcol and fcol):
            continue
        t.report(problems, [ecol, kcol, fcol, t.column(*PERIOD)])
        if t.frame.empty:
            problems.warning("this facts file has a header but no rows of facts",
                             "export the facts again, or remove the file from --data", **t.at(t.header_row))
            continue
        if ecol is None:
            problems.error(
                "this facts file has kpi_id and fact columns but no employee_id column",
                "add an employee_id (Табельный номер) column", **t.at(t.header_row))
            continue
        frames.append(_read_facts_table(plan, t, ecol, kcol, fcol, t.column(*PERIOD), problems))
    if not frames:
        return _empty_values()
    return pd.concat(frames, ignore_index=True)


def _read_facts_table(
    plan: Plan, t: Table, ecol: str, kcol: str, fcol: str, pcol: str | None, problems: Problems
) -> pd.DataFrame:
    f = t.frame
    emp, kpi = to_ids(f[ecol]), to_ids(f[kcol])
    fact, errors = to_numbers(f[fcol])
    periods = pd.Series(np.nan, index=f.index, dtype=object)
    if pcol is not None:
        cache: dict[Any, Any] = {}
        bad_rows: list[int] = []
        bad_msgs: list[str] = []
        for r, v in f[pcol].items():
            key = (type(v).__name__, v) if not (isinstance(v, float) and np.isnan(v)) else None
            if key not in cache:
                try:
                    cache[key] = parse_period(v)
                except DateFormatError as e:
                    cache[key] = e
            got = cache[key]
            if isinstance(got, DateFormatError):
                bad_rows.append(int(r))
                bad_msgs.append(str(got))
            else:
                periods[r] = got
        problems.cells("error", t, bad_rows, pcol, bad_msgs, "write the period as 2026-10")
    employees = set(plan.employees["employee_id"])
    kpis = set(plan.kpis["kpi_id"])
    ok = pd.Series(True, index=f.index)
    bad_fact = pd.Series(False, index=f.index)
    checks = [
        (emp.isna(), ecol, "the employee_id is empty", "fill in the employee_id or delete the row"),
        (kpi.isna(), kcol, "the kpi_id is empty", "fill in the kpi_id or delete the row"),
        (emp.notna() & ~emp.isin(employees), ecol, None, "correct the id, or add the employee to the Employees sheet"),
        (kpi.notna() & ~kpi.isin(kpis), kcol, None, "correct the id, or add the KPI to the KPIs sheet"),
        (errors.notna(), fcol, None, "type the fact as a number (e.g. 1234,5 or 40%)"),
        (errors.isna() & fact.isna(), fcol, "the fact is empty", "fill in the fact or delete the row"),
    ]
    for mask, col, message, fix in checks:
        mask = mask.fillna(False).astype(bool) & ok
        if not mask.any():
            continue
        rows = list(f.index[mask])
        if message is not None:
            msgs: list[str] | str = message
        elif col == ecol:
            alike = key_index(plan.employees["employee_id"])
            msgs = [f'unknown employee "{v}": not in the Employees sheet' + alike_hint(v, alike) for v in emp[mask]]
        elif col == kcol:
            msgs = [f'unknown KPI "{v}": not in the KPIs sheet' for v in kpi[mask]]
        else:
            msgs = [f"the fact is not a number: {m}" for m in errors[mask]]
        problems.cells("error", t, rows, col, msgs, fix)
        ok &= ~mask
        if col == fcol:
            bad_fact |= mask
    out = pd.DataFrame({
        "employee_id": emp, "kpi_id": kpi, "fact": fact, "period": periods, "origin": "file",
        "file": t.file, "sheet": t.sheet, "row": f.index.astype(float), "note": np.nan, "column": t.letters[fcol],
        "header": fcol, "bad": bad_fact, "pcolumn": t.letters.get(pcol) if pcol else None, "pheader": pcol,
    })[(ok | bad_fact).to_numpy()]
    return out


def _infer_period(plan: Plan, file_facts: pd.DataFrame, evaluator: Evaluator, problems: Problems) -> str | None:
    """The single period present in the facts files or the dated raw data, if there is exactly one."""
    found = set(file_facts["period"].dropna())
    if not found:
        used = set(plan.lines["kpi_id"])
        for kpi_id, src in plan.sources.items():
            if kpi_id in used and src.dated:
                res = evaluator.evaluate(src, at=plan.source_at(kpi_id))
                found |= set(res["period"].dropna())
    if len(found) == 1:
        return found.pop()
    if len(found) > 1:
        problems.error(
            f"the data covers several periods ({', '.join(sorted(found))}) and the plan names none",
            "set the period in the Settings sheet of the plan (e.g. 2026-10) or pass --period",
            file=plan.file,
        )
    return None


def _select_period(file_facts: pd.DataFrame, period: str | None, problems: Problems,
                   twice: set[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Facts-file rows for the period (rows without a period apply to any); duplicates are errors.

    Neither of two facts for one employee × KPI is used (even with --skip-invalid: no fact is picked by
    its order); the pair goes to ``twice`` (then it is not reported again as missing).
    """
    if file_facts.empty:
        return file_facts
    other = file_facts["period"].notna() & (file_facts["period"] != period) if period else pd.Series(
        False, index=file_facts.index)
    for file, group in file_facts[other].groupby("file", sort=False):
        problems.warning(
            f"{len(group)} rows are for another period than {period} ({', '.join(sorted(set(group['period'])))}) "
            f"and are ignored (rows {row_ranges(list(group['row'].astype(int)))})",
            f"remove them, or check the period (Settings or --period) if they are meant for {period}",
            file=file, sheet=group["sheet"].iloc[0], column=group["pcolumn"].iloc[0], header=group["pheader"].iloc[0],
        )
    kept = file_facts[~other]
    dup = kept.duplicated(["employee_id", "kpi_id"], keep=False)
    for (e, k), group in kept[dup].groupby(["employee_id", "kpi_id"], sort=False):
        first = group.iloc[0]
        for _, r in group.iloc[1:].iterrows():
            problems.error(
                f"a second fact for employee {e}, KPI {k} (the first is in {first['file']} row {int(first['row'])})",
                "keep one row per employee and KPI", file=r["file"], sheet=r["sheet"], row=int(r["row"]),
                column=r["column"], header=r["header"],
            )
    if twice is not None:
        twice.update(zip(kept.loc[dup, "employee_id"], kept.loc[dup, "kpi_id"], strict=True))
    return kept[~dup]


def _derived(
    plan: Plan, evaluator: Evaluator, period: str | None, given: pd.DataFrame, problems: Problems, failed: set[str]
) -> pd.DataFrame:
    """Facts of the KPIs with a source, for the employees whose plan has them."""
    lines = plan.lines
    known = set(plan.employees["employee_id"])
    frames = []
    given_keys = set(zip(given["employee_id"], given["kpi_id"], strict=True)) if not given.empty else set()
    for kpi_id, src in plan.sources.items():
        who = list(dict.fromkeys(lines.loc[lines["kpi_id"] == kpi_id, "employee_id"]))
        overridden = [e for e in who if (e, kpi_id) in given_keys]
        for e in overridden:
            r = given[(given["employee_id"] == e) & (given["kpi_id"] == kpi_id)].iloc[0]
            problems.warning(
                f"the fact for employee {e}, KPI {kpi_id} is given here and also derived from raw data "
                f"({src.tables[0]}); the value given here is used",
                "remove the row if the raw data is right", file=r["file"], sheet=r["sheet"], row=int(r["row"]),
                column=r["column"], header=r["header"],
            )
        if not who:
            continue
        at = plan.source_at(kpi_id)
        if period is None and src.dated:
            failed.add(kpi_id)  # reported by _infer_period: the period is unknown
            continue
        res = evaluator.evaluate(src, period=period, employees=who, at=at)
        if (res["note"] == UNEVALUATED).all():
            failed.add(kpi_id)
            continue
        strangers = sorted(set(res["employee_id"].dropna()) - known)
        if strangers:
            alike = key_index(plan.employees["employee_id"])
            evaluator.report_once(
                ("strangers", *src.tables, str(src.numerator.by)),
                "warning",
                f"the raw data for {kpi_id} ({', '.join(src.tables)}) has rows for ids that are not in "
                f"Employees, which are not counted: {', '.join(s + alike_hint(s, alike) for s in strangers[:10])}"
                + (" …" if len(strangers) > 10 else ""),
                "check the ids in the raw data (a typo?) or add the employees",
                at,
            )
        res = res[res["employee_id"].isin(who)]
        res = res[[(e, kpi_id) not in given_keys for e in res["employee_id"]]]
        frames.append(pd.DataFrame({
            "employee_id": res["employee_id"], "kpi_id": kpi_id, "fact": res["fact"], "period": res["period"],
            "origin": "source", "file": at.get("file"), "sheet": at.get("sheet"), "row": at.get("row"),
            "note": res["note"], "column": at.get("column"), "header": at.get("header"),
        }))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else _empty_values()
