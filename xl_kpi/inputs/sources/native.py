"""Raw tables that stay where they are: a Parquet file or folder, or a table of a Spark catalog
(``spark:db.table``), bound to the name sources use (``deals=spark:sales.deals`` on ``--data``, or a
row of the Sources sheet whose path is such a location).

:func:`binding` splits ``NAME=LOCATION``; :func:`location`
tells whether a text names a native table (None: an ordinary CSV or workbook, read as before);
:func:`read_native` reads only the columns the plan's sources use, with pyarrow (DuckDB engine) or
or, on the Spark engine (the only one that can reach a catalog table), as a
:class:`~xl_kpi.inputs.sources.cluster.ClusterTable` that stays in Spark; rows are numbered 1, 2, … in
the order the engine returns them. Locations are passed to the engines'
APIs as paths and catalog identifiers, never pasted into SQL; an identifier must be plain
(letters, digits, ``_``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from xl_kpi.i18n import Msg
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.sources.locations import (
    PARQUET_SUFFIXES,
    SPARK_PREFIX,
    Location,
    NativeError,
    binding,
    location,
    wanted_columns,
)
from xl_kpi.inputs.tables import Table

__all__ = [
    "PARQUET_SUFFIXES", "SPARK_PREFIX", "Location", "NativeError", "binding", "is_native", "load_native", "location",
    "native_digest", "read_native",
]


def read_native(
    name: str, where: Location, *, engine: str = "duckdb", columns: Iterable[str] | None = None,
    session: Any = None,
) -> Table:
    """The native table as a :class:`Table` of the columns sources use (``columns``; None: all).

    With ``engine="spark"`` Spark reads it (``session``: a SparkSession, else the shared one of
    :mod:`xl_kpi.inputs.sources.spark`); otherwise pyarrow reads Parquet, and a catalog table is an
    error saying to use the Spark engine. Raises :class:`NativeError` with the fix.
    """
    if engine == "spark":
        from xl_kpi.inputs.sources.cluster import cluster_table
        from xl_kpi.inputs.sources.spark import spark_frame, spark_session

        spark = session if session is not None else spark_session()
        frame = spark_frame(where, columns, session=spark)
        path = Path(where.target) if where.kind == "parquet" else None
        return cluster_table(name, where.text, frame, session=spark, path=path,
                             local=lambda: _local_spark(name, where, columns, spark))
    if where.kind == "spark":
        raise NativeError(
            Msg("table {name} is the Spark table {target}, which the DuckDB engine cannot reach", name=name,
                target=where.target),
            Msg("run with --engine spark (or XL_KPI_ENGINE=spark), or bind the table to a Parquet folder or a file"),
        )
    else:
        data = _read_parquet(where, columns)
    return _table(name, where, data)


def _local_spark(name: str, where: Location, columns: Iterable[str] | None, session: Any) -> Table:
    """The used columns of a Spark-reached table read onto this machine (``for team``, currencies)."""
    from xl_kpi.inputs.sources.spark import read_spark_table

    return _table(name, where, read_spark_table(where, columns, session=session))


def _table(name: str, where: Location, data: Any) -> Table:
    frame = _frame(data)
    return Table(name, where.text, frame, letters={}, sheet=None, header_row=0,
                 path=Path(where.target) if where.kind == "parquet" else None)


def _read_parquet(where: Location, columns: Iterable[str] | None) -> Any:
    import pyarrow as pa
    import pyarrow.dataset as ds

    path = Path(where.target)
    if not path.exists():
        raise NativeError(Msg("the Parquet file {path} does not exist", path=where.text) if path.suffix else
                          Msg("the Parquet folder {path} does not exist", path=where.text),
                          Msg("correct the path (relative paths start at the plan's folder)"))
    try:
        dataset = ds.dataset(str(path), format="parquet", partitioning="hive",
                             exclude_invalid_files=True)
        names = wanted_columns(dataset.schema.names, columns)
        return dataset.to_table(columns=names)
    except (pa.ArrowInvalid, OSError) as e:
        raise NativeError(Msg("{path} cannot be read as Parquet: {error}", path=where.text, error=str(e)),
                          Msg("point the table at a Parquet file or a folder of them (as Spark writes)")) from None


def _frame(data: Any) -> pd.DataFrame:
    """Arrow data as the object columns a Table holds (None for a null), indexed by record number."""
    import pyarrow as pa

    frame = pd.DataFrame({c: _series(data.column(c), pa) for c in data.column_names})
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame


def _series(values: Any, pa: Any) -> pd.Series:
    t = values.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return values.cast(pa.float64()).to_pandas()  # numbers pass straight through the converters
    if pa.types.is_timestamp(t) and t.tz is not None:  # an instant: the wall-clock time of its zone
        import pyarrow.compute as pc

        return pc.local_timestamp(values).cast(pa.timestamp("us")).to_pandas()
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return values.cast(pa.timestamp("us")).to_pandas()
    return pd.Series(values.to_pylist(), dtype=object)


def load_native(
    entries: Iterable[tuple[str | None, str | Path]],
    problems: Problems,
    *,
    engine: str = "duckdb",
    columns: dict[str, set[str]] | None = None,
    base: Path | None = None,
    session: Any = None,
    at: dict[str, Any] | None = None,
) -> dict[str, Table]:
    """Read native tables: ``entries`` are (name or None for the default name, location text).

    ``columns`` maps case-folded table names to the columns their sources use (a table no source
    uses is not read). Problems (unreachable, unreadable, a name bound twice) go to ``problems``,
    located at ``at`` (a Sources sheet row) or else at the location, with the fix.
    """
    tables: dict[str, Table] = {}
    for name, text in entries:
        try:
            where = location(text, base)
            if where is None:
                raise NativeError(Msg("{text} is neither a Parquet file or folder nor spark:db.table", text=str(text)),
                                  Msg("bind tables to Parquet (file.parquet, a folder of them) or "
                                      "spark:database.table"))
            table_name = name or where.default_name
            key = table_name.casefold()
            if key in tables:
                problems.error(Msg("table \"{table_name}\" is bound twice: {file} and {text}",
                                   table_name=table_name, file=tables[key].file, text=where.text),
                               Msg("bind each table name once"), **(at or {"file": where.text}))
                continue
            if columns is not None and key not in columns:
                continue
            tables[key] = read_native(table_name, where, engine=engine,
                                      columns=None if columns is None else columns[key], session=session)
        except NativeError as e:
            problems.error(e.reason, e.fix, **(at or {"file": str(text)}))
    return tables


def native_digest(entry: str | Path) -> str | None:
    """A sha256 of a ``--data`` entry's Parquet files (names and bytes, in name order), for manifest.json;
    None for a Spark catalog table (its data cannot be hashed from here) or a bad entry."""
    import hashlib

    got = binding(str(entry))
    text = got[1] if got is not None and not Path(entry).exists() else str(entry)
    try:
        where = location(text)
    except NativeError:
        return None
    if where is None or where.kind != "parquet" or not Path(where.target).exists():
        return None
    root = Path(where.target)
    files = sorted(q for q in root.rglob("*") if q.is_file()) if root.is_dir() else [root]
    h = hashlib.sha256()
    for q in files:
        h.update(str(q.relative_to(root) if root.is_dir() else q.name).encode("utf-8") + b"\0")
        with q.open("rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def is_native(entry: str | Path) -> bool:
    """Whether a ``--data`` entry (``NAME=LOCATION`` or a plain one) is a native table (Parquet, ``spark:``,
    or a malformed ``spark:`` name, reported when read) rather than files."""
    got = binding(str(entry))
    text = got[1] if got is not None and not Path(entry).exists() else str(entry)
    try:
        return location(text) is not None
    except NativeError:
        return True
