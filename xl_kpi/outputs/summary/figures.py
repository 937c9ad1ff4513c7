"""The figures the summary shows and their number formats: weighted scores (the engine's), money formats
per currency, exact money totals."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import pandas as pd

from xl_kpi.engine.money import round_money
from xl_kpi.engine.payout import weighted_score

_MONEY_FORMATS = {
    "RUB": '#,##0.00 "₽"',
    "USD": '"$"#,##0.00',
    "EUR": '#,##0.00 "€"',
    "GBP": '"£"#,##0.00',
    "KZT": '#,##0.00 "₸"',
    "UAH": '#,##0.00 "₴"',
    "BYN": '#,##0.00 "Br"',
    "CNY": '"¥"#,##0.00',
}
PCT = "0.0%"


def weighted_scores(lines: pd.DataFrame) -> pd.Series:
    """Σ weight × score over each employee's KPIs, one value per ``employee_id`` (first-seen order): the
    engine's :func:`~xl_kpi.engine.payout.weighted_score` (Excel ROUND to :data:`SCORE_DECIMALS`, so equal scores
    on paper rank as ties; a missing score makes that employee's weighted score NaN).
    """
    if lines.empty:
        return pd.Series([], dtype=float, name="weighted_score")
    w = pd.to_numeric(lines["weight"], errors="coerce").to_numpy(dtype=float)
    s = pd.to_numeric(lines["score"], errors="coerce").to_numpy(dtype=float)
    return weighted_score(w, s, lines["employee_id"])


def money_format(currency: str | None) -> str:
    """Excel number format for money in ``currency`` (RUB: ``#,##0.00 "₽"``)."""
    code = (currency or "").strip().upper()
    if code in _MONEY_FORMATS:
        return _MONEY_FORMATS[code]
    if re.fullmatch(r"[A-Z]{3}", code):
        return f'#,##0.00 "{code}"'
    return "#,##0.00"


def _money_sum(values: Iterable[float], digits: int = 2) -> float:
    """Sum of amounts rounded to ``digits`` (Settings; at least kopecks): the exact decimal total
    (Excel's running sum differs by < 1e-9)."""
    return float(round_money(math.fsum(values), max(int(digits), 2)))
