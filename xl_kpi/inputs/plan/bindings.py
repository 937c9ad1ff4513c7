"""The plan's Sources sheet (ru ``Источники``): which file each table name of ``KPIs.source`` reads
(table, path, optional sheet, encoding, separator), and its Rates sheet (``Курсы``), both read into
the plan (:class:`~xl_kpi.inputs.datafiles.DataFile` s, :class:`~xl_kpi.inputs.rates.Rates`).
"""

from __future__ import annotations

import codecs

from xl_kpi.i18n import Msg
from xl_kpi.inputs.datafiles import DataFile
from xl_kpi.inputs.plan.columns import _col, _optional_text
from xl_kpi.inputs.plan.model import Plan
from xl_kpi.inputs.plan.schema import SHEETS
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.rates import Rates, read_rates

_SEPARATORS = {";": ";", ",": ",", "\\t": "\t", "tab": "\t", "табуляция": "\t", "|": "|",
               "semicolon": ";", "comma": ",", "точка с запятой": ";", "запятая": ","}


def _bindings(plan: Plan, problems: Problems) -> list[DataFile]:
    """The Sources sheet, row by row: an empty table or path, an unknown encoding or separator, a table
    named twice are errors at their cells."""
    t = plan.tables.get("Sources")
    if t is None or t.frame.empty:
        return []
    text = {c.name: _optional_text(plan, "Sources", c.name) for c in SHEETS["Sources"].columns}
    out: list[DataFile] = []
    seen: dict[str, int] = {}
    for r in t.frame.index:
        table, path = text["table"][r], text["path"][r]
        if not table and not path:
            continue
        ok = True
        for name, value in (("table", table), ("path", path)):
            if not value:
                _, header = _col(plan, "Sources", name)
                problems.error(Msg("the {name} is empty", name=name),
                               Msg("fill in the {name} or delete the row", name=name), **t.at(r, header))
                ok = False
        encoding = text["encoding"][r] or None
        if encoding:
            try:
                codecs.lookup(encoding)
            except LookupError:
                _, header = _col(plan, "Sources", "encoding")
                problems.error(Msg("unknown encoding \"{encoding}\"", encoding=encoding),
                               Msg("write utf-8, cp1251 (windows-1251) or utf-16, or leave it empty to let xl_kpi "
                                                                     "guess"), **t.at(r, header))
                ok = False
        sep = text["separator"][r] or None
        if sep is not None:
            if sep.casefold() not in _SEPARATORS and len(sep) != 1:
                _, header = _col(plan, "Sources", "separator")
                problems.error(Msg("unknown separator \"{sep}\"", sep=sep),
                               Msg("write \";\", \",\", tab or leave it empty to let xl_kpi guess"), **t.at(r, header))
                ok = False
            sep = _SEPARATORS.get(sep.casefold(), sep)
        key = table.casefold()
        if ok and key in seen:
            _, header = _col(plan, "Sources", "table")
            problems.error(Msg("table \"{table}\" is bound twice (first in row {seen})", table=table,
                               seen=seen[key]),
                           Msg("keep one row per table"), **t.at(r, header))
            ok = False
        if ok:
            seen[key] = int(r)
            _, pheader = _col(plan, "Sources", "path")
            out.append(DataFile(table, path, text["sheet"][r] or None, encoding, sep,
                                tuple(t.at(r, pheader).items())))
    return out


def _rates(plan: Plan, problems: Problems) -> Rates:
    t = plan.tables.get("Rates")
    columns = {c.name: _col(plan, "Rates", c.name)[1] for c in SHEETS["Rates"].columns} if t is not None else {}
    return read_rates(t, columns, plan.settings.currency, problems)
