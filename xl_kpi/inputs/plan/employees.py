"""The Employees sheet: ids, names, pay, individual multipliers (and their plausible range), hire
and leave dates, and the manager cells ``xl-kpi distribute`` could not resolve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xl_kpi.engine.money import MAX_MONEY
from xl_kpi.i18n import English, Msg, Plural
from xl_kpi.inputs.cells import FAR_FUTURE, to_dates
from xl_kpi.inputs.identity import resolve_managers
from xl_kpi.inputs.plan.columns import _col, _duplicates, _numbers, _optional_text, _required_text
from xl_kpi.inputs.plan.model import Plan
from xl_kpi.inputs.problems import Problems, row_ranges


def _employees(plan: Plan, problems: Problems) -> pd.DataFrame:
    t = plan.tables["Employees"]
    f = t.frame
    ids = _required_text(plan, "Employees", "employee_id", problems)
    first = _duplicates(plan, "Employees", "employee_id", ids, problems, "employee_id", plan.ambiguous)
    out = pd.DataFrame(index=f.index)
    out["employee_id"] = ids
    for name in ("name", "position"):
        out[name] = _required_text(plan, "Employees", name, problems)
    for name in ("department", "manager", "email", "aliases"):
        out[name] = _optional_text(plan, "Employees", name)
    _, email_col = _col(plan, "Employees", "email")
    bad_email = out["email"].ne("") & ~out["email"].str.contains("@", regex=False)
    if bad_email.any() and email_col:
        problems.cells("warning", t, list(f.index[bad_email]), email_col,
                       [Msg('"{value}" does not look like an e-mail address', value=v)
                        for v in out["email"][bad_email]],
                       Msg("correct the address (cards cannot be mailed to it)"))
    out["salary"] = _numbers(plan, "Employees", "salary", problems, default=0.0, minimum=0.0, maximum=MAX_MONEY,
                             what=Msg("fixed salary"))
    out["bonus_pool"] = _numbers(plan, "Employees", "bonus_pool", problems, required=True, minimum=0.0,
                                 maximum=MAX_MONEY, what="bonus pool (planned variable pay)")
    out["multiplier"] = _multipliers(plan, problems)
    for name in ("hired", "left"):
        tt, header = _col(plan, "Employees", name)
        if header is None:
            out[name] = pd.Series(pd.NaT, index=f.index, dtype="datetime64[ns]")
            continue
        dates, errors = to_dates(f[header])
        if name == "hired":  # 31.12.9999 means "open-ended" for a left date; as a hire date it means nothing
            never = (dates >= FAR_FUTURE) & errors.isna()
            errors = errors.mask(never, English(Msg("a date after {date} (31.12.9999?) is not a hire date; leave the "
                                                    "cell empty or type the first working day",
                                                    date=f"{FAR_FUTURE:%d.%m.%Y}")))
            dates = dates.mask(never)
        bad = errors.notna()
        problems.cells("error", tt, list(f.index[bad]), header,
                       [Msg("{column}: {error}", column=name, error=m) for m in errors[bad]],
                       Msg("type the date as 31.10.2026 or 2026-10-31"))
        out[name] = dates
    wrong = out["left"].notna() & out["hired"].notna() & (out["left"] < out["hired"])
    if wrong.any():
        _, header = _col(plan, "Employees", "left")
        problems.cells("error", t, list(f.index[wrong]), header or "left",
                       [Msg("left {left} is before hired {hired}", left=f"{lft:%d.%m.%Y}", hired=f"{h:%d.%m.%Y}")
                        for lft, h in zip(out["left"][wrong], out["hired"][wrong], strict=True)],
                       Msg("correct the dates: the last working day comes after the first"))
    out["row"] = f.index.astype(int)
    keep = (ids != "") & first
    return out[keep.to_numpy()].reset_index(drop=True)


def _check_managers(plan: Plan, problems: Problems) -> None:
    """Manager cells that ``xl-kpi distribute`` could not give to anybody for sure: warnings at the cell.

    A manager who is simply not in the plan is no problem (the team bundle is handed over by HR);
    these are: the name of several employees, the id of one and the name of another, an employee's own
    id or name (a namesake of the real manager?), an id that differs from an employee_id only in case.
    """
    emp = plan.employees
    if emp.empty or not emp["manager"].ne("").any():
        return
    t, header = _col(plan, "Employees", "manager")
    res = resolve_managers(emp["employee_id"], emp["name"], emp["manager"])
    for text, r in res.items():
        if r.problem not in ("several", "self", "case"):
            continue
        rows = [int(x) for x in emp.loc[emp["manager"] == text, "row"]]
        problems.warning(Plural("{what}; the team bundle of Employees row {rows} will not be mailed",
                                "{what}; the team bundle of Employees rows {rows} will not be mailed", len(rows),
                                what=r.what, rows=row_ranges(rows)),
                         Msg("write the manager's exact employee_id in the manager column"), **t.at(rows[0], header))


MULTIPLIER_MAX = 10.0
"""An individual multiplier above this is an error: 100 is 100% typed without the sign, not 100 times the bonus."""
MULTIPLIER_HIGH = 3.0
"""Above this (up to MULTIPLIER_MAX) a multiplier is a warning: possible, but rare enough to be checked."""


def _multipliers(plan: Plan, problems: Problems) -> pd.Series:
    """The individual multipliers (empty = 1), in their plausible range: below 0 or above 10 is an error
    (the cell and the likely fix named), above 3 or exactly 0 a warning."""
    nums = _numbers(plan, "Employees", "multiplier", problems, default=1.0, minimum=0.0,
                    what=Msg("individual multiplier"))
    t, header = _col(plan, "Employees", "multiplier")
    if header is None:
        return nums
    rows = t.frame.index

    def pct(v: float) -> str:
        return f"{v:.10g}"

    high = nums > MULTIPLIER_MAX
    for v in dict.fromkeys(nums[high]):
        problems.cells("error", t, list(rows[(nums == v).to_numpy()]), header,
                       f"multiplier {pct(v)} is above {MULTIPLIER_MAX:g}: it would pay {pct(v)} times the bonus",
                       f"{pct(v)} means {pct(v)}%? write {pct(v / 100)} or {pct(v)}% (a multiplier of 1 pays the "
                       "bonus as computed)")
    rare = (nums > MULTIPLIER_HIGH) & ~high
    problems.cells("warning", t, list(rows[rare.to_numpy()]), header,
                   [f"multiplier {pct(v)} pays {pct(v)} times the bonus; more than {MULTIPLIER_HIGH:g} times is "
                    "unusual" for v in nums[rare]],
                   "check it; if a percentage was meant, type it with the % sign (120%) or as a factor (1.2)")
    zero = nums == 0
    problems.cells("warning", t, list(rows[zero.to_numpy()]), header, "multiplier 0: no bonus is paid",
                   "check it; leave the cell empty for 1 (the bonus as computed)")
    return nums.where(~high, np.nan)
