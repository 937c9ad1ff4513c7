"""Drill-down of a derived fact (issue 13 §1): the raw rows behind one aggregation of a source.

:func:`explain` runs the same filters as :meth:`Evaluator.term` (``where``, the period, a known
employee, readable values) as one engine query and returns, per kept row, the employee it counted
for, the member of their team whose row it is (the employee themself unless ``for team``), its Excel
row number in its file, and its contribution: the amount for ``sum``, 1 for ``count``, the value for
``mean``/``min``/``max``/``median`` (hours for a duration, the converted amount when rates apply), for
``nps`` the answer class (+1 promoter, 0 passive, -1 detractor), and for ``distinct`` 1 on the first
row (by row number) of each distinct value and 0 on its repeats. So the contributions of an employee
add up to a ``sum``/``count``/``distinct`` fact, their mean is a ``mean`` fact, and
``100 * sum / rows`` is an NPS fact (:func:`total` says it once). Problems are not reported here:
:meth:`Evaluator.term` already did for the same rows. No raw row passes through Python; the used
columns are taken from the table's frame by row number, vectorised.

The row number (not an id column) is the key: every table has one, it is what the problems name,
and the user finds the row in the file by it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.period import Period, period_of
from xl_kpi.inputs.sources.columns import ROW
from xl_kpi.inputs.sources.compile import Term
from xl_kpi.inputs.sources.evaluator import Evaluator, ibis_ifelse
from xl_kpi.inputs.sources.tokens import DEFAULT_BY
from xl_kpi.inputs.sources.tree import Agg, Source, _cond_columns

ROW_COLUMNS = ["employee_id", "member", "period", "row", "contribution"]
"""The leading columns of :func:`explain`; the used columns of the table follow, by their header."""


def used_columns(evaluator: Evaluator, agg: Agg) -> list[str] | None:
    """The headers ``agg`` reads, in the order a reader expects them (employee, date, value, end, filters,
    currency); None when the table or a column is missing (the evaluation reported it)."""
    table = evaluator.tables.get(agg.table.casefold()) or evaluator.tables.get(agg.table.strip().casefold())
    if table is None:
        return None
    out: list[str] = []
    for name in [agg.by or DEFAULT_BY, agg.dated, agg.column, agg.end_column, *_cond_columns(agg.where)]:
        if name:
            col = table.column(name)
            if col is None:
                return None
            out.append(col)
    ccol = evaluator.currency_column(table, agg, {}, quiet=True)
    if isinstance(ccol, str):
        out.append(ccol)
    return list(dict.fromkeys(out))


def _raw_cells(raw: Any, used: Sequence[str], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The raw cells of ``used`` on the Excel ``rows``: taken from the Arrow data of a CSV export (only those
    rows, not a pandas copy of the whole table), else from the frame."""
    data, numbers = getattr(raw, "data", None), getattr(raw, "rows", None)
    if data is not None and numbers is not None and len(rows):
        positions = np.searchsorted(numbers, rows)
        if (positions < len(numbers)).all() and (numbers[np.minimum(positions, len(numbers) - 1)] == rows).all():
            import pyarrow as pa

            taken = data.select(list(used)).take(pa.array(positions))
            return {h: np.asarray(taken.column(h).to_pylist(), dtype=object) for h in used}
    frame = raw.frame
    return {h: frame[h].reindex(rows).to_numpy() for h in used}


def explain(evaluator: Evaluator, agg: Agg, period: Period | str | None = None,
            at: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The rows behind ``agg``: employee_id, member, period ('' undated), row (Excel row number),
    contribution, then the raw cells of the columns the aggregation used. Empty (with the leading
    columns) when the table or a column is missing: the evaluation reported that already."""
    period = period_of(period)
    raw = evaluator.tables.get(agg.table.casefold()) or evaluator.tables.get(agg.table.strip().casefold())
    used = used_columns(evaluator, agg)
    if raw is None or used is None:
        return pd.DataFrame(columns=ROW_COLUMNS)
    cols = {name: raw.column(name) for name in
            [agg.by or DEFAULT_BY, agg.dated, agg.column, agg.end_column, *_cond_columns(agg.where)] if name}
    table = evaluator.transformed(raw, agg, cols, at or {}, quiet=True)
    if table is None:
        return pd.DataFrame(columns=ROW_COLUMNS)
    term = Term(agg, cols)
    emp, date = term.employee, term.date
    value = None
    if agg.func not in ("count", "distinct"):
        value = term.value()
    elif agg.func == "distinct":
        value = term.source_col(agg.column or "", "ids")
    key = term.period_key(period)
    where = term.where
    if agg.dated:
        where = where & date.notnull()
        if period is not None:
            where = where & term.in_period(period)
    t = term.bind(evaluator.columns(table), evaluator.backend)
    for (_header, _kind), flag in term.bad.items():  # an unreadable value counts for nothing
        where = where & ~term._[flag]
    where = where & emp.notnull()
    ibis = term._ibis
    contribution: Any = None
    extra: dict[str, Any] = {}
    if agg.func == "count":
        contribution = ibis.literal(1.0)
    elif agg.func == "nps":
        ok = value.notnull() & (value >= 0) & (value <= 10) & (value == value.floor())
        where = where & ok.fill_null(False)
        contribution = ibis.ifelse(value >= 9, 1.0, ibis.ifelse(value <= 6, -1.0, 0.0))
    elif agg.func == "distinct":
        where = where & value.notnull()
        extra = {"v": value}
    else:
        if agg.unit:
            value = ibis_ifelse(value < 0, None, value)
        where = where & value.notnull()
        contribution = value.cast("float64")
    picked = t.filter(where).select(employee_id=emp, period=key, row=term._[ROW],
                                    **({"contribution": contribution} if contribution is not None else extra))
    if agg.func == "distinct":  # the first row of each value counts 1, its repeats 0: the list adds up
        first = ibis.row_number().over(group_by=["employee_id", "period", "v"], order_by="row")
        picked = picked.select("employee_id", "period", "row", contribution=(first == 0).ifelse(1.0, 0.0))
    out = evaluator.backend.execute(picked.order_by(["employee_id", "row"])).to_pandas()
    rows = out["row"].to_numpy(dtype=np.int64)
    if agg.team and evaluator.teams is not None:  # whose row it is: the by column before it went to the heads
        own = evaluator.transformed(raw, agg, cols, at or {}, quiet=True, team=False)
        by = cols[agg.by or DEFAULT_BY]
        member = own.frame[by].reindex(rows).to_numpy() if own is not None and len(rows) else out["employee_id"]
        out.insert(1, "member", member)
    else:
        out.insert(1, "member", out["employee_id"].to_numpy())
    cells = _raw_cells(raw, used, rows)  # the raw cells as the file has them (names, not ids)
    for header in used:
        out[raw_key(header)] = cells[header] if len(rows) else []
    out["period"] = out["period"].astype(object)
    return out[ROW_COLUMNS + [raw_key(h) for h in used]].reset_index(drop=True)


def raw_key(header: str) -> str:
    """The column of :func:`explain`'s frame holding the raw cells of ``header`` (the header itself, unless it is
    one of the leading columns: ``employee_id`` in the file is ``employee_id (file)``)."""
    return f"{header} (file)" if header in ROW_COLUMNS else header


def total(func: str, contributions: Any) -> float:
    """The fact the contributions of one employee's rows give (what the card's total row computes)."""
    c = np.asarray(contributions, dtype=float)
    if func in ("sum", "count", "distinct"):
        return float(c.sum())
    if not len(c):
        return float("nan")
    if func == "nps":
        return float(100.0 * c.sum() / len(c))
    return float({"mean": np.mean, "min": np.min, "max": np.max, "median": np.median}[func](c))



@dataclass(frozen=True)
class TermRows:
    """The listed rows of one aggregation of a KPI's source, for every employee of the run."""

    func: str
    table: str
    file: str
    sheet: str | None
    team: bool
    columns: tuple[str, ...]
    """The used headers of the table, in the order :func:`used_columns` gives (their cells: :func:`raw_key`)."""
    unit: str | None
    frame: pd.DataFrame
    """:func:`explain`'s rows (employee_id, member, period, row, contribution, the used columns)."""
    text: str = ""
    """The aggregation as the source writes it."""

    def positions(self, employee_id: Any) -> np.ndarray:
        """The positions in :attr:`frame` of this employee's rows (the frame is grouped once, on first use)."""
        groups = self.__dict__.get("_groups")
        if groups is None:
            groups = self.frame.groupby("employee_id", sort=False).indices if len(self.frame) else {}
            object.__setattr__(self, "_groups", groups)
        idx = groups.get(employee_id)
        return idx if idx is not None else np.zeros(0, dtype=np.intp)

    def of(self, employee_id: Any) -> pd.DataFrame:
        """This employee's rows."""
        return self.frame.iloc[self.positions(employee_id)]


@dataclass(frozen=True)
class KpiRows:
    """The rows behind one derived KPI: its terms (one, or a ratio's two) and the source's factor."""

    kpi_id: str
    source: str
    terms: tuple[TermRows, ...]
    factor: float = 1.0


def rows_of_source(evaluator: Evaluator, source: Source, kpi_id: str, period: Period | None,
                   employees: Sequence[str], at: Mapping[str, Any] | None = None) -> KpiRows | None:
    """The rows behind a KPI's source for ``employees`` (None when a term's table or column is missing, or
    a table stays in Spark: its rows are not brought onto this machine for the cards)."""
    from xl_kpi.inputs.sources.cluster import ClusterTable

    terms = []
    wanted = set(employees)
    if any(isinstance(evaluator.tables.get(agg.table.casefold()), ClusterTable) for agg in source.terms):
        return None
    for agg in source.terms:
        frame = explain(evaluator, agg, period, at)
        used = used_columns(evaluator, agg)
        if used is None:
            return None
        table = evaluator.tables.get(agg.table.casefold()) or evaluator.tables[agg.table.strip().casefold()]
        frame = frame[frame["employee_id"].isin(wanted)].reset_index(drop=True)
        terms.append(TermRows(agg.func, table.name, table.file, table.sheet, agg.team, tuple(used), agg.unit, frame,
                              str(agg)))
    return KpiRows(kpi_id, str(source), tuple(terms), float(source.factor))
