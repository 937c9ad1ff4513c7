"""The Payouts sheet (ru «Выплаты», issue 15): every line that is not paid by the coefficient rule (fixed, proportional,
per_unit, share), its inputs and its bonus as the engine's live formula (so a what-if on the sheet recalculates
as the batch pays), and the total paid by each kind as SUMIF formulas. Written only when a plan uses such kinds."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine import formulas as fx
from xl_kpi.outputs.summary.book import _Book
from xl_kpi.outputs.summary.figures import PCT, _money_sum
from xl_kpi.outputs.summary.layout import _header, _print_setup, _width
from xl_kpi.outputs.values import text as _text

KINDS = ("fixed", "proportional", "per_unit", "share")
LABELS = {
    "en": {"sheet": "Payouts", "kpi": "KPI", "kind": "Payout", "pool": "Bonus pool", "weight": "Weight",
           "fact": "Fact", "base": "Base", "score": "Score", "rate": "Rate", "threshold": "Threshold",
           "amount": "Amount", "max_payout": "Max payout", "tiers": "Tiers", "bonus": "Bonus", "lines": "Lines"},
    "ru": {"sheet": "Выплаты", "kpi": "Показатель", "kind": "Вид выплаты", "pool": "Премиальный фонд",
           "weight": "Вес", "fact": "Факт", "base": "База", "score": "Оценка", "rate": "Ставка",
           "threshold": "Порог", "amount": "Сумма", "max_payout": "Максимум", "tiers": "Ступени",
           "bonus": "Премия", "lines": "Строк"},
}
_COLS = ("employee_id", "name", "kpi", "kind", "pool", "weight", "fact", "base", "score", "rate", "threshold",
         "amount", "max_payout", "tiers", "bonus")
_AT = {c: i + 1 for i, c in enumerate(_COLS)}


def has_payout_kinds(results: Any) -> bool:
    """True when some line is paid otherwise than by the coefficient rule (the Payouts sheet is written)."""
    lines = results.lines
    return "payout" in lines and bool(lines["payout"].isin(KINDS).any())


def _payouts_sheet(book: _Book, results: Any, language: str, t: dict[str, str], money: str, digits: int,
                   company: str, period: str) -> None:
    p = LABELS.get(language, LABELS["en"])
    lines = results.lines[results.lines["payout"].isin(KINDS)].reset_index(drop=True)
    emp = results.employees.drop_duplicates("employee_id").set_index("employee_id")
    names = lines["employee_id"].map(emp["name"])
    pools = lines["employee_id"].map(emp["bonus_pool"]).astype(float)
    tiers = dict(getattr(results, "tiers", {}) or {})
    sheet = book.sheet(p["sheet"])
    heads = [t["employee_id"], t["name"], p["kpi"], p["kind"], p["pool"], p["weight"], p["fact"], p["base"],
             p["score"], p["rate"], p["threshold"], p["amount"], p["max_payout"], p["tiers"], p["bonus"]]
    widths = [10.0, _width(names, t["name"], 14, 36), _width(lines["kpi_name"], p["kpi"], 12, 36), 14.0,
              *[12.0] * 10, 14.0]
    _header(sheet, [*heads, "", p["kind"], p["lines"], p["bonus"]], [*widths, 3.0, 16.0, 8.0, 14.0])
    fmts = {"pool": money, "weight": PCT, "score": PCT, "threshold": PCT, "amount": money, "max_payout": money}
    n = len(lines)
    kind_col, bonus_col = _letter(_AT["kind"]), _letter(_AT["bonus"])
    first = _AT["bonus"] + 2
    for r in range(2, max(n, len(KINDS)) + 2):  # rows in order: the workbook streams them (constant memory)
        if r - 2 < n:
            _line(sheet, r, lines.iloc[r - 2], _text(names.iloc[r - 2]), float(pools.iloc[r - 2]), fmts, money,
                  digits, tiers)
        if r - 2 < len(KINDS):
            kind = KINDS[r - 2]
            sheet.put(r, first, kind)
            crit = f"${_letter(first)}{r}"
            hit = lines["payout"] == kind
            kinds, paid_rng = f"${kind_col}$2:${kind_col}${n + 1}", f"${bonus_col}$2:${bonus_col}${n + 1}"
            sheet.formula(r, first + 1, f"COUNTIF({kinds},{crit})", int(hit.sum()), "0")
            paid = [float(x) for x in lines.loc[hit, "bonus"] if np.isfinite(x)]
            sheet.formula(r, first + 2, f"SUMIF({kinds},{crit},{paid_rng})", _money_sum(paid, digits), money)
    sheet.ws.freeze_panes(1, 2)
    _print_setup(sheet, p["sheet"], company, period, landscape=True)


_TEXT_COLS = ("employee_id", "name", "kpi", "kind", "tiers")


def _line(sheet: Any, r: int, ln: pd.Series, name: str, pool: float, fmts: dict[str, str], money: str, digits: int,
          tiers: dict[str, Any]) -> None:
    """One line's inputs and its bonus formula (the engine's, reading this row's cells)."""
    kind = ln["payout"]
    values = {"employee_id": _text(ln["employee_id"]), "name": name, "kpi": _text(ln["kpi_name"]) or
              _text(ln["kpi_id"]), "kind": kind, "pool": pool, "weight": ln["weight"], "fact": ln["fact"],
              "base": ln["base"], "score": ln["score"], "rate": ln["rate"], "threshold": ln["threshold"],
              "amount": ln["amount"], "max_payout": ln["max_payout"], "tiers": _text(ln["tiers"])}
    for c, v in values.items():
        if c in _TEXT_COLS:
            sheet.put(r, _AT[c], v)
        else:
            x = float(v)
            sheet.put(r, _AT[c], x if math.isfinite(x) else None, fmts.get(c), numeric=True)
    ref = {c: f"{_letter(_AT[c])}{r}" for c in _COLS}

    def given(c: str) -> str | None:
        return ref[c] if math.isfinite(float(ln[c])) else None

    refs = fx.PayoutRefs(ref["pool"], ref["weight"], '""', ref["score"], ref["fact"], ref["base"], given("rate"),
                         given("threshold"), given("amount"), given("max_payout"))
    tier = tiers.get(ln["tiers"]) if ln["tiers"] else None
    bonus = float(ln["bonus"])
    try:
        formula = fx.payout_formula(kind, refs, digits, tier)
    except ValueError:  # a line the results could not pay (a missing rate): no formula, no number
        sheet.put(r, _AT["bonus"], None, money, numeric=True)
        return
    if ln["tiers"] and tier is None:
        sheet.put(r, _AT["bonus"], None, money, numeric=True)
        return
    sheet.formula(r, _AT["bonus"], formula, bonus if math.isfinite(bonus) else "", money)


def _letter(col: int) -> str:
    from xlsxwriter.utility import xl_col_to_name

    return xl_col_to_name(col - 1)

