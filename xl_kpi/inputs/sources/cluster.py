"""Native tables that stay in the cluster: a Spark catalog table or a Parquet location on the Spark
engine is never read onto the machine that runs xl_kpi. The typed columns a source needs and the flags
of their unreadable cells are Ibis expressions over the Spark table itself (:class:`ClusterColumns`),
so filtering and aggregation run in Spark; only per-employee results come back, and the few values
the fast expressions cannot read (their distinct texts, worded by :mod:`xl_kpi.inputs.cells`, with the
record numbers of the bad cells).

Record numbers follow the order Spark returns the rows, as for a table read locally: each row's
number is its partition's offset plus its place in the partition (``spark_partition_id`` and
``monotonically_increasing_id``, one small count per partition), computed in the cluster.

``for team`` and currency conversion still need the rows here: such a source reads its used columns
locally (:meth:`ClusterTable.local`), as before. A column whose fast path leaves more than
:data:`MAX_SLOW` distinct texts unread is read locally too.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from xl_kpi.inputs.cells import FALSE_WORDS, TRUE_WORDS, to_dates, to_flags_checked, to_numbers
from xl_kpi.inputs.sources.columns import _FAST_NUMBER, ROW, Kind
from xl_kpi.inputs.tables import Table

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["MAX_SLOW", "ClusterColumn", "ClusterColumns", "ClusterTable", "TooManySlowValues", "cluster_table"]

MAX_SLOW = 1000
"""Distinct texts per column the fast expressions cannot read that are patched in the cluster; beyond, the
column's table is read locally."""
_SPARK_DATE_FORMS = (  # (shape the text must have, Spark pattern): as the local fast path, the whole text
    (r"^[0-9]{2}\.[0-9]{2}\.[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}$", "dd.MM.yyyy HH:mm:ss"),
    (r"^[0-9]{2}\.[0-9]{2}\.[0-9]{4} [0-9]{2}:[0-9]{2}$", "dd.MM.yyyy HH:mm"),
    (r"^[0-9]{2}\.[0-9]{2}\.[0-9]{4}$", "dd.MM.yyyy"),
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "yyyy-MM-dd"),
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$", "yyyy-MM-dd HH:mm:ss"),
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$", "yyyy-MM-dd'T'HH:mm:ss"),
    (r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$", "yyyy-MM-dd HH:mm"),
)
_views = itertools.count(1)


class TooManySlowValues(Exception):
    """A column needs more per-value work than is sensible in the cluster: read the table locally."""


class ClusterTable(Table):
    """A :class:`Table` whose rows stay in Spark: ``expr`` is an Ibis table over them with the record
    number column ``__row``; ``local`` reads the used columns here when a transform needs the rows.
    ``mapped``: column → {text as Spark casts it → employee id} (people by their aliases, resolved once
    per distinct value)."""

    def __init__(self, name: str, file: str, expr: Any, headers: list[str], *, run: Callable[[Any], Any],
                 path: Any = None, local: Callable[[], Table] | None = None,
                 mapped: dict[str, dict[str, Any]] | None = None, origin: ClusterTable | None = None) -> None:
        self.expr = expr
        self.run = run
        """Executes an Ibis expression over ``expr`` in Spark; the result as Arrow."""
        self._headers = list(headers)
        self._local = local
        self._local_table: Table | None = None
        self.mapped = dict(mapped or {})
        self.origin = origin or self
        super().__init__(name, file, None, {}, None, 0, path)  # type: ignore[arg-type]

    @property  # type: ignore[override]
    def frame(self) -> pd.DataFrame:
        return self.local().frame

    @frame.setter
    def frame(self, value: pd.DataFrame | None) -> None:
        if value is not None:
            raise TypeError("a cluster table holds no frame")

    @property
    def identity(self) -> object:
        return self

    @property
    def headers(self) -> list[str]:
        return list(self._headers)

    @property
    def num_rows(self) -> int:
        return -1  # not counted (that would be a Spark job)

    def __repr__(self) -> str:
        return f"<ClusterTable {self.name!r} from {self.file}: columns {self.headers}>"

    def local(self) -> Table:
        """The used columns read onto this machine (once), for the transforms that need the rows."""
        origin = self.origin
        if origin._local_table is None:
            if origin._local is None:
                raise TypeError(f"table {self.name} cannot be read locally")
            origin._local_table = origin._local()
        return origin._local_table

    # -- for People.transform (duck-typed: people.py does not import this module)
    def value_counts(self, column: str) -> pd.DataFrame:
        """(key, value, n): each distinct value of ``column`` (``key`` its text as Spark casts it), counted
        in the cluster."""
        raw = self.expr[column]
        key = raw.cast("string")
        got = self.run(self.expr.group_by(key=key).aggregate(value=raw.arbitrary(), n=raw.count()))
        return got.to_pandas()

    def with_mapping(self, column: str, mapping: dict[str, Any]) -> ClusterTable:
        """The same table with ``column``'s values (by their text) read as ``mapping`` says."""
        return ClusterTable(self.name, self.file, self.expr, self._headers, run=self.run, path=self.path,
                            local=self._local, mapped={**self.mapped, column: mapping}, origin=self.origin)


@dataclass
class ClusterColumn:
    """One converted column as Ibis expressions: ``values`` (null for empty or unreadable cells) and
    ``flag`` (true on the unreadable cells; None when there are none); ``errors`` are fetched on demand."""

    values: Any
    flag: Any | None = None
    _errors: Callable[[], pd.Series | None] | None = None
    _fetched: pd.Series | None = None
    _done: bool = False

    @property
    def errors(self) -> pd.Series | None:
        """The message of each unreadable cell, indexed by record number (None: none)."""
        if not self._done:
            self._fetched = self._errors() if self._errors is not None else None
            self._done = True
        return self._fetched

    @property
    def has_errors(self) -> bool:
        return self.flag is not None

    def may_be_empty(self) -> bool:
        return True  # not known without a job: the query that finds the empty cells runs


class ClusterColumns:
    """The converted columns of a :class:`ClusterTable`, each (column, kind) built once."""

    cluster = True

    def __init__(self, table: ClusterTable) -> None:
        self.table = table
        self._cache: dict[tuple[str, Kind], ClusterColumn] = {}

    def get(self, col: str, kind: Kind) -> ClusterColumn:
        key = (col, kind)
        if key not in self._cache:
            self._cache[key] = self._convert(col, kind)
        return self._cache[key]

    def bind(self, names: dict[tuple[str, Kind], str], bad: dict[tuple[str, Kind], str]) -> ir.Table:
        """The engine table: the record number and every (column, kind) of ``names`` under its name; the
        flags of unreadable cells go into ``bad``."""
        fields: dict[str, Any] = {ROW: self.table.expr[ROW]}
        for (header, kind), name in list(names.items()):
            column = self.get(header, kind)
            fields[name] = column.values
            if column.flag is not None:
                bad[(header, kind)] = f"{name}_bad"
                fields[f"{name}_bad"] = column.flag
        return self.table.expr.select(**fields)

    # -- conversions
    def _convert(self, col: str, kind: Kind) -> ClusterColumn:
        import ibis

        raw = self.table.expr[col]
        t = raw.type()
        if kind == "day":
            dates = self.get(col, "dates")
            return ClusterColumn(dates.values.truncate("D"), dates.flag, lambda: dates.errors)
        if kind in ("ids", "text"):
            ids = self._ids(col, raw)
            return ClusterColumn(ids.lower() if kind == "text" else ids)
        if kind == "numbers":
            if t.is_numeric():
                return ClusterColumn(raw.cast("float64"))
            text = self._ids(col, raw)
            ok = text.re_search(_FAST_NUMBER).fill_null(False)
            cleaned = text
            for ch in (" ", "\u00a0", "\u202f", "\u2009"):
                cleaned = cleaned.replace(ch, "")
            fast = ibis.ifelse(ok, cleaned.replace(",", ".").try_cast("float64"), ibis.null("float64"))
            return self._slow_rest(col, text, fast, to_numbers, "float64")
        if kind == "dates":
            if t.is_timestamp() or t.is_date():  # a Spark TIMESTAMP: the wall-clock time of the session's zone
                return ClusterColumn(raw.cast("timestamp"))
            text = self._ids(col, raw)
            fast = ibis.null("timestamp")
            for shape, pattern in _SPARK_DATE_FORMS:
                parsed = _try_to_timestamp(text, pattern)
                fast = ibis.coalesce(fast, ibis.ifelse(text.re_search(shape).fill_null(False), parsed,
                                                       ibis.null("timestamp")))
            lo = ibis.literal(dt.datetime(1677, 9, 22), type="timestamp")
            hi = ibis.literal(dt.datetime(2262, 4, 11), type="timestamp")
            fast = ibis.ifelse(((fast >= lo) & (fast <= hi)).fill_null(False), fast, ibis.null("timestamp"))
            return self._slow_rest(col, text, fast, to_dates, "timestamp")
        if kind == "flags":
            if t.is_boolean():
                return ClusterColumn(raw)
            low = self._ids(col, raw).lower()
            fast = ibis.ifelse(low.isin(sorted(TRUE_WORDS)).fill_null(False), True,
                               ibis.ifelse(low.isin(sorted(FALSE_WORDS)).fill_null(False), False,
                                           ibis.null("boolean")))
            return self._slow_rest(col, self._ids(col, raw), fast,
                                   lambda s: to_flags_checked(s.astype(object)), "boolean")
        raise ValueError(f"unknown column kind {kind!r}")

    def _ids(self, col: str, raw: Any) -> Any:
        """The cell as an id text: trimmed, empty as null (numbers as the plan writes ids: 1001, not 1001.0);
        mapped to employee ids where People resolved the column."""
        import ibis

        mapping = self.table.mapped.get(col)
        t = raw.type()
        if t.is_floating() or t.is_decimal():
            whole = (raw == raw.floor()).fill_null(False)
            text = ibis.ifelse(whole, raw.cast("int64").cast("string"), raw.cast("string"))
        elif t.is_string():
            text = raw.strip().nullif("")
        else:
            text = raw.cast("string")
        if mapping is not None:
            key = raw.cast("string")
            return key.substitute(mapping, else_=text) if mapping else text
        return text

    def _slow_rest(self, col: str, text: Any, fast: Any, convert: Callable[[pd.Series], Any],
                   type_: str) -> ClusterColumn:
        """``fast`` completed in the cluster by the values :mod:`~xl_kpi.inputs.cells` gives the distinct
        texts it left empty; the texts it cannot read are the flagged cells."""
        import ibis

        todo = (text.notnull() & fast.isnull()).fill_null(False)
        found = self.table.run(self.table.expr.filter(todo).select(v=text).distinct().limit(MAX_SLOW + 1))
        texts = [v for v in found.column("v").to_pylist() if v is not None]
        if not texts:
            return ClusterColumn(fast)
        if len(texts) > MAX_SLOW:
            raise TooManySlowValues(col)
        values, errors = convert(pd.Series(texts, dtype=object))
        readable = {t: v for t, v, e in zip(texts, values, errors, strict=True) if e is None or e != e}
        unreadable = [t for t, e in zip(texts, errors, strict=True) if not (e is None or e != e)]
        messages = dict(zip(texts, errors, strict=True))
        full = fast
        if readable:
            lit = {k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else (bool(v) if type_ == "boolean"
                       else float(v))) for k, v in readable.items() if not pd.isna(v)}
            patch = text.substitute({k: ibis.literal(v, type=type_) for k, v in lit.items()},
                                    else_=ibis.null(type_)) if lit else ibis.null(type_)
            full = ibis.coalesce(fast, patch)
        if not unreadable:
            return ClusterColumn(full)
        flag = text.isin(unreadable).fill_null(False)

        def errors_of() -> pd.Series | None:
            got = self.table.run(self.table.expr.filter(flag).select(ROW, v=text)).to_pandas()
            if got.empty:
                return None
            return pd.Series([messages[v] for v in got["v"]], index=got[ROW].astype("int64").to_numpy())

        return ClusterColumn(full, flag, errors_of)


def _try_to_timestamp(text: Any, pattern: str) -> Any:
    """Spark's ``try_to_timestamp`` (null, not an error, for a text that is no date: ANSI mode raises)."""
    import ibis

    @ibis.udf.scalar.builtin(name="try_to_timestamp")
    def try_to_timestamp(value: str, fmt: str) -> dt.datetime: ...

    return try_to_timestamp(text, pattern)


def cluster_table(name: str, file: str, frame: Any, *, session: Any, path: Any = None,
                  local: Callable[[], Table] | None = None) -> ClusterTable:
    """A Spark DataFrame (only the used columns) as a :class:`ClusterTable` with record numbers 1, 2, …
    in the order Spark returns the rows, computed in the cluster. The temporary view's name is made
    here, never from user text."""
    from pyspark.sql import functions as F

    headers = list(frame.columns)
    tagged = frame.withColumn("__pid", F.spark_partition_id()).withColumn("__mid", F.monotonically_increasing_id())
    counts = sorted((r["__pid"], r["count"]) for r in tagged.groupBy("__pid").count().collect())
    offsets, start = [], 0
    for pid, n in counts:
        offsets.append((pid, start))
        start += n
    offset_df = session.createDataFrame(offsets or [(0, 0)], "__pid int, __off long")
    numbered = tagged.join(F.broadcast(offset_df), "__pid", "left").withColumn(
        ROW, (F.col("__off") + (F.col("__mid") - F.shiftleft(F.col("__pid").cast("long"), 33)) + 1).cast("long")
    ).select(ROW, *[frame[c] for c in headers])
    view = f"xl_kpi_native_{next(_views)}"
    numbered.createOrReplaceTempView(view)
    import ibis

    con = ibis.pyspark.connect(session)
    return ClusterTable(name, file, con.table(view), headers, run=con.to_pyarrow, path=path, local=local)
