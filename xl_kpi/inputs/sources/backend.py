"""Where compiled sources run: a :class:`Backend` turns Arrow data into an Ibis table and executes
Ibis expressions. :class:`DuckDBBackend` (the default) runs them in an embedded DuckDB; another
engine (Spark) plugs in by implementing the same two methods.

Ibis and DuckDB are imported lazily: the engine, the public API and udfs.py import without them.
Tables are given to DuckDB as ``ibis.memtable`` (Ibis 12 with DuckDB 2 fails in ``create_table`` with a
"DROP VIEW IF EXISTS" syntax error), which DuckDB reads from Arrow without copying.
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
    """The embedded default: one in-memory DuckDB connection per backend."""

    def __init__(self, threads: int | None = None) -> None:
        import ibis

        self._ibis = ibis
        self.con: Any = ibis.duckdb.connect(**({"threads": threads} if threads else {}))

    def table(self, data: pa.Table) -> ir.Table:
        return self._ibis.memtable(data)

    def execute(self, expr: ir.Table) -> pa.Table:
        return self.con.to_pyarrow(expr)


def preload() -> None:
    """Start importing Ibis and DuckDB in a background thread (about 2 s), so that the import overlaps
    with reading the data files (pyarrow releases the GIL while it parses)."""
    import threading

    def load() -> None:
        try:
            import ibis
            import ibis.backends.duckdb  # noqa: F401
        except ImportError:  # reported where the backend is made
            pass

    threading.Thread(target=load, name="xl_kpi-preload-ibis", daemon=True).start()


def default_backend() -> Backend:
    """A new :class:`DuckDBBackend`."""
    return DuckDBBackend()
