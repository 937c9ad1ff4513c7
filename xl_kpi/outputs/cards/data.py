"""The results table cut into per-card data (one employee and their KPI lines, as Python values), and what all
cards of one results table share: scales, period, currency, company, digits, texts in the card's language."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.payout import Tiers
from xl_kpi.engine.period import Period, PeriodError
from xl_kpi.engine.scales import DEFAULT_SCALE, Scale
from xl_kpi.outputs.cards.texts import TEXTS

# ----------------------------------------------------------------------------------------------
# results → per-card data

_LINE_COLS = ("kpi_id", "kpi_name", "unit", "weight", "base", "norm", "floor", "cap", "scale", "gate", "fact",
              "score", "coefficient", "bonus", "payout", "rate", "threshold", "amount", "max_payout", "tiers")
_LINE_NUM = {"weight", "base", "norm", "floor", "cap", "gate", "fact", "score", "coefficient", "bonus", "rate",
             "threshold", "amount", "max_payout"}
_EMP_COLS = ("employee_id", "name", "position", "department", "manager", "email", "salary", "bonus_pool",
             "multiplier", "proration", "kpi_bonus", "gated", "bonus", "adjustment", "adjustment_reason", "total_pay",
             "status", "reason")
_EMP_NUM = {"salary", "bonus_pool", "multiplier", "proration", "kpi_bonus", "bonus", "adjustment", "total_pay"}
_EMP_DEFAULT = {"multiplier": 1.0, "proration": 1.0, "gated": False, "adjustment": 0.0, "adjustment_reason": ""}


def _clean_text(v: Any) -> Any:
    if type(v) is str:  # most cells: nothing to clean
        return v
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float):
        if v != v:
            return None
        return int(v) if v.is_integer() and abs(v) < 2**53 else v
    if hasattr(v, "item") and not isinstance(v, str):
        return _clean_text(v.item())
    return v


def _array(df: pd.DataFrame, name: str, numeric: bool, default: Any = None) -> Any:
    """One column as a compact NumPy array (float64 with NaN for numbers, objects otherwise)."""
    if name not in df.columns:
        return np.full(len(df), np.nan if numeric else default, dtype=float if numeric else object)
    s = df[name]
    if numeric:
        if s.dtype == np.float64:  # the results' own numbers, not a copy (100,000 employees' lines: ~45 MB)
            return s.to_numpy()
        return pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=math.nan)
    return s.to_numpy(dtype=object)


def _texts(values: list[Any]) -> list[Any]:
    return [v if type(v) is str else _clean_text(v) for v in values]


def _flags(values: list[Any]) -> list[bool]:
    return [bool(x) if x is not None and x is not pd.NA and x == x else False for x in values]


@dataclass(slots=True)
class _Card:
    emp: dict[str, Any]
    lines: list[tuple[Any, ...]]


class _Context:
    """What is shared by all cards of one results table."""

    def __init__(self, results: Any, lang: str, history: Any = None) -> None:
        self.history = history or None
        """The earlier runs (:class:`xl_kpi.outputs.history.History`) for the cards' history sheet, or None."""
        self.scales: dict[str, Scale] = dict(getattr(results, "scales", None) or {})
        self.tiers: dict[str, Tiers] = dict(getattr(results, "tiers", None) or {})
        """The tier sets of ``share`` and ``per_unit`` lines, written into their bonus formulas."""
        self.period = str(getattr(results, "period", "") or "")
        self.currency = str(getattr(results, "currency", "") or "RUB")
        self.company = _clean_text(getattr(results, "company", "")) or ""
        self.digits = int(getattr(results, "digits", 2))
        """Settings' rounding digits: every money ROUND on the card uses them."""
        self.lang = lang
        self.rows: dict[str, Any] = dict(getattr(results, "rows", None) or {})
        """kpi_id → the raw rows behind its derived facts (the cards' rows sheet); empty: no such sheet."""
        self.rows_names: dict[str, str] = _names(results) if self.rows else {}
        """employee_id → name as in the plan: whose row each listed row is."""
        self.t = TEXTS[lang]
        self.period_name = _period_name(self.period, lang)

    def scale(self, name: Any) -> Scale:
        if name is None or name == "" or (isinstance(name, float) and name != name):
            name = "default"
        sc = self.scales.get(name)
        if sc is None:
            if name == "default":
                return DEFAULT_SCALE
            raise KpiError(f"scale {name!r} is used by a KPI but not defined in results.scales")
        return sc


def _names(results: Any) -> dict[str, str]:
    emps = results.employees
    return {str(e): str(n) if n is not None and n == n else str(e)
            for e, n in zip(emps["employee_id"], emps["name"], strict=True)}


def _period_name(period: str, lang: str) -> str:
    """The period as the card's language names it («IV квартал 2026», "Q4 2026"); text that is not a period as is."""
    try:
        return Period.parse(period).label(lang) if period.strip() else period
    except PeriodError:
        return period


class _CardSource:
    """The results table as NumPy columns and the lines grouped per employee, made once: per-card data for any
    positions of ``results.employees``, ``batch`` employees at a time (the pool's workers inherit one and cut
    their own chunks: no per-card data crosses a process boundary)."""

    def __init__(self, results: Any) -> None:
        emps: pd.DataFrame = results.employees
        lines: pd.DataFrame = results.lines
        self.ecols = {c: _array(emps, c, c in _EMP_NUM, _EMP_DEFAULT.get(c)) for c in _EMP_COLS}
        self.lcols = [_array(lines, c, c in _LINE_NUM) for c in _LINE_COLS]
        self.ltext = [c not in _LINE_NUM for c in _LINE_COLS]
        # each employee's lines as a slice of one array of line positions, grouped by employee (a dict of an array
        # per employee held ~15 MB more for 100,000 employees, in the parent and in every worker it forks)
        codes, uniques = pd.factorize(lines["employee_id"]) if len(lines) else (np.zeros(0, np.intp), [])
        self.line_order = np.argsort(codes, kind="stable")[np.count_nonzero(codes < 0):]  # a missing id: no card
        self.line_starts = np.r_[0, np.cumsum(np.bincount(codes[codes >= 0], minlength=len(uniques)))]
        self.group = (pd.Index(uniques).get_indexer(emps["employee_id"]) if len(uniques)
                      else np.full(len(emps), -1, dtype=np.intp))
        self.ids = _texts(self.ecols["employee_id"].tolist())

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, employee_ids: Iterable[Any]) -> list[int]:
        """The positions of ``employee_ids`` in ``results.employees`` (a KpiError for one not there)."""
        index = {v: i for i, v in enumerate(self.ids)}
        order: list[int] = []
        for e in employee_ids:
            if e not in index:
                raise KpiError(f"employee {e!r} is not in the results")
            order.append(index[e])
        return order

    def cards(self, order: Sequence[int], batch: int = 256) -> Iterator[_Card]:
        """The cards of the employees at ``order``, in that order."""
        ecols, lcols, ltext, ids = self.ecols, self.lcols, self.ltext, self.ids
        order_, starts, group = self.line_order, self.line_starts, self.group
        empty = np.zeros(0, dtype=np.intp)
        for start in range(0, len(order), batch):
            pos = np.asarray(order[start: start + batch], dtype=np.intp)
            ev: dict[str, list[Any]] = {}
            for c, arr in ecols.items():
                vals = arr[pos].tolist()
                ev[c] = vals if c in _EMP_NUM else _flags(vals) if c == "gated" else _texts(vals)
            idxs = [order_[starts[g]:starts[g + 1]] if g >= 0 else empty for g in group[pos].tolist()]
            flat = np.concatenate(idxs) if idxs else empty
            lv = [_texts(col[flat].tolist()) if txt else col[flat].tolist()
                  for col, txt in zip(lcols, ltext, strict=True)]
            rows = list(zip(*lv, strict=True)) if len(flat) else []
            at = 0
            for k, idx in enumerate(idxs):
                emp = {c: ev[c][k] for c in _EMP_COLS}
                emp["employee_id"] = ids[pos[k]]
                yield _Card(emp, rows[at: at + len(idx)])
                at += len(idx)


def _cards(results: Any, employee_ids: Iterable[Any] | None = None, batch: int = 256) -> Iterator[_Card]:
    """Per-employee data, grouping the lines once (no per-employee DataFrame filtering).

    Columns are kept as NumPy arrays and turned into Python values ``batch`` employees at a time,
    so memory does not grow with the number of employees beyond the results table itself.
    """
    src = _CardSource(results)
    order = range(len(src)) if employee_ids is None else src.positions(employee_ids)
    yield from src.cards(order, batch)
