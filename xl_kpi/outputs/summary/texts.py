"""The words the summary prints, in en and ru (sheet names, headers, chart titles), the score-band labels,
and the period: its name in the summary's language and the file's fixed date."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from xl_kpi.engine.period import Period, PeriodError, period_of
from xl_kpi.outputs.values import text as _text

_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "sheet_employees": "Employees",
        "sheet_departments": "Departments",
        "sheet_bands": "Score bands",
        "employee_id": "ID",
        "name": "Employee",
        "department": "Department",
        "position": "Position",
        "manager": "Manager",
        "weighted": "Weighted score",
        "rank": "Rank",
        "rank_position": "Rank in position",
        "rank_department": "Rank in department",
        "bonus": "Bonus",
        "total_pay": "Total pay",
        "note": "Note",
        "adjustment": "Adjustment",
        "adjustment_reason": "Adjustment reason",
        "total": "Total",
        "headcount": "Headcount",
        "bonus_total": "Bonus",
        "total_pay_total": "Total pay",
        "avg_weighted": "Average weighted score",
        "band": "Weighted score",
        "band_from": "From",
        "band_below": "Below",
        "band_count": "Employees",
        "chart_departments": "Bonus by department",
        "chart_bands": "Employees by weighted score",
        "title": "KPI summary",
        "no_department": "(no department)",
        "no_position": "(no position)",
        "legend_gated": "* gate failed: ranked by the weighted score like everyone else, but no bonus is paid "
                        "(the note names the KPI below its gate).",
    },
    "ru": {
        "sheet_employees": "Сотрудники",
        "sheet_departments": "Отделы",
        "sheet_bands": "Распределение",
        "employee_id": "Таб. №",
        "name": "Сотрудник",
        "department": "Отдел",
        "position": "Должность",
        "manager": "Руководитель",
        "weighted": "Взвешенный результат",
        "rank": "Место",
        "rank_position": "Место в должности",
        "rank_department": "Место в отделе",
        "bonus": "Премия",
        "total_pay": "К выплате",
        "note": "Примечание",
        "adjustment": "Корректировка",
        "adjustment_reason": "Причина корректировки",
        "total": "Итого",
        "headcount": "Численность",
        "bonus_total": "Премии",
        "total_pay_total": "К выплате",
        "avg_weighted": "Средний взвешенный результат",
        "band": "Взвешенный результат",
        "band_from": "От",
        "band_below": "До",
        "band_count": "Сотрудников",
        "chart_departments": "Премии по отделам",
        "chart_bands": "Сотрудники по взвешенному результату",
        "title": "Сводка KPI",
        "no_department": "(без отдела)",
        "no_position": "(без должности)",
        "legend_gated": "* не выполнен стоп-показатель: место по взвешенному результату, как у всех, "
                        "но премия не начисляется (в примечании — какой показатель ниже порога).",
    },
}


def _pct_label(x: float) -> str:
    return f"{x * 100:.10g}%"


def _band_labels(bounds: tuple[float, ...]) -> list[str]:
    labels = [f"<{_pct_label(bounds[0])}"]
    labels += [f"{_pct_label(a)} – <{_pct_label(b)}" for a, b in itertools.pairwise(bounds)]
    labels.append(f"≥{_pct_label(bounds[-1])}")
    return labels


def _timestamp(period: Any) -> datetime:
    """Fixed created/modified time: the first day of the period (2026-Q4 → 2026-10-01), else 2000-01-01."""
    p = _period(period)
    return datetime(p.start.year, p.start.month, p.start.day) if p else datetime(2000, 1, 1)


def _period(period: Any) -> Period | None:
    try:
        return period_of(period)
    except PeriodError:
        return None


def _period_label(period: Any, language: str) -> str:
    """The period as the summary's language names it («IV квартал 2026», "Q4 2026"); other text as is."""
    p = _period(period)
    return p.label(language) if p else _text(period)


_SHEET_MAX = 31
"""Excel's longest sheet name, in UTF-16 units."""
_SHEET_BAD = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
"""Characters Excel refuses in a sheet name (and control characters)."""


def _sheet_key(name: str) -> str:
    """Sheet names Excel (or a reader) could take for one: case and ё/е ignored."""
    return name.casefold().replace("ё", "е")


def _utf16_cut(text: str, units: int) -> str:
    while len(text.encode("utf-16-le")) // 2 > units:
        text = text[:-1]
    return text


def sheet_names(wanted: Iterable[str], taken: Iterable[str]) -> list[str]:
    r"""A safe, unique sheet name for each of ``wanted`` (position names), none equal to one of ``taken``.

    Characters Excel refuses (``[]:*?/\``) become ``_``, a leading or trailing apostrophe goes, the name is cut
    to 31 UTF-16 units; two names equal but for case or ё/е (Excel would refuse the second, or a reader
    confuse them) get " (2)", " (3)"… rather than colliding silently. A blank name becomes "_".
    """
    seen = {_sheet_key(x) for x in taken} | {"history"}  # Excel reserves "History"
    out = []
    for w in wanted:
        base = _SHEET_BAD.sub("_", _text(w)).strip().strip("'").strip() or "_"
        base = _utf16_cut(base, _SHEET_MAX).rstrip().rstrip("'") or "_"
        name, i = base, 1
        while _sheet_key(name) in seen:
            i += 1
            suffix = f" ({i})"
            name = _utf16_cut(base, _SHEET_MAX - len(suffix)).rstrip().rstrip("'") + suffix
        seen.add(_sheet_key(name))
        out.append(name)
    return out
