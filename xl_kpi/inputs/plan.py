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
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from openpyxl.utils import get_column_letter

from xl_kpi.engine.errors import KpiError, ScaleError
from xl_kpi.engine.money import MAX_MONEY
from xl_kpi.engine.payout import prorate
from xl_kpi.engine.period import ACCEPTED_FORMS, Period, PeriodError, period_of
from xl_kpi.engine.scales import DEFAULT_SCALE, Scale
from xl_kpi.engine.scoring import WEIGHT_TOLERANCE
from xl_kpi.inputs.cells import (
    FAR_FUTURE,
    NumberFormatError,
    parse_number,
    to_dates,
    to_ids,
    to_numbers,
)
from xl_kpi.inputs.identity import alike_hint, id_key, key_index, resolve_managers
from xl_kpi.inputs.lookalike import describe, lookalike
from xl_kpi.inputs.problems import InputError, Problems, row_ranges
from xl_kpi.inputs.readers import FileReadError, Sheet, SheetInfo, read_workbook
from xl_kpi.inputs.resources import workbooks_dir
from xl_kpi.inputs.sources import Source, SourceSyntaxError, parse
from xl_kpi.inputs.tables import EMPLOYEE_ID, KPI_ID, Table, header_key, header_keys, table_from_grid

SAMPLE_DIR = workbooks_dir() / "sample"
"""The bundled sample company (plan.xlsx and its raw data for 2026-10)."""

DEFAULT_SCALE_NAME = "default"


class PlanError(InputError):
    """The plan workbook has errors; ``.problems`` holds all of them."""


@dataclass(frozen=True)
class Column:
    """A column of a plan sheet: canonical name, accepted header aliases, required or not."""

    name: str
    aliases: tuple[str, ...]
    required: bool = False


@dataclass(frozen=True)
class SheetSpec:
    """A plan sheet: canonical name, accepted sheet-name aliases, columns, required or not."""

    name: str
    aliases: tuple[str, ...]
    columns: tuple[Column, ...]
    required: bool = True

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


POSITION = ("position", "role", "job title", "title", "должность", "позиция")
_NAME = ("name", "full name", "employee name", "фио", "ф и о", "сотрудник", "имя")

SHEETS: dict[str, SheetSpec] = {
    s.name: s
    for s in (
        SheetSpec("Employees", ("Employees", "Staff", "People", "Сотрудники", "Персонал", "Работники"), (
            Column("employee_id", EMPLOYEE_ID, True),
            Column("name", _NAME, True),
            Column("position", POSITION, True),
            Column("department", ("department", "dept", "отдел", "подразделение", "департамент")),
            Column("manager", ("manager", "supervisor", "руководитель", "начальник")),
            Column("email", ("email", "e mail", "mail", "почта", "эл почта", "электронная почта")),
            Column("salary", ("salary", "base salary", "fixed pay", "оклад", "фиксированная часть",
                              "постоянная часть")),
            Column("bonus_pool", ("bonus_pool", "bonus pool", "pool", "target bonus", "variable pay",
                                  "премиальный фонд", "плановая премия", "переменная часть", "фонд премии",
                                  "премия план", "премия"), True),
            Column("multiplier", ("multiplier", "individual multiplier", "personal multiplier", "множитель",
                                  "индивидуальный коэффициент", "персональный коэффициент", "коэффициент")),
            Column("hired", ("hired", "hire date", "date hired", "start date", "принят", "дата приема",
                             "дата найма", "дата начала работы")),
            Column("left", ("left", "leave date", "date left", "end date", "termination date", "уволен",
                            "дата увольнения", "дата окончания работы")),
        )),
        SheetSpec("KPIs", ("KPIs", "KPI", "Indicators", "Показатели", "KPI показатели", "Ключевые показатели"), (
            Column("kpi_id", (*KPI_ID, "code", "код"), True),
            Column("name", ("name", "kpi name", "title", "название", "наименование", "показатель",
                            "ключевой показатель"), True),
            Column("unit", ("unit", "units", "единица", "ед изм", "единица измерения")),
            Column("source", ("source", "formula", "источник", "источник данных", "расчет", "формула")),
            Column("description", ("description", "comment", "описание", "комментарий")),
        )),
        SheetSpec("Plan", ("Plan", "Matrix", "KPI matrix", "План", "Матрица", "Матрица KPI"), (
            Column("position", POSITION),
            Column("employee_id", EMPLOYEE_ID),
            Column("kpi_id", KPI_ID, True),
            Column("weight", ("weight", "вес", "доля"), True),
            Column("base", ("base", "minimum", "min", "база", "минимум"), True),
            Column("norm", ("norm", "target", "plan", "goal", "норма", "план", "цель"), True),
            Column("floor", ("floor", "min score", "score floor", "нижняя граница", "минимальная оценка")),
            Column("cap", ("cap", "max score", "score cap", "верхняя граница", "максимальная оценка")),
            Column("scale", ("scale", "шкала", "шкала коэффициентов")),
            Column("gate", ("gate", "gate threshold", "барьер", "порог отсечения", "стоп фактор", "отсечка")),
        )),
        SheetSpec("Scales", ("Scales", "Шкалы", "Шкалы коэффициентов"), (
            Column("scale", ("scale", "name", "шкала", "название"), True),
            Column("threshold", ("threshold", "score", "from", "порог", "от", "выполнение от", "оценка от"), True),
            Column("coefficient", ("coefficient", "coeff", "коэффициент", "премиальный коэффициент", "коэф"), True),
            Column("kind", ("kind", "type", "вид", "тип")),
            Column("below", ("below", "below first", "ниже порога", "ниже")),
            Column("cap", ("cap", "max coefficient", "потолок", "максимум")),
        ), required=False),
        SheetSpec("Settings", ("Settings", "Options", "Настройки", "Параметры"), (
            Column("setting", ("setting", "key", "parameter", "name", "параметр", "настройка")),
            Column("value", ("value", "значение")),
        ), required=False),
    )
}

SETTINGS_KEYS: dict[str, tuple[str, ...]] = {
    "period": ("period", "month", "период", "месяц"),
    "currency": ("currency", "валюта"),
    "language": ("language", "lang", "язык"),
    "digits": ("digits", "rounding", "rounding digits", "decimals", "округление", "знаков",
               "знаков после запятой", "точность"),
    "company": ("company", "company name", "компания", "организация", "название компании"),
}
LANGUAGES = {"en": "en", "english": "en", "англ": "en", "английский": "en", "ru": "ru", "russian": "ru",
             "рус": "ru", "русский": "ru"}
SCALE_KINDS = {"steps": "steps", "step": "steps", "ступени": "steps", "ступенчатая": "steps", "шаги": "steps",
               "linear": "linear", "линейная": "linear", "интерполяция": "linear"}


@dataclass(frozen=True)
class Settings:
    """The Settings sheet: period (a :class:`Period`: month, quarter, half-year, year or range), currency,
    language (en|ru), rounding digits, company name."""

    period: Period | None = None
    currency: str = "RUB"
    language: str = "en"
    digits: int = 2
    company: str = ""

    def __post_init__(self) -> None:
        if self.period is not None and not isinstance(self.period, Period):  # Settings(period="2026-Q4")
            object.__setattr__(self, "period", period_of(self.period))


@dataclass
class Plan:
    """A plan workbook, read and checked.

    * ``employees``: employee_id, name, position, department, manager, email, salary, bonus_pool,
      multiplier, hired, left, row (the Excel row), in sheet order;
    * ``kpis``: kpi_id, name, unit, source, description, row;
    * ``rows``: the Plan sheet: position, employee_id, kpi_id, weight, base, norm, floor, cap,
      scale, gate, row;
    * ``lines``: the resolved matrix, one row per employee × KPI (personal rows replace the
      position's), in Employees order then plan order: employee_id, kpi_id, weight, base, norm,
      floor, cap, scale, gate, personal, row (of the Plan sheet);
    * ``scales``: by name, always with ``"default"``; ``sources``: parsed ``KPIs.source`` by kpi_id.
    """

    employees: pd.DataFrame
    kpis: pd.DataFrame
    rows: pd.DataFrame
    lines: pd.DataFrame
    scales: dict[str, Scale]
    settings: Settings = field(default_factory=Settings)
    sources: dict[str, Source] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    file: str = "plan"
    path: Path | None = None
    problems: Problems = field(default_factory=Problems)
    broken: bool = False
    ambiguous: dict[str, str] = field(default_factory=dict)
    """employee_id → why it cannot be trusted (in Employees twice, or looks like another id): such an
    employee is never carded, not even with --skip-invalid (no row is picked by its order)."""

    def at(self, sheet: str, row: Any = None, column: str | None = None) -> dict[str, Any]:
        """Problems location keywords for a cell of a plan sheet, by canonical sheet and column name."""
        t = self.tables.get(sheet)
        if t is None:
            return {"file": self.file, "sheet": sheet}
        header = t.column(*SHEETS[sheet].column(column).aliases) if column else None
        r = None if row is None or (isinstance(row, float) and math.isnan(row)) else int(row)
        return t.at(r, header) if header else {**t.at(r), "header": column}

    def source_at(self, kpi_id: str) -> dict[str, Any]:
        """Location of a KPI's source cell."""
        hit = self.kpis.loc[self.kpis["kpi_id"] == kpi_id, "row"]
        return self.at("KPIs", hit.iloc[0] if len(hit) else None, "source")


def sample_inputs() -> tuple[Path, list[Path]]:
    """The bundled sample company: (plan workbook, [raw data and facts files])."""
    plan = SAMPLE_DIR / "plan.xlsx"
    if not plan.exists():
        raise KpiError(f"the sample company is missing ({plan}); regenerate it with: python scripts/make_sample.py")
    data = sorted(p for p in SAMPLE_DIR.iterdir() if p.is_file() and p != plan
                  and p.suffix.casefold() in (".csv", ".xlsx") and not p.name.startswith(("~$", ".")))
    return plan, data


# ------------------------------------------------------------------------------------ loading


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
        sink.error(e.reason, e.fix or "give the path of the plan workbook (.xlsx)", **{**e.where, "file": path.name})
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
    return build_plan(tables, file=path.name, path=path, problems=sink, settings_grid=settings_grid,
                      sheet_names=[s.name for s in sheets], unclear=unclear)


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
                f"rename or delete the ones that are not the {spec.name} sheet, and keep one sheet named "
                f"{spec.name}", file=file, sheet=candidates[-1].name)
            continue
        found[spec.name] = (chosen.name, chosen.grid, chosen.info)
        for s in ignored:
            problems.warning(
                f"sheet {_named(s)} could also be the {spec.name} sheet, but a sheet is named {spec.name} "
                f"exactly: {_named(s)} is not read",
                f"rename or delete «{s.name}» if it is not the {spec.name} sheet", file=file, sheet=s.name)
        taken = {header_key(s.name) for s in (*exact, *others)}
        for s in sheets:
            like = lookalike(s.name, spec.aliases) if header_key(s.name) not in taken else None
            if like is not None:
                problems.warning(f"{describe(s.name, like)}: it is not read (sheet «{chosen.name}» is)",
                                 f"rename or delete sheet «{s.name}» if it is not meant as the {spec.name} sheet",
                                 file=file, sheet=s.name)
    return found, unclear


def plan_from_frames(
    employees: pd.DataFrame,
    kpis: pd.DataFrame,
    plan: pd.DataFrame,
    scales: pd.DataFrame | None = None,
    settings: Settings | Mapping[str, Any] | None = None,
    *,
    problems: Problems | None = None,
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
              "Scales": table("Scales", scales), "Settings": None}
    the_plan = build_plan(tables, file="(frames)", path=None, problems=sink)
    if settings is not None:
        the_plan.settings = settings if isinstance(settings, Settings) else Settings(**dict(settings))
    return the_plan


def _letter(i: int) -> str:
    return get_column_letter(i + 1)


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
                        f"missing column {col.name} in sheet {t.sheet}: {describe(h, like, 'the header')}",
                        f"retype the header «{h}» in {_script_of(like)} letters ({like})", **t.at(t.header_row, h))
                    continue
                problems.error(
                    f"missing column {col.name} in sheet {t.sheet}",
                    f"add a column headed {col.name} (or {_alias_hint(col)}) to the header row {t.header_row}",
                    **{**t.at(t.header_row), "header": col.name},
                )
        if spec.name == "Plan" and t.column(*POSITION) is None and t.column(*EMPLOYEE_ID) is None:
            plan.broken = True
            problems.error(
                f"missing column position (or employee_id) in sheet {t.sheet}",
                "add a position column (plans per position) and/or an employee_id column (personal plans)",
                **{**t.at(t.header_row), "header": "position"},
            )
    staff = tables.get("Employees")
    if staff is not None and staff.frame.empty and staff.frame.columns.size:  # an empty payroll is no success
        plan.broken = True
        problems.error(f"sheet {staff.sheet} lists no employees: there is nothing below its header row "
                       f"{staff.header_row}", f"add one row per employee below the header (row {staff.header_row + 1}"
                       " on), or check that this is the right plan workbook", **staff.at(staff.header_row + 1))
    if settings_grid is not None:
        plan.settings = _settings(settings_grid, tables["Settings"], problems, file)
    if plan.broken:
        return plan
    plan.employees = _employees(plan, problems)
    _check_managers(plan, problems)
    plan.kpis, plan.sources = _kpis(plan, problems)
    plan.scales = _scales(plan, problems)
    plan.rows = _plan_rows(plan, problems)
    plan.lines = resolve_lines(plan.employees, plan.rows)
    _check_lines(plan, problems)
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
                f"{len(heads)} columns of sheet {t.sheet} could be {col.name}: {plan_cols}; which one to use is "
                "not clear", f"rename or delete all but one of them (keep one column headed {col.name})",
                **t.at(t.header_row, heads[1]))
    t.report(problems, list(t.frame.columns) if spec.name == "Settings" else used)


def _script_of(name: str) -> str:
    return "Russian" if any("а" <= c <= "я" or c == "ё" for c in name.casefold()) else "Latin"


def _alias_hint(col: Column) -> str:
    return ", ".join(a for a in col.aliases[1:4])


def _text(series: pd.Series) -> pd.Series:
    """A text column: numbers as their digits (1001.0 → '1001'), empty → ''."""
    return to_ids(series).fillna("").astype(object)


def _col(plan: Plan, sheet: str, name: str) -> tuple[Table, str | None]:
    t = plan.tables[sheet]
    return t, t.column(*SHEETS[sheet].column(name).aliases)


def _numbers(
    plan: Plan, sheet: str, name: str, problems: Problems, *, required: bool = False, default: float = np.nan,
    minimum: float | None = None, maximum: float | None = None, what: str = "",
) -> pd.Series:
    """A numeric column, each bad cell reported; empty → ``default`` (or an error when required)."""
    t, header = _col(plan, sheet, name)
    if header is None:
        return pd.Series(default, index=t.frame.index, dtype=float)
    nums, errors = to_numbers(t.frame[header])
    bad = errors.notna()
    problems.cells("error", t, list(t.frame.index[bad]), header, [f"{name}: {m}" for m in errors[bad]],
                   f"type the {what or name} as a number, e.g. 1234,5 or 40%")
    empty = nums.isna() & ~bad
    if required and empty.any():
        problems.cells("error", t, list(t.frame.index[empty]), header, f"{name} is empty",
                       f"fill in the {what or name}")
    elif empty.any():
        nums = nums.where(~empty, default)
    if minimum is not None:
        low = nums < minimum
        if low.any():
            problems.cells("error", t, list(t.frame.index[low]), header,
                           [f"{name} {v:g} is below {minimum:g}" for v in nums[low]],
                           f"the {what or name} must be {minimum:g} or more")
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
    problems.cells("error", t, list(t.frame.index[empty]), header, f"{name} is empty", f"fill in the {name}")
    return text


def _optional_text(plan: Plan, sheet: str, name: str) -> pd.Series:
    t, header = _col(plan, sheet, name)
    if header is None:
        return pd.Series("", index=t.frame.index, dtype=object)
    return _text(t.frame[header])


def _duplicates(plan: Plan, sheet: str, name: str, ids: pd.Series, problems: Problems, what: str,
                ambiguous: dict[str, str] | None = None) -> pd.Series:
    """Report repeated ids (every repeat, pointing at the first) and ids that only look alike; returns the
    'first occurrence' mask. ``ambiguous`` collects every id concerned, with why (for the results)."""
    t, header = _col(plan, sheet, name)
    dup = ids.ne("") & ids.duplicated(keep="first")
    first_row: dict[str, int] = {}
    for r, v in ids[ids.ne("")].items():
        first_row.setdefault(v, int(r))
    for r, v in ids[dup].items():
        problems.error(f'duplicate {what} "{v}" (first in row {first_row[v]})',
                       f"give each {what} one row; change or delete this one", **t.at(r, header))
        if ambiguous is not None:
            ambiguous[v] = f"the {what} {v} is in sheet {sheet} more than once (rows {first_row[v]} and {int(r)})"
    # ids are compared exactly everywhere; two that only look alike (M1 / m1) would be a trap
    first_look: dict[str, tuple[str, int]] = {}
    for r, v in ids[ids.ne("") & ~dup].items():
        k = id_key(v)
        if k not in first_look:
            first_look[k] = (v, int(r))
            continue
        other, other_row = first_look[k]
        how = ("look the same but are typed with different Unicode characters (e.g. a letter and a separate "
               "accent mark)" if unicodedata.normalize("NFC", v) == unicodedata.normalize("NFC", other)
               else "differ only in upper/lower case or spacing")
        problems.error(f'{what} "{v}" (row {int(r)}) and "{other}" (row {other_row}) {how}: one would be taken for '
                       "the other", "give each row an id that differs in more than that (ids are compared exactly)",
                       **t.at(r, header))
        if ambiguous is not None:
            for a, b in ((v, other), (other, v)):
                ambiguous.setdefault(a, f'the {what} "{a}" looks like "{b}" (sheet {sheet}, rows {other_row} and '
                                        f"{int(r)})")
    return ~dup


def _employees(plan: Plan, problems: Problems) -> pd.DataFrame:
    t = plan.tables["Employees"]
    f = t.frame
    ids = _required_text(plan, "Employees", "employee_id", problems)
    first = _duplicates(plan, "Employees", "employee_id", ids, problems, "employee_id", plan.ambiguous)
    out = pd.DataFrame(index=f.index)
    out["employee_id"] = ids
    for name in ("name", "position"):
        out[name] = _required_text(plan, "Employees", name, problems)
    for name in ("department", "manager", "email"):
        out[name] = _optional_text(plan, "Employees", name)
    _, email_col = _col(plan, "Employees", "email")
    bad_email = out["email"].ne("") & ~out["email"].str.contains("@", regex=False)
    if bad_email.any() and email_col:
        problems.cells("warning", t, list(f.index[bad_email]), email_col,
                       [f'"{v}" does not look like an e-mail address' for v in out["email"][bad_email]],
                       "correct the address (cards cannot be mailed to it)")
    out["salary"] = _numbers(plan, "Employees", "salary", problems, default=0.0, minimum=0.0, maximum=MAX_MONEY,
                             what="fixed salary")
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
            errors = errors.mask(never, f"a date after {FAR_FUTURE:%d.%m.%Y} (31.12.9999?) is not a hire date; "
                                        "leave the cell empty or type the first working day")
            dates = dates.mask(never)
        bad = errors.notna()
        problems.cells("error", tt, list(f.index[bad]), header, [f"{name}: {m}" for m in errors[bad]],
                       "type the date as 31.10.2026 or 2026-10-31")
        out[name] = dates
    wrong = out["left"].notna() & out["hired"].notna() & (out["left"] < out["hired"])
    if wrong.any():
        _, header = _col(plan, "Employees", "left")
        problems.cells("error", t, list(f.index[wrong]), header or "left",
                       [f"left {lft:%d.%m.%Y} is before hired {h:%d.%m.%Y}"
                        for lft, h in zip(out["left"][wrong], out["hired"][wrong], strict=True)],
                       "correct the dates: the last working day comes after the first")
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
        problems.warning(f"{r.what}; the team bundle of Employees row{'s' if len(rows) > 1 else ''} "
                         f"{row_ranges(rows)} will not be mailed",
                         "write the manager's exact employee_id in the manager column", **t.at(rows[0], header))


MULTIPLIER_MAX = 10.0
"""An individual multiplier above this is an error: 100 is 100% typed without the sign, not 100 times the bonus."""
MULTIPLIER_HIGH = 3.0
"""Above this (up to MULTIPLIER_MAX) a multiplier is a warning: possible, but rare enough to be checked."""


def _multipliers(plan: Plan, problems: Problems) -> pd.Series:
    """The individual multipliers (empty = 1), in their plausible range: below 0 or above 10 is an error
    (the cell and the likely fix named), above 3 or exactly 0 a warning."""
    nums = _numbers(plan, "Employees", "multiplier", problems, default=1.0, minimum=0.0, what="individual multiplier")
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


def _kpis(plan: Plan, problems: Problems) -> tuple[pd.DataFrame, dict[str, Source]]:
    t = plan.tables["KPIs"]
    f = t.frame
    ids = _required_text(plan, "KPIs", "kpi_id", problems)
    first = _duplicates(plan, "KPIs", "kpi_id", ids, problems, "kpi_id")
    out = pd.DataFrame(index=f.index)
    out["kpi_id"] = ids
    out["name"] = _required_text(plan, "KPIs", "name", problems)
    for name in ("unit", "source", "description"):
        out[name] = _optional_text(plan, "KPIs", name)
    out["row"] = f.index.astype(int)
    out = out[((ids != "") & first).to_numpy()]
    sources: dict[str, Source] = {}
    _, header = _col(plan, "KPIs", "source")
    for r, kpi_id, text in zip(out["row"], out["kpi_id"], out["source"], strict=True):
        if not text:
            continue
        try:
            sources[kpi_id] = parse(text)
        except SourceSyntaxError as e:
            problems.error(f"KPI {kpi_id}: the source cannot be read: {e}",
                           "correct the source (see the source syntax in docs/plan.md), or leave it empty "
                           "and give the facts in a facts file", **t.at(r, header))
    return out.reset_index(drop=True), sources


def _scales(plan: Plan, problems: Problems) -> dict[str, Scale]:
    scales: dict[str, Scale] = {DEFAULT_SCALE_NAME: DEFAULT_SCALE}
    t = plan.tables.get("Scales")
    if t is None or t.frame.empty:
        return scales
    f = t.frame
    names = _required_text(plan, "Scales", "scale", problems)
    thresholds = _numbers(plan, "Scales", "threshold", problems, required=True, what="score threshold")
    coefficients = _numbers(plan, "Scales", "coefficient", problems, required=True, minimum=0.0,
                            what="coefficient")
    below = _numbers(plan, "Scales", "below", problems, minimum=0.0, what="coefficient below the first threshold")
    caps = _numbers(plan, "Scales", "cap", problems, minimum=0.0, what="coefficient cap")
    kinds = _optional_text(plan, "Scales", "kind").map(lambda v: v.casefold())
    _, kind_col = _col(plan, "Scales", "kind")
    _, thr_col = _col(plan, "Scales", "threshold")
    for name in dict.fromkeys(n for n in names if n):
        rows = f.index[(names == name).to_numpy()]
        label = f'scale "{name}"'
        bad_kind = [r for r in rows if kinds[r] and kinds[r] not in SCALE_KINDS]
        for r in bad_kind:
            problems.error(f'{label}: unknown kind "{kinds[r]}"', "write steps or linear", **t.at(r, kind_col))
        kind_set = {SCALE_KINDS[kinds[r]] for r in rows if kinds[r] in SCALE_KINDS}
        if len(kind_set) > 1:
            problems.error(f"{label}: its rows mix steps and linear", "give every row of a scale the same kind",
                           **t.at(rows[0], kind_col))
            continue
        if bad_kind or thresholds[rows].isna().any() or coefficients[rows].isna().any():
            continue  # already reported
        unsorted = False
        for prev, r in pairwise(rows):
            a, b = thresholds[prev], thresholds[r]
            if b <= a:
                unsorted = True
                problems.error(
                    f"{label} is not sorted: threshold {_pct(b)} in row {r} comes after {_pct(a)} in row {prev}"
                    if b < a else f"{label}: threshold {_pct(b)} appears twice (rows {prev} and {r})",
                    "sort the rows of the scale by threshold, lowest first" if b < a
                    else "keep one row per threshold",
                    **t.at(r, thr_col),
                )
                break
        if unsorted:
            continue
        points = list(zip(thresholds[rows], coefficients[rows], strict=True))
        cap_vals = caps[rows].dropna().unique()
        below_vals = below[rows].dropna().unique()
        if len(cap_vals) > 1 or len(below_vals) > 1:
            problems.error(f"{label}: different cap or below values in its rows",
                           "give the cap/below once (or the same in every row)", **t.at(rows[0]))
            continue
        cap = float(cap_vals[0]) if len(cap_vals) else None
        try:
            if kind_set == {"linear"}:
                scales[name] = Scale.linear(points, cap=cap, name=name)
            else:
                scales[name] = Scale.steps(points, below=float(below_vals[0]) if len(below_vals) else 0.0,
                                           cap=cap, name=name)
        except ScaleError as e:
            problems.error(str(e), "correct the scale's rows", **t.at(rows[0]))
    return scales


def _plan_rows(plan: Plan, problems: Problems) -> pd.DataFrame:
    t = plan.tables["Plan"]
    f = t.frame
    out = pd.DataFrame(index=f.index)
    out["position"] = _optional_text(plan, "Plan", "position")
    out["employee_id"] = _optional_text(plan, "Plan", "employee_id")
    out["kpi_id"] = _required_text(plan, "Plan", "kpi_id", problems)
    out["weight"] = _numbers(plan, "Plan", "weight", problems, required=True, minimum=0.0, what="weight")
    out["base"] = _numbers(plan, "Plan", "base", problems, required=True, what="base (minimum result)")
    out["norm"] = _numbers(plan, "Plan", "norm", problems, required=True, what="norm (target result)")
    out["floor"] = _numbers(plan, "Plan", "floor", problems, what="score floor")
    out["cap"] = _numbers(plan, "Plan", "cap", problems, what="score cap")
    out["scale"] = _optional_text(plan, "Plan", "scale").replace("", DEFAULT_SCALE_NAME)
    out["gate"] = _numbers(plan, "Plan", "gate", problems, what="gate (score threshold)")
    out["row"] = f.index.astype(int)

    def cells(mask: pd.Series, column: str, messages: Any, fix: str, severity: str = "error") -> None:
        if mask.any():
            _, header = _col(plan, "Plan", column)
            problems.cells(severity, t, list(f.index[mask.to_numpy()]), header or column,  # type: ignore[arg-type]
                           messages if isinstance(messages, str) else list(messages), fix)

    personal = out["employee_id"] != ""
    nobody = ~personal & (out["position"] == "")
    cells(nobody, "position", "the row names neither a position nor an employee_id",
          "fill in the position (a plan for everyone in it) or the employee_id (a personal plan)")
    employees = set(plan.employees["employee_id"])
    unknown_emp = personal & ~out["employee_id"].isin(employees)
    alike = key_index(plan.employees["employee_id"])
    cells(unknown_emp, "employee_id", [f'unknown employee "{v}": not in the Employees sheet' + alike_hint(v, alike)
                                       for v in out["employee_id"][unknown_emp]],
          "correct the employee_id, or add the employee to the Employees sheet")
    positions = set(plan.employees["position"])
    unused = ~personal & out["position"].ne("") & ~out["position"].isin(positions)
    cells(unused, "position", [f'no employee holds the position "{v}"' for v in out["position"][unused]],
          "check the spelling against the Employees sheet (this plan applies to nobody)", "warning")
    kpis = set(plan.kpis["kpi_id"])
    unknown_kpi = out["kpi_id"].ne("") & ~out["kpi_id"].isin(kpis)
    cells(unknown_kpi, "kpi_id", [f'unknown kpi_id "{v}": not in the KPIs sheet' for v in out["kpi_id"][unknown_kpi]],
          "correct the kpi_id, or add the KPI to the KPIs sheet")
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


_LINE_COLUMNS = ("employee_id", "kpi_id", "weight", "base", "norm", "floor", "cap", "scale", "gate", "personal", "row")


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
    replaced = pos_lines.merge(pers[["employee_id", "kpi_id"]], on=["employee_id", "kpi_id"], how="left",
                               indicator=True)["_merge"].eq("both").to_numpy()
    slot = pos_lines.loc[replaced, ["employee_id", "kpi_id", "_order"]]
    pers = pers.merge(slot, on=["employee_id", "kpi_id"], how="left")
    pers["_order"] = pers["_order"].fillna(1e12 + pers["row"].astype(float))
    lines = pd.concat([pos_lines[~replaced], pers], ignore_index=True)
    lines = lines.sort_values(["_emp", "_order"], kind="stable")
    lines = lines[(lines["weight"] != 0) | lines["gate"].notna() | lines["weight"].isna()]
    return lines[list(_LINE_COLUMNS)].reset_index(drop=True)


def _check_lines(plan: Plan, problems: Problems) -> None:
    """Employees without a plan; weights that do not sum to 100% (one message per distinct set of rows)."""
    lines, emp = plan.lines, plan.employees
    has = emp["employee_id"].isin(set(lines["employee_id"]))
    for _, e in emp[~has].iterrows():
        problems.error(
            f'employee {e["employee_id"]} ({e["name"]}) has no KPIs: the position "{e["position"]}" has no plan',
            f'add rows for position "{e["position"]}" to the Plan sheet (or a personal plan for {e["employee_id"]})',
            **plan.at("Employees", e["row"], "position"),
        )
    if lines.empty:
        return
    g = lines.groupby("employee_id", sort=False)
    sums = g["weight"].sum(min_count=1)
    incomplete = lines["weight"].isna().groupby(lines["employee_id"], sort=False).any()
    rows_of = g["row"].apply(lambda r: tuple(int(x) for x in r))
    bad = (sums - 1.0).abs() > WEIGHT_TOLERANCE
    bad = bad & ~incomplete
    groups: dict[tuple[int, ...], list[str]] = {}
    for e in sums.index[bad.to_numpy()]:
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


def check_employment(plan: Plan, period: Period, problems: Problems) -> None:
    """Warn about employees hired after or leaving before the period (they get no bonus)."""
    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    emp = plan.employees
    late = emp["hired"].notna() & (emp["hired"].dt.normalize() > end)
    gone = emp["left"].notna() & (emp["left"].dt.normalize() < start)
    for mask, col, what in ((late, "hired", "hired after"), (gone, "left", "left before")):
        for _, e in emp[mask].iterrows():
            problems.warning(
                f'employee {e["employee_id"]} ({e["name"]}) {what} the period {period} '
                f'({e[col]:%d.%m.%Y}): the bonus is prorated to 0',
                "check the date or the period; or remove the employee from this period's plan",
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


def _pct(x: float) -> str:
    return f"{x * 100:.10g}%"


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
            problems.warning(f'unknown setting "{key_cell}"',
                             "known settings: period, currency, language, digits, company", **where)
            continue
        name = keys[key]
        value = rest[0][1] if rest else None
        vwhere = {**where, "column": _letter(rest[0][0]) if rest else _letter(j + 1)}
        try:
            values[name] = _setting(name, value)
        except KpiError as e:
            problems.error(f"setting {name}: {e}", _SETTING_FIX[name], **vwhere)
    return Settings(**values)


_SETTING_FIX = {
    "period": f"write {ACCEPTED_FORMS}",
    "currency": "write a currency code such as RUB",
    "language": "write en or ru",
    "digits": "write a whole number of decimal places, 0 to 6 (2 = kopecks)",
    "company": "write the company name",
}


def _setting(name: str, value: Any) -> Any:
    if name == "period":
        if value is None:
            return None
        try:
            return Period.parse(value)
        except PeriodError as e:
            raise KpiError(str(e)) from None
    text = "" if value is None else str(value).strip()
    if name == "language":
        lang = LANGUAGES.get(text.casefold())
        if lang is None:
            raise KpiError(f'"{text}" is not a language this tool speaks')
        return lang
    if name == "digits":
        try:
            x = parse_number(value)
        except NumberFormatError as e:
            raise KpiError(str(e)) from None
        if x is None or not float(x).is_integer() or not 0 <= x <= 6:
            raise KpiError(f'"{value}" is not a whole number from 0 to 6')
        return int(x)
    if name == "currency":
        return text.upper() or "RUB"
    return text
