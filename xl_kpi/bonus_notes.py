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


def _texts(col: pd.Series, at: np.ndarray | None = None) -> np.ndarray:
    """``str`` of each value of ``col`` (only those at positions ``at``, if given), as an object array: a column of
    Python strings as it is (no copy), any other column converted value by value (no Arrow text column made)."""
    taken = col if at is None else col.take(at)
    values = taken.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    return np.array([str(v) for v in values], dtype=object)


def bonus_notes(lines: pd.DataFrame, emp: pd.DataFrame, period: Period | None, lang: str = "en") -> pd.Series:
    """For each employee of ``emp`` (in order): '; '-joined notes on why the bonus is zero or reduced ('' if
    it is not). ``lines`` are the scored lines (kpi_name, score, coefficient, bonus, payout, gate, gated);
    ``emp`` has gated, proration, multiplier, hired, left and the status's reason.

    The lines concerned are found on whole numeric columns first; only those are turned into Python values
    and texts (100,000 employees: a Python string per line for the ids, names and kinds of all 400,000 lines
    held ~150 MB more at the peak than the notes themselves)."""
    t = TEXTS.get(lang, TEXTS["en"])
    codes, ids = pd.factorize(_texts(emp["employee_id"]))  # an id listed twice shares its notes
    line_emp = pd.Index(ids).get_indexer(_texts(lines["employee_id"]))  # every line's employee (-1: none)
    score = lines["score"].astype(float).to_numpy()
    coef = lines["coefficient"].astype(float).to_numpy()
    gate = lines["gate"].to_numpy()
    gated_line = lines["gated"].to_numpy(bool)
    is_coef = (lines["payout"].eq("coefficient").fillna(False).to_numpy(bool) if "payout" in lines
               else np.ones(len(lines), dtype=bool))
    gated_emp = np.zeros(len(ids) + 1, dtype=bool)  # the last slot: lines of nobody in emp
    gated_emp[codes[emp["gated"].astype(bool).to_numpy()]] = True
    scored = ~np.isnan(score) & ~gated_emp[line_emp]
    reduced = scored & ((is_coef & (coef < 1)) | (~is_coef & (lines["bonus"].astype(float).to_numpy() == 0)))
    hit = np.flatnonzero(gated_line | reduced)
    slot = np.zeros(len(lines), dtype=np.intp)
    slot[hit] = np.arange(len(hit))
    names = [name if name != "" else kpi for name, kpi in zip(
        _texts(lines["kpi_name"], hit).tolist(), _texts(lines["kpi_id"], hit).tolist(), strict=True)]
    other = np.flatnonzero(reduced & ~is_coef)  # a payout kind's name is only written for these lines
    kind = dict(zip(other.tolist(), _texts(lines["payout"], other).tolist() if "payout" in lines
                    else ["coefficient"] * len(other), strict=True))
    share = emp["proration"].astype(float).to_numpy()
    prorated = np.flatnonzero(share < 1) if period is not None else np.zeros(0, dtype=np.intp)
    if len(prorated):
        hired = pd.to_datetime(emp["hired"]) if "hired" in emp else pd.Series(pd.NaT, index=emp.index)
        left = pd.to_datetime(emp["left"]) if "left" in emp else pd.Series(pd.NaT, index=emp.index)
        days = np.asarray(period.overlap_days(hired, left), dtype=float)  # type: ignore[union-attr]
    mult = emp["multiplier"].astype(float).to_numpy()
    low_mult = np.flatnonzero(mult < 1)

    def text(kind_of_note: int, i: int) -> str:
        if kind_of_note == 0:
            return t["gate"].format(kpi=names[slot[i]], score=_pct(score[i], lang), gate=_pct(float(gate[i]), lang))
        if kind_of_note == 1:
            s, name = _pct(score[i], lang), names[slot[i]]
            if not is_coef[i]:
                return t["nothing"].format(kpi=name, kind=kind[i], score=s)
            if coef[i] == 0:
                return t["zero"].format(kpi=name, score=s)
            return t["low"].format(kpi=name, score=s, coef=_num(coef[i], lang))
        if kind_of_note == 2:
            return t["prorated"].format(days=int(days[i]), of=period.days,  # type: ignore[union-attr]
                                        share=_pct(share[i], lang))
        return t["multiplier"].format(m=_num(mult[i], lang))

    # every note as (employee, kind, line or employee position): gate notes first, then the reduced lines, each in
    # line order, then proration and the multiplier; each employee's texts are made and joined in turn
    gated_at, reduced_at = (np.flatnonzero(m & (line_emp >= 0)) for m in (gated_line, reduced))
    who = np.concatenate([line_emp[gated_at], line_emp[reduced_at], codes[prorated], codes[low_mult]])
    what = np.repeat(np.arange(4), [len(gated_at), len(reduced_at), len(prorated), len(low_mult)])
    at = np.concatenate([gated_at, reduced_at, prorated, low_mult])
    order = np.lexsort((at, what, who))
    texts = np.full(len(ids), "", dtype=object)
    who, what, at = who[order], what[order], at[order]
    starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]]) if len(who) else np.zeros(0, dtype=np.intp)
    ends = np.r_[starts[1:], len(who)].astype(np.intp) if len(who) else starts  # no note at all: no group
    for a, b, k in zip(starts.tolist(), ends.tolist(), who[starts].tolist(), strict=True):
        texts[k] = "; ".join([text(w, i) for w, i in zip(what[a:b].tolist(), at[a:b].tolist(), strict=True)])
    return pd.Series(texts[codes], index=emp.index, dtype=object)
