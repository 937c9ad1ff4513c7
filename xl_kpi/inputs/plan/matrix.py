"""The Plan sheet and the resolved matrix: position and personal rows checked, personal rows
replacing the position's (:func:`resolve_lines`), and weights that must sum to 100%.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.scoring import WEIGHT_TOLERANCE
from xl_kpi.i18n import Msg
from xl_kpi.inputs.identity import alike_hint, key_index
from xl_kpi.inputs.plan.columns import _col, _numbers, _optional_text, _pct, _required_text
from xl_kpi.inputs.plan.model import Plan
from xl_kpi.inputs.plan.payouts import PAYOUT_COLUMNS, _payout_columns
from xl_kpi.inputs.plan.schema import DEFAULT_SCALE_NAME
from xl_kpi.inputs.problems import Problems, row_ranges


def _plan_rows(plan: Plan, problems: Problems) -> pd.DataFrame:
    t = plan.tables["Plan"]
    f = t.frame
    out = pd.DataFrame(index=f.index)
    out["position"] = _optional_text(plan, "Plan", "position")
    out["employee_id"] = _optional_text(plan, "Plan", "employee_id")
    out["kpi_id"] = _required_text(plan, "Plan", "kpi_id", problems)
    out["weight"] = _numbers(plan, "Plan", "weight", problems, required=True, minimum=0.0, what=Msg("weight"))
    out["base"] = _numbers(plan, "Plan", "base", problems, required=True, what=Msg("base (minimum result)"))
    out["norm"] = _numbers(plan, "Plan", "norm", problems, required=True, what=Msg("norm (target result)"))
    out["floor"] = _numbers(plan, "Plan", "floor", problems, what=Msg("score floor"))
    out["cap"] = _numbers(plan, "Plan", "cap", problems, what=Msg("score cap"))
    out["scale"] = _optional_text(plan, "Plan", "scale").replace("", DEFAULT_SCALE_NAME)
    out["gate"] = _numbers(plan, "Plan", "gate", problems, what=Msg("gate (score threshold)"))
    _payout_columns(plan, out, problems)
    out["row"] = f.index.astype(int)

    def cells(mask: pd.Series, column: str, messages: Any, fix: str | Msg, severity: str = "error") -> None:
        if mask.any():
            _, header = _col(plan, "Plan", column)
            problems.cells(severity, t, list(f.index[mask.to_numpy()]), header or column,  # type: ignore[arg-type]
                           messages if isinstance(messages, (str, Msg)) else list(messages), fix)

    personal = out["employee_id"] != ""
    nobody = ~personal & (out["position"] == "")
    cells(nobody, "position", Msg("the row names neither a position nor an employee_id"),
          Msg("fill in the position (a plan for everyone in it) or the employee_id (a personal plan)"))
    employees = set(plan.employees["employee_id"])
    unknown_emp = personal & ~out["employee_id"].isin(employees)
    alike = key_index(plan.employees["employee_id"])
    cells(unknown_emp, "employee_id", [Msg('unknown employee "{id}": not in the Employees sheet{hint}', id=v,
                                           hint=alike_hint(v, alike)) for v in out["employee_id"][unknown_emp]],
          Msg("correct the employee_id, or add the employee to the Employees sheet"))
    positions = set(plan.employees["position"])
    unused = ~personal & out["position"].ne("") & ~out["position"].isin(positions)
    cells(unused, "position", [Msg('no employee holds the position "{position}"', position=v)
                               for v in out["position"][unused]],
          Msg("check the spelling against the Employees sheet (this plan applies to nobody)"), "warning")
    kpis = set(plan.kpis["kpi_id"])
    unknown_kpi = out["kpi_id"].ne("") & ~out["kpi_id"].isin(kpis)
    cells(unknown_kpi, "kpi_id", [Msg('unknown kpi_id "{kpi}": not in the KPIs sheet', kpi=v)
                                  for v in out["kpi_id"][unknown_kpi]],
          Msg("correct the kpi_id, or add the KPI to the KPIs sheet"))
    same = out["base"].notna() & (out["base"] == out["norm"])
    cells(same, "norm", [f"norm equals base ({v:g}): the KPI has no range to score against"
                         for v in out["norm"][same]],
          "set the norm (target) different from the base (minimum); for lower-is-better KPIs put base above norm")
    crossed = out["floor"].notna() & out["cap"].notna() & (out["floor"] > out["cap"])
    cells(crossed, "floor", [f"floor {_pct(a)} is above cap {_pct(b)}"
                             for a, b in zip(out["floor"][crossed], out["cap"][crossed], strict=True)],
          "the score floor must not exceed the score cap")
    unknown_scale = ~out["scale"].isin(set(plan.scales))
    cells(unknown_scale, "scale",
          [f'unknown scale "{v}": not in the Scales sheet' for v in out["scale"][unknown_scale]],
          f"correct the name, add the scale to the Scales sheet, or leave it empty for the {DEFAULT_SCALE_NAME} scale")
    key = np.where(personal, "employee " + out["employee_id"], "position " + out["position"])
    keyed = pd.Series(key, index=out.index) + " / " + out["kpi_id"]
    dup = (~nobody) & out["kpi_id"].ne("") & keyed.duplicated(keep="first")
    if dup.any():
        first = {k: int(out.index[(keyed == k).to_numpy()][0]) for k in keyed[dup]}
        cells(dup, "kpi_id", [f"{k} appears twice (first in row {first[k]})" for k in keyed[dup]],
              "keep one row per position (or employee) and KPI")
    keep = ~nobody & ~dup & out["kpi_id"].ne("") & ~unknown_emp
    return out[keep.to_numpy()].reset_index(drop=True)


_LINE_COLUMNS = ("employee_id", "kpi_id", "weight", "base", "norm", "floor", "cap", "scale", "gate", *PAYOUT_COLUMNS,
                 "personal", "row")


def resolve_lines(employees: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The matrix of every employee: the position's rows, each replaced by a personal row for the same KPI,
    then the personal-only KPIs; KPIs with weight 0 and no gate are dropped.

    Ordered by employee (Employees order), then the position plan's order, then personal additions.
    """
    emp = employees[["employee_id", "position"]].assign(_emp=np.arange(len(employees)))
    by_pos = rows[rows["employee_id"] == ""].drop(columns=["employee_id"])
    pos_lines = emp.merge(by_pos, on="position", how="inner").assign(personal=False)
    pos_lines["_order"] = pos_lines["row"].astype(float)
    personal = rows[rows["employee_id"] != ""].drop(columns=["position"])
    pers = emp.merge(personal, on="employee_id", how="inner").assign(personal=True)
    # the keys alone go through the merges: every line's columns merged (or kept while the next copy is made)
    # would hold the matrix of 100,000 employees three times over at the peak
    keys = ["employee_id", "kpi_id"]
    replaced = pos_lines[keys].merge(pers[keys], on=keys, how="left", indicator=True)["_merge"].eq(
        "both").to_numpy()
    slot = pos_lines.loc[replaced, [*keys, "_order"]]
    pers = pers.merge(slot, on=keys, how="left")
    pers["_order"] = pers["_order"].fillna(1e12 + pers["row"].astype(float))
    lines = pd.concat([pos_lines[~replaced] if replaced.any() else pos_lines, pers], ignore_index=True)
    del pos_lines
    order = np.lexsort((lines["_order"].to_numpy(), lines["_emp"].to_numpy()))  # stable, as sort_values
    if (order != np.arange(len(order))).any():
        lines = lines.take(order)
    kept = ((lines["weight"] != 0) | lines["gate"].notna() | lines["weight"].isna()).to_numpy()
    if not kept.all():
        lines = lines[kept]
    return lines[list(_LINE_COLUMNS)].reset_index(drop=True)


def _check_lines(plan: Plan, problems: Problems) -> None:
    """Employees without a plan; weights that do not sum to 100% (one message per distinct set of rows)."""
    lines, emp = plan.lines, plan.employees
    has = emp["employee_id"].isin(set(lines["employee_id"]))
    for _, e in emp[~has].iterrows():
        problems.error(
            Msg("employee {employee_id} ({name}) has no KPIs: the position \"{position}\" has no "
                "plan", employee_id=e["employee_id"], name=e["name"], position=e["position"]),
            Msg("add rows for position \"{position}\" to the Plan sheet (or a personal plan for "
                "{employee_id})", position=e["position"], employee_id=e["employee_id"]),
            **plan.at("Employees", e["row"], "position"),
        )
    if lines.empty:
        return
    g = lines.groupby("employee_id", sort=False)
    sums = g["weight"].sum(min_count=1)
    incomplete = lines["weight"].isna().groupby(lines["employee_id"], sort=False).any()
    bad = (sums - 1.0).abs() > WEIGHT_TOLERANCE
    bad = bad & ~incomplete
    groups: dict[tuple[int, ...], list[str]] = {}
    wrong = sums.index[bad.to_numpy()]
    if not len(wrong):
        return
    # the Plan rows of the employees whose weights are wrong only (10,000 employees: a tuple each cost 0.2 s)
    of_wrong = lines[lines["employee_id"].isin(set(wrong))]
    rows_of = of_wrong.groupby("employee_id", sort=False)["row"].apply(lambda r: tuple(int(x) for x in r))
    for e in wrong:
        groups.setdefault(rows_of[e], []).append(e)
    names = emp.set_index("employee_id")["name"]
    for rows, who in groups.items():
        total = sums[who[0]]
        big = lines.loc[lines["row"].isin(rows), "weight"].gt(1).any()
        sub = lines[lines["row"].isin(rows)]
        is_personal = bool(sub["personal"].any())
        pos = plan.rows.loc[plan.rows["row"].isin(rows) & plan.rows["position"].ne(""), "position"]
        whose = (f"employee {who[0]} ({names.get(who[0], '')})" if len(who) == 1 and is_personal
                 else f'position "{pos.iloc[0]}"' if len(pos) else f"employee {who[0]}")
        applies = f", for {len(who)} employees" if len(who) > 1 else ""
        hint, fix = "", "change the weights so they add up to 100% (e.g. 40%, 30%, 30% or 0.4, 0.3, 0.3)"
        weights = sub.drop_duplicates("row")["weight"]
        if big and weights.between(0, 1, inclusive="right").any():
            whole = ", ".join(f"{w:g}" for w in weights[weights > 1])
            part = ", ".join(f"{w:g}" for w in weights[(weights > 0) & (weights <= 1)])
            hint = (f" — the weights mix whole percentages ({whole}, each read as that many times 100%) and "
                    f"fractions ({part})")
            fix = "write every weight the same way: all with the % sign (40%, 60%) or all as fractions (0.4, 0.6)"
        elif big and abs(total - 100) < 1e-6:
            hint = " — they add up to 100: percentages typed as 40 instead of 40%?"
            fix = "type the weights with the % sign (40%, 60%) or as fractions (0.4, 0.6)"
        elif big:
            hint = " — a weight above 100%: percentages typed as 40 instead of 40%?"
        problems.error(
            f"the weights of {whose} sum to {total * 100:.10g}%, not 100% (Plan rows {row_ranges(list(rows))}{applies})"
            + hint,
            fix,
            **plan.at("Plan", min(rows), "weight"),
        )
