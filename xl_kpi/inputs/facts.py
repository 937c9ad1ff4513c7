"""Facts: the actual result of each employee × KPI for the period, from files or from raw data.

Two ways in, both through ``--data`` files:

* a facts file (``employee_id, kpi_id, fact[, period]``, CSV or XLSX), for KPIs without a source;
* raw tables (CRM exports: deals, client requests, survey answers…), from which a KPI's
  ``KPIs.source`` derives the fact (see :mod:`xl_kpi.inputs.sources`). A table is named after its file
  stem (``deals.csv`` → ``deals``); each sheet of a workbook is ``stem:sheet`` and the first sheet
  is also plain ``stem``.

CSV files may use ``,``, ``;`` or tab separators and UTF-8 (with or without BOM), UTF-16 or cp1251
encoding, as Russian Excel saves them; they are read with pandas' C parser, all cells as text, and
numbers are parsed where they are used (:mod:`xl_kpi.inputs.cells`). Workbooks (.xlsx) are pre-scanned and
then read with calamine. Files are opened through :mod:`xl_kpi.inputs.readers`, which refuses what is too
large, damaged, encrypted or not what its name says, and records what a sheet hides (formulas without
saved values, merged cells, hidden rows…) as issues on each :class:`Table`, reported when the table
or column is used.
A fact given in a facts file wins over the one derived from raw data (with a warning), so HR can
correct one person's figure by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.period import Period, PeriodError, period_of
from xl_kpi.i18n import Msg, english
from xl_kpi.inputs.cells import to_ids, to_numbers
from xl_kpi.inputs.datafiles import DataFile, bound_paths, load_bound, parse_data_arg, plain_paths
from xl_kpi.inputs.identity import alike_hint, key_index
from xl_kpi.inputs.problems import InputError, Problems, row_ranges
from xl_kpi.inputs.readers import (
    FileReadError,
)
from xl_kpi.inputs.sources import UNEVALUATED, Evaluator
from xl_kpi.inputs.sources.backend import preload
from xl_kpi.inputs.sources.drill import KpiRows, rows_of_source
from xl_kpi.inputs.sources.engines import engine_name, make_backend
from xl_kpi.inputs.sources.native import NativeError, load_native, location
from xl_kpi.inputs.tables import EMPLOYEE_ID, KPI_ID, Table, expand_paths, read_tables
from xl_kpi.inputs.team import build_teams

__all__ = [
    "FACT", "FACTS_KPI_ID", "PERIOD", "Facts", "FactsError", "load_facts", "load_tables",
]

if TYPE_CHECKING:
    from xl_kpi.inputs.plan import Plan

FACTS_KPI_ID = (*KPI_ID, "показатель", "indicator")
"""kpi_id in a facts file, where a 'Показатель' column can only mean the KPI."""
FACT = ("fact", "value", "actual", "result", "факт", "значение", "фактическое значение", "результат")
PERIOD = ("period", "month", "период", "месяц")


class FactsError(InputError):
    """The facts or raw data have errors; ``.problems`` holds all of them."""


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
            sink.error(e.reason, e.fix or Msg("check that the file exists and is a CSV or Excel file"),
                       **{**e.where, "file": path.name})
            if unreadable is not None:
                unreadable.append(path.name)
            continue
        if not found:
            sink.warning(Msg("the file is empty"), Msg("remove it from --data or fill it in"), file=path.name)
        for t in found:
            key = t.name.casefold()
            if key in tables and tables[key].file != t.file:
                sink.error(
                    Msg("two data files are both called \"{name}\": {file} and {file2}", name=t.name,
                        file=tables[key].file, file2=t.file),
                    Msg("rename one of them (sources refer to tables by file name)"),
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
    period: Period | None = None
    tables: dict[str, Table] = field(default_factory=dict)
    problems: Problems = field(default_factory=Problems)
    failed: set[str] = field(default_factory=set)
    """KPIs whose source could not be evaluated at all (missing table or column, unknown period)."""
    reported: set[tuple[str, str]] = field(default_factory=set)
    """(employee_id, kpi_id) pairs whose facts-file row was bad (already reported, so not 'missing')."""
    unreadable: list[str] = field(default_factory=list)
    """Data files that could not be read (already reported); missing facts may be in them."""
    files: dict[str, Path] = field(default_factory=dict)
    """Table name → the file it was read from (for manifest.json)."""
    rows: dict[str, KpiRows] = field(default_factory=dict)
    """kpi_id → the raw rows behind its derived facts (:mod:`xl_kpi.inputs.sources.drill`), for the cards."""
    native: dict[str, str] = field(default_factory=dict)
    """Table name → the Parquet path (absolute) or ``spark:`` table a Sources row binds it to (manifest.json)."""

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, period: Period | str | None = None) -> Facts:
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
        return cls(values[list(_VALUE_COLUMNS)].reset_index(drop=True), period_of(period))

    def attach(self, lines: pd.DataFrame) -> pd.DataFrame:
        """``lines`` (employee_id, kpi_id, …) with the fact and note columns joined on.

        Only the two key columns go through the merge (a left join on unique keys: one row per line, in order);
        fact and note are then taken by position, so the lines' other columns are never copied (100,000
        employees: a merge of every column held the lines twice, ~100 MB more at the peak)."""
        keys = ["employee_id", "kpi_id"]
        vals = self.values[[*keys, "fact", "note"]].drop_duplicates(keys)
        found = lines[keys].merge(vals[keys].assign(_at=np.arange(len(vals))), on=keys, how="left")["_at"]
        at = found.fillna(-1).to_numpy().astype(np.intp)  # -1: no fact, NaN (as the merge left it)
        # reindexed, each column keeps its dtype as a merge would: a note is an English(Msg), never turned into str
        taken = {c: vals[c].reset_index(drop=True).reindex(at).set_axis(lines.index) for c in ("fact", "note")}
        return lines.drop(columns=[c for c in ("fact", "note") if c in lines]).assign(**taken)

    def location(self, employee_id: str, kpi_id: str) -> dict[str, Any] | None:
        """Where the fact of an employee × KPI came from, as Problems location keywords."""
        hit = self.values[(self.values["employee_id"] == employee_id) & (self.values["kpi_id"] == kpi_id)]
        return None if hit.empty else _location(hit.iloc[0])

    def locations(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """:meth:`location` of each (employee_id, kpi_id) pair that has a fact, found in one pass over the facts
        (a message per fact far outside base..norm asked :meth:`location` once each: a mask of every fact each)."""
        wanted = set(pairs)
        keys = list(zip(self.values["employee_id"], self.values["kpi_id"], strict=True))
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for i in (i for i, k in enumerate(keys) if k in wanted):
            out.setdefault(keys[i], _location(self.values.iloc[i]))
        return out


def _location(r: pd.Series) -> dict[str, Any]:
    """A facts row's origin as Problems location keywords."""
    row = None if pd.isna(r["row"]) else int(r["row"])
    return {"file": r["file"], "sheet": r["sheet"], "row": row, "column": r.get("column"), "header": r.get("header")}


_VALUE_COLUMNS = ("employee_id", "kpi_id", "fact", "period", "origin", "file", "sheet", "row", "note")


def load_facts(
    plan: Plan,
    data: Iterable[str | Path | DataFile] = (),
    *,
    period: Period | str | None = None,
    problems: Problems | None = None,
    engine: str | None = None,
    drill: bool = True,
) -> Facts:
    """Read the --data files and produce the facts of ``plan``'s employees for the period.

    ``drill``: also collect the raw rows behind each derived fact (``Facts.rows``, for the cards);
    ``validate`` does without them (they add a query per term and report nothing).

    Tables bound by name (the plan's Sources sheet, :class:`DataFile` items of ``data`` from
    ``--data NAME=PATH``, which win over the sheet) are read under that name; plain paths keep the
    file-name rule. A name may be bound to a Parquet file or folder or a Spark table
    (``deals=spark:sales.deals``, see :mod:`xl_kpi.inputs.sources.native`); a plain Parquet path is
    named after its file or folder. ``engine`` (duckdb or spark; default ``XL_KPI_ENGINE``, else
    duckdb) runs the sources (see :mod:`xl_kpi.inputs.sources.engines`).

    The period (any form :meth:`Period.parse` reads) is ``period`` if given, else the plan's Settings
    period, else the single period found in the facts files or dated raw data (a month for raw data).
    Problems go to ``problems``; without it, errors raise :class:`FactsError`.
    """
    own = problems is None
    sink = Problems() if own else problems
    the_engine = engine_name(engine)
    data = [d if isinstance(d, (DataFile, Path)) else parse_data_arg(d) for d in data]
    given = [d for d in data if isinstance(d, DataFile)]
    on_cli = {b.table.casefold() for b in given}
    bindings = [b for b in plan.bindings if b.table.casefold() not in on_cli] + given  # the command line wins
    base = plan.path.parent if plan.path else None
    bindings, native = _native_bindings(bindings, base, sink)
    from_sheet = _sheet_native(native)
    plain = plain_paths(data)
    native += [(None, str(q), None, None) for q in plain if _native(q, sink)]
    plain = [q for q in plain if not any(n[1] == str(q) and n[0] is None for n in native)]
    paths = expand_paths(plain, exclude=[*([plan.path] if plan.path else []), *bound_paths(bindings, base)])
    if plan.sources:
        preload()  # the query engine's import overlaps with reading the files
    unreadable: list[str] = []
    tables = load_tables(paths, sink, unreadable=unreadable)
    files = {t.name: t.path for t in tables.values() if t.path is not None}
    files.update(load_bound(bindings, base, tables, sink, expected=[EMPLOYEE_ID, FACTS_KPI_ID, FACT],
                            unreadable=unreadable))
    _add_native(tables, native, plan, the_engine, sink)
    backend = _backend(the_engine, sink)
    explicit = _explicit_period(period, plan)
    file_facts = _facts_files(plan, tables, sink)
    reported = set(zip(file_facts.loc[file_facts["bad"], "employee_id"], file_facts.loc[file_facts["bad"], "kpi_id"],
                       strict=True)) if "bad" in file_facts else set()
    file_facts = _without(file_facts, file_facts["bad"].astype(bool)) if "bad" in file_facts else file_facts
    teams = build_teams(plan.employees, _ManagerCells(plan))
    evaluator = Evaluator(tables, sink, people=plan.people.fresh(), teams=teams, rates=plan.rates.fresh(),
                          backend=backend)
    the_period = explicit or _infer_period(plan, file_facts, evaluator, sink)
    twice: set[tuple[str, str]] = set()
    parts = [_select_period(file_facts, the_period, sink, twice)]
    reported |= twice
    failed: set[str] = set()
    rows: dict[str, KpiRows] = {}
    derived = _derived(plan, evaluator, the_period, parts[0], sink, failed, rows if drill else None)
    if twice and not derived.empty:  # given twice: neither given value, nor the raw data's, is used
        derived = derived[[(e, k) not in twice for e, k in zip(derived["employee_id"], derived["kpi_id"],
                                                                 strict=True)]]
    parts.append(derived)
    filled = [p for p in parts if not p.empty]
    values = (filled[0].reset_index(drop=True) if len(filled) == 1 else pd.concat(filled, ignore_index=True)
              if filled else _empty_values())
    values = _without(values, values.duplicated(["employee_id", "kpi_id"], keep="first")).reset_index(drop=True)
    facts = Facts(values[[*_VALUE_COLUMNS, "column", "header"]], the_period, tables, sink, failed, reported,
                  unreadable, files, rows, from_sheet)
    if own:
        sink.raise_for_errors(FactsError)
    return facts


def _native(path: Path, problems: Problems) -> bool:
    try:
        return location(path) is not None
    except NativeError as e:
        problems.error(e.reason, e.fix, file=str(path))
        return False


Native = tuple[str | None, str, dict[str, Any] | None, Path | None]
"""A native table to read: (name or None for the default, location text, where it was bound, base folder)."""


def _native_bindings(
    bindings: list[DataFile], base: Path | None, problems: Problems
) -> tuple[list[DataFile], list[Native]]:
    """The bindings to files, and those to native tables (Parquet, ``spark:``). A Sources row's path is
    relative to the plan's folder, a ``--data`` one to the working folder."""
    files: list[DataFile] = []
    native: list[Native] = []
    for b in bindings:
        on_cli = b.at.get("file") == "--data"
        where, at = (None, {"file": b.path}) if on_cli else (base, b.at)
        try:
            is_native = location(b.path, where) is not None
        except NativeError as e:
            problems.error(e.reason, e.fix, **at)
            continue
        if is_native:
            native.append((b.table, b.path, at, where))
        else:
            files.append(b)
    return files, native


def _sheet_native(native: list[Native]) -> dict[str, str]:
    """The native tables bound by a Sources row (not ``--data``): name → absolute Parquet path or ``spark:``."""
    out: dict[str, str] = {}
    for name, text, at, where in native:
        if name is None or at is None or at.get("sheet") is None:
            continue
        try:
            found = location(text, where)
        except NativeError:
            continue  # reported where it is read
        if found is not None:
            out[name] = found.target if found.kind == "parquet" else found.text
    return out


def _add_native(tables: dict[str, Table], native: list[Native], plan: Plan, engine: str, problems: Problems) -> None:
    """Read the native tables (only the columns the plan's sources use) into ``tables``.

    A name that is already a file's table is an error (neither is picked by order).
    """
    if not native:
        return
    columns: dict[str, set[str]] = {}
    for src in plan.sources.values():
        for agg in src.terms:
            columns.setdefault(agg.table.casefold(), set()).update(agg.columns())
    for name, text, at, where in native:
        got = load_native([(name, text)], problems, engine=engine, columns=columns, base=where, at=at)
        for key, t in got.items():
            if key in tables:
                problems.error(Msg("two tables are both called \"{name}\": {file} and {file2}", name=t.name,
                                   file=tables[key].file, file2=t.file),
                               Msg("rename one of them, or bind the name to one location (NAME=LOCATION)"),
                               **(at or {"file": t.file}))
                continue
            tables[key] = t


class _ManagerCells(Mapping[str, dict[str, Any]]):
    """employee_id → the location of their manager cell, looked up only when asked (a cycle error): building it
    for every employee cost ~0.3 ms each (10,000 employees: 3 s) for a map that is almost never read."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rows = dict(zip(plan.employees["employee_id"], plan.employees["row"], strict=True))

    def __getitem__(self, employee_id: str) -> dict[str, Any]:
        return self.plan.at("Employees", self.rows[employee_id], "manager")

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _backend(engine: str, problems: Problems) -> Any:
    try:
        return make_backend(engine)
    except NativeError as e:
        problems.error(e.reason, e.fix)
        return None


def _explicit_period(period: Period | str | None, plan: Plan) -> Period | None:
    if period is not None:
        try:
            return Period.parse(period)
        except PeriodError as e:
            raise KpiError(Msg("--period: {e}", e=e)) from None
    return plan.settings.period


def _empty_values() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (*_VALUE_COLUMNS, "column", "header")}).astype(
        {"fact": float, "row": float})


def _facts_files(plan: Plan, tables: Mapping[str, Table], problems: Problems) -> pd.DataFrame:
    """Rows of every facts file (a table with employee, KPI and fact columns), checked cell by cell."""
    frames = []
    seen: set[int] = set()
    for t in tables.values():
        if id(t.identity) in seen:
            continue
        seen.add(id(t.identity))
        ecol, kcol, fcol = t.column(*EMPLOYEE_ID), t.column(*FACTS_KPI_ID), t.column(*FACT)
        if not (kcol and fcol):
            continue
        t.report(problems, [ecol, kcol, fcol, t.column(*PERIOD)])
        if t.frame.empty:
            problems.warning(Msg("this facts file has a header but no rows of facts"),
                             Msg("export the facts again, or remove the file from --data"), **t.at(t.header_row))
            continue
        if ecol is None:
            problems.error(
                Msg("this facts file has kpi_id and fact columns but no employee_id column"),
                Msg("add an employee_id (Табельный номер) column"), **t.at(t.header_row))
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
        bad_msgs: list[Any] = []
        for r, v in f[pcol].items():
            key = (type(v).__name__, v) if not (isinstance(v, float) and np.isnan(v)) else None
            if key not in cache:
                try:
                    cache[key] = Period.parse(v).key
                except PeriodError as e:
                    cache[key] = e
            got = cache[key]
            if isinstance(got, PeriodError):
                bad_rows.append(int(r))
                bad_msgs.append(english(got))  # the engine's text, in the reader's language when shown
            else:
                periods[r] = got
        problems.cells("error", t, bad_rows, pcol, bad_msgs,
                       Msg("write the period as 2026-10, 2026-Q4, 2026-H2 or 2026"))
    employees = set(plan.employees["employee_id"])
    kpis = set(plan.kpis["kpi_id"])
    ok = pd.Series(True, index=f.index)
    bad_fact = pd.Series(False, index=f.index)
    checks = [
        (emp.isna(), ecol, Msg("the employee_id is empty"), Msg("fill in the employee_id or delete the row")),
        (kpi.isna(), kcol, Msg("the kpi_id is empty"), Msg("fill in the kpi_id or delete the row")),
        (emp.notna() & ~emp.isin(employees), ecol, None,
         Msg("correct the id, or add the employee to the Employees sheet")),
        (kpi.notna() & ~kpi.isin(kpis), kcol, None, Msg("correct the id, or add the KPI to the KPIs sheet")),
        (errors.notna(), fcol, None, Msg("type the fact as a number (e.g. 1234,5 or 40%)")),
        (errors.isna() & fact.isna(), fcol, Msg("the fact is empty"), Msg("fill in the fact or delete the row")),
    ]
    for mask, col, message, fix in checks:
        mask = mask.fillna(False).astype(bool) & ok
        if not mask.any():
            continue
        rows = list(f.index[mask])
        if message is not None:
            msgs: list[Any] | Msg = message
        elif col == ecol:
            alike = key_index(plan.employees["employee_id"])
            msgs = [Msg('unknown employee "{id}": not in the Employees sheet{hint}', id=v, hint=alike_hint(v, alike))
                    for v in emp[mask]]
        elif col == kcol:
            msgs = [Msg('unknown KPI "{kpi}": not in the KPIs sheet', kpi=v) for v in kpi[mask]]
        else:
            msgs = [Msg("the fact is not a number: {error}", error=m) for m in errors[mask]]
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


def _infer_period(plan: Plan, file_facts: pd.DataFrame, evaluator: Evaluator, problems: Problems) -> Period | None:
    """The single period present in the facts files or the dated raw data, if there is exactly one."""
    found = set(file_facts["period"].dropna())
    if not found:
        used = set(plan.lines["kpi_id"])
        for kpi_id, src in plan.sources.items():
            if kpi_id in used and src.dated:
                res = evaluator.evaluate(src, at=plan.source_at(kpi_id))
                found |= set(res["period"].dropna())
    if len(found) == 1:
        return Period.parse(found.pop())
    if len(found) > 1:
        problems.error(
            Msg("the data covers several periods ({join}) and the plan names none",
                join=', '.join(sorted(found))),
            Msg("set the period in the Settings sheet of the plan (e.g. 2026-10) or pass --period"),
            file=plan.file,
        )
    return None


def _select_period(file_facts: pd.DataFrame, period: Period | None, problems: Problems,
                   twice: set[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Facts-file rows for the period (rows without a period apply to any); duplicates are errors.

    Neither of two facts for one employee × KPI is used (even with --skip-invalid: no fact is picked by
    its order); the pair goes to ``twice`` (then it is not reported again as missing).
    """
    if file_facts.empty:
        return file_facts
    other = file_facts["period"].notna() & (file_facts["period"] != period.key) if period else pd.Series(
        False, index=file_facts.index)
    for file, group in file_facts[other].groupby("file", sort=False):
        problems.warning(
            Msg("{n_group} rows are for another period than {period} ({join}) and are ignored "
                "(rows {row_ranges})", n_group=len(group), period=period,
                join=', '.join(sorted(set(group['period']))),
                row_ranges=row_ranges(list(group['row'].astype(int)))),
            Msg("remove them, or check the period (Settings or --period) if they are meant for "
                "{period}", period=period),
            file=file, sheet=group["sheet"].iloc[0], column=group["pcolumn"].iloc[0], header=group["pheader"].iloc[0],
        )
    kept = _without(file_facts, other)
    dup = kept.duplicated(["employee_id", "kpi_id"], keep=False)
    for (e, k), group in kept[dup].groupby(["employee_id", "kpi_id"], sort=False):
        first = group.iloc[0]
        for _, r in group.iloc[1:].iterrows():
            problems.error(
                Msg("a second fact for employee {e}, KPI {k} (the first is in {file} row {int})", e=e, k=k,
                    file=first['file'], int=int(first['row'])),
                Msg("keep one row per employee and KPI"), file=r["file"], sheet=r["sheet"], row=int(r["row"]),
                column=r["column"], header=r["header"],
            )
    if twice is not None:
        twice.update(zip(kept.loc[dup, "employee_id"], kept.loc[dup, "kpi_id"], strict=True))
    return _without(kept, dup)


def _without(frame: pd.DataFrame, drop: pd.Series) -> pd.DataFrame:
    """``frame`` without the rows ``drop`` marks; the frame itself when none is (a boolean selection copies every
    column: 400,000 facts, ~50 MB each time)."""
    return frame[~drop.to_numpy(bool)] if drop.any() else frame


def _derived(
    plan: Plan, evaluator: Evaluator, period: Period | None, given: pd.DataFrame, problems: Problems, failed: set[str],
    rows: dict[str, KpiRows] | None = None,
) -> pd.DataFrame:
    """Facts of the KPIs with a source, for the employees whose plan has them; ``rows`` gets the raw rows
    behind each KPI's facts (only for the employees whose fact is derived, not given in a facts file)."""
    lines = plan.lines
    frames = []
    given_keys = set(zip(given["employee_id"], given["kpi_id"], strict=True)) if not given.empty else set()
    for kpi_id, src in plan.sources.items():
        who = list(dict.fromkeys(lines.loc[lines["kpi_id"] == kpi_id, "employee_id"]))
        overridden = [e for e in who if (e, kpi_id) in given_keys]
        for e in overridden:
            r = given[(given["employee_id"] == e) & (given["kpi_id"] == kpi_id)].iloc[0]
            problems.warning(
                Msg("the fact for employee {e}, KPI {kpi_id} is given here and also derived from raw "
                    "data ({table}); the value given here is used", e=e, kpi_id=kpi_id, table=src.tables[0]),
                Msg("remove the row if the raw data is right"), file=r["file"], sheet=r["sheet"], row=int(r["row"]),
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
        evaluator.unmatched_warnings(src, at)  # one warning per table: the people who matched nobody
        res = res[res["employee_id"].isin(who)]
        res = res[[(e, kpi_id) not in given_keys for e in res["employee_id"]]]
        if rows is not None:
            found = rows_of_source(evaluator, src, kpi_id, period, list(res["employee_id"]), at)
            if found is not None:
                rows[kpi_id] = found
        frames.append(pd.DataFrame({
            "employee_id": res["employee_id"], "kpi_id": kpi_id, "fact": res["fact"], "period": res["period"],
            "origin": "source", "file": at.get("file"), "sheet": at.get("sheet"), "row": at.get("row"),
            "note": res["note"], "column": at.get("column"), "header": at.get("header"),
        }))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else _empty_values()
