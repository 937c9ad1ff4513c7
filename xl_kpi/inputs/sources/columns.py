"""Typed columns of a raw table for the query engine: each column a source uses is converted once
into an Arrow array of the kind the source needs (ids, case-folded text, numbers, dates, days, yes/no),
with the message of every cell that cannot be read, so that validation stays precise (file, row,
column) while the filtering and aggregation run in the engine.

Conversions are vectorised: plain cells (``1234.5``, ``150 000,00``, ``31.10.2026 14:05``,
``2026-10-31``) are parsed by pyarrow.compute in one pass; only the cells that fast path cannot
read go through :mod:`xl_kpi.inputs.cells`, which parses each distinct value once and words the
message. pyarrow is imported lazily (the engine and udfs import without it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from xl_kpi.inputs.cells import to_dates, to_flags_checked, to_ids, to_numbers

if TYPE_CHECKING:
    import pyarrow as pa

    from xl_kpi.inputs.tables import Table

Kind = Literal["ids", "text", "numbers", "dates", "day", "flags"]
ROW = "__row"
"""The column of the Excel row number in every engine table."""


@dataclass(frozen=True)
class Column:
    """One converted column: ``values`` (Arrow, nulls for empty or unreadable cells) and ``errors``
    (a message per unreadable cell, indexed by Excel row; None when every cell could be read)."""

    values: pa.Array
    errors: pd.Series | None = None

    @property
    def has_errors(self) -> bool:
        return self.errors is not None


class Columns:
    """The converted columns of one table, each (column, kind) converted once."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._cache: dict[tuple[str, Kind], Column] = {}

    @property
    def rows(self) -> pa.Array:
        """The Excel row number of each row."""
        import pyarrow as pa

        return pa.array(np.asarray(self.table.frame.index, dtype=np.int64))

    def get(self, col: str, kind: Kind) -> Column:
        key = (col, kind)
        if key not in self._cache:
            self._cache[key] = self._convert(col, kind)
        return self._cache[key]

    def _convert(self, col: str, kind: Kind) -> Column:
        import pyarrow as pa

        series = self.table.frame[col]
        if kind == "ids":
            return Column(_arrow(to_ids(series), pa.string()))
        if kind == "text":
            ids = to_ids(series)
            return Column(_arrow(ids.map(lambda v: v.casefold() if isinstance(v, str) else v), pa.string()))
        if kind == "numbers":
            values, errors = to_numbers(series)
            return Column(_arrow(values, pa.float64()), _errors(errors))
        if kind == "dates":
            values, errors = to_dates(series)
            return Column(_arrow(values, pa.timestamp("ns")), _errors(errors))
        if kind == "day":
            dates = self.get(col, "dates")
            import pyarrow.compute as pc

            return Column(pc.floor_temporal(dates.values, unit="day"), dates.errors)
        if kind == "flags":
            values, errors = to_flags_checked(series)
            return Column(_arrow(values, pa.bool_()), _errors(errors))
        raise ValueError(f"unknown column kind {kind!r}")


def _arrow(values: pd.Series, type_: Any) -> pa.Array:
    import pyarrow as pa

    return pa.array(values.to_numpy(dtype=object) if type_ == pa.string() else values, type=type_, from_pandas=True)


def _errors(errors: pd.Series) -> pd.Series | None:
    bad = errors[errors.notna().to_numpy()]
    return bad if len(bad) else None
