"""Who may see what: the company's people, each file's audience and what of theirs is allowed in it."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Iterator
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


@dataclass(slots=True)
class _Person:
    id: str
    """As in the results (stripped); ``form`` is its :func:`_id_form`."""
    name: str
    key: str
    manager_key: str
    email: str
    """:func:`xl_kpi.inputs.identity.canonical_address` of the plan's address."""
    form: str = ""
    index: int = -1
    """Its row in the company's arrays."""


class _Company:
    """Everyone in the results: names, ids and amounts to look for, and what each audience may see.

    What grows with the headcount is held as a few NumPy arrays, not Python objects per number: every
    number of each employee's own data (one sorted int64 array of cents, sliced by offsets), their money
    columns (one float matrix) and everyone's distinctive amounts (sorted cents with the owner and field),
    which a file's numbers are looked up in with ``searchsorted``."""

    def __init__(self, results: Any) -> None:
        emp = results.employees
        lines = results.lines
        self.people: dict[str, _Person] = {}
        ids = emp["employee_id"].astype(str).str.strip().to_numpy()
        last: dict[str, int] = {}
        for row, eid in enumerate(ids):
            last[eid] = row  # a repeated id (never in xl_kpi's results): its last row, as before
        names, managers, emails = (emp[c].tolist() if c in emp else [None] * len(emp)
                                   for c in ("name", "manager", "email"))
        rows = np.fromiter(last.values(), dtype=np.int64, count=len(last))
        for i, (eid, row) in enumerate(last.items()):
            self.people[eid] = _Person(eid, str(names[row] or ""), norm_name(names[row]), norm_name(managers[row]),
                                       canonical_address(emails[row]), _id_form(eid), i)
        self._ids = list(last)
        """The employees in the order of the arrays."""
        n = len(self._ids)
        self._period_numbers = numbers_in(_period_texts(getattr(results, "period", "")))
        # every number of each employee's own data (their row and their KPI lines), in cents, sorted by employee
        index = {eid: p.index for eid, p in self.people.items()}
        who_parts, cents_parts = [], []
        self._big: dict[int, set[int]] = {}
        """Numbers of an employee too large for int64 cents (never in practice), as Python ints."""
        for frame in (emp, lines):
            pos = frame["employee_id"].astype(str).str.strip().map(index).to_numpy(float)
            known = np.isfinite(pos)
            for c in frame.columns:
                col = pd.to_numeric(frame[c], errors="coerce").to_numpy(float)
                cents, finite = _cents_array(col)
                keep = finite & known
                big = keep & ~_in_int64(col)
                for j in np.flatnonzero(big):
                    self._big.setdefault(int(pos[j]), set()).add(_cents(float(col[j])))  # type: ignore[arg-type]
                keep &= ~big
                who_parts.append(pos[keep].astype(np.int64))
                cents_parts.append(cents[keep])
        who = np.concatenate(who_parts) if who_parts else np.zeros(0, np.int64)
        cents = np.concatenate(cents_parts) if cents_parts else np.zeros(0, np.int64)
        order = np.lexsort((cents, who))
        who, cents = who[order], cents[order]
        first = np.ones(len(who), dtype=bool)
        first[1:] = (who[1:] != who[:-1]) | (cents[1:] != cents[:-1])
        self._own_cents = cents[first]
        self._own_start = np.searchsorted(who[first], np.arange(n + 1))
        self._extra: dict[int, set[int]] = {}
        """Numbers added later (the history's), per employee."""
        # the money columns (a team summary's sums and averages) and each one's department
        self._money = np.full((n, len(_MONEY)), np.nan)
        for k, c in enumerate(_MONEY):
            if c in emp:
                self._money[:, k] = pd.to_numeric(emp[c], errors="coerce").to_numpy(float)[rows]
        deps = [str(v or "") for v in (emp["department"].tolist() if "department" in emp else [""] * len(emp))]
        self._dep_names = sorted(set(deps))
        code = {d: i for i, d in enumerate(self._dep_names)}
        self._dep = np.array([code[deps[r]] for r in rows], dtype=np.int32)
        self._cache: dict[frozenset[str], _Allowed] = {}
        forms = sorted({p.form for p in self.people.values() if p.form}, key=len, reverse=True)
        self._id_re = _alternation([f for f in forms if len(f) >= SHORT_ID], numeric=True, flags=re.IGNORECASE)
        self._short = [p for p in self.people.values() if p.form and len(p.form) < SHORT_ID]
        self._name_re = _alternation(sorted({p.key for p in self.people.values() if p.key}, key=len, reverse=True))
        self._name_words = frozenset(w for p in self.people.values() for n in (p.key, p.manager_key)
                                     for w in _WORD.findall(n))
        """The words (runs of ``\\w``) of everyone's name and manager: a chunk of text that is none of them
        (and none of the file's allowed names) is touched by no name (:func:`~.scan._nameless`)."""
        self._by_key: dict[str, list[_Person]] = {}
        self._by_form: dict[str, _Person] = {}
        self._by_folded_id: dict[str, list[_Person]] = {}
        for p in self.people.values():
            self._by_key.setdefault(p.key, []).append(p)
            self._by_form[p.form] = p
            self._by_folded_id.setdefault(p.form.casefold(), []).append(p)
        # the amounts to look for (bonus, total pay, salary), in cents; those absent are marked
        self._amounts = np.zeros((n, len(AMOUNT_FIELDS)), dtype=np.int64)
        self._has_amount = np.zeros((n, len(AMOUNT_FIELDS)), dtype=bool)
        big_owners: list[tuple[int, str, str]] = []
        for k, f in enumerate(AMOUNT_FIELDS):
            if f not in emp:
                continue
            col = pd.to_numeric(emp[f], errors="coerce").to_numpy(float)[rows]
            cents, finite = _cents_array(col)
            fits = finite & _in_int64(col)
            self._amounts[fits, k] = cents[fits]
            self._has_amount[:, k] = fits
            for i in np.flatnonzero(finite & ~fits):
                big_owners.append((_cents(float(col[i])), self._ids[i], f))  # type: ignore[arg-type]
        # everyone's distinctive amounts, sorted by cents (then by employee and field, as they were listed)
        pos_i, pos_k = np.nonzero(self._has_amount)
        amt = self._amounts[pos_i, pos_k]
        keep = (np.abs(amt) >= MIN_AMOUNT * 100) | ((np.abs(amt) >= 100 * 100) & (amt % 100 != 0))
        pos_i, pos_k, amt = pos_i[keep], pos_k[keep], amt[keep]
        order = np.lexsort((pos_k, pos_i, amt))
        self._owner_cents = amt[order]
        self._owner_who = pos_i[order].astype(np.int32)
        self._owner_field = pos_k[order].astype(np.int8)
        self._more_owners: dict[int, list[tuple[str, str]]] = {}
        """Owners added later (the history's bonuses) and amounts too large for int64: cents → (id, field)."""
        for c, eid, f in big_owners:
            if _distinctive(c):
                self._more_owners.setdefault(c, []).append((eid, f))
        self._by_email: dict[str, set[str]] | None = None
        self._below: dict[str, set[str]] | None = None
        """manager id → the ids of their direct reports (built on first use by :meth:`team`)."""
        self._raw_re: re.Pattern[bytes] | None = None
        self._raw_owner: dict[bytes, str] = {}

    def amount_hits(self, candidates: Iterable[int]) -> list[tuple[int, Any]]:
        """Of the amounts ``candidates`` (cents), those somebody has, sorted: (cents, where its owners are), for
        :meth:`owners_at` and :meth:`count_outside`. The file's numbers are looked up with one ``searchsorted``
        (not everyone's amounts in the file); common amounts (a salary many share) cost no Python object per
        owner."""
        cand = candidates if isinstance(candidates, (set, frozenset)) else set(candidates)
        hits: dict[int, Any] = {}
        if not cand:
            return []
        try:
            arr = np.fromiter(cand, dtype=np.int64, count=len(cand))
        except OverflowError:  # a number beyond int64 cents: looked up among the large ones only
            arr = np.fromiter((c for c in cand if _INT64_MIN <= c <= _INT64_MAX), dtype=np.int64)
        table = self._owner_cents
        if len(arr) and len(table):
            at = np.searchsorted(table, arr)
            hit = table[np.minimum(at, len(table) - 1)] == arr
            found = arr[hit]
            ends = np.searchsorted(table, found, "right")
            for c, a, b in zip(found.tolist(), at[hit].tolist(), ends.tolist(), strict=True):
                hits[c] = (a, b, [])
        if self._more_owners:
            for c in cand & self._more_owners.keys():
                a, b, more = hits.get(c, (0, 0, []))
                hits[c] = (a, b, more + self._more_owners[c])
        return sorted(hits.items())

    def owners_at(self, where: Any) -> list[tuple[str, str]]:
        """The (employee id, field) owners of one of :meth:`amount_hits`, in the order of the people."""
        a, b, more = where
        return [(self._ids[w], AMOUNT_FIELDS[f]) for w, f in
                zip(self._owner_who[a:b].tolist(), self._owner_field[a:b].tolist(), strict=True)] + more

    def count_outside(self, where: Any, audience: frozenset[str]) -> int:
        """How many of the owners of one of :meth:`amount_hits` are not in ``audience``."""
        a, b, more = where
        members = [self.people[i].index for i in audience if i in self.people]
        if b > a and len(members) > 64:
            inside = int(np.isin(self._owner_who[a:b], np.array(members, dtype=np.int32)).sum())
        elif b > a:  # an owner in the audience has that amount in one of their fields
            c = int(self._owner_cents[a])
            inside = sum(int(v == c and has) for i in members
                         for v, has in zip(self._amounts[i].tolist(), self._has_amount[i].tolist(), strict=True))
        else:
            inside = 0
        return b - a - inside + sum(1 for pid, _ in more if pid not in audience)

    def owners(self, candidates: Iterable[int]) -> dict[int, list[tuple[str, str]]]:
        """Of the amounts ``candidates`` (cents), those somebody has, sorted, each with its (employee id, field)
        owners."""
        return {c: self.owners_at(where) for c, where in self.amount_hits(candidates)}

    def add_owner(self, cents: int, eid: str, field: str) -> None:
        """Another amount to look for (an earlier run's bonus): ``cents`` is ``eid``'s ``field``."""
        self._more_owners.setdefault(cents, []).append((eid, field))
        self._cache.clear()

    def own_numbers(self, eid: str) -> set[int]:
        """Every number of ``eid``'s own data, in cents (a new set; empty for somebody not in the results)."""
        p = self.people.get(eid)
        if p is None:
            return set()
        i = p.index
        out = set(self._own_cents[self._own_start[i]:self._own_start[i + 1]].tolist())
        return out | self._big.get(i, set()) | self._extra.get(i, set())

    def add_own_numbers(self, eid: str, cents: Iterable[int]) -> None:
        """More numbers ``eid``'s own files may hold (their earlier runs'); nothing for somebody not here."""
        p = self.people.get(eid)
        if p is not None:
            self._extra.setdefault(p.index, set()).update(cents)
            self._cache.clear()

    def amounts_of(self, p: _Person) -> list[int]:
        """``p``'s own amounts to look for (bonus, total pay, salary: those there are), in cents."""
        out = [c for c, has in zip(self._amounts[p.index].tolist(), self._has_amount[p.index].tolist(), strict=True)
               if has]
        return out + [c for c, who in self._more_owners.items() for eid, f in who
                      if eid == p.id and f in AMOUNT_FIELDS]

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
                for cents in self.amounts_of(p):
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
        for p in members:
            numbers |= self.own_numbers(p.id)
        sums: set[float] = set()
        if members:
            rows = np.array(sorted(p.index for p in members), dtype=np.int64)
            deps = self._dep[rows]
            groups = [rows] + [rows[deps == d] for d in np.unique(deps).tolist()]  # everyone, then each department
            for group in groups:
                for k in range(len(_MONEY)):
                    col = self._money[group, k]
                    vals = col[np.isfinite(col)].tolist()
                    if vals:
                        total = math.fsum(vals)  # a team summary's own totals and averages, to the cent as Excel shows
                        sums.update((total, total / len(vals)))
        if sums:  # rounded in one call (Excel's ROUND, as the engine rounds)
            numbers.update(_cents(float(v)) or 0 for v in round_money(np.array(sorted(sums)), 2))
        mask = _mask(names)
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
    mask: _Mask | re.Pattern[str] | None

    @functools.cached_property
    def words(self) -> frozenset[str]:
        """The words (runs of ``\\w``) of the names the file may show: what the mask can touch."""
        return frozenset(w for n in self.names for w in _WORD.findall(n))


_WORD = re.compile(r"\w+")


_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)


def _in_int64(values: np.ndarray) -> np.ndarray:
    """Where ``values`` (floats) are finite and small enough for their cents to fit an int64."""
    with np.errstate(invalid="ignore"):
        return np.abs(values) < 9e16


def _cents_array(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cents, finite) of float ``values``: exactly :func:`_cents` of each finite one, vectorised.

    ``_cents`` rounds the decimal text of the float (its shortest repr) times 100 half up. Away from a tie
    the float product ``v * 100`` rounds to the same whole number: for ``|v| < 1e9`` it differs from the
    decimal text times 100 by less than 2e-5, far inside the 1e-3 kept from every half. The few values near a
    half, or larger, are given to ``_cents`` itself (0 where the cents would not fit an int64)."""
    v = np.asarray(values, dtype=float)
    finite = np.isfinite(v)
    out = np.zeros(v.shape, dtype=np.int64)
    with np.errstate(invalid="ignore", over="ignore"):
        x = v * 100.0
        frac = x - np.floor(x)
        fast = finite & (np.abs(v) < 1e9) & (np.abs(frac - 0.5) > 1e-3)
    out[fast] = np.rint(x[fast]).astype(np.int64)
    for i in np.flatnonzero(finite & ~fast & _in_int64(v)).tolist():
        out[i] = _cents(float(v[i]))
    return out, finite


class _Span:
    """One occurrence found by :class:`_Mask` (what its users read of a regular-expression match)."""

    __slots__ = ("_end", "_start", "_text")

    def __init__(self, text: str, start: int, end: int) -> None:
        self._text, self._start, self._end = text, start, end

    def span(self, group: int = 0) -> tuple[int, int]:
        return self._start, self._end

    def group(self, group: int = 0) -> str:
        return self._text[self._start:self._end]


class _Mask:
    """A few names as whole words, found as :func:`_alternation` finds them (leftmost first; at one place the
    longest name whose end is a word boundary; then on after it), by ``str.find``: compiling a pattern for
    each audience cost more than searching with it. For few names only (:data:`MASK_FIND_MAX`): each is one
    pass over the text."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = sorted({w for w in words if w}, key=len, reverse=True)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every occurrence, in order, not overlapping."""
        longest: dict[int, int] = {}
        n = len(text)
        for w in self.words:
            i = text.find(w)
            while i >= 0:
                j = i + len(w)
                if (i == 0 or not _is_word(text[i - 1])) and (j == n or not _is_word(text[j])) and \
                        longest.get(i, -1) < j:
                    longest[i] = j
                i = text.find(w, i + 1)
        out, pos = [], 0
        for i in sorted(longest):
            if i >= pos:
                pos = longest[i]
                out.append((i, pos))
        return out

    def finditer(self, text: str) -> Iterator[_Span]:
        return (_Span(text, a, b) for a, b in self.spans(text))

    def sub(self, repl: str, text: str) -> str:
        spans = self.spans(text)
        if not spans:
            return text
        parts, pos = [], 0
        for a, b in spans:
            parts += [text[pos:a], repl]
            pos = b
        parts.append(text[pos:])
        return "".join(parts)


MASK_FIND_MAX = 8
"""Up to this many names an audience's mask is a :class:`_Mask`; more, one prefix-tree pattern."""


def _is_word(ch: str) -> bool:
    """``\\w`` of a regular expression (of text): a letter, digit or number, or ``_``."""
    return ch.isalnum() or ch == "_"


def _mask(names: Iterable[str]) -> _Mask | re.Pattern[str] | None:
    """The mask of the names a file may show: what :func:`_alternation` matches, found the fastest way."""
    words = sorted({n for n in names if n}, key=len, reverse=True)
    if not words:
        return None
    return _Mask(words) if len(words) <= MASK_FIND_MAX else _alternation(words)


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
