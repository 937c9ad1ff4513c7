"""The isolation check with history (``generate --history``): the earlier runs a card shows are people's pay too.

A card's history sheet holds its owner's earlier weighted scores, bonuses and year-to-date total. So the check
adds, for the runs the output's manifest.json records (re-checked: a run changed since is a finding), every
earlier bonus as an amount to look for (whose it was, and in which period), and each owner's own earlier
numbers, their year-to-date total and the earlier periods' names to what their own files may hold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from xl_kpi.delivery.isolation.audience import _Company, _distinctive, _period_texts
from xl_kpi.delivery.isolation.model import IsolationReport, Leak
from xl_kpi.delivery.isolation.text import _cents, numbers_in
from xl_kpi.engine.payout import year_to_date
from xl_kpi.i18n import English, Join, Msg
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.history import AUDIT, check_recorded, load_history


def add_history(out: Path, results: Any, company: _Company, report: IsolationReport) -> None:
    """Extend ``company`` with the earlier runs ``out``'s manifest.json records (nothing without history)."""
    try:
        record = json.loads((out / AUDIT).read_text(encoding="utf-8")).get("history") or []
    except (OSError, ValueError, AttributeError):
        return
    if not record:
        return
    changed = check_recorded(record)
    problems = Problems()
    history = load_history([r["folder"] for r in record], results.period, currency=results.currency,
                           company=results.company, problems=problems, out_dir=out) if not changed else None
    if history is None or problems.has_errors:
        why = Join("; ", changed) if changed else problems.errors[0]
        report.leaks.append(Leak(AUDIT, "modified", "", "", English(Msg(
            "the history the cards show cannot be checked: {why}", why=why))))
        return
    for run in history.runs:
        company._period_numbers |= numbers_in(_period_texts(run.period.key))
    bonus_now = dict(zip(results.employees["employee_id"].astype(str).str.strip(),
                         results.employees["bonus"].to_numpy(float), strict=True))
    for eid, rows in history.rows.items():
        for r in rows:
            c = _cents(r.bonus) if np.isfinite(r.bonus) else None
            if c is not None and _distinctive(c):
                company.add_owner(c, eid, f"bonus of {r.period}")
        if eid not in company.people:  # not in this run: no file of this run is theirs
            continue
        own = {c for r in rows for c in (_cents(r.bonus), _cents(r.score)) if c is not None}
        now = bonus_now.get(eid, np.nan)
        if np.isfinite(now):
            ytd = year_to_date([r.bonus for r in history.year_to_date(eid, results.period)] + [now],
                               digits=results.digits)
            own.add(_cents(ytd) or 0)
        company.add_own_numbers(eid, own)
    company._cache.clear()
