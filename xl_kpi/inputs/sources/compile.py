"""Compiling a parsed source into Ibis expressions (or, on DuckDB, the same operations in DuckDB's own API:
:mod:`~xl_kpi.inputs.sources.duckrel`): the ``where`` condition, the period, the
aggregation per employee and period, and the few row queries that locate bad cells.

A :class:`Term` compiles one :class:`~xl_kpi.inputs.sources.tree.Agg`. While compiling it records
which columns it needs in which kind (numbers, dates, text…); :meth:`Term.bind` then builds the
engine table from the typed Arrow columns of :mod:`~xl_kpi.inputs.sources.columns` under names made
here (``c0``, ``c1``…), never from user text, and values enter only as Ibis literals. So no SQL is
ever pasted together from a cell of the plan.

Logic is two-valued as in the rest of xl_kpi: a comparison with an empty cell is false (not
NULL), so ``not (amount > 5)`` holds for an empty amount.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from xl_kpi.engine.period import Period
from xl_kpi.inputs.cells import FAR_FUTURE
from xl_kpi.inputs.sources.columns import ROW, Columns, Kind
from xl_kpi.inputs.sources.tokens import _DURATION_UNITS, DEFAULT_BY
from xl_kpi.inputs.sources.tree import Agg, BoolOp, Cond, IsEmpty, IsIn, Not, Value

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pyarrow as pa

    from xl_kpi.inputs.sources.backend import Backend

EMPLOYEE, PERIOD, FACT = "employee_id", "period", "fact"


@dataclass
class Term:
    """One aggregation compiled against a table's columns (``cols``: name in the source → header)."""

    agg: Agg
    cols: Mapping[str, str]
    names: dict[tuple[str, Kind], str] = field(default_factory=dict)
    bad: dict[tuple[str, Kind], str] = field(default_factory=dict)
    """(header, kind) → name of the engine column flagging its unreadable cells (only where there are any)."""
    kit: Any = None
    """The expression language: None for Ibis (Spark, the cards' rows), or the DuckDB one of
    :mod:`~xl_kpi.inputs.sources.duckrel` (``backend.kit``: columns, ``literal``, ``null``, ``ifelse``)."""

    def __post_init__(self) -> None:
        if self.kit is None:
            import ibis

            self.kit = ibis
        self._ = self.kit._
        self._ibis = self.kit
        self.where = self.condition(self.agg.where) if self.agg.where is not None else self.kit.literal(True)

    # -- columns
    def col(self, header: str, kind: Kind) -> Any:
        """The engine column of ``header`` converted to ``kind`` (a deferred Ibis expression)."""
        key = (header, kind)
        if key not in self.names:
            self.names[key] = f"c{len(self.names)}"
        return self._[self.names[key]]

    def source_col(self, name: str, kind: Kind) -> Any:
        return self.col(self.cols[name], kind)

    def bad_flag(self, header: str, kind: Kind) -> Any | None:
        """True on the rows whose ``header`` cell could not be read as ``kind`` (None: no such cell)."""
        name = self.bad.get((header, kind))
        return None if name is None else self._[name]

    def bind(self, columns: Columns, backend: Backend) -> ir.Table:
        """The engine table: the Excel row number and every column this term asked for."""
        if getattr(columns, "cluster", False):  # a table that stays in Spark: expressions over it
            return columns.bind(self.names, self.bad)
        import pyarrow as pa

        native = getattr(self.kit, "native", False)
        arrays: dict[str, pa.Array] = {ROW: columns.rows}
        rows = columns.row_index
        for (header, kind), name in list(self.names.items()):
            column = columns.get(header, kind)
            arrays[name] = column.values
            if column.errors is not None:
                flag = f"{name}_bad"
                self.bad[(header, kind)] = flag
                arrays[flag] = pa.array(np.isin(rows, column.errors.index.to_numpy()))
        data = pa.table(arrays)
        return backend.relation(data) if native else backend.table(data)  # type: ignore[attr-defined]

    # -- conditions
    def condition(self, cond: Cond) -> Any:
        """The rows satisfying ``cond``, two-valued (an empty cell makes a comparison false)."""
        if isinstance(cond, BoolOp):
            left, right = self.condition(cond.left), self.condition(cond.right)
            return (left & right) if cond.op == "and" else (left | right)
        if isinstance(cond, Not):
            return ~self.condition(cond.cond)
        col = self.cols[cond.column]
        if isinstance(cond, IsEmpty):
            empty = self.col(col, "ids").isnull()
            return ~empty if cond.negate else empty
        if isinstance(cond, IsIn):
            hit = self._ibis.literal(False)
            for v in cond.values:
                hit = hit | self.equals(col, v)
            return ~hit if cond.negate else hit
        if cond.op == "=":
            return self.equals(col, cond.value)
        if cond.op == "!=":
            return ~self.equals(col, cond.value)
        left, right = self.operands(col, cond.value)
        out = {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[cond.op]
        return out.fill_null(False)

    def operands(self, col: str, value: Value) -> tuple[Any, Any]:
        if value.kind == "date":
            return self.col(col, "day"), self._ibis.literal(value.value.to_pydatetime(), type="timestamp")
        return self.col(col, "numbers"), self._ibis.literal(float(value.value), type="float64")

    def equals(self, col: str, value: Value) -> Any:
        if value.kind == "flag":
            flags = self.col(col, "flags")
            text = self.col(col, "text")
            lit = self._ibis.literal
            return (flags == lit(bool(value.value))).fill_null(False) | (text == lit(value.text.casefold())).fill_null(
                False)
        if value.kind in ("number", "date"):
            left, right = self.operands(col, value)
            return (left == right).fill_null(False)
        return (self.col(col, "text") == self._ibis.literal(value.value.strip().casefold())).fill_null(False)

    # -- keys and values
    @property
    def employee(self) -> Any:
        return self.source_col(self.agg.by or DEFAULT_BY, "ids")

    @property
    def date(self) -> Any | None:
        return self.source_col(self.agg.dated, "dates") if self.agg.dated else None

    def period_key(self, period: Period | None) -> Any:
        """The period of a row: '' when undated, the period's key, or the row's month ('2026-10')."""
        if not self.agg.dated:
            return self._ibis.literal("")
        if period is not None:
            return self._ibis.literal(period.key)
        return self.date.strftime("%Y-%m")

    def in_period(self, period: Period) -> Any:
        """Rows dated inside the period (both days included; the time of day is ignored)."""
        lo = self._ibis.literal(dt.datetime.combine(period.start, dt.time()), type="timestamp")
        hi = self._ibis.literal(dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time()), type="timestamp")
        return ((self.date >= lo) & (self.date < hi)).fill_null(False)

    def duration(self) -> Any:
        """Seconds from the start column to the end column, in the term's unit; an end at or after
        2262-04-11 (HR's 31.12.9999, 'not yet') counts as no end."""
        start = self.source_col(self.agg.column or "", "dates")
        stop = self.source_col(self.agg.end_column or "", "dates")
        far = self._ibis.literal(FAR_FUTURE.to_pydatetime(), type="timestamp")
        stop = self._ibis.ifelse(stop >= far, self._ibis.null("timestamp"), stop)
        seconds = stop.epoch_seconds() - start.epoch_seconds()
        return seconds / _DURATION_UNITS[self.agg.unit or "days"]

    def value(self) -> Any:
        """The aggregated value of a row (numbers, or a duration)."""
        if self.agg.unit:
            return self.duration()
        return self.source_col(self.agg.column or "", "numbers")

    def aggregate(self, rows: ir.Table, value: Any | None) -> ir.Table:
        """(employee_id, period, fact) per group of ``rows`` (already filtered, with a ``v`` column for values)."""
        f = self.agg.func
        _ = self._
        grouped = rows.group_by([EMPLOYEE, PERIOD])
        if f == "count":
            return grouped.aggregate(**{FACT: _[EMPLOYEE].count().cast("float64")})
        if f == "distinct":
            return grouped.aggregate(**{FACT: _["v"].nunique().cast("float64")})
        v = _["v"]
        if f == "nps":
            n = v.count()
            promoters = (v >= 9).ifelse(1, 0).sum()
            detractors = (v <= 6).ifelse(1, 0).sum()
            return grouped.aggregate(**{FACT: ((promoters - detractors) * 100.0 / n).cast("float64")}).filter(
                _[FACT].notnull())
        if f == "sum":
            return grouped.aggregate(**{FACT: v.sum().fill_null(0.0).cast("float64")})
        reducer = {"mean": v.mean(), "min": v.min(), "max": v.max(), "median": v.median()}[f]
        return grouped.aggregate(**{FACT: reducer.cast("float64")})


def fetch(backend: Backend, expr: ir.Table) -> pa.Table:
    """Execute ``expr`` on ``backend``."""
    return backend.execute(expr)


