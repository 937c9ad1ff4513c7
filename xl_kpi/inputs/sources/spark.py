"""Spark as the query engine: :class:`SparkBackend` runs the compiled sources (Ibis expressions) on
PySpark, in local mode or on the cluster of an existing session, and :func:`read_spark_table` reads a
catalog table or Parquet through Spark (see :mod:`xl_kpi.inputs.sources.native`).

The session is the active one (``spark-submit``, a notebook) if there is one, else a local one made
once per process: master ``XL_KPI_SPARK_MASTER`` (default ``local[2]``), few shuffle partitions, no UI,
time zone ``XL_KPI_SPARK_TIMEZONE`` (default UTC). pyspark, ibis and Java are needed only here and are
looked for lazily: without them a run with the Spark engine stops with :class:`SparkUnavailable` saying
what to install.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xl_kpi.i18n import Join, Msg
from xl_kpi.inputs.sources.locations import Location, NativeError, wanted_columns

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pyarrow as pa

__all__ = ["SparkBackend", "SparkUnavailable", "read_spark_table", "spark_frame", "spark_session"]

MASTER = "XL_KPI_SPARK_MASTER"
TIMEZONE = "XL_KPI_SPARK_TIMEZONE"
"""The time zone of the local session (default UTC): Spark TIMESTAMP values are read as wall-clock time there."""
_lock = threading.Lock()
_session: Any = None


class SparkUnavailable(NativeError):
    """The Spark engine was asked for, but pyspark, ibis or Java is missing (or Spark did not start)."""


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def spark_session() -> Any:
    """The active SparkSession, or the local one of this process (made on first use)."""
    global _session
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(
            Msg("the Spark engine needs pyspark, which is not installed"),
            Msg("pip install 'xl_kpi[spark]' (and Java 17), or run with --engine duckdb"),
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    with _lock:
        if _session is not None:
            return _session
        if _java() is None:
            raise SparkUnavailable(
                Msg("the Spark engine needs Java, and no java was found (JAVA_HOME or PATH)"),
                Msg("install Java 17 (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME; "
                    "or run with --engine duckdb"),
            )
        try:
            _session = (
                SparkSession.builder.master(os.environ.get(MASTER, "local[2]")).appName("xl-kpi")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "4")
                .config("spark.sql.session.timeZone", os.environ.get(TIMEZONE) or "UTC")
                .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                .getOrCreate()
            )
        except Exception as e:  # py4j/JVM start-up failures come in many types
            raise SparkUnavailable(Msg("Spark did not start: {error}",
                                       error=str(e).splitlines()[0] if str(e) else type(e).__name__),
                                   Msg("check Java 17 and {variable}, or run with --engine duckdb",
                                       variable=MASTER)) from None
        _session.sparkContext.setLogLevel("ERROR")
        return _session


def _ibis() -> Any:
    try:
        import ibis
    except ImportError:
        raise SparkUnavailable(Msg("the Spark engine needs ibis-framework, which is not installed"),
                               "pip install 'xl_kpi[spark]'") from None
    return ibis


class SparkBackend:
    """Compiled sources executed by Spark through Ibis' PySpark backend (same expressions as DuckDB)."""

    name = "spark"

    def __init__(self, session: Any = None) -> None:
        ibis = _ibis()
        self.session = session if session is not None else spark_session()
        # Tables reach Spark through Arrow: without it, pandas' conversion turns empty cells into NaN values
        # (an empty 'Решено' would count as filled).
        self.session.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
        self._ibis = ibis
        self.con: Any = ibis.pyspark.connect(self.session)

    def table(self, data: pa.Table) -> ir.Table:
        """Arrow data as an Ibis table; Spark receives it as a temporary view when a query runs."""
        return self._ibis.memtable(data)

    def execute(self, expr: ir.Table) -> pa.Table:
        return self.con.to_pyarrow(expr)


def read_spark_table(where: Location, columns: Iterable[str] | None = None, *, session: Any = None) -> pa.Table:
    """The columns sources use of a catalog table or a Parquet location, read by Spark onto this machine
    (Arrow): only for the sources that need the rows here (``for team``, currencies)."""
    return spark_frame(where, columns, session=session).toArrow()


def spark_frame(where: Location, columns: Iterable[str] | None = None, *, session: Any = None) -> Any:
    """The columns sources use of a catalog table or a Parquet location, as a Spark DataFrame (nothing
    read yet). Raises :class:`NativeError` for a missing table or an unreadable location."""
    spark = session if session is not None else spark_session()
    if where.kind == "spark":
        if not spark.catalog.tableExists(where.target):
            db, _, _ = where.target.rpartition(".")
            raise NativeError(
                Msg("the Spark catalog has no table {table}{known}", table=where.target,
                    known=_known_tables(spark, db or None)),
                Msg("correct the name after spark: (spark:database.table), or create the table in Spark"),
            )
        frame = spark.read.table(where.target)
    else:
        if not Path(where.target).exists():
            raise NativeError(Msg("the Parquet location {path} does not exist", path=where.text),
                              Msg("correct the path (relative paths start at the plan's folder)"))
        try:
            frame = spark.read.option("recursiveFileLookup", "false").parquet(where.target)
        except Exception as e:  # AnalysisException and friends from the JVM
            raise NativeError(Msg("Spark cannot read {path} as Parquet: {error}", path=where.text,
                                  error=str(e).splitlines()[0]),
                              Msg("point the table at a Parquet file or a folder of them")) from None
    names = wanted_columns(frame.columns, None if columns is None else list(columns))
    return frame.select(*[frame[c] for c in names])


def _known_tables(spark: Any, db: str | None) -> Msg | str:
    try:
        names = sorted(f"{t.namespace[0]}.{t.name}" if t.namespace else t.name
                       for t in spark.catalog.listTables(db) if not t.isTemporary)
    except Exception:  # an unknown database
        return Msg(" (no database {db})", db=db) if db else ""
    known = Join(", ", names[:20]) if names else Msg("none")
    return Msg(" (tables in {db}: {names})", db=db, names=known) if db else Msg(" (tables: {names})", names=known)
