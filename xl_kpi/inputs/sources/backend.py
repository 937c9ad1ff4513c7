"""Where compiled sources run: a :class:`Backend` turns Arrow data into an engine table and executes
expressions over it. :class:`DuckDBBackend` (the default) runs them in an embedded DuckDB, built with
DuckDB's own API (:mod:`~xl_kpi.inputs.sources.duckrel`, no Ibis); another engine (Spark) plugs in by
implementing ``table`` and ``execute`` over Ibis expressions.

DuckDB and Ibis are imported lazily: the engine, the public API and udfs.py import without them.
Ibis tables are given to DuckDB as ``ibis.memtable`` (Ibis 12 with DuckDB 2 fails in ``create_table`` with a
"DROP VIEW IF EXISTS" syntax error); both ways DuckDB reads the Arrow data without copying.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pyarrow as pa


class Backend(Protocol):
    """What the evaluator needs from a query engine."""

    def table(self, data: pa.Table) -> ir.Table:
        """An Ibis table over Arrow ``data`` (column names chosen by the compiler, never user text)."""

    def execute(self, expr: ir.Table) -> pa.Table:
        """Run an expression; the result as an Arrow table."""


class DuckDBBackend:
    """The embedded default: one in-memory DuckDB connection per backend. The evaluator's queries are
    DuckDB relations (:meth:`relation`, :attr:`kit`: no Ibis); Ibis expressions (the cards' rows) run on an
    Ibis connection made on first use (:meth:`table`, :attr:`con`)."""

    def __init__(self, threads: int | None = None) -> None:
        import duckdb

        self._threads = threads
        self.native: Any = duckdb.connect(config={"threads": threads} if threads else {})
        self._con: Any = None

    @property
    def kit(self) -> Any:
        """The DuckDB expression language of :mod:`~xl_kpi.inputs.sources.duckrel`."""
        from xl_kpi.inputs.sources.duckrel import Kit

        return Kit()

    @property
    def con(self) -> Any:
        """The Ibis DuckDB connection (made on first use)."""
        if self._con is None:
            import ibis

            self._con = ibis.duckdb.connect(**({"threads": self._threads} if self._threads else {}))
        return self._con

    def relation(self, data: pa.Table) -> Any:
        """Arrow ``data`` as a :class:`~xl_kpi.inputs.sources.duckrel.Relation` (DuckDB reads it without copying)."""
        from xl_kpi.inputs.sources.duckrel import Relation

        return Relation(self.native.from_arrow(data))

    def table(self, data: pa.Table) -> ir.Table:
        import ibis

        return ibis.memtable(data)

    def execute(self, expr: Any) -> pa.Table:
        from xl_kpi.inputs.sources.duckrel import Relation

        if isinstance(expr, Relation):
            return expr.to_arrow()
        return self.con.to_pyarrow(expr)


def preload() -> None:
    """Start importing DuckDB in a background thread (about 0.5 s), so that the import overlaps with
    reading the data files (pyarrow releases the GIL while it parses)."""
    import threading

    def load() -> None:
        try:
            import duckdb  # noqa: F401
        except ImportError:  # reported where the backend is made
            pass

    threading.Thread(target=load, name="xl_kpi-preload-duckdb", daemon=True).start()


def default_backend() -> Backend:
    """A new :class:`DuckDBBackend`."""
    return DuckDBBackend()
