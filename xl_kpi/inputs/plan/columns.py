"""Typed columns of a plan sheet: text, numbers (with bounds), repeated or look-alike ids; every bad
cell is reported where it is.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.i18n import Msg
from xl_kpi.inputs.cells import to_ids, to_numbers
from xl_kpi.inputs.identity import id_key
from xl_kpi.inputs.plan.model import Plan
from xl_kpi.inputs.plan.schema import SHEETS
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.readers.letters import column_letter
from xl_kpi.inputs.tables import Table


def _letter(i: int) -> str:
    return column_letter(i + 1)


def _text(series: pd.Series) -> pd.Series:
    """A text column: numbers as their digits (1001.0 → '1001'), empty → ''."""
    return to_ids(series).fillna("").astype(object)


def _col(plan: Plan, sheet: str, name: str) -> tuple[Table, str | None]:
    t = plan.tables[sheet]
    return t, t.column(*SHEETS[sheet].column(name).aliases)


def _numbers(
    plan: Plan, sheet: str, name: str, problems: Problems, *, required: bool = False, default: float = np.nan,
    minimum: float | None = None, maximum: float | None = None, what: str | Msg = "",
) -> pd.Series:
    """A numeric column, each bad cell reported; empty → ``default`` (or an error when required)."""
    t, header = _col(plan, sheet, name)
    if header is None:
        return pd.Series(default, index=t.frame.index, dtype=float)
    nums, errors = to_numbers(t.frame[header])
    bad = errors.notna()
    label = what or name
    problems.cells("error", t, list(t.frame.index[bad]), header,
                   [Msg("{column}: {error}", column=name, error=m) for m in errors[bad]],
                   Msg("type the {what} as a number, e.g. 1234,5 or 40%", what=label))
    empty = nums.isna() & ~bad
    if required and empty.any():
        problems.cells("error", t, list(t.frame.index[empty]), header, Msg("{column} is empty", column=name),
                       Msg("fill in the {what}", what=label))
    elif empty.any():
        nums = nums.where(~empty, default)
    if minimum is not None:
        low = nums < minimum
        if low.any():
            problems.cells("error", t, list(t.frame.index[low]), header,
                           [Msg("{column} {value:g} is below {minimum:g}", column=name, value=v, minimum=minimum)
                            for v in nums[low]],
                           Msg("the {what} must be {minimum:g} or more", what=label, minimum=minimum))
            nums = nums.where(~low, np.nan)
    if maximum is not None:
        high = nums >= maximum
        if high.any():
            problems.cells("error", t, list(t.frame.index[high]), header,
                           [f"{name} {v:.6g} is too large to be paid to the kopeck"
                            for v in nums[high]],
                           f"the {what or name} must be below {maximum:,.0f} (Excel keeps 15 significant digits); "
                           "check for a typo".replace(",", " "))
            nums = nums.where(~high, np.nan)
    return nums


def _required_text(plan: Plan, sheet: str, name: str, problems: Problems) -> pd.Series:
    t, header = _col(plan, sheet, name)
    if header is None:
        return pd.Series("", index=t.frame.index, dtype=object)
    text = _text(t.frame[header])
    empty = text == ""
    problems.cells("error", t, list(t.frame.index[empty]), header, Msg("{column} is empty", column=name),
                   Msg("fill in the {what}", what=name))
    return text


def _optional_text(plan: Plan, sheet: str, name: str) -> pd.Series:
    t, header = _col(plan, sheet, name)
    if header is None:
        return pd.Series("", index=t.frame.index, dtype=object)
    return _text(t.frame[header])


def _duplicates(plan: Plan, sheet: str, name: str, ids: pd.Series, problems: Problems, what: str,
                ambiguous: dict[str, Any] | None = None) -> pd.Series:
    """Report repeated ids (every repeat, pointing at the first) and ids that only look alike; returns the
    'first occurrence' mask. ``ambiguous`` collects every id concerned, with why (for the results)."""
    t, header = _col(plan, sheet, name)
    dup = ids.ne("") & ids.duplicated(keep="first")
    first_row: dict[str, int] = {}
    for r, v in ids[ids.ne("")].items():
        first_row.setdefault(v, int(r))
    for r, v in ids[dup].items():
        problems.error(Msg("duplicate {what} \"{v}\" (first in row {first_row})", what=what, v=v,
                           first_row=first_row[v]),
                       Msg("give each {what} one row; change or delete this one", what=what), **t.at(r, header))
        if ambiguous is not None:
            ambiguous[v] = Msg("the {what} {v} is in sheet {sheet} more than once (rows {first} and {row})",
                               what=what, v=v, sheet=sheet, first=first_row[v], row=int(r))
    # ids are compared exactly everywhere; two that only look alike (M1 / m1) would be a trap
    first_look: dict[str, tuple[str, int]] = {}
    for r, v in ids[ids.ne("") & ~dup].items():
        k = id_key(v)
        if k not in first_look:
            first_look[k] = (v, int(r))
            continue
        other, other_row = first_look[k]
        how = (Msg("look the same but are typed with different Unicode characters (e.g. a letter and a separate "
                   "accent mark)") if unicodedata.normalize("NFC", v) == unicodedata.normalize("NFC", other)
               else Msg("differ only in upper/lower case or spacing"))
        problems.error(Msg("{what} \"{v}\" (row {row}) and \"{other}\" (row {other_row}) {how}: one would be "
                           "taken for the other", what=what, v=v, row=int(r), other=other,
                           other_row=other_row, how=how),
                       Msg("give each row an id that differs in more than that (ids are compared exactly)"),
                       **t.at(r, header))
        if ambiguous is not None:
            for a, b in ((v, other), (other, v)):
                ambiguous.setdefault(a, Msg('the {what} "{a}" looks like "{b}" (sheet {sheet}, rows {first} and {row})',
                                            what=what, a=a, b=b, sheet=sheet, first=other_row, row=int(r)))
    return ~dup


def _pct(x: float) -> str:
    return f"{x * 100:.10g}%"
