"""People by the names the CRM uses: an export's ``by`` column matched to employees by employee_id or
by one of their aliases (Employees ``aliases``: names, logins, CRM user ids separated by ``;``).

* An id matches as every id does (:mod:`xl_kpi.inputs.identity`: exactly, as written).
* An alias matches trimmed, with letter case, spacing and ё/е ignored (:func:`alias_key`).
* An alias that points to two employees (two employees share it, or it is another employee's id) is
  an error in the plan naming both rows and the value; such a value then matches nobody (pay is never
  given to one of two people by their order).
* A value that matches nobody counts for nobody, and is never dropped silently: :meth:`People.unmatched_warning`
  gives one warning per table and column, listing the values and their row counts (and, when they look
  like people's names, that aliases are the fix).

:meth:`People.transform` is the table-level step the evaluator calls: a copy of the table whose ``by``
column holds employee ids (unmatched values kept as written, so they group apart and are left out).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from xl_kpi.i18n import Join, Msg, Plural
from xl_kpi.inputs.cells import to_ids
from xl_kpi.inputs.identity import alike_hint, id_key, key_index
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.tables import Table

__all__ = ["ALIAS_SEPARATOR", "People", "alias_key", "build_people", "split_aliases"]

ALIAS_SEPARATOR = ";"
_NAME_LIKE = re.compile(r"^[^\W\d_]+\.?(?:[ \-][^\W\d_]+\.?)+$")
"""Two or more words of letters ("Анна Петрова", "Полина Б."): a person's name rather than an id."""
SHOWN = 10
"""Unmatched values listed in a warning (the rest are counted)."""


def alias_key(value: Any) -> str:
    """An alias as it is compared: trimmed, case-folded, spacing collapsed, ё as е.

    >>> alias_key(" Пётр  Иванов ") == alias_key("петр иванов")
    True
    """
    return id_key(value).replace("ё", "е")


def split_aliases(text: Any) -> list[str]:
    """The aliases of one cell: ``;``-separated, trimmed, empty ones dropped."""
    if text is None or (isinstance(text, float) and text != text):
        return []
    return [a.strip() for a in str(text).split(ALIAS_SEPARATOR) if a.strip()]


@dataclass
class People:
    """Who a value in an export's ``by`` column is: employee ids and unambiguous aliases."""

    ids: frozenset[str] = frozenset()
    aliases: dict[str, str] = field(default_factory=dict)
    """:func:`alias_key` → employee_id, only for aliases that point to one employee."""
    ambiguous: set[str] = field(default_factory=set)
    """:func:`alias_key` of values that point to two employees (reported in the plan)."""
    named: tuple[Sequence[str], Sequence[Any]] = ((), ())
    """(employee ids, their names), in Employees order: what :attr:`names` is made of, when a hint first needs it."""
    unmatched: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    """(table name, column) → unmatched value → rows."""
    _done: dict[tuple[str, str], Table] = field(default_factory=dict, repr=False)
    _warned: set[tuple[str, str]] = field(default_factory=set, repr=False)
    _names: dict[str, list[str]] | None = field(default=None, repr=False)

    @property
    def names(self) -> dict[str, list[str]]:
        """:func:`alias_key` of an employee's name → employee ids (only for hints: names never match). Made on first
        use: a key and a list for each of 100,000 employees held ~30 MB through a run that gave no hint."""
        if self._names is None:
            self._names = {}
            for eid, name in zip(*self.named, strict=True):
                if name:
                    self._names.setdefault(alias_key(name), []).append(eid)
        return self._names

    def fresh(self) -> People:
        """The same people with nothing transformed or warned yet (one per run over the data)."""
        return People(self.ids, self.aliases, self.ambiguous, self.named, _names=self._names)

    def resolve(self, values: pd.Series) -> pd.Series:
        """Employee ids for the values (as :func:`~xl_kpi.inputs.cells.to_ids` reads them); a value that
        matches nobody is kept as written; empty stays empty."""
        ids = to_ids(values)
        mapping: dict[str, str] = {}
        for v in ids.dropna().unique():
            v = str(v)
            if v in self.ids:
                mapping[v] = v
                continue
            k = alias_key(v)
            mapping[v] = self.aliases[k] if k in self.aliases and k not in self.ambiguous else v
        return ids.map(mapping).where(ids.notna()).astype(object)

    def transform(self, table: Table, column: str) -> Table:
        """The table with ``column`` holding employee ids (see module doc); unmatched values are counted."""
        key = (table.name, column)
        if key not in self._done and hasattr(table, "with_mapping"):  # a table that stays in Spark
            self._done[key] = self._transform_cluster(table, column)
        if key not in self._done and getattr(table, "data", None) is not None:
            self._done[key] = self._transform_arrow(table, column)
        if key not in self._done:
            ids = to_ids(table.frame[column])
            resolved = self.resolve(table.frame[column])
            missed = ids.notna() & ~resolved.isin(self.ids)
            self.unmatched[key] = Counter(str(v) for v in ids[missed])
            frame = table.frame.copy(deep=False)
            frame[column] = resolved
            self._done[key] = replace(table, frame=frame)
        return self._done[key]

    def _transform_arrow(self, table: Any, column: str) -> Table:
        """:meth:`transform` for an :class:`~xl_kpi.inputs.tables.ArrowTable`: each distinct value is resolved
        once and the column rebuilt in Arrow (no pandas frame of the whole table)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(table.data.column(column).combine_chunks())
        values = pd.Series(encoded.dictionary.to_pylist(), dtype=object)
        ids, resolved = to_ids(values), self.resolve(values)
        missed = (ids.notna() & ~resolved.isin(self.ids)).to_numpy()
        counts = np.bincount(encoded.indices.fill_null(0).to_numpy(), minlength=len(values)) if len(values) else []
        if encoded.indices.null_count and len(values):
            counts[0] -= encoded.indices.null_count  # the nulls were counted as the first value
        unmatched: Counter[str] = Counter()
        for i in np.flatnonzero(missed):  # two spellings (" Анна" and "Анна") are one id: counts add up
            if counts[i]:
                unmatched[str(ids.iloc[i])] += int(counts[i])
        self.unmatched[(table.name, column)] = unmatched
        column_values = pc.take(pa.array(resolved.to_numpy(dtype=object), pa.string(), from_pandas=True),
                                encoded.indices)
        at = table.data.column_names.index(column)
        return table.with_data(table.data.set_column(at, column, column_values))

    def _transform_cluster(self, table: Any, column: str) -> Table:
        """:meth:`transform` for a table that stays in Spark: the distinct values and their counts come
        back (one small query), each is resolved once, and Spark maps the column by that table."""
        counts = table.value_counts(column)
        values = counts["value"].astype(object)
        ids, resolved = to_ids(values), self.resolve(values)
        unmatched: Counter[str] = Counter()
        for v, r, n in zip(ids, resolved, counts["n"], strict=True):
            if isinstance(v, str) and r not in self.ids and n:
                unmatched[v] += int(n)
        self.unmatched[(table.name, column)] = unmatched
        mapping = {str(k): str(r) for k, r in zip(counts["key"], resolved, strict=True)
                   if k is not None and isinstance(r, str)}
        return table.with_mapping(column, mapping)

    def unmatched_warning(self, table: Table, column: str, problems: Problems, at: Mapping[str, Any]) -> None:
        """One warning for a table's column: the values that match nobody and their row counts (once)."""
        key = (table.name, column)
        counts = self.unmatched.get(key)
        if not counts or key in self._warned:
            return
        self._warned.add(key)
        rows = sum(counts.values())
        alike = key_index(sorted(self.ids))
        listed = Join(", ", [Plural('"{v}" ({n} row){hint}', '"{v}" ({n} rows){hint}', n, v=v,
                                    hint=alike_hint(v, alike)) for v, n in counts.most_common(SHOWN)])
        more = Msg(" and {n} more", n=len(counts) - SHOWN) if len(counts) > SHOWN else ""
        names = [v for v in counts if _NAME_LIKE.match(v) or alias_key(v) in self.names]
        message: Msg = Plural("{file}, column {column}: {n} row names people who are not in Employees (neither an "
                              "employee_id nor an alias), which are not counted: {listed}{more}",
                              "{file}, column {column}: {n} rows name people who are not in Employees (neither an "
                              "employee_id nor an alias), which are not counted: {listed}{more}", rows,
                              file=table.file, column=column, listed=listed, more=more)
        fix = Msg("check the values in the raw data (a typo? someone who left?), or add the employees")
        if names:
            known = [Msg('"{v}" is the name of {who}', v=v, who=", ".join(self.names[alias_key(v)])) for v in names
                     if alias_key(v) in self.names][:3]
            message = Msg("{message}{names}", message=message, names=Plural(
                "; {n} of these looks like a person's name, and no alias in Employees matches them{known}",
                "; {n} of these look like people's names, and no alias in Employees matches them{known}",
                len(names), known=Msg(" ({known})", known=Join("; ", known)) if known else ""))
            fix = Msg('add the names as the CRM writes them to the Employees column aliases (Псевдонимы), several '
                      'separated by ";" (e.g. "{example}"); names are never matched by themselves (namesakes)',
                      example=names[0])
        problems.warning(message, fix, **dict(at))


def build_people(employees: pd.DataFrame, problems: Problems, table: Table | None = None,
                 header: str | None = None) -> People:
    """:class:`People` from the checked Employees frame (employee_id, name, aliases, row); an alias that
    points to two employees is an error at its cell (``header`` of ``table``), naming both rows and the value."""
    ids = [str(i) for i in employees["employee_id"]]
    rows = dict(zip(ids, (int(r) for r in employees["row"]), strict=True))
    people = People(ids=frozenset(ids), named=(ids, employees["name"].tolist()))
    id_keys: dict[str, str] = {}
    for eid in ids:
        id_keys.setdefault(alias_key(eid), eid)
    if "aliases" not in employees:
        return people
    owner: dict[str, str] = {}
    for eid, cell in zip(ids, employees["aliases"], strict=True):
        for alias in split_aliases(cell):
            k = alias_key(alias)
            other = owner.get(k, id_keys.get(k))
            if other is None or other == eid:
                owner[k] = eid
                people.aliases[k] = eid
                continue
            people.ambiguous.add(k)
            what = (Msg("the employee_id of") if id_keys.get(k) == other and k not in people.aliases
                    else Msg("also an alias of"))
            where = table.at(rows[eid], header) if table is not None else {"sheet": "Employees", "row": rows[eid]}
            problems.error(
                Msg("the alias \"{alias}\" of employee {eid} (row {row}) is {what} employee {other} "
                    "(row {row2}): rows naming \"{alias}\" could be either of them", alias=alias, eid=eid,
                    row=rows[eid], what=what, other=other, row2=rows[other]),
                Msg("keep the alias for one of the two employees only (aliases and ids must point to one person)"),
                **where)
    return people

