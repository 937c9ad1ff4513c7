"""What a plan workbook becomes: :class:`Plan` (typed DataFrames, scales, sources, problems),
:class:`Settings` and :class:`PlanError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xl_kpi.engine.payout import Tiers
from xl_kpi.engine.period import Period, period_of
from xl_kpi.engine.scales import Scale
from xl_kpi.inputs.datafiles import DataFile
from xl_kpi.inputs.people import People
from xl_kpi.inputs.plan.schema import SHEETS
from xl_kpi.inputs.problems import InputError, Problems
from xl_kpi.inputs.rates import Rates
from xl_kpi.inputs.sources import Source
from xl_kpi.inputs.tables import Table


class PlanError(InputError):
    """The plan workbook has errors; ``.problems`` holds all of them."""


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
      scale, gate, payout, rate, threshold, amount, max_payout, tiers, row;
    * ``adjustments``: the Adjustments sheet: employee_id, amount, reason, kpi_id, row;
    * ``lines``: the resolved matrix, one row per employee × KPI (personal rows replace the
      position's), in Employees order then plan order: employee_id, kpi_id, weight, base, norm,
      floor, cap, scale, gate, payout (the kind), rate, threshold, amount, max_payout, tiers, personal, row
      (of the Plan sheet);
    * ``scales``: by name, always with ``"default"``; ``sources``: parsed ``KPIs.source`` by kpi_id;
    * ``tables``: the sheets as read, for locating cells (:meth:`at`): headers, column letters, read issues (the
      rows of a checked plan's tables are dropped: its frames above hold the cells, typed);
    * ``people``: employee ids and aliases, how an export's ``by`` column names people;
    * ``bindings``: the Sources sheet (table name → file); ``rates``: the Rates sheet (currency, rate, date, row).
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
    people: People = field(default_factory=People)
    bindings: list[DataFile] = field(default_factory=list)
    rates: Rates = field(default_factory=Rates)
    ambiguous: dict[str, Any] = field(default_factory=dict)
    """employee_id → why it cannot be trusted (in Employees twice, or looks like another id): such an
    employee is never carded, not even with --skip-invalid (no row is picked by its order)."""
    tiers: dict[str, Tiers] = field(default_factory=dict)
    """The Tiers sheet's tier sets by name (for ``share`` and ``per_unit`` lines)."""
    adjustments: pd.DataFrame | None = None
    """The Adjustments sheet's checked rows: employee_id, amount, reason, kpi_id, row (None: no such sheet)."""

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
