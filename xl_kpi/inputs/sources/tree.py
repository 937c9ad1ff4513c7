"""A parsed source: :class:`Source` (one aggregation or a ratio of two, times a factor), :class:`Agg`,
and the conditions of ``where`` (:class:`Compare`, :class:`IsIn`, :class:`IsEmpty`, :class:`Not`,
:class:`BoolOp`) with their literal :class:`Value` s. ``str()`` of each gives source text back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from xl_kpi.inputs.sources.printing import _is_plain, _name, _plain_number, _quote, _table_name
from xl_kpi.inputs.sources.tokens import _BOOL_WORDS, _CURRENCY_OFF, DEFAULT_BY


@dataclass(frozen=True)
class Value:
    """A literal in a condition: number, date (Timestamp), yes/no flag, or text."""

    kind: Literal["number", "date", "flag", "text"]
    value: Any
    text: str

    def __str__(self) -> str:
        if self.kind != "text":
            return self.text
        plain = _is_plain(self.text) and self.text.casefold() not in _BOOL_WORDS
        return self.text if plain else _quote(self.text)


@dataclass(frozen=True)
class Compare:
    column: str
    op: str
    value: Value

    def __str__(self) -> str:
        return f"{_name(self.column)} {self.op} {self.value}"


@dataclass(frozen=True)
class IsIn:
    column: str
    values: tuple[Value, ...]
    negate: bool = False

    def __str__(self) -> str:
        return f"{_name(self.column)} {'not in' if self.negate else 'in'} ({', '.join(map(str, self.values))})"


@dataclass(frozen=True)
class IsEmpty:
    column: str
    negate: bool = False

    def __str__(self) -> str:
        return f"{_name(self.column)} is {'not empty' if self.negate else 'empty'}"


@dataclass(frozen=True)
class Not:
    cond: Cond

    def __str__(self) -> str:
        return f"not ({self.cond})"


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    left: Cond
    right: Cond

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


Cond = Compare | IsIn | IsEmpty | Not | BoolOp


@dataclass(frozen=True)
class Agg:
    """One aggregation over one table, per employee (and per period when ``dated`` is set)."""

    func: str  # count, distinct, sum, mean, min, max, median, nps
    table: str
    column: str | None = None
    end_column: str | None = None  # durations: from ``column`` to ``end_column``
    unit: str | None = None  # durations: minutes, hours or days
    where: Cond | None = None
    by: str | None = None
    dated: str | None = None
    team: bool = False
    """``for team``: an employee's fact over the rows of their whole reporting subtree (own rows included)."""
    currency: str | None = None
    """The currency column (amounts converted with the plan's Rates); None: a column named Currency/Валюта
    if the table has one; ``CURRENCY_OFF`` (``currency none``): no conversion."""

    @property
    def empty_value(self) -> float:
        """The value for an employee with no rows: 0 for count, distinct and sum; otherwise none."""
        return 0.0 if self.func in ("count", "distinct") or (self.func == "sum" and self.unit is None) else np.nan

    def columns(self) -> list[str]:
        """Every column this aggregation reads."""
        cols = [c for c in (self.by or DEFAULT_BY, self.dated, self.column, self.end_column, self.currency) if c]
        return cols + _cond_columns(self.where)

    def __str__(self) -> str:
        table = _table_name(self.table)
        if self.func == "count":
            head = f"count {table}"
        elif self.unit:
            head = f"{self.func} {self.unit} {table}.{_name(self.column or '')} to {_name(self.end_column or '')}"
        else:
            head = f"{self.func} {table}.{_name(self.column or '')}"
        if self.where is not None:
            head += f" where {self.where}"
        if self.by:
            head += f" by {_name(self.by)}"
        if self.dated:
            head += f" dated {_name(self.dated)}"
        if self.currency is not None:
            plain = self.currency.casefold() not in _CURRENCY_OFF
            head += " currency " + (("none" if not self.currency else _name(self.currency)) if plain
                                    else _quote(self.currency))
        if self.team:
            head += " for team"
        return head


@dataclass(frozen=True)
class Source:
    """A parsed source: one aggregation, or a ratio of two, times an optional factor."""

    numerator: Agg
    denominator: Agg | None = None
    factor: float = 1.0
    text: str = field(default="", compare=False)

    @property
    def terms(self) -> list[Agg]:
        return [self.numerator] + ([self.denominator] if self.denominator is not None else [])

    @property
    def tables(self) -> list[str]:
        return list(dict.fromkeys(t.table for t in self.terms))

    @property
    def dated(self) -> bool:
        return any(t.dated for t in self.terms)

    def __str__(self) -> str:
        if self.denominator is None:
            out = str(self.numerator)
        else:
            out = f"({self.numerator}) / ({self.denominator})"
        return out + (f" * {_plain_number(self.factor)}" if self.factor != 1.0 else "")


def _cond_columns(cond: Cond | None) -> list[str]:
    if cond is None:
        return []
    if isinstance(cond, (Compare, IsIn, IsEmpty)):
        return [cond.column]
    if isinstance(cond, Not):
        return _cond_columns(cond.cond)
    return _cond_columns(cond.left) + _cond_columns(cond.right)
