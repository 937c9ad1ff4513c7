"""Who someone is: the one rule for employee ids, and the canonical form of an e-mail address.

**Ids are exact.** Every lookup by employee id (facts files, the Plan sheet's personal rows, a
source's ``by`` column, manager references, distribution, the isolation check) compares the id as
written (stripped, as :func:`xl_kpi.inputs.cells.normalize_id` reads it). So that an exact comparison is
never a trap, two ids that *look* the same, i.e. have the same :func:`id_key` (equal under case
folding, Unicode NFC and spacing: ``M1`` and ``m1``), are an error in the plan naming both rows.
:func:`id_key` is also what a message uses to point out "did you mean M1?".

**One mailbox, one form.** :func:`canonical_address` is how two addresses are compared everywhere
(shared mailboxes in distribute, the isolation check of e-mails, the send log, the recipient count):
the domain in IDNA (punycode) and lower case, so ``ivan@почта.рф`` and ``ivan@xn--80a1acny.xn--p1ai``
are one mailbox; the part before ``@`` in lower case too. RFC 5321 lets a server treat that part
case-sensitively, but practically every provider folds it, and the question asked here is "could two
employees read each other's mail?": folding says yes for ``Ivan@`` and ``ivan@``, which is the safe
answer (neither is mailed). The address a message is sent to is still the one written in the plan.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from xl_kpi.i18n import English, Msg

__all__ = ["Resolution", "alike_hint", "canonical_address", "id_key", "key_index", "looks_like", "resolve_managers"]


def id_key(value: Any) -> str:
    """What an id (or a name) looks like: NFC, case-folded, white space collapsed; '' for empty.

    >>> id_key(" M1 ") == id_key("m1")
    True
    """
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return " ".join(unicodedata.normalize("NFC", str(value)).casefold().split())


def looks_like(value: str, known: dict[str, list[str]]) -> list[str]:
    """The known ids that ``value`` differs from only by case, spacing or Unicode form (never itself).

    ``known`` maps :func:`id_key` to the ids with that key (see :func:`key_index`).
    """
    return [k for k in known.get(id_key(value), []) if k != value]


def alike_hint(value: str, known: dict[str, list[str]], where: str = "the Employees sheet") -> str:
    """' (the Employees sheet has "M1": ids are compared exactly, case included)' when ``value`` only
    looks like a known id, else ''."""
    near = looks_like(value, known)
    if not near:
        return ""
    return English(Msg(" ({where} has {ids}: ids are compared exactly, case included)",
                       where=Msg("the Employees sheet") if where == "the Employees sheet" else where,
                       ids=", ".join(chr(34) + n + chr(34) for n in near)))


def key_index(ids: Any) -> dict[str, list[str]]:
    """:func:`id_key` → the distinct ids (as written) that have it, in first-seen order."""
    out: dict[str, list[str]] = {}
    for i in ids:
        if i is None or (isinstance(i, float) and i != i) or str(i) == "":
            continue
        bucket = out.setdefault(id_key(i), [])
        if str(i) not in bucket:
            bucket.append(str(i))
    return out


def canonical_address(address: Any) -> str:
    """An e-mail address in the one form used to compare addresses ('' for none).

    The domain is converted label by label to IDNA (punycode) and lower-cased; the part before
    ``@`` is lower-cased (see the module doc for why). A malformed address is only stripped and
    lower-cased, so that comparing two of them still works.

    >>> canonical_address("Ivan@Почта.РФ")
    'ivan@xn--80a1acny.xn--p1ai'
    >>> canonical_address("ivan@XN--80A1ACNY.xn--p1ai")
    'ivan@xn--80a1acny.xn--p1ai'
    """
    if address is None or (isinstance(address, float) and address != address):
        return ""
    text = unicodedata.normalize("NFC", str(address)).strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return text.casefold()
    labels = []
    for label in domain.rstrip(".").split("."):
        if label.isascii():
            labels.append(label.lower())
            continue
        try:
            labels.append(label.encode("idna").decode("ascii").lower())
        except UnicodeError:
            labels.append(label.casefold())
    return f"{local.lower() if local.isascii() else local.casefold()}@{'.'.join(labels)}"


# ------------------------------------------------------------------------------- managers


@dataclass(frozen=True)
class Resolution:
    """A ``manager`` cell matched to one employee (``employee_id``, ``by`` "id" or "name") or to nobody (``why``)."""

    employee_id: str | None
    why: str = ""
    by: str = ""
    problem: str = ""
    """Why nobody: ``nobody`` (not in the plan), ``several`` (namesakes, or the id of one and the name of
    another), ``self`` (one of the very employees who name this manager: a namesake), ``case`` (an id that
    differs from an employee_id only in case or spacing)."""
    what: str = ""
    """``why`` without the fix."""


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return str(v).strip()


def resolve_managers(ids: Iterable[Any], names: Iterable[Any], managers: Iterable[Any]) -> dict[str, Resolution]:
    """Match every distinct ``manager`` value (``managers[i]`` is employee ``ids[i]``'s) to one employee or nobody.

    * an exact ``employee_id`` resolves (``by="id"``);
    * else the name of exactly one employee, compared by :func:`id_key` (case and spacing do not
      matter; no fuzzy matching), resolves (``by="name"``: the caller warns, an id is safer);
    * the id of one employee and the name of another, or the name of several, resolve to nobody;
    * a match that is one of the employees naming this manager (someone would manage themselves)
      resolves to nobody: it is a namesake, and the real manager is not in the plan;
    * anything else is nobody; an id that differs from an employee_id only in case is pointed out.

    Keys are the values as written (stripped). Nobody = the team bundle is built but never mailed.
    """
    managers = [_cell(m) for m in managers]
    if not any(managers):  # nobody has a manager: no index of every id and name is needed (100,000: ~30 MB)
        return {}
    ids = [_cell(i) for i in ids]
    names = list(names)
    exact = set(ids)
    by_key = key_index(ids)
    by_name: dict[str, list[str]] = {}
    for eid, name in zip(ids, names, strict=True):
        k = id_key(name)
        if k and eid not in by_name.setdefault(k, []):
            by_name[k].append(eid)
    reports: dict[str, set[str]] = {}
    for eid, m in zip(ids, managers, strict=True):
        if m:
            reports.setdefault(m, set()).add(eid)
    out: dict[str, Resolution] = {}
    for text, team in reports.items():
        hits = set(by_name.get(id_key(text), []))
        by = "name"
        if text in exact:
            hits.add(text)
            by = "id"
        if len(hits) > 1:
            what = English(Msg("manager {text} matches several employees ({ids})", text=repr(text),
                               ids=", ".join(sorted(hits))))
            out[text] = Resolution(None, English(Msg("{what}: write the manager's employee_id in the manager column",
                                                     what=what)), problem="several", what=what)
        elif hits:
            eid = hits.pop()
            if eid not in team:
                out[text] = Resolution(eid, by=by)
                continue
            what = English(Msg("manager {text} is the employee_id of employee {eid}, who is in that very team (a "
                               "namesake of the real manager, who is not in the plan?)", text=repr(text), eid=eid)
                           if by == "id" else
                           Msg("manager {text} is the name of employee {eid}, who is in that very team (a namesake "
                               "of the real manager, who is not in the plan?)", text=repr(text), eid=eid))
            out[text] = Resolution(None, English(Msg("{what}: write the manager's employee_id in the manager column, "
                                                     "or add the manager to the Employees sheet", what=what)),
                                   problem="self", what=what)
        else:
            near = looks_like(text, by_key)
            what = English(Msg("manager {text} is not an employee in the plan (the employee_id {ids} differs only in "
                               "case or spacing: ids are compared exactly)", text=repr(text),
                               ids=", ".join(chr(34) + n + chr(34) for n in near)) if near else
                           Msg("manager {text} is not an employee in the plan", text=repr(text)))
            out[text] = Resolution(None, English(Msg("{what} (no e-mail address for the team bundle): add them to the "
                                                     "Employees sheet with an email, write their exact employee_id, "
                                                     "or hand the bundle over yourself", what=what)),
                                   problem="case" if near else "nobody", what=what)
    return out
