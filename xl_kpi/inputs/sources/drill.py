"""Drill-down of a derived fact (issue 13 §1): the raw rows behind one aggregation of a source.

:func:`explain` runs the same filters as :meth:`Evaluator.term` (``where``, the period, a known
employee, readable values) as one engine query and returns, per kept row, the employee it counted
for, its Excel row number in its file, and its contribution: the amount for ``sum``, 1 for
``count``, the value for ``mean``/``min``/``max``/``median`` (hours for a duration, the converted
amount when rates apply), and for ``nps`` the answer class (+1 promoter, 0 passive, -1 detractor).
So the contributions of an employee add up to a ``sum``/``count`` fact, their mean is a ``mean``
fact, and ``100 * sum / rows`` is an NPS fact. Problems are not reported here: :meth:`Evaluator.term`
already did for the same rows. No raw row passes through Python; the used columns are taken from
the table's frame by row number, vectorised.

The row number (not an id column) is the key: every table has one, it is what the problems name,
and the user finds the row in the file by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.period import Period, period_of
from xl_kpi.inputs.sources.columns import ROW
from xl_kpi.inputs.sources.compile import Term
from xl_kpi.inputs.sources.evaluator import Evaluator, ibis_ifelse
from xl_kpi.inputs.sources.tokens import DEFAULT_BY
from xl_kpi.inputs.sources.tree import Agg, _cond_columns

ROW_COLUMNS = ["employee_id", "period", "row", "contribution"]
"""The leading columns of :func:`explain`; the used columns of the table follow, by their header."""


def explain(evaluator: Evaluator, agg: Agg, period: Period | str | None = None,
            at: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The rows behind ``agg``: employee_id, period ('' undated), row (Excel row number),
    contribution, then the raw cells of the columns the aggregation used. Empty (with the leading
    columns) when the table or a column is missing: the evaluation reported that already."""
    period = period_of(period)
    table = evaluator.tables.get(agg.table.casefold()) or evaluator.tables.get(agg.table.strip().casefold())
    if table is None:
        return pd.DataFrame(columns=ROW_COLUMNS)
    names = [agg.by or DEFAULT_BY, agg.dated, agg.column, agg.end_column, *_cond_columns(agg.where)]
    cols: dict[str, str] = {}
    for name in names:
        if name:
            col = table.column(name)
            if col is None:
                return pd.DataFrame(columns=ROW_COLUMNS)
            cols[name] = col
    quiet = Evaluator.__new__(Evaluator)  # the same transforms, problems sent nowhere (already reported)
    quiet.__dict__.update(evaluator.__dict__)
    from xl_kpi.inputs.problems import Problems

    quiet.problems = Problems()
    quiet._reported = set(evaluator._reported)
    raw = table
    table = quiet.transformed(table, agg, cols, at or {})
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
    contribution: Any = None
    if agg.func == "count":
        contribution = term._ibis.literal(1.0)
    elif agg.func == "nps":
        ok = value.notnull() & (value >= 0) & (value <= 10) & (value == value.floor())
        where = where & ok.fill_null(False)
        contribution = term._ibis.ifelse(value >= 9, 1.0, term._ibis.ifelse(value <= 6, -1.0, 0.0))
    elif agg.func == "distinct":
        where = where & value.notnull()
        contribution = term._ibis.literal(float("nan"))
    else:
        if agg.unit:
            value = ibis_ifelse(value < 0, None, value)
        where = where & value.notnull()
        contribution = value.cast("float64")
    picked = t.filter(where).select(employee_id=emp, period=key, row=term._[ROW], contribution=contribution)
    out = evaluator.backend.execute(picked.order_by(["employee_id", "row"])).to_pandas()
    used = list(dict.fromkeys(cols.values()))
    rows = out["row"].to_numpy(dtype=np.int64)
    frame = raw.frame  # the raw cells as the file has them (names, not ids; one row per file row)
    for header in used:
        out[header] = frame[header].reindex(rows).to_numpy() if len(rows) else []
    out["period"] = out["period"].astype(object)
    return out[ROW_COLUMNS + used].reset_index(drop=True)
