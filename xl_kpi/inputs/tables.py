"""Tables: a sheet or CSV file as a frame whose index is the Excel row number, found by its header row.

Every location in a message comes from a :class:`Table` (file, sheet, row, column letter and header).
:func:`read_tables` reads a file into tables, finding the header row among the first rows and keeping
what a sheet hides (formulas without saved values, merged cells, hidden rows…) as the table's issues.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.i18n import Msg, Plural
from xl_kpi.inputs.problems import Problem, Problems, row_ranges
from xl_kpi.inputs.readers import (
    CSV_SUFFIXES,
    WORKBOOK_SUFFIXES,
    FileReadError,
    SheetInfo,
    read_csv_grid,
    read_workbook,
)
from xl_kpi.inputs.readers.ahead import take
from xl_kpi.inputs.readers.letters import column_letter

HEADER_SEARCH_ROWS = 10
"""The header row is looked for among the first rows of a sheet (a title may sit above it)."""
HEADER_LOOK_FURTHER = 200
"""Filled rows below those searched in which a header that clearly matches is reported as misplaced."""

EMPLOYEE_ID = (
    "employee_id", "employee id", "employee", "emp id", "id", "табельный номер", "таб номер", "таб no",
    "табельный no", "табельный", "id сотрудника", "код сотрудника", "сотрудник id",
)
KPI_ID = ("kpi_id", "kpi id", "kpi", "код kpi", "код показателя", "kpi code", "показатель id", "id kpi")
# ------------------------------------------------------------------------------------ reading


def read_tables(
    path: str | Path,
    *,
    expected: Sequence[Sequence[str]] | None = None,
    problems: Problems | None = None,
    name: str | None = None,
    encoding: str | None = None,
    separator: str | None = None,
) -> list[Table]:
    """Every sheet of a workbook (or the one table of a CSV file) as :class:`Table` s.

    ``expected`` lists alias groups of the columns the caller looks for; the header row is the one
    among the first rows that names most of them (default: the first non-empty row).
    ``name`` replaces the file stem as the table name (a binding of the Sources sheet or ``--data NAME=PATH``);
    ``encoding`` and ``separator`` replace the guess for a CSV file.
    Raises :class:`FileReadError` if the file cannot be read. What a sheet hides (formulas without
    a saved value, merged cells, hidden rows, repeated headers…) is kept in each table's ``issues``.
    """
    path = Path(path)
    suffix = path.suffix.casefold()
    if suffix in CSV_SUFFIXES:
        grid = _arrow_grid(path, encoding, separator)
        if grid is not None:
            table = table_from_arrow(grid, name=name or path.stem, file=path.name, path=path, expected=expected)
            return [table] if table is not None else []
        sheets: list[tuple[str | None, pd.DataFrame, SheetInfo | None]] = [
            (None, read_csv_grid(path, encoding=encoding, separator=separator), None)]
    elif suffix in WORKBOOK_SUFFIXES:
        sheets = [(s.name, s.grid, s.info) for s in read_workbook(path)]
    else:
        raise FileReadError(
            path.name, Msg("unknown file type {suffix}; xl_kpi reads .csv and .xlsx files",
                           suffix=path.suffix or "(none)"),
            Msg("save it as CSV or Excel Workbook (.xlsx), or remove it from --data"),
        )
    tables = []
    stem = name or path.stem
    for i, (sheet, grid, info) in enumerate(sheets):
        table_name = stem if sheet is None else f"{stem}:{sheet}"
        table = table_from_grid(grid, name=table_name, file=path.name, sheet=sheet, path=path, expected=expected,
                                problems=problems, info=info)
        if table is not None:
            tables.append(table)
        if i == 0 and sheet is not None and table is not None:
            tables.append(Table(stem, table.file, table.frame, table.letters, table.sheet, table.header_row,
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
    found = _find_header(grid, expected, file, sheet)
    if found is None:
        return None
    header_idx, misplaced = found
    keep, names, letters, repeated = _header_columns(grid.iloc[header_idx])
    body = grid.iloc[header_idx + 1 :, keep]
    body.columns = names
    body.index = pd.RangeIndex(header_idx + 2, header_idx + 2 + len(body))
    body = body[_non_empty(body).any(axis=1).to_numpy()] if len(body) else body
    table = Table(name=name, file=file, frame=body, letters=letters, sheet=sheet, header_row=int(header_idx) + 1,
                  path=path)
    _header_issues(table, misplaced, repeated)
    if info is not None:
        _sheet_issues(table, info, {j + 1: lab for j, lab in zip(keep, names, strict=True)})
    return table


def _header_issues(table: Table, misplaced: Problem | None, repeated: Mapping[str, list[str]]) -> None:
    if misplaced is not None:
        table.add_issue(None, misplaced)
    for label, cols in repeated.items():
        table.add_issue(label, Problem(
            "error", Msg("the header \"{label}\" appears {n_cols} times (columns {join}): which column "
                         "holds the data is not clear", label=label, n_cols=len(cols), join=", ".join(cols)),
            Msg("rename or delete the extra columns"),
            file=table.file, sheet=table.sheet, row=table.header_row, column=cols[1], header=label))


def _find_header(
    grid: pd.DataFrame, expected: Sequence[Sequence[str]] | None, file: str, sheet: str | None,
    rows_filled: np.ndarray | None = None,
) -> tuple[int, Problem | None] | None:
    """The index of the header row in ``grid`` (and the problem when it sits too low), or None if empty.
    ``rows_filled``: the positions of the rows with a filled cell, when the caller knows them already."""
    if grid.empty:
        return None
    if rows_filled is None:
        rows_filled = np.flatnonzero(_non_empty(grid).any(axis=1).to_numpy())
    candidates = list(rows_filled[:HEADER_SEARCH_ROWS])
    if not candidates:
        return None
    header_idx = candidates[0]
    misplaced: Problem | None = None
    if expected:
        groups = [{header_key(a) for a in g} for g in expected]
        looked = rows_filled[:HEADER_SEARCH_ROWS + HEADER_LOOK_FURTHER]
        cells = dict(zip(looked.tolist(), grid.iloc[looked].to_numpy(dtype=object).tolist(), strict=True))

        def hits(i: int) -> int:  # rows as lists, keys per distinct text: a raw export is scanned 210 rows deep
            keys = [_cell_key(v) for v in cells[i] if _is_filled(v)]
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
                    "error", Msg("the header row is row {row}, below the first {n} filled rows "
                                 "where the header is looked for; the rows above it would be left out",
                                 row=found + 1, n=HEADER_SEARCH_ROWS),
                    Msg("delete the rows above the header (a title row or two may stay), or move the "
                        "table up"),
                    file=file, sheet=sheet, row=found + 1)
    return int(header_idx), misplaced


def _header_columns(header: pd.Series) -> tuple[list[int], list[str], dict[str, str], dict[str, list[str]]]:
    """The filled cells of a header row: their positions, labels, column letters, and repeated labels."""
    keep: list[int] = []
    names: list[str] = []
    letters: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for j, v in enumerate(header):
        if not _is_filled(v):
            continue
        label = _label(v)
        if label in letters:
            repeated.setdefault(label, [letters[label]]).append(column_letter(j + 1))
            continue
        keep.append(j)
        names.append(label)
        letters[label] = column_letter(j + 1)
    return keep, names, letters, repeated


ARROW_HEAD_ROWS = 2000
"""Rows of an Arrow grid looked at (as pandas) to find the header row."""


def _arrow_grid(path: Path, encoding: str | None = None, separator: str | None = None) -> Any:
    """The CSV file as an Arrow grid, or None (pyarrow missing, or a file only the line reader explains);
    ``encoding`` and ``separator`` (of the Sources sheet) replace the guess."""
    ahead = take(path, encoding, separator)
    if ahead is not None:  # parsed while the plan was read
        try:
            return ahead.result()
        except ImportError:  # pragma: no cover - pyarrow is a dependency of the batch tools
            return None
    try:
        from xl_kpi.inputs.readers.csvarrow import read_csv_arrow
    except ImportError:  # pragma: no cover - pyarrow is a dependency of the batch tools
        return None
    try:
        return read_csv_arrow(path, encoding=encoding, separator=separator)
    except ImportError:  # pragma: no cover
        return None


def table_from_arrow(
    grid: Any, *, name: str, file: str, path: Path | None = None, expected: Sequence[Sequence[str]] | None = None
) -> Table | None:
    """:func:`table_from_grid` for an Arrow grid of text cells: the header row is found in the first
    rows, the body stays in Arrow (an :class:`ArrowTable`); rows with no filled cell are left out."""
    import pyarrow as pa

    if not grid.num_rows or not grid.num_columns:
        return None
    head_grid = grid.slice(0, ARROW_HEAD_ROWS)
    head = head_grid.to_pandas()
    head.columns = range(head.shape[1])
    found = _find_header(head, expected, file, None,
                         np.flatnonzero(_any([_filled_cells(col) for col in head_grid.columns])))
    if found is None:
        return None
    header_idx, misplaced = found
    keep, names, letters, repeated = _header_columns(head.iloc[header_idx])
    body = grid.slice(header_idx + 1).select(keep).rename_columns(names)
    rows = np.arange(header_idx + 2, header_idx + 2 + body.num_rows, dtype=np.int64)
    if body.num_rows:
        mask = _rows_filled(body)
        if not mask.all():
            body, rows = body.filter(pa.array(mask)), rows[mask]
    table = ArrowTable(name, file, None, letters, header_row=header_idx + 1, path=path, data=body, rows=rows)
    _header_issues(table, misplaced, repeated)
    return table


def _filled_cells(col: Any) -> np.ndarray:
    """Cell-wise 'has a value' of an Arrow text column: not null and not only spaces."""
    import pyarrow.compute as pc

    has = pc.and_not(pc.is_valid(col), pc.fill_null(pc.utf8_is_space(col), False))
    return np.asarray(has.to_numpy(zero_copy_only=False) if hasattr(has, "to_numpy") else has, dtype=bool)


def _rows_filled(body: Any) -> np.ndarray:
    """Row-wise 'has a filled cell' of an Arrow grid. The columns are looked at in turn and only until every
    row has one: an export whose first column is always filled costs one column, not all of them."""
    out = np.zeros(body.num_rows, dtype=bool)
    for col in body.columns:
        out |= _filled_cells(col)
        if out.all():
            break
    return out


def _any(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Row-wise 'any' of cell-wise masks."""
    out = np.zeros(len(columns[0]), dtype=bool)
    for m in columns:
        out |= m
    return out


def _sheet_issues(table: Table, info: SheetInfo, columns: Mapping[int, str]) -> None:
    """Turn what the pre-scan of a worksheet found into issues of the table read from it."""
    head = table.header_row
    where = {"file": table.file, "sheet": table.sheet}
    for r1, c1, r2, c2 in info.merged:
        hit = [lab for c, lab in columns.items() if c1 <= c <= c2]
        if r2 < head or not hit:
            continue  # a title above the header, or cells outside the table
        ref = f"{column_letter(c1)}{r1}:{column_letter(c2)}{r2}"
        if r1 <= head:
            problem = Problem("error", Msg("cells {ref} are merged across the header row", ref=ref),
                              Msg("unmerge them (Home → Merge & Center) and give every column its own header, all "
                                  "in one row"), **where, row=r1,
                              column=column_letter(c1), header=hit[0])
        else:
            problem = Problem("error", Msg("cells {ref} are merged: only {cell} holds the value, the other "
                                           "cells of the merge read as empty", ref=ref,
                                           cell=f"{column_letter(c1)}{r1}"),
                              Msg("unmerge them (Home → Merge & Center) and type the value in every row"),
                              **where, row=r1, column=column_letter(c1),
                              header=hit[0])
        rows = range(max(r1, head + 1), min(r2, head + 2000) + 1)  # the cells that read as empty
        cover = [(r, column_letter(c)) for c in columns if c1 <= c <= c2 for r in rows]
        for lab in hit:
            table.add_issue(lab, problem, cover)
    cells = [
        ("error", info.no_value, lambda f: Msg("formula with no saved value ({formula}): the file was saved by a "
                                               "program that does not calculate", formula=_short(f)),
         Msg("open and save the file in Excel (or LibreOffice), which stores the results of the formulas; then run "
             "again")),
        ("error", info.bad_values, lambda v: Msg("the cell holds {value}, not a number", value=v) if v[:1] != "#" else
         Msg("the cell shows the Excel error {value}", value=v), Msg("correct the formula or the value in Excel")),
        ("warning", info.external, lambda f: Msg("formula refers to another workbook ({formula}); the value saved "
                                                 "with this file is used and may be out of date", formula=_short(f)),
         Msg("open both workbooks in Excel and save this one, or replace the formula with its value")),
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
        table.add_issue(None, Problem(
            "warning", Plural("{n} row is hidden by a filter (row {rows}); hidden rows are read as data like every "
                              "other row", "{n} rows are hidden by a filter (rows {rows}); hidden rows are read as "
                              "data like every other row", len(hidden), rows=row_ranges(hidden))
            if info.filtered else
            Plural("{n} row is hidden (row {rows}); hidden rows are read as data like every other row",
                   "{n} rows are hidden (rows {rows}); hidden rows are read as data like every other row",
                   len(hidden), rows=row_ranges(hidden)),
            Msg("unhide them to check (or clear the filter); delete the rows that must not count"), **where))
    if info.state in HIDDEN_STATES:
        table.add_issue(None, Problem("warning", *HIDDEN_STATES[info.state], **where))
    if info.stale:
        table.add_issue(None, Problem(
            "warning", Msg("{stale}, so the saved results of its {formulas} formulas may be out of date",
                           stale=info.stale, formulas=info.formulas),
            Msg("open the file in Excel, recalculate (Ctrl+Alt+F9) and save it"), **where))


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
    mask = frame.notna().to_numpy(dtype=bool, copy=True)
    for j in np.flatnonzero(_text_cols(frame)):  # in numpy, column by column: no frame built cell by cell
        values = frame.iloc[:, j].to_numpy(dtype=object)
        mask[:, j] &= ~np.fromiter((isinstance(v, str) and not v.strip() for v in values), dtype=bool,
                                   count=len(values))
    return pd.DataFrame(mask, index=frame.index, columns=frame.columns)


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



def header_key(text: Any) -> str:
    """A header reduced for matching: case, ё/е, spaces, '_', '-', '.', '*' and ':' do not matter.

    >>> header_key(" Табельный_номер* "), header_key("E-mail"), header_key("Ед. изм.")
    ('табельный номер', 'e mail', 'ед изм')
    """
    s = str(text).casefold().replace("ё", "е").replace("№", " no ")
    s = re.sub(r"[\s_\-.*:]+", " ", s)
    return s.strip()


@functools.lru_cache(maxsize=4096)
def _key_of_text(text: str) -> str:
    return header_key(text)


def _cell_key(v: Any) -> str:
    """:func:`header_key` of a cell, cached for text (the same values repeat down a raw export)."""
    return _key_of_text(v) if isinstance(v, str) else header_key(v)


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

    @property
    def identity(self) -> object:
        """The object holding the cells: two tables sharing it are one table under two names."""
        return self.frame

    @property
    def headers(self) -> list[str]:
        """The column headers, in order."""
        return list(self.frame.columns)

    @property
    def num_rows(self) -> int:
        return len(self.frame)

    def column(self, *aliases: str) -> str | None:
        """The header matching any alias (see :func:`header_key`), or None."""
        wanted = {header_key(a) for a in aliases}
        for h in self.headers:
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
        return f"<Table {self.name!r} from {where}: {self.num_rows} rows, columns {self.headers}>"


class ArrowTable(Table):
    """A :class:`Table` whose cells stay in Arrow (``data``, text cells; ``rows``: the Excel row number of
    each row), as pyarrow reads a CSV export; ``frame`` is made from it only if something asks for it.

    ``dataclasses.replace`` (the table transforms do it) gives an ArrowTable without ``data`` that holds
    the given frame: a plain pandas table."""

    def __init__(self, name: str, file: str, frame: pd.DataFrame | None = None,
                 letters: dict[str, str] | None = None, sheet: str | None = None, header_row: int = 1,
                 path: Path | None = None, issues: dict | None = None, issues_reported: set | None = None,
                 issue_cells: dict | None = None, *, data: Any = None, rows: np.ndarray | None = None) -> None:
        self.data = data
        self.rows = rows
        self._frame: pd.DataFrame | None = None
        super().__init__(name, file, frame, letters or {}, sheet, header_row, path,  # type: ignore[arg-type]
                         issues if issues is not None else {}, issues_reported if issues_reported is not None
                         else set(), issue_cells if issue_cells is not None else {})

    def with_data(self, data: Any) -> ArrowTable:
        """The same table (name, issues…) over other Arrow ``data`` of the same rows."""
        return ArrowTable(self.name, self.file, None, self.letters, self.sheet, self.header_row, self.path,
                          self.issues, self.issues_reported, self.issue_cells, data=data, rows=self.rows)

    @property  # type: ignore[override]
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            frame = self.data.to_pandas()
            frame.index = pd.Index(self.rows)
            self._frame = frame
        return self._frame

    @frame.setter
    def frame(self, value: pd.DataFrame | None) -> None:
        if value is not None:
            self._frame = value

    @property
    def identity(self) -> object:
        return self.data if self.data is not None else self.frame

    @property
    def headers(self) -> list[str]:
        return list(self.data.column_names) if self.data is not None else list(self.frame.columns)

    @property
    def num_rows(self) -> int:
        return int(self.data.num_rows) if self.data is not None else len(self.frame)
