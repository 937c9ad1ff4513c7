"""The Settings sheet: period, currency, language, rounding digits and company, read from
key/value rows into a :class:`~xl_kpi.inputs.plan.model.Settings`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.period import ACCEPTED_FORMS, Period, PeriodError
from xl_kpi.i18n import Msg
from xl_kpi.inputs.cells import NumberFormatError, parse_number
from xl_kpi.inputs.plan.columns import _letter
from xl_kpi.inputs.plan.model import Settings
from xl_kpi.inputs.plan.schema import LANGUAGES, SETTINGS_KEYS, SHEETS
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.tables import Table, header_key


def _settings(grid: pd.DataFrame, table: Table | None, problems: Problems, file: str) -> Settings:
    """Settings from a two-column sheet (key, value), with or without a header row."""
    sheet = table.sheet if table is not None else "Settings"
    values: dict[str, Any] = {}
    keys = {header_key(a): k for k, aliases in SETTINGS_KEYS.items() for a in aliases}
    header_words = {header_key(a) for c in SHEETS["Settings"].columns for a in c.aliases}
    for i in range(len(grid)):
        row = grid.iloc[i]
        filled = [(j, v) for j, v in enumerate(row) if not (v is None or (isinstance(v, float) and np.isnan(v))
                                                            or (isinstance(v, str) and not v.strip()))]
        if not filled:
            continue
        (j, key_cell), rest = filled[0], filled[1:]
        key = header_key(key_cell)
        where = {"file": file, "sheet": sheet, "row": i + 1, "column": _letter(j), "header": None}
        if key in header_words:
            continue
        if key not in keys:
            problems.warning(Msg('unknown setting "{key}"', key=key_cell),
                             Msg("known settings: period, currency, language, digits, company"), **where)
            continue
        name = keys[key]
        value = rest[0][1] if rest else None
        vwhere = {**where, "column": _letter(rest[0][0]) if rest else _letter(j + 1)}
        try:
            values[name] = _setting(name, value)
        except KpiError as e:
            problems.error(Msg("setting {name}: {error}", name=name, error=e), _SETTING_FIX[name], **vwhere)
    if "language" in values:  # the language the plan asks for: its problems are shown in it too
        problems.language = values["language"]
    return Settings(**values)


_SETTING_FIX = {
    "period": Msg("write {forms}", forms=ACCEPTED_FORMS),
    "currency": Msg("write a currency code such as RUB"),
    "language": Msg("write en or ru"),
    "digits": Msg("write a whole number of decimal places, 0 to 6 (2 = kopecks)"),
    "company": Msg("write the company name"),
}


def _setting(name: str, value: Any) -> Any:
    if name == "period":
        if value is None:
            return None
        try:
            return Period.parse(value)
        except PeriodError as e:
            raise KpiError(*e.args) from None
    text = "" if value is None else str(value).strip()
    if name == "language":
        lang = LANGUAGES.get(text.casefold())
        if lang is None:
            raise KpiError(Msg('"{text}" is not a language this tool speaks', text=text))
        return lang
    if name == "digits":
        try:
            x = parse_number(value)
        except NumberFormatError as e:
            raise KpiError(*e.args) from None
        if x is None or not float(x).is_integer() or not 0 <= x <= 6:
            raise KpiError(Msg('"{value}" is not a whole number from 0 to 6', value=value))
        return int(x)
    if name == "currency":
        return text.upper() or "RUB"
    return text
