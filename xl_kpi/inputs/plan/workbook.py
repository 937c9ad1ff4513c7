"""Reading the plan workbook file: :func:`load_plan`, :func:`read_plan`, and :func:`choose_sheets`
(which sheet of the workbook is which plan sheet).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from xl_kpi.i18n import Msg
from xl_kpi.inputs.lookalike import describe, lookalike
from xl_kpi.inputs.plan.build import _empty_plan, build_plan
from xl_kpi.inputs.plan.model import Plan, PlanError
from xl_kpi.inputs.plan.schema import SHEETS
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.readers import FileReadError, Sheet, SheetInfo, read_workbook
from xl_kpi.inputs.tables import Table, header_key, table_from_grid
from xl_kpi.memory import release_memory


def load_plan(path: str | Path) -> Plan:
    """Read a plan workbook; raise :class:`PlanError` (with every problem) if it has errors."""
    plan = read_plan(path)
    plan.problems.raise_for_errors(PlanError)
    return plan


def read_plan(path: str | Path, problems: Problems | None = None) -> Plan:
    """Read a plan workbook and record its problems in ``problems`` (and ``plan.problems``)."""
    path = Path(path)
    sink = problems if problems is not None else Problems()
    try:
        sheets = read_workbook(path, role="plan workbook")
    except FileReadError as e:
        sink.error(e.reason, e.fix or Msg("give the path of the plan workbook (.xlsx)"),
                   **{**e.where, "file": path.name})
        return _empty_plan(path.name, path, sink)
    found, unclear = choose_sheets(sheets, path.name, sink)
    tables: dict[str, Table | None] = {}
    for spec in SHEETS.values():
        if spec.name not in found:
            tables[spec.name] = None
            continue
        sheet_name, grid, info = found[spec.name]
        expected = [c.aliases for c in spec.columns]
        tables[spec.name] = table_from_grid(grid, name=sheet_name, file=path.name, sheet=sheet_name, path=path,
                                            expected=expected, info=info)
        if tables[spec.name] is None:
            tables[spec.name] = Table(sheet_name, path.name, pd.DataFrame(), {}, sheet_name, 1, path)
    settings_grid = found["Settings"][1] if "Settings" in found else None
    plan = build_plan(tables, file=path.name, path=path, problems=sink, settings_grid=settings_grid,
                      sheet_names=[s.name for s in sheets], unclear=unclear)
    del sheets, found, tables, settings_grid  # the grids and raw tables: the plan holds what was checked
    release_memory()
    return plan


def _state(sheet: Sheet) -> str:
    return sheet.info.state if sheet.info is not None else "visible"


def _named(sheet: Sheet) -> str:
    state = _state(sheet)
    return f"«{sheet.name}»" + {"hidden": " (hidden)", "veryHidden": " (very hidden)"}.get(state, "")


def choose_sheets(
    sheets: Sequence[Sheet], file: str, problems: Problems
) -> tuple[dict[str, tuple[str, pd.DataFrame, SheetInfo | None]], set[str]]:
    """Which sheet of the workbook is each plan sheet: ({canonical name: (sheet name, grid, info)}, {unclear}).

    A sheet named exactly as the plan sheet (``Employees``, compared like headers) wins over its aliases
    (``Staff``, ``Сотрудники``…), which are then ignored with a warning; without such a sheet, one alias is
    taken. Two or more candidates (two aliases, two exact names, or an exact name that is hidden next to
    an alias) are an error listing them: which one holds the pay is never decided by their order. A hidden
    sheet that is taken gets a warning from the table's read issues (see facts._sheet_issues).
    """
    found: dict[str, tuple[str, pd.DataFrame, SheetInfo | None]] = {}
    unclear: set[str] = set()
    for spec in SHEETS.values():
        exact_key = header_key(spec.name)
        keys = {header_key(a) for a in spec.aliases}
        exact = [s for s in sheets if header_key(s.name) == exact_key]
        others = [s for s in sheets if header_key(s.name) in keys and header_key(s.name) != exact_key]
        if len(exact) == 1 and (_state(exact[0]) == "visible" or not others):
            chosen, ignored = exact[0], others
        elif len(exact) + len(others) == 1:
            chosen, ignored = (exact + others)[0], []
        elif not exact and not others:
            continue
        else:
            unclear.add(spec.name)
            candidates = exact + others
            problems.error(
                f"{len(candidates)} sheets could be the {spec.name} sheet: "
                + ", ".join(_named(s) for s in candidates) + "; which one to read is not clear",
                Msg("rename or delete the ones that are not the {name} sheet, and keep one sheet "
                    "named {name}", name=spec.name), file=file, sheet=candidates[-1].name)
            continue
        found[spec.name] = (chosen.name, chosen.grid, chosen.info)
        for s in ignored:
            problems.warning(
                Msg("sheet {named} could also be the {name} sheet, but a sheet is named {name} "
                    "exactly: {named} is not read", named=_named(s), name=spec.name),
                Msg("rename or delete «{name}» if it is not the {name2} sheet", name=s.name, name2=spec.name),
                file=file, sheet=s.name)
        taken = {header_key(s.name) for s in (*exact, *others)}
        for s in sheets:
            like = lookalike(s.name, spec.aliases) if header_key(s.name) not in taken else None
            if like is not None:
                problems.warning(Msg("{describe}: it is not read (sheet «{name}» is)",
                                     describe=describe(s.name, like), name=chosen.name),
                                 Msg("rename or delete sheet «{name}» if it is not meant as the {name2} sheet",
                                     name=s.name, name2=spec.name),
                                 file=file, sheet=s.name)
    return found, unclear
