"""Helpers for the plan / facts / sources / validate / results tests: tiny workbooks and CSVs in tmp_path.

Import it as ``from tests import _plan_helpers as ph`` (see tests/conftest.py).
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook

Rows = list[list[Any]]


def write_workbook(path: Path, sheets: dict[str, Rows]) -> Path:
    """An .xlsx with one sheet per entry, rows written from A1 (the first row is the header)."""
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(list(r))
    wb.save(path)
    return path


def write_csv(path: Path, rows: Rows, *, sep: str = ",", encoding: str = "utf-8", bom: bool = False) -> Path:
    """A CSV file with the given separator and encoding (bom=True writes a UTF-8 BOM)."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\r\n").writerows(rows)
    data = buf.getvalue().encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


EMPLOYEES_HEADER = ["employee_id", "name", "position", "department", "manager", "email", "salary", "bonus_pool"]


def plan_sheets() -> dict[str, Rows]:
    """A small valid plan: two account managers (pool 20 000) and a support agent, two KPIs each.

    Account managers: deals (weight 0.4, base 100, norm 150) and complaints (0.6, base 10, norm 5,
    lower is better). Support: complaints (0.5) and nps (0.5, base 20, norm 50, linear scale 'lin').
    """
    return copy.deepcopy({
        "Employees": [
            EMPLOYEES_HEADER,
            ["E1", "Иванов Иван", "Account manager", "Sales", "Петрова", "e1@x.ru", 50_000, 20_000],
            ["E2", "Петров Пётр", "Account manager", "Sales", "Петрова", "e2@x.ru", 60_000, 20_000],
            ["E3", "Сидорова Анна", "Support", "Service", "Петрова", "e3@x.ru", 40_000, 10_000],
        ],
        "KPIs": [
            ["kpi_id", "name", "unit", "source"],
            ["deals", "Closed deals", "pcs", None],
            ["complaints", "Complaints", "pcs", None],
            ["nps", "NPS", "pts", None],
        ],
        "Plan": [
            ["position", "employee_id", "kpi_id", "weight", "base", "norm", "floor", "cap", "scale", "gate"],
            ["Account manager", None, "deals", 0.4, 100, 150, None, None, None, None],
            ["Account manager", None, "complaints", 0.6, 10, 5, None, None, None, None],
            ["Support", None, "complaints", 0.5, 10, 5, None, None, None, None],
            ["Support", None, "nps", 0.5, 20, 50, None, None, "lin", None],
        ],
        "Scales": [
            ["scale", "threshold", "coefficient", "kind"],
            ["lin", 0.5, 0.0, "linear"],
            ["lin", 1.0, 1.0, "linear"],
            ["lin", 1.5, 1.5, "linear"],
        ],
        "Settings": [["setting", "value"], ["period", "2026-10"], ["currency", "RUB"], ["company", "Ромашка"]],
    })


def facts_rows(values: dict[tuple[str, str], Any] | None = None) -> Rows:
    """A facts table for plan_sheets(); ``values`` overrides (employee, kpi) → fact."""
    facts = {("E1", "deals"): 160, ("E1", "complaints"): 4, ("E2", "deals"): 130, ("E2", "complaints"): 8,
             ("E3", "complaints"): 5, ("E3", "nps"): 35}
    facts.update(values or {})
    return [["employee_id", "kpi_id", "fact"]] + [[e, k, v] for (e, k), v in facts.items() if v is not ...]


def make_plan(tmp_path: Path, sheets: dict[str, Rows] | None = None, name: str = "plan.xlsx") -> Path:
    return write_workbook(tmp_path / name, sheets if sheets is not None else plan_sheets())


def make_facts(tmp_path: Path, values: dict[tuple[str, str], Any] | None = None, name: str = "facts.csv",
               **kw: Any) -> Path:
    return write_csv(tmp_path / name, facts_rows(values), **kw)


def matching(problems: Iterable[Any], text: str) -> list[Any]:
    """Problems whose message contains ``text`` (case-insensitive)."""
    return [p for p in problems if text.casefold() in p.message.casefold()]


def only(problems: Iterable[Any], text: str) -> Any:
    """The single problem whose message contains ``text``."""
    found = matching(problems, text)
    assert len(found) == 1, f"expected one problem with {text!r}, got {[str(p) for p in problems]}"
    return found[0]


def set_cell(sheets: dict[str, Rows], sheet: str, row: int, column: str, value: Any) -> None:
    """Set a cell by Excel row number (1 = header) and header name."""
    header = sheets[sheet][0]
    sheets[sheet][row - 1][header.index(column)] = value


def dates(*items: str) -> list[dt.date]:
    return [dt.date.fromisoformat(s) for s in items]


def column_letters(header: Sequence[str]) -> dict[str, str]:
    from openpyxl.utils import get_column_letter

    return {h: get_column_letter(i + 1) for i, h in enumerate(header)}
