"""From sheets read into tables to a checked :class:`~xl_kpi.inputs.plan.model.Plan`: :func:`build_plan`
(missing sheets and columns, then each sheet in turn, then the matrix) and :func:`plan_from_frames`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from xl_kpi.engine.scales import DEFAULT_SCALE
from xl_kpi.i18n import Msg
from xl_kpi.inputs.lookalike import describe, lookalike
from xl_kpi.inputs.people import build_people
from xl_kpi.inputs.plan.adjustments import _adjustments
from xl_kpi.inputs.plan.bindings import _bindings, _rates
from xl_kpi.inputs.plan.columns import _col, _letter
from xl_kpi.inputs.plan.employees import _check_managers, _employees
from xl_kpi.inputs.plan.kpis import _kpis
from xl_kpi.inputs.plan.matrix import _LINE_COLUMNS, _check_lines, _plan_rows, resolve_lines
from xl_kpi.inputs.plan.model import Plan, Settings
from xl_kpi.inputs.plan.scales import _scales
from xl_kpi.inputs.plan.schema import DEFAULT_SCALE_NAME, POSITION, SHEETS, Column, SheetSpec
from xl_kpi.inputs.plan.settings import _settings
from xl_kpi.inputs.plan.tiers import _tiers
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.rates import currency_code
from xl_kpi.inputs.tables import EMPLOYEE_ID, Table, header_key, header_keys


def plan_from_frames(
    employees: pd.DataFrame,
    kpis: pd.DataFrame,
    plan: pd.DataFrame,
    scales: pd.DataFrame | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
    *,
    problems: Problems | None = None,
    tiers: pd.DataFrame | None = None,
    adjustments: pd.DataFrame | None = None,
) -> Plan:
    """A :class:`Plan` from DataFrames laid out like the sheets (rows numbered from 2, as under a header)."""
    sink = problems if problems is not None else Problems()

    def table(name: str, frame: pd.DataFrame | None) -> Table | None:
        if frame is None:
            return None
        f = frame.reset_index(drop=True).copy()
        f.columns = [str(c) for c in f.columns]
        f.index = pd.RangeIndex(2, 2 + len(f))
        letters = {c: _letter(i) for i, c in enumerate(f.columns)}
        return Table(name, "(frames)", f, letters, name, 1, None)

    tables = {"Employees": table("Employees", employees), "KPIs": table("KPIs", kpis), "Plan": table("Plan", plan),
              "Scales": table("Scales", scales), "Tiers": table("Tiers", tiers),
              "Adjustments": table("Adjustments", adjustments), "Settings": None}
    the_plan = build_plan(tables, file="(frames)", path=None, problems=sink)
    if settings is not None:
        the_plan.settings = settings if isinstance(settings, Settings) else Settings(**dict(settings))
        the_plan.rates.currency = currency_code(the_plan.settings.currency) or the_plan.rates.currency
    return the_plan


def _empty_plan(file: str, path: Path | None, problems: Problems) -> Plan:
    cols = {
        "employees": [*(c.name for c in SHEETS["Employees"].columns), "row"],
        "kpis": [*(c.name for c in SHEETS["KPIs"].columns), "row"],
        "rows": [*(c.name for c in SHEETS["Plan"].columns), "row"],
        "lines": list(_LINE_COLUMNS),
    }
    frames = {k: pd.DataFrame({c: pd.Series(dtype=object) for c in v}) for k, v in cols.items()}
    return Plan(frames["employees"], frames["kpis"], frames["rows"], frames["lines"],
                {DEFAULT_SCALE_NAME: DEFAULT_SCALE}, Settings(), {}, {}, file, path, problems, broken=True)


def build_plan(
    tables: Mapping[str, Table | None],
    *,
    file: str,
    path: Path | None,
    problems: Problems,
    settings_grid: pd.DataFrame | None = None,
    sheet_names: Sequence[str] = (),
    unclear: Collection[str] = (),
) -> Plan:
    """Check and type the sheets (already read into tables) and resolve the matrix.

    ``unclear``: plan sheets for which several sheets were candidates (already reported).
    """
    plan = _empty_plan(file, path, problems)
    plan.broken = False
    plan.tables = {k: v for k, v in tables.items() if v is not None}
    for spec in SHEETS.values():
        t = tables.get(spec.name)
        if spec.name in unclear:
            plan.broken = True
            continue
        if t is None:
            if spec.required:
                plan.broken = True
                names = ", ".join(a for a in spec.aliases[1:])
                similar = [(n, like) for n in sheet_names if (like := lookalike(n, spec.aliases)) is not None]
                problems.error(
                    f"missing sheet {spec.name}" + (f" (the workbook has: {', '.join(sheet_names)})" if sheet_names
                                                     else "")
                    + "".join(f"; {describe(n, like)}" for n, like in similar),
                    "".join(f"retype the name of sheet «{n}» in {_script_of(like)} letters ({like}); "
                            for n, like in similar)
                    + f"add a sheet named {spec.name} (also accepted: {names}) with columns "
                    + ", ".join(c.name + ("*" if c.required else "") for c in spec.columns),
                    file=file, sheet=spec.name,
                )
            continue
        _report_read_issues(spec, t, problems)
        for col in spec.columns:
            if col.required and t.column(*col.aliases) is None:
                if spec.name == "Plan" and col.name in ("position", "employee_id"):
                    continue
                plan.broken = True
                similar = next(((h, like) for h in t.frame.columns
                                if (like := lookalike(h, col.aliases)) is not None), None)
                if similar is not None:
                    h, like = similar
                    problems.error(
                        Msg("missing column {name} in sheet {sheet}: {describe}", name=col.name,
                            sheet=t.sheet, describe=describe(h, like, 'the header')),
                        Msg("retype the header «{h}» in {script_of} letters ({like})", h=h,
                            script_of=_script_of(like), like=like), **t.at(t.header_row, h))
                    continue
                problems.error(
                    Msg("missing column {name} in sheet {sheet}", name=col.name, sheet=t.sheet),
                    Msg("add a column headed {name} (or {alias_hint}) to the header row {header_row}",
                        name=col.name, alias_hint=_alias_hint(col), header_row=t.header_row),
                    **{**t.at(t.header_row), "header": col.name},
                )
        if spec.name == "Plan" and t.column(*POSITION) is None and t.column(*EMPLOYEE_ID) is None:
            plan.broken = True
            problems.error(
                Msg("missing column position (or employee_id) in sheet {sheet}", sheet=t.sheet),
                Msg("add a position column (plans per position) and/or an employee_id column "
                    "(personal plans)"),
                **{**t.at(t.header_row), "header": "position"},
            )
    staff = tables.get("Employees")
    if staff is not None and staff.frame.empty and staff.frame.columns.size:  # an empty payroll is no success
        plan.broken = True
        problems.error(Msg("sheet {sheet} lists no employees: there is nothing below its header row "
                           "{header_row}", sheet=staff.sheet, header_row=staff.header_row),
                       Msg("add one row per employee below the header (row {row} on), or check that this "
                           "is the right plan workbook", row=staff.header_row + 1), **staff.at(staff.header_row + 1))
    if settings_grid is not None:
        plan.settings = _settings(settings_grid, tables["Settings"], problems, file)
    if plan.broken:
        return plan
    plan.employees = _employees(plan, problems)
    _check_managers(plan, problems)
    staff_table, aliases_header = _col(plan, "Employees", "aliases")
    plan.people = build_people(plan.employees, problems, staff_table, aliases_header)
    plan.kpis, plan.sources = _kpis(plan, problems)
    plan.bindings = _bindings(plan, problems)
    plan.rates = _rates(plan, problems)
    plan.scales = _scales(plan, problems)
    plan.tiers = _tiers(plan, problems)
    plan.adjustments = _adjustments(plan, problems)
    plan.rows = _plan_rows(plan, problems)
    plan.lines = resolve_lines(plan.employees, plan.rows)
    _check_lines(plan, problems)
    # checked: the sheets' cells are in the typed frames; the tables keep their headers, letters and issues for
    # plan.at (the raw cells of 100,000 employees' sheets held ~45 MB until the run ended)
    plan.tables = {k: replace(t, frame=t.frame.head(0).copy()) for k, t in plan.tables.items()}  # no view: a copy
    return plan


def _report_read_issues(spec: SheetSpec, t: Table, problems: Problems) -> None:
    """Report what reading found in the columns the plan uses, and columns that two headers could be."""
    used: list[str | None] = []
    for col in spec.columns:
        keys = {header_key(a) for a in col.aliases}
        heads = [h for h in t.frame.columns if any(k in keys for k in header_keys(h))]
        used.extend(heads)
        if len(heads) > 1:
            plan_cols = ", ".join(f"{t.letters.get(h, '?')} ({h})" for h in heads)
            problems.error(
                Msg("{n_heads} columns of sheet {sheet} could be {name}: {plan_cols}; which one to "
                    "use is not clear", n_heads=len(heads), sheet=t.sheet, name=col.name,
                    plan_cols=plan_cols), Msg("rename or delete all but one of them (keep one column headed {name})",
                                 name=col.name),
                **t.at(t.header_row, heads[1]))
    t.report(problems, list(t.frame.columns) if spec.name == "Settings" else used)


def _script_of(name: str) -> str:
    return "Russian" if any("а" <= c <= "я" or c == "ё" for c in name.casefold()) else "Latin"


def _alias_hint(col: Column) -> str:
    return ", ".join(a for a in col.aliases[1:4])
