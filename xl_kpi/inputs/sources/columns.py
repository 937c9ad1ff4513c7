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

from xl_kpi.inputs.cells import (
    EARLIEST,
    FALSE_WORDS,
    FAR_FUTURE,
    TRUE_WORDS,
    to_dates,
    to_flags_checked,
    to_ids,
    to_numbers,
)

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
        self.arrow = getattr(table, "data", None) is not None  # an ArrowTable: convert in Arrow

    @property
    def row_index(self) -> np.ndarray:
        """The Excel row number of each row, as numpy."""
        rows = getattr(self.table, "rows", None) if self.arrow else None
        return np.asarray(rows if rows is not None else self.table.frame.index, dtype=np.int64)

    @property
    def rows(self) -> pa.Array:
        """The Excel row number of each row."""
        import pyarrow as pa

        return pa.array(self.row_index)

    def get(self, col: str, kind: Kind) -> Column:
        key = (col, kind)
        if key not in self._cache:
            self._cache[key] = self._convert(col, kind)
        return self._cache[key]

    def _convert(self, col: str, kind: Kind) -> Column:
        import pyarrow as pa
        import pyarrow.compute as pc

        if kind == "day":
            dates = self.get(col, "dates")
            return Column(pc.floor_temporal(dates.values, unit="day"), dates.errors)
        if self.arrow:
            return self._convert_arrow(col, kind)
        original = self.table.frame[col]
        series = original.reset_index(drop=True)  # ``for team`` repeats rows (and their numbers): convert by position
        if kind == "ids":
            return Column(_arrow(to_ids(series), pa.string()))
        if kind == "text":
            ids = to_ids(series)
            return Column(_arrow(ids.map(lambda v: v.casefold() if isinstance(v, str) else v), pa.string()))
        if kind == "numbers":
            values, errors = to_numbers(series)
            return Column(_arrow(values, pa.float64()), _errors(errors, original.index))
        if kind == "dates":
            values, errors = to_dates(series)
            return Column(_arrow(values, pa.timestamp("ns")), _errors(errors, original.index))
        if kind == "flags":
            values, errors = to_flags_checked(series)
            return Column(_arrow(values, pa.bool_()), _errors(errors, original.index))
        raise ValueError(f"unknown column kind {kind!r}")

    def _convert_arrow(self, col: str, kind: Kind) -> Column:
        """Text cells of an Arrow table converted by pyarrow.compute; the cells the fast path cannot read
        (and only those) go through :mod:`xl_kpi.inputs.cells` for the value or the message."""
        import pyarrow as pa

        if kind != "ids":
            ids = self.get(col, "ids").values  # trimmed once per column
        else:
            return Column(_trimmed(self.table.data.column(col).combine_chunks()))
        if kind == "text":  # text out: in parts, its copy into one array would cost what the parts save
            return Column(_casefold(ids))
        if kind == "numbers":
            return self._slow_rest(ids, _in_parts(_fast_numbers, ids, distinct=True), to_numbers, pa.float64())
        if kind == "dates":
            return self._slow_rest(ids, _in_parts(_fast_dates, ids, distinct=True), to_dates, pa.timestamp("ns"))
        if kind == "flags":
            return self._slow_rest(ids, _in_parts(_fast_flags, ids, distinct=True),
                                   lambda s: to_flags_checked(s.astype(object)), pa.bool_())
        raise ValueError(f"unknown column kind {kind!r}")

    def _slow_rest(self, ids: pa.Array, fast: pa.Array, convert: Any, type_: Any) -> Column:
        """``fast`` completed by ``convert`` (a :mod:`~xl_kpi.inputs.cells` function) on the filled cells
        it left empty: their value, or the message saying why the cell cannot be read."""
        import pyarrow as pa
        import pyarrow.compute as pc

        todo = pc.and_(pc.is_valid(ids), pc.is_null(fast))
        where = np.flatnonzero(todo.to_numpy(zero_copy_only=False))
        if not len(where):
            return Column(fast)
        rows = self.row_index[where]
        cells = pd.Series(pc.take(ids, pa.array(where)).to_pylist(), index=rows, dtype=object)
        values, errors = convert(cells)
        patch = pa.array(values.to_numpy(dtype=object) if type_ == pa.bool_() else values, type=type_,
                         from_pandas=True)
        full = _scatter(fast, where, patch)
        return Column(full, _errors(errors))


def _trimmed(raw: pa.Array) -> pa.Array:
    """Text cells without the spaces around them; null for an empty one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(raw)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


PART_ROWS = 1 << 18
"""The fewest cells of a part when a column's conversion is split (:func:`_in_parts`): four times the sample of
:func:`_per_distinct`, so that a part of unique values is still converted whole."""


def _in_parts(convert: Any, cells: pa.Array, *, distinct: bool = False) -> pa.Array:
    """``convert(cells)`` (cell by cell; with ``distinct``, once per distinct value: :func:`_per_distinct`), the
    cells of a long column split into parts of at least :data:`PART_ROWS` cells, converted by one thread per core
    (pyarrow.compute releases the GIL) and put back in order: the same array, in about half the time on two free
    cores (1,000,000 amounts: 0.20 s → 0.12 s even on a loaded machine; the same CPU within a few per cent, a peak
    about 40 MB higher: the threads' allocator arenas). For numbers, dates and yes/no, whose values are small to
    put together."""
    import pyarrow as pa

    one = (lambda part: _per_distinct(part, convert)) if distinct else convert
    parts, cores = len(cells) // PART_ROWS, _cores()
    if parts < 2 or cores < 2:
        return one(cells)
    from concurrent.futures import ThreadPoolExecutor

    size = -(-len(cells) // parts)
    with ThreadPoolExecutor(max_workers=min(cores, parts), thread_name_prefix="xl_kpi-columns") as pool:
        done = list(pool.map(one, [cells.slice(i * size, size) for i in range(parts)]))
    return pa.concat_arrays(done)


def _cores() -> int:
    """The cores this process may run on (at most 4: the parts of one column gain little past that)."""
    import os

    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


def _fast_flags(ids: pa.Array) -> pa.Array:
    """The yes/no words of a text column as booleans (null for any other text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    low = pc.utf8_lower(ids)
    return pc.if_else(pc.is_in(low, pa.array(sorted(TRUE_WORDS))), True,
                      pc.if_else(pc.is_in(low, pa.array(sorted(FALSE_WORDS))), False, pa.scalar(None, pa.bool_())))


_SAMPLE = 65_536
"""Cells looked at to tell whether a column repeats its values (see :func:`_per_distinct`)."""


def _per_distinct(ids: pa.Array, convert: Any) -> pa.Array:
    """``convert(ids)`` (a cell-by-cell conversion), computed once per distinct value when the column
    repeats its values (dates of a month, statuses, prices): at most half of a sample of its cells distinct.
    Encoding a column of unique values would cost as much as converting it, so those are converted whole."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(ids)
    if n > 2 * _SAMPLE:
        sample = pc.take(ids, pa.array(np.linspace(0, n - 1, _SAMPLE, dtype=np.int64)))
        if pc.count_distinct(sample).as_py() > _SAMPLE // 2:
            return convert(ids)
    elif n < 1024:
        return convert(ids)
    encoded = pc.dictionary_encode(ids)
    return pc.take(convert(encoded.dictionary), encoded.indices)


def _scatter(base: pa.Array, where: np.ndarray, patch: pa.Array) -> pa.Array:
    """``base`` with the values at positions ``where`` replaced by ``patch``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    index = np.full(len(base), -1, dtype=np.int64)
    index[where] = np.arange(len(where))
    taken = pc.take(patch, pa.array(np.where(index >= 0, index, 0)))
    return pc.if_else(pa.array(index >= 0), taken, base)


_FAST_NUMBER = (
    r"^-?[0-9]{1,15}(\.[0-9]+)?$"  # 1234.5
    r"|^-?[0-9]{1,15},([0-9]{1,2}|[0-9]{4,})$"  # 1234,5 (not d,ddd: ambiguous, the slow path explains)
    r"|^-?0+,[0-9]+$"  # 0,125
    "|^-?[0-9]{1,3}([ \u00a0\u202f\u2009][0-9]{3})+([.,][0-9]+)?$"  # 150 000,00
)


def _fast_numbers(ids: pa.Array) -> pa.Array:
    """The plain numbers of a text column as floats (null where the fast path does not apply)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ok = pc.fill_null(pc.match_substring_regex(ids, _FAST_NUMBER), False)
    text = pc.if_else(ok, ids, pa.scalar(None, pa.string()))
    for ch in (" ", "\u00a0", "\u202f", "\u2009", ","):
        if pc.any(pc.fill_null(pc.greater_equal(pc.find_substring(text, ch), 0), False)).as_py():
            text = pc.replace_substring(text, ch, "." if ch == "," else "")
    return pc.cast(text, pa.float64())


_DATE_FORMS = (  # (strptime format, where the day of the month stands)
    ("%d.%m.%Y %H:%M:%S", 0),
    ("%d.%m.%Y %H:%M", 0),
    ("%d.%m.%Y", 0),
    ("%Y-%m-%d", 8),
    ("%Y-%m-%d %H:%M:%S", 8),
    ("%Y-%m-%dT%H:%M:%S", 8),
    ("%Y-%m-%d %H:%M", 8),
)


def _fast_dates(ids: pa.Array) -> pa.Array:
    """The dates of a text column in the usual forms (31.10.2026 14:05:00, 2026-10-31) as timestamps,
    null where the fast path does not apply or the date falls outside the range xl_kpi holds.

    strptime must consume the whole text; a day it would roll over (31.02 → 03.03) is left to the slow
    path, which refuses it: the day written must be the day parsed. Formats are tried while cells remain."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = pa.nulls(len(ids), pa.timestamp("ns"))
    remaining = ids
    for fmt, at in _DATE_FORMS:
        if remaining.null_count == len(remaining):
            break
        parsed = pc.strptime(remaining, format=fmt, unit="us", error_is_null=True)
        day = pc.utf8_slice_codeunits(remaining, at, at + 2)
        written = pc.cast(pc.if_else(pc.fill_null(pc.utf8_is_digit(day), False), day, "0"), pa.int64())
        same_day = pc.fill_null(pc.equal(pc.day(parsed), written), False)
        parsed = pc.if_else(same_day, parsed, pa.scalar(None, pa.timestamp("us")))
        out = pc.coalesce(out, pc.cast(_in_range(parsed), pa.timestamp("ns")))
        remaining = pc.if_else(pc.is_null(out), ids, pa.scalar(None, pa.string()))
    return out


def _in_range(parsed: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    lo = pa.scalar(EARLIEST.to_pydatetime(), pa.timestamp("us"))
    hi = pa.scalar(FAR_FUTURE.to_pydatetime(), pa.timestamp("us"))
    inside = pc.fill_null(pc.and_(pc.greater_equal(parsed, lo), pc.less_equal(parsed, hi)), False)
    return pc.if_else(inside, parsed, pa.scalar(None, pa.timestamp("us")))


def _casefold(ids: pa.Array) -> pa.Array:
    """Case-folded text: ASCII by pyarrow, other text by ``str.casefold`` once per distinct value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pc.all(pc.fill_null(pc.string_is_ascii(ids), True)).as_py():
        return pc.ascii_lower(ids)
    encoded = pc.dictionary_encode(ids)
    folded = pa.array([v.casefold() for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(folded, encoded.indices)


def _arrow(values: pd.Series, type_: Any) -> pa.Array:
    import pyarrow as pa

    return pa.array(values.to_numpy(dtype=object) if type_ == pa.string() else values, type=type_, from_pandas=True)


def _errors(errors: pd.Series, index: pd.Index | None = None) -> pd.Series | None:
    """The messages of the unreadable cells, indexed by Excel row (``index``: the rows, when converted by
    position); None when there are none."""
    if index is not None:
        errors = pd.Series(errors.to_numpy(), index=index)
    bad = errors[errors.notna().to_numpy()]
    return bad if len(bad) else None
