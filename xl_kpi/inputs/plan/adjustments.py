"""The Adjustments sheet (ru «Корректировки»): one-off corrections and bonuses agreed outside the KPIs, checked row
by row.

One row per adjustment: the employee's id, the amount (negative for a deduction), the reason (required: it is
printed on the card and in the summary) and optionally the KPI it corrects. An unknown or ambiguous employee id,
an unreadable amount, an empty reason and an unknown kpi_id are located errors with a fix; a row with an error is
left out (and its employee is not paid on a guess: see :data:`Plan.ambiguous`). Whether an adjustment makes the
total pay negative is known only with the facts (:func:`xl_kpi.results.check_amounts`).
"""

from __future__ import annotations

import pandas as pd

from xl_kpi.engine.money import MAX_MONEY
from xl_kpi.i18n import Msg
from xl_kpi.inputs.identity import id_key, key_index
from xl_kpi.inputs.plan.columns import _col, _numbers, _optional_text, _required_text
from xl_kpi.inputs.plan.model import Plan
from xl_kpi.inputs.problems import Problems

ADJUSTMENT_COLUMNS = ("employee_id", "amount", "reason", "kpi_id", "row")


def empty_adjustments() -> pd.DataFrame:
    """No adjustments, with the columns :func:`_adjustments` gives."""
    return pd.DataFrame({c: pd.Series(dtype=float if c in ("amount", "row") else object)
                         for c in ADJUSTMENT_COLUMNS})


def _adjustments(plan: Plan, problems: Problems) -> pd.DataFrame:
    """The well-formed rows of the Adjustments sheet (employee_id, amount, reason, kpi_id, row), in sheet order.

    A row whose employee cannot be told for sure (unknown id, an id two employees could be) or whose amount,
    reason or kpi_id is wrong is reported and its employee marked in ``plan.ambiguous`` so that nobody is paid
    without the correction HR typed (the row is never silently dropped from a pay run).
    """
    t = plan.tables.get("Adjustments")
    if t is None or t.frame.empty:
        return empty_adjustments()
    ids = _required_text(plan, "Adjustments", "employee_id", problems)
    amounts = _numbers(plan, "Adjustments", "amount", problems, required=True, what=Msg("adjustment amount"))
    reasons = _required_text(plan, "Adjustments", "reason", problems).map(lambda x: " ".join(str(x).split()))
    kpis = _optional_text(plan, "Adjustments", "kpi_id")
    _, id_col = _col(plan, "Adjustments", "employee_id")
    _, amount_col = _col(plan, "Adjustments", "amount")
    _, kpi_col = _col(plan, "Adjustments", "kpi_id")
    staff = [str(e) for e in plan.employees["employee_id"]]
    known = set(staff)
    alike = key_index(staff)
    known_kpis = set(plan.kpis["kpi_id"].astype(str))
    good = pd.Series(True, index=t.frame.index)
    good &= ids.ne("") & amounts.notna() & reasons.ne("")
    for r in t.frame.index:
        e = ids[r]
        if e == "":
            continue
        if e not in known:
            near = alike.get(id_key(e), [])
            if len(near) > 1:
                problems.error(Msg("employee id \"{e}\" could be any of {join} (they differ only in case or spacing); "
                                   "an adjustment is never given to one of them by guess", e=e,
                                   join=", ".join(near)),
                               Msg("type the id exactly as in the Employees sheet (and give those employees ids "
                                   "that differ in more than case)"), **t.at(r, id_col))
            else:
                hint = f' (the Employees sheet has "{near[0]}": ids are compared exactly, case included)' if near \
                    else ""
                problems.error(Msg("unknown employee \"{e}\": not in the Employees sheet{hint}", e=e,
                                   hint=hint),
                               Msg("type the employee_id exactly as in the Employees sheet, or delete the row"),
                               **t.at(r, id_col))
            good[r] = False
            continue
        if e in plan.ambiguous:
            problems.error(Msg("employee id \"{e}\" cannot be told for sure: {ambiguou}", e=e,
                               ambiguou=plan.ambiguous[e]),
                           Msg("fix the Employees sheet so that the id belongs to one employee"), **t.at(r, id_col))
            good[r] = False
            continue
        if amounts[r] == amounts[r] and not abs(amounts[r]) < MAX_MONEY:
            problems.error(Msg("adjustment amount {amount:.6g} is too large to be paid to the kopeck",
                               amount=amounts[r]),
                           Msg("check the amount for a typo"), **t.at(r, amount_col))
            good[r] = False
        if kpis[r] and kpis[r] not in known_kpis:
            problems.error(Msg("unknown kpi_id \"{kpi}\": not in the KPIs sheet", kpi=kpis[r]),
                           Msg("type the kpi_id as in the KPIs sheet, or leave the cell empty"), **t.at(r, kpi_col))
            good[r] = False
    for r in t.frame.index[~good]:  # a correction HR typed but we cannot apply: the employee is not paid without it
        e = ids[r]
        if e in known and e not in plan.ambiguous:
            plan.ambiguous[e] = Msg("the Adjustments sheet's row {row} for this employee has an error", row=int(r))
    out = pd.DataFrame({"employee_id": ids[good].to_numpy(object), "amount": amounts[good].to_numpy(float),
                        "reason": reasons[good].to_numpy(object), "kpi_id": kpis[good].to_numpy(object),
                        "row": t.frame.index[good].to_numpy(float)})
    return out.reset_index(drop=True)
