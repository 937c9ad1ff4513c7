"""The plan workbook HR keeps in Excel: Employees, KPIs, Plan, Scales and an optional Settings sheet.

:func:`read_plan` reads it into a :class:`Plan` (typed DataFrames, named :class:`~xl_kpi.Scale` s,
parsed sources) and records every problem it finds; :func:`load_plan` does the same and raises
:class:`PlanError` when any problem is an error.

Sheet and column names are matched without regard to case, spaces or underscores, in English or
Russian (``Табельный номер``/``employee_id``, ``ФИО``/``name``, ``Вес``/``weight``…); the accepted
aliases are the ``aliases`` of :data:`SHEETS` and are listed in docs/plan.md. The header row may
sit below a title (it is looked for in the first 10 rows).

The Plan sheet holds position plans (a ``position`` row applies to everyone in that position) and
personal plans (a row with ``employee_id`` replaces the position's row for that KPI, or adds a
KPI). A KPI with weight 0 and no gate is left out of an employee's matrix, so a personal row with
weight 0 removes a position KPI for one person.

Where things are:

* :mod:`~xl_kpi.inputs.plan.schema`: :data:`SHEETS` (sheets, columns, aliases), the Settings keys;
* :mod:`~xl_kpi.inputs.plan.model`: :class:`Plan`, :class:`Settings`, :class:`PlanError`;
* :mod:`~xl_kpi.inputs.plan.workbook`: :func:`load_plan`, :func:`read_plan`, :func:`choose_sheets`;
* :mod:`~xl_kpi.inputs.plan.build`: :func:`build_plan` (the checks, sheet by sheet), :func:`plan_from_frames`;
* :mod:`~xl_kpi.inputs.plan.columns`: typed columns of a sheet, bad cells and repeated ids reported;
* :mod:`~xl_kpi.inputs.plan.employees`, :mod:`~xl_kpi.inputs.plan.kpis`, :mod:`~xl_kpi.inputs.plan.scales`,
  :mod:`~xl_kpi.inputs.plan.matrix` (the Plan sheet, :func:`resolve_lines`, weights),
  :mod:`~xl_kpi.inputs.plan.settings`: one sheet each;
* :mod:`~xl_kpi.inputs.plan.employment`: :func:`proration`, :func:`check_employment`;
* :mod:`~xl_kpi.inputs.plan.sample`: the bundled sample company, :func:`sample_inputs`.
"""

from __future__ import annotations

from xl_kpi.inputs.plan.build import build_plan, plan_from_frames
from xl_kpi.inputs.plan.employees import MULTIPLIER_HIGH, MULTIPLIER_MAX
from xl_kpi.inputs.plan.employment import check_employment, proration
from xl_kpi.inputs.plan.matrix import resolve_lines
from xl_kpi.inputs.plan.model import Plan, PlanError, Settings
from xl_kpi.inputs.plan.sample import SAMPLE_DIR, sample_inputs
from xl_kpi.inputs.plan.schema import (
    DEFAULT_SCALE_NAME,
    LANGUAGES,
    POSITION,
    SCALE_KINDS,
    SETTINGS_KEYS,
    SHEETS,
    Column,
    SheetSpec,
)
from xl_kpi.inputs.plan.workbook import choose_sheets, load_plan, read_plan

__all__ = [
    "DEFAULT_SCALE_NAME",
    "LANGUAGES",
    "MULTIPLIER_HIGH",
    "MULTIPLIER_MAX",
    "POSITION",
    "SAMPLE_DIR",
    "SCALE_KINDS",
    "SETTINGS_KEYS",
    "SHEETS",
    "Column",
    "Plan",
    "PlanError",
    "Settings",
    "SheetSpec",
    "build_plan",
    "check_employment",
    "choose_sheets",
    "load_plan",
    "plan_from_frames",
    "proration",
    "read_plan",
    "resolve_lines",
    "sample_inputs",
]
