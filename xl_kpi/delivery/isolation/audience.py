"""Who may see what: the company's people, each file's audience and what of theirs is allowed in it."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.delivery.isolation.model import _MONEY, AMOUNT_FIELDS, MIN_AMOUNT, SHORT_ID
from xl_kpi.delivery.isolation.text import _cents, _id_form, _recall, _remember, norm_name, numbers_in
from xl_kpi.engine.money import round_money
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
        self.amount_owners: dict[int, list[tuple[str, str]]] = {}
        """cents → (employee id, field) of everyone with that distinctive amount: a file's numbers are looked up."""
        for p in self.people.values():
            self._by_key.setdefault(p.key, []).append(p)
            self._by_form[p.form] = p
            self._by_folded_id.setdefault(p.form.casefold(), []).append(p)
            for f, cents in p.amounts.items():
                if _distinctive(cents):
                    self.amount_owners.setdefault(cents, []).append((p.id, f))
        self._by_email: dict[str, set[str]] | None = None
        self._below: dict[str, set[str]] | None = None
        """manager id → the ids of their direct reports (built on first use by :meth:`team`)."""
        self._raw_re: re.Pattern[bytes] | None = None
        self._raw_owner: dict[bytes, str] = {}

    def raw_pattern(self) -> tuple[re.Pattern[bytes] | None, dict[bytes, str]]:
        """Every byte string that must not be readable in an encrypted file, as one pattern, and whose each is.

        Names (4+ characters) in UTF-8 and UTF-16-LE, ids of 5+ characters, amounts of 5+ digits
        (units, and units.kopecks); made once per company (a prefix tree over bytes).
        """
        if self._raw_re is None and self.people:
            import unicodedata

            from xl_kpi.delivery.isolation.model import RAW_MIN_DIGITS

            owner: dict[bytes, str] = {}
            for p in self.people.values():
                needles: list[bytes] = []
                if len(p.name.strip()) >= 4:
                    for form in {p.name.strip(), unicodedata.normalize("NFC", p.name.strip())}:
                        needles += [form.encode("utf-8"), form.encode("utf-16-le")]
                if len(p.id) >= RAW_MIN_DIGITS:
                    needles += [p.id.encode("utf-8"), p.id.encode("utf-16-le")]
                for cents in p.amounts.values():
                    units, kop = divmod(cents, 100)
                    for t in {str(units), f"{units}.{kop:02d}"} if kop else {str(units)}:
                        if len(t) >= RAW_MIN_DIGITS:
                            needles.append(t.encode("ascii"))
                for n in needles:
                    owner.setdefault(n, p.id)
            body = _trie(n.decode("latin-1") for n in owner)
            # lookahead: every position, so a needle overlapping another one is found too
            self._raw_re = re.compile(f"(?=({body}))".encode("latin-1"), re.DOTALL) if body else None
            self._raw_owner = owner
        return self._raw_re, self._raw_owner

    def allowed(self, audience: frozenset[str], extra_names: Iterable[str] = ()) -> _Allowed:
        """What a file for ``audience`` may hold: their names and managers' names, every number of theirs.

        Numbers: each member's own (salary, pool, bonus, total, KPI bases, norms, facts, scores,
        line bonuses, id), the team's sums and averages (overall and per department, as a team
        summary shows them), and the period's year and month.
        """
        key = audience | frozenset(f"\0{n}" for n in extra_names)
        known = _recall(self._cache, key)
        if known is not None:
            return known
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
        sums: set[float] = set()
        for rows in groups.values():
            for c in _MONEY:
                vals = [r[c] for r in rows if c in r]
                if vals:
                    total = math.fsum(vals)  # a team summary's own totals and averages, to the cent as Excel shows them
                    sums.update((total, total / len(vals)))
        if sums:  # rounded in one call (Excel's ROUND, as the engine rounds)
            numbers.update(_cents(float(v)) or 0 for v in round_money(np.array(sorted(sums)), 2))
        mask = _alternation(sorted(names, key=len, reverse=True))
        out = _Allowed(audience, names, numbers, mask)
        _remember(self._cache, key, out)  # a few recent audiences: the files of one are checked together
        return out

    def team(self, eid: str) -> set[str]:
        """The ids of everyone below ``eid`` in the manager chain (their manager cell names them by name or id)."""
        if self._below is None:
            below: dict[str, set[str]] = {}
            for p in self.people.values():
                if not p.manager_key:
                    continue
                heads = [h for h in self._by_key.get(p.manager_key, []) if h.id != p.id]
                heads = heads or [h for h in self.whose_id(p.manager_key) if h.id != p.id]
                if len(heads) == 1:  # a manager cell several people could be is nobody's team
                    below.setdefault(heads[0].id, set()).add(p.id)
            self._below = below
        out: set[str] = set()
        todo = [eid]
        while todo:
            for m in self._below.get(todo.pop(), ()):
                if m not in out and m != eid:
                    out.add(m)
                    todo.append(m)
        return out

    def audience_of_address(self, address: str) -> set[str]:
        """The employees whose plan address is this mailbox (compared in canonical form)."""
        if self._by_email is None:
            self._by_email = {}
            for p in self.people.values():
                if p.email:
                    self._by_email.setdefault(p.email, set()).add(p.id)
        return set(self._by_email.get(canonical_address(address), set()))

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
    """One pattern matching any of ``words`` as a whole token (group 1), built as a prefix tree.

    A plain ``a|b|c`` alternation of 10,000 names is tried name by name at every position of the
    text (cost: text × names); the prefix tree shares every common beginning, so a position costs
    about the length of the longest name. Longer words still win over their prefixes (the
    tree tries the longer branch first, and backtracks to a shorter word when the boundary fails).
    """
    body = _trie(w for w in words if w)
    if not body:
        return None
    if numeric:
        return re.compile(rf"(?<![\w.,])({body})(?![\w]|[.,]\d)", flags)
    return re.compile(rf"(?<!\w)({body})(?!\w)", flags)


def _trie(words: Iterable[str]) -> str:
    """A regular expression (no groups that capture) matching exactly ``words``, longest first, as a prefix tree."""
    root: dict[str, Any] = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}  # end of a word
    if not root:
        return ""

    def emit(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = []
        for ch in sorted(k for k in node if k):
            child, run = node[ch], [ch]
            while len(child) == 1 and "" not in child:  # a chain without choices: one literal run
                (nxt, child), = child.items()
                run.append(nxt)
            branches.append(re.escape("".join(run)) + emit(child))
        if not branches:
            return ""
        inner = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:
            return f"(?:{inner})?"
        return inner

    return emit(root)


def _distinctive(cents: int) -> bool:
    return abs(cents) >= MIN_AMOUNT * 100 or (abs(cents) >= 100 * 100 and cents % 100 != 0)


def _money_text(cents: int) -> str:
    units, kop = divmod(abs(cents), 100)
    return f"{units:,}".replace(",", " ") + f",{kop:02d}"
