"""Team KPIs for heads (``… for team``): a table-level transform that gives each row to its employee
and to every manager above them (Employees.manager, direct and indirect), so that an aggregation per
employee becomes an aggregation over the employee's reporting subtree, own rows included.

Managers are resolved as ``distribute`` resolves them (:func:`xl_kpi.inputs.identity.resolve_managers`:
an exact employee_id, else one employee's name); an unresolvable manager ends the chain there. A cycle
in the chain (A manages B manages A) is an error at the manager cell, reported when a team source is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from xl_kpi.i18n import Msg
from xl_kpi.inputs.identity import resolve_managers
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.tables import Table

__all__ = ["Teams", "build_teams"]


@dataclass
class Teams:
    """Each employee's chain of managers, and the cycles found in it."""

    heads: dict[str, list[str]] = field(default_factory=dict)
    """employee_id → [the employee, their manager, the manager's manager, …] (a cycle is cut)."""
    cycles: list[tuple[list[str], dict[str, Any]]] = field(default_factory=list)
    """(the employees of a cycle, the location of the first one's manager cell)."""
    _done: dict[tuple[str, str], Table] = field(default_factory=dict, repr=False)
    _reported: bool = field(default=False, repr=False)

    def transform(self, table: Table, column: str, problems: Problems) -> Table:
        """The table with each row repeated once per head above its employee (``column``: employee ids);
        rows of nobody in the plan stay once. The index keeps the Excel row numbers (repeated)."""
        if self.cycles and not self._reported:
            self._reported = True
            for members, where in self.cycles:
                chain = " → ".join([*members, members[0]])
                problems.error(Msg("the manager chain goes round in a circle ({chain}), so the team of a head "
                                   "cannot be found", chain=chain),
                               Msg("correct the manager column so that the chain ends at the top manager (whose "
                                   "manager cell is empty)"), **where)
        key = (table.name, column)
        if key not in self._done:
            frame = table.frame
            who = frame[column].map(lambda v: self.heads.get(v, [v]) if isinstance(v, str) else [v])
            repeated = frame.loc[frame.index.repeat(who.str.len().to_numpy())].copy()
            repeated[column] = [h for hs in who for h in hs]
            self._done[key] = replace(table, name=f"{table.name} (for team)", frame=repeated)
        return self._done[key]


def build_teams(employees: pd.DataFrame, where: Mapping[str, dict[str, Any]] | None = None) -> Teams:
    """:class:`Teams` from the checked Employees frame (employee_id, name, manager); ``where`` maps an
    employee_id to the location of their manager cell (for the cycle error)."""
    ids = [str(i) for i in employees["employee_id"]]
    res = resolve_managers(ids, employees["name"], employees["manager"])
    parent: dict[str, str] = {}
    for eid, m in zip(ids, employees["manager"], strict=True):
        text = str(m).strip() if isinstance(m, str) else ""
        r = res.get(text)
        if r is not None and r.employee_id is not None and r.employee_id != eid:
            parent[eid] = r.employee_id
    teams = Teams()
    seen_cycles: set[frozenset[str]] = set()
    for eid in ids:
        chain = [eid]
        while chain[-1] in parent:
            nxt = parent[chain[-1]]
            if nxt in chain:
                members = chain[chain.index(nxt):]
                if frozenset(members) not in seen_cycles:
                    seen_cycles.add(frozenset(members))
                    first = min(members, key=ids.index)
                    at = members.index(first)
                    members = members[at:] + members[:at]
                    teams.cycles.append((members, dict((where or {}).get(first, {"sheet": "Employees"}))))
                break
            chain.append(nxt)
        teams.heads[eid] = chain
    return teams
