"""Why a bonus is zero or below target (issue 13 §3): one note per employee, from the scored lines and totals.

Computed with the results (never re-derived by the summary), in the plan's language: a failed gate (which KPI,
its score and gate), a KPI whose coefficient is below 1 (its score and coefficient; 0 when below the scale), a
payout kind that paid nothing, proration (days worked of the period's days), a multiplier below 1. An employee
whose bonus cannot be computed (a missing fact, …) has no note here: their ``reason`` says why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xl_kpi.engine.period import Period

TEXTS = {
    "en": {
        "gate": "gate failed: {kpi} scored {score} below its gate {gate}, so no bonus",
        "zero": "{kpi}: score {score} is below the scale, coefficient 0",
        "low": "{kpi}: score {score} gives coefficient {coef}",
        "nothing": "{kpi}: the {kind} payout is 0 at score {score}",
        "prorated": "prorated: {days} of {of} days of the period worked ({share})",
        "multiplier": "personal multiplier {m}",
    },
    "ru": {
        "gate": "стоп-показатель {kpi}: выполнение {score} ниже порога {gate}, премия не начислена",
        "zero": "{kpi}: выполнение {score} ниже шкалы, коэффициент 0",
        "low": "{kpi}: выполнение {score} даёт коэффициент {coef}",
        "nothing": "{kpi}: выплата ({kind}) равна 0 при выполнении {score}",
        "prorated": "пропорционально отработанному: {days} из {of} дней периода ({share})",
        "multiplier": "персональный множитель {m}",
    },
}


def _pct(x: float, lang: str) -> str:
    s = f"{x * 100:.1f}".rstrip("0").rstrip(".") + "%"
    return s.replace(".", ",") if lang == "ru" else s


def _num(x: float, lang: str) -> str:
    s = f"{x:.4g}"
    return s.replace(".", ",") if lang == "ru" else s


def bonus_notes(lines: pd.DataFrame, emp: pd.DataFrame, period: Period | None, lang: str = "en") -> pd.Series:
    """For each employee of ``emp`` (in order): '; '-joined notes on why the bonus is zero or reduced ('' if
    it is not). ``lines`` are the scored lines (kpi_name, score, coefficient, bonus, payout, gate, gated);
    ``emp`` has gated, proration, multiplier, hired, left and the status's reason."""
    t = TEXTS.get(lang, TEXTS["en"])
    emp_ids = [str(e) for e in emp["employee_id"].tolist()]  # plain lists: .iat per line cost ~0.3 ms a line
    out: dict[str, list[str]] = {e: [] for e in emp_ids}
    line_ids = [str(e) for e in lines["employee_id"].tolist()]
    names = lines["kpi_name"].where(lines["kpi_name"].astype(str).ne(""), lines["kpi_id"]).astype(str).tolist()
    score = lines["score"].astype(float).to_numpy()
    coef = lines["coefficient"].astype(float).to_numpy()
    kind = lines["payout"].astype(str).tolist() if "payout" in lines else ["coefficient"] * len(lines)
    gate = lines["gate"].to_numpy()
    for i in np.flatnonzero(lines["gated"].to_numpy(bool)).tolist():
        out[line_ids[i]].append(t["gate"].format(
            kpi=names[i], score=_pct(score[i], lang), gate=_pct(float(gate[i]), lang)))
    gated = set(emp.loc[emp["gated"].astype(bool), "employee_id"].astype(str))
    scored = ~np.isnan(score) & ~np.fromiter((e in gated for e in line_ids), bool, len(line_ids))
    is_coef = np.array([k == "coefficient" for k in kind], dtype=bool)
    reduced = scored & ((is_coef & (coef < 1)) | (~is_coef & (lines["bonus"].astype(float).to_numpy() == 0)))
    for i in np.flatnonzero(reduced).tolist():  # only the lines concerned are formatted
        e, s = line_ids[i], _pct(score[i], lang)
        if not is_coef[i]:
            out[e].append(t["nothing"].format(kpi=names[i], kind=kind[i], score=s))
        elif coef[i] == 0:
            out[e].append(t["zero"].format(kpi=names[i], score=s))
        else:
            out[e].append(t["low"].format(kpi=names[i], score=s, coef=_num(coef[i], lang)))
    share = emp["proration"].astype(float).to_numpy()
    if period is not None:
        hired = pd.to_datetime(emp["hired"]) if "hired" in emp else pd.Series(pd.NaT, index=emp.index)
        left = pd.to_datetime(emp["left"]) if "left" in emp else pd.Series(pd.NaT, index=emp.index)
        days = np.asarray(period.overlap_days(hired, left), dtype=float)
        for k in np.flatnonzero(share < 1).tolist():
            out[emp_ids[k]].append(t["prorated"].format(
                days=int(days[k]), of=period.days, share=_pct(share[k], lang)))
    mult = emp["multiplier"].astype(float).to_numpy()
    for k in np.flatnonzero(mult < 1).tolist():
        out[emp_ids[k]].append(t["multiplier"].format(m=_num(mult[k], lang)))
    return pd.Series(["; ".join(out[e]) for e in emp_ids], index=emp.index, dtype=object)
