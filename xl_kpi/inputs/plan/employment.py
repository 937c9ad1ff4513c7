"""Employment in the period: :func:`proration` (the share of the period employed) and
:func:`check_employment` (warnings for people hired after or gone before it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xl_kpi.engine.payout import prorate
from xl_kpi.engine.period import Period
from xl_kpi.i18n import Msg
from xl_kpi.inputs.plan.model import Plan
from xl_kpi.inputs.problems import Problems


def check_employment(plan: Plan, period: Period, problems: Problems) -> None:
    """Warn about employees hired after or leaving before the period (they get no bonus)."""
    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    emp = plan.employees
    late = emp["hired"].notna() & (emp["hired"].dt.normalize() > end)
    gone = emp["left"].notna() & (emp["left"].dt.normalize() < start)
    for mask, col, what in ((late, "hired", Msg("hired after")), (gone, "left", Msg("left before"))):
        for _, e in emp[mask].iterrows():
            problems.warning(
                Msg("employee {employee_id} ({name}) {what} the period {period} ({date:%d.%m.%Y}): the "
                    "bonus is prorated to 0", employee_id=e["employee_id"], name=e["name"], what=what,
                    period=period, date=e[col]),
                Msg("check the date or the period; or remove the employee from this period's plan"),
                **plan.at("Employees", e["row"], col),
            )


def proration(employees: pd.DataFrame, period: Period | str | None) -> pd.Series:
    """Fraction of the period each employee was employed: calendar days from ``hired`` to ``left``
    (both days included) inside the period, over the period's days (a quarter: over its 92 days).
    No dates → 1; no period and a date → NaN (cannot be computed).

    >>> e = pd.DataFrame({"hired": [pd.Timestamp("2026-10-13"), pd.NaT], "left": [pd.NaT, pd.NaT]})
    >>> proration(e, "2026-10").round(6).tolist()
    [0.612903, 1.0]
    """
    hired = pd.to_datetime(employees["hired"]) if "hired" in employees else pd.Series(pd.NaT, index=employees.index)
    left = pd.to_datetime(employees["left"]) if "left" in employees else pd.Series(pd.NaT, index=employees.index)
    dated = hired.notna() | left.notna()
    if period is None:
        return pd.Series(np.where(dated, np.nan, 1.0), index=employees.index, dtype=float)
    p = Period.parse(period)
    days = np.asarray(p.overlap_days(hired, left), dtype=float)
    share = np.asarray(prorate(days, np.full(len(days), float(p.days))), dtype=float)  # the engine's rule
    return pd.Series(share, index=employees.index, dtype=float).where(dated, 1.0)
