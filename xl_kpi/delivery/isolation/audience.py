"""Who may see what: the company's people, each file's audience and what of theirs is allowed in it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.delivery.isolation.model import _MONEY, AMOUNT_FIELDS, MIN_AMOUNT, SHORT_ID
from xl_kpi.delivery.isolation.text import _cents, _id_form, norm_name, numbers_in
from xl_kpi.engine.period import Period, PeriodError
from xl_kpi.inputs.identity import canonical_address


def _period_texts(period: object) -> str:
    """The period as outputs write it: its key and its labels in both languages (the numbers in them are allowed)."""
    key = str(period or "")
    try:
        p = Period.parse(key)
    except PeriodError:
        return key.replace("-", " - ")
    return " ".join([key.replace("..", " ").replace("-", " - "), *(p.label(lang, case) for lang in ("en", "ru")
                                                                for case in ("nominative", "prepositional"))])

# ------------------------------------------------------------------------------ audiences


@dataclass
class _Person:
    id: str
    """As in the results (stripped); ``form`` is its :func:`_id_form`."""
    name: str
    key: str
    manager_key: str
    email: str
    """:func:`xl_kpi.inputs.identity.canonical_address` of the plan's address."""
    amounts: dict[str, int]
    form: str = ""


class _Company:
    """Everyone in the results: names, ids and amounts to look for, and what each audience may see."""

    def __init__(self, results: Any) -> None:
        emp = results.employees
        lines = results.lines
        self.people: dict[str, _Person] = {}
        for row in emp.to_dict("records"):
            eid = str(row["employee_id"]).strip()
            amounts = {}
            for f in AMOUNT_FIELDS:
                c = _cents(row.get(f)) if _num(row.get(f)) else None
                if c is not None:
                    amounts[f] = c
            self.people[eid] = _Person(eid, str(row.get("name") or ""), norm_name(row.get("name")),
                                       norm_name(row.get("manager")), canonical_address(row.get("email")),
                                       amounts, _id_form(eid))
        self._period_numbers = numbers_in(_period_texts(getattr(results, "period", "")))
        # every number of each employee's own data (their row and their KPI lines), in cents
        self._numbers: dict[str, set[int]] = {eid: set() for eid in self.people}
        for frame in (emp, lines):
            ids = frame["employee_id"].astype(str).str.strip().to_numpy()
            for c in frame.columns:
                col = pd.to_numeric(frame[c], errors="coerce").to_numpy(float)
                for eid, v in zip(ids, col, strict=True):
                    if np.isfinite(v) and eid in self._numbers:
                        self._numbers[eid].add(_cents(v))  # type: ignore[arg-type]
        self._money: dict[str, tuple[str, dict[str, float]]] = {}
        for row in emp.to_dict("records"):
            vals = {c: float(row[c]) for c in _MONEY if c in row and _num(row[c])}
            self._money[str(row["employee_id"]).strip()] = (str(row.get("department") or ""), vals)
        self._cache: dict[frozenset[str], _Allowed] = {}
        forms = sorted({p.form for p in self.people.values() if p.form}, key=len, reverse=True)
        self._id_re = _alternation([f for f in forms if len(f) >= SHORT_ID], numeric=True, flags=re.IGNORECASE)
        self._short = [p for p in self.people.values() if p.form and len(p.form) < SHORT_ID]
        self._name_re = _alternation(sorted({p.key for p in self.people.values() if p.key}, key=len, reverse=True))
        self._by_key: dict[str, list[_Person]] = {}
        self._by_form: dict[str, _Person] = {}
        self._by_folded_id: dict[str, list[_Person]] = {}
        for p in self.people.values():
            self._by_key.setdefault(p.key, []).append(p)
            self._by_form[p.form] = p
            self._by_folded_id.setdefault(p.form.casefold(), []).append(p)

    def allowed(self, audience: frozenset[str], extra_names: Iterable[str] = ()) -> _Allowed:
        """What a file for ``audience`` may hold: their names and managers' names, every number of theirs.

        Numbers: each member's own (salary, pool, bonus, total, KPI bases, norms, facts, scores,
        line bonuses, id), the team's sums and averages (overall and per department, as a team
        summary shows them), and the period's year and month.
        """
        key = audience | frozenset(f"\0{n}" for n in extra_names)
        if key in self._cache:
            return self._cache[key]
        members = [self.people[i] for i in audience if i in self.people]
        names = {p.key for p in members} | {p.manager_key for p in members} | {norm_name(n) for n in extra_names}
        names.discard("")
        numbers: set[int] = set(self._period_numbers)
        groups: dict[str, list[dict[str, float]]] = {"\0all": []}
        for p in members:
            numbers |= self._numbers.get(p.id, set())
            dep, vals = self._money.get(p.id, ("", {}))
            groups["\0all"].append(vals)
            groups.setdefault(dep, []).append(vals)
        for rows in groups.values():
            for c in _MONEY:
                vals = [r[c] for r in rows if c in r]
                if vals:
                    numbers.add(_cents(round(sum(vals), 2)) or 0)
                    numbers.add(_cents(round(sum(vals) / len(vals), 2)) or 0)
        mask = _alternation(sorted(names, key=len, reverse=True))
        out = _Allowed(audience, names, numbers, mask)
        self._cache[key] = out
        return out

    def audience_of_address(self, address: str) -> set[str]:
        """The employees whose plan address is this mailbox (compared in canonical form)."""
        a = canonical_address(address)
        return {p.id for p in self.people.values() if p.email and p.email == a}

    def whose_id(self, token: str) -> list[_Person]:
        """The employee whose id ``token`` is: exactly, else case-insensitively when that is one person;
        when several ids differ only in case (a plan xl_kpi refuses), every one of them."""
        p = self._by_form.get(token)
        return [p] if p is not None else self._by_folded_id.get(token.casefold(), [])


@dataclass
class _Allowed:
    audience: frozenset[str]
    names: set[str]
    numbers: set[int]
    mask: re.Pattern[str] | None


def _num(v: Any) -> bool:
    try:
        return v is not None and np.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _alternation(words: list[str], numeric: bool = False, flags: int = 0) -> re.Pattern[str] | None:
    words = [w for w in words if w]
    if not words:
        return None
    body = "|".join(re.escape(w) for w in words)
    if numeric:
        return re.compile(rf"(?<![\w.,])({body})(?![\w]|[.,]\d)", flags)
    return re.compile(rf"(?<!\w)({body})(?!\w)", flags)


def _distinctive(cents: int) -> bool:
    return abs(cents) >= MIN_AMOUNT * 100 or (abs(cents) >= 100 * 100 and cents % 100 != 0)


def _money_text(cents: int) -> str:
    units, kop = divmod(abs(cents), 100)
    return f"{units:,}".replace(",", " ") + f",{kop:02d}"
