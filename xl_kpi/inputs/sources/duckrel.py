"""Compiled sources on DuckDB without Ibis: the few Ibis operations the compiler and the evaluator use
(:class:`Expr` for column expressions, :class:`Relation` for tables), built with DuckDB's own expression
and relation API, so a validation on the default engine neither imports Ibis (~1 s) nor has every query
compiled by it (~15-50 ms each).

Each operation writes what Ibis writes for DuckDB (``COALESCE(x, FALSE)`` for ``fill_null``, ``CASE``
for ``ifelse``, ``QUANTILE_CONT(x, 0.5)`` for the median, ``EPOCH(CAST(x AS TIMESTAMP))``…), so both give
the same results (tests/test_compiled_sources.py runs every kind of term both ways). Column names are the
compiler's (``c0``, ``employee_id``…); values enter as DuckDB literals (its API escapes them), never as
SQL text. The Spark engine and the rows of the cards (:mod:`~xl_kpi.inputs.sources.drill`) keep Ibis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

_TYPES = {"float64": "DOUBLE", "timestamp": "TIMESTAMP", "string": "VARCHAR", "boolean": "BOOLEAN",
          "int64": "BIGINT"}
"""Ibis type names as DuckDB's."""


def _duck() -> Any:
    import duckdb

    return duckdb


def _e(value: Any) -> Any:
    """A DuckDB expression for an operand: an :class:`Expr`'s, or a Python value as a literal."""
    if isinstance(value, Expr):
        return value.e
    d = _duck()
    if isinstance(value, float):
        return d.lit(value).cast("DOUBLE")  # 5.0 would read as DECIMAL(2,1)
    return d.lit(value)


class Expr:
    """A column expression with the Ibis methods the compiler uses."""

    __slots__ = ("e",)

    def __init__(self, e: Any) -> None:
        self.e = e

    # -- logic and comparisons
    def __and__(self, other: Any) -> Expr:
        return Expr(self.e & _e(other))

    def __or__(self, other: Any) -> Expr:
        return Expr(self.e | _e(other))

    def __invert__(self) -> Expr:
        return Expr(~self.e)

    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return Expr(self.e == _e(other))

    def __ne__(self, other: Any) -> Expr:  # type: ignore[override]
        return Expr(self.e != _e(other))

    def __lt__(self, other: Any) -> Expr:
        return Expr(self.e < _e(other))

    def __le__(self, other: Any) -> Expr:
        return Expr(self.e <= _e(other))

    def __gt__(self, other: Any) -> Expr:
        return Expr(self.e > _e(other))

    def __ge__(self, other: Any) -> Expr:
        return Expr(self.e >= _e(other))

    __hash__ = None  # type: ignore[assignment]

    # -- arithmetic
    def __add__(self, other: Any) -> Expr:
        return Expr(self.e + _e(other))

    def __sub__(self, other: Any) -> Expr:
        return Expr(self.e - _e(other))

    def __mul__(self, other: Any) -> Expr:
        return Expr(self.e * _e(other))

    def __truediv__(self, other: Any) -> Expr:
        return Expr(self.e / _e(other))

    def __radd__(self, other: Any) -> Expr:
        return Expr(_e(other) + self.e)

    def __rsub__(self, other: Any) -> Expr:
        return Expr(_e(other) - self.e)

    def __rmul__(self, other: Any) -> Expr:
        return Expr(_e(other) * self.e)

    def __rtruediv__(self, other: Any) -> Expr:
        return Expr(_e(other) / self.e)

    # -- scalar functions
    def isnull(self) -> Expr:
        return Expr(self.e.isnull())

    def notnull(self) -> Expr:
        return Expr(self.e.isnotnull())

    def fill_null(self, value: Any) -> Expr:
        return Expr(_duck().coalesce(self.e, _e(value)))

    def ifelse(self, yes: Any, no: Any) -> Expr:
        return ifelse(self, yes, no)

    def cast(self, type_: str) -> Expr:
        return Expr(self.e.cast(_TYPES.get(type_, type_)))

    def floor(self) -> Expr:
        return Expr(_duck().fn("floor", self.e))

    def strftime(self, fmt: str) -> Expr:
        return Expr(_duck().fn("strftime", self.e, _duck().lit(fmt)))

    def epoch_seconds(self) -> Expr:
        return Expr(_duck().fn("epoch", self.e.cast("TIMESTAMP")))

    # -- aggregates
    def count(self) -> Expr:
        return Expr(_duck().fn("count", self.e))

    def nunique(self) -> Expr:
        return Expr(self.e.n_unique())

    def sum(self) -> Expr:
        return Expr(_duck().fn("sum", self.e))

    def mean(self) -> Expr:
        return Expr(_duck().fn("avg", self.e))

    def min(self) -> Expr:
        return Expr(_duck().fn("min", self.e))

    def max(self) -> Expr:
        return Expr(_duck().fn("max", self.e))

    def median(self) -> Expr:
        return Expr(_duck().fn("quantile_cont", self.e, _duck().lit(0.5)))


def col(name: str) -> Expr:
    """The column ``name`` of the relation an expression is used on (a name the compiler made)."""
    return Expr(_duck().col(name))


def literal(value: Any, type: str | None = None) -> Expr:  # Ibis' name
    """A value as a typed DuckDB literal."""
    lit = _duck().lit(value)
    return Expr(lit.cast(_TYPES.get(type, type)) if type else lit)


def null(type_: str) -> Expr:
    """A typed NULL."""
    return Expr(_duck().lit(None).cast(_TYPES.get(type_, type_)))


def ifelse(cond: Any, yes: Any, no: Any) -> Expr:
    """``CASE WHEN cond THEN yes ELSE no END`` (a NULL condition takes ``no``, as in Ibis)."""
    return Expr(_duck().when(_e(cond)).then(_e(yes)).otherwise(_e(no)))


class Kit:
    """What :class:`~xl_kpi.inputs.sources.compile.Term` needs from an expression language: columns,
    literals, typed NULLs and ``ifelse``; this one builds DuckDB expressions."""

    native = True

    def __init__(self) -> None:
        self._ = _Columns()
        self.literal = literal
        self.null = null
        self.ifelse = ifelse


class _Columns:
    """``kit._["c0"]``: a column, as ``ibis._["c0"]``."""

    def __getitem__(self, name: str) -> Expr:
        return col(name)


class Relation:
    """A DuckDB relation with the Ibis table methods the evaluator uses (filter, select, group_by,
    aggregate); nothing runs until :meth:`to_arrow`."""

    __slots__ = ("rel",)

    def __init__(self, rel: Any) -> None:
        self.rel = rel

    def filter(self, cond: Expr) -> Relation:
        return Relation(self.rel.filter(cond.e))

    def select(self, *names: str, **named: Any) -> Relation:
        items = [_duck().col(n) for n in names] + [_e(v).alias(k) for k, v in named.items()]
        return Relation(self.rel.select(*items))

    def aggregate(self, **named: Any) -> Relation:
        return Relation(self.rel.aggregate([_e(v).alias(k) for k, v in named.items()]))

    def group_by(self, keys: list[str] | str) -> _Grouped:
        return _Grouped(self, [keys] if isinstance(keys, str) else list(keys))

    def to_arrow(self) -> pa.Table:
        return self.rel.to_arrow_table()


class _Grouped:
    def __init__(self, table: Relation, keys: list[str]) -> None:
        self.table, self.keys = table, keys

    def aggregate(self, **named: Any) -> Relation:
        d = _duck()
        items = [d.col(k) for k in self.keys] + [_e(v).alias(k) for k, v in named.items()]
        # the keys are the compiler's own names (employee_id, period), checked plain: never user text
        assert all(k.isidentifier() for k in self.keys), self.keys
        return Relation(self.table.rel.aggregate(items, ", ".join(f'"{k}"' for k in self.keys)))
