"""Who gets what: the bundles per employee, manager or department (managers matched to exactly one
employee, addresses checked, an address shared by several people refused), and their folder names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from xl_kpi.delivery.distribute.model import Bundle
from xl_kpi.i18n import English, Msg, Plural
from xl_kpi.inputs.identity import Resolution, canonical_address, id_key
from xl_kpi.inputs.identity import resolve_managers as _resolve
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.names import safe_component
from xl_kpi.results import Results

_LABELS = {
    "en": {"manager": "KPI summary", "department": "KPI summary", "no_department": "(no department)"},
    "ru": {"manager": "Сводка KPI", "department": "Сводка KPI", "no_department": "(без отдела)"},
}


# ------------------------------------------------------------------------------- managers


def _key(text: Any) -> str:
    """Case- and space-insensitive form of a name (NFC): how unresolved managers' teams are grouped."""
    return id_key(text)


def resolve_managers(employees: Any) -> dict[str, Resolution]:
    """Match every distinct ``manager`` value to exactly one employee, by employee_id or by name.

    Keys are the values as written (stripped). See :func:`xl_kpi.inputs.identity.resolve_managers`: an
    exact id, or the name of exactly one employee (``by="name"``, reported as a warning); a value
    matching nobody, several employees, or one of the very employees who name this manager (a
    namesake) is not resolved and ``why`` says so: the bundle is then never mailed to a guessed address.
    """
    return _resolve(employees["employee_id"], employees["name"], employees["manager"])


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return str(v).strip()


# ------------------------------------------------------------------------------- planning


def plan_bundles(results: Results, carded: Iterable[str], by: Sequence[str], problems: Problems) -> list[Bundle]:
    """Who gets which cards, per ``by`` mode; problems (no manager, no address, ...) go to ``problems``.

    Only carded employees are in bundles; the others are reported. No bundle is left out for a
    missing address: it is built (HR may hand it over) and its ``note`` says why it is not mailed.
    """
    from xl_kpi.delivery.mail import check_address

    emp = results.employees
    carded_ids = set(carded)
    rows = [r for r in emp.to_dict("records") if str(r["employee_id"]).strip() in carded_ids]
    for r in emp.to_dict("records"):
        eid = str(r["employee_id"]).strip()
        if eid not in carded_ids:
            why = _text(r.get("reason")) or Msg("see errors.csv")
            problems.warning(Msg("employee {eid} ({text}) has no card ({why}): nothing to distribute",
                                 eid=eid, text=_text(r['name']), why=why),
                             Msg("fix the inputs and run xl-kpi generate again"), file="manifest.csv")
    people = {str(r["employee_id"]).strip(): r for r in emp.to_dict("records")}
    labels = _LABELS.get(results.language, _LABELS["en"])
    bundles: list[Bundle] = []

    def address(eid: str) -> tuple[str, str]:
        raw = _text(people[eid].get("email"))
        why = check_address(raw) if raw else Msg("no e-mail address in the plan")
        if not why:
            return raw, ""
        return "", English(Msg("{eid} {name}: {why}", eid=eid, name=_text(people[eid]["name"]), why=why))

    if "employee" in by:
        for r in rows:
            eid = str(r["employee_id"]).strip()
            mail, why = address(eid)
            bundles.append(Bundle("employee", "", _text(r["name"]), _text(r["name"]), eid, mail, [eid], why))
    if "manager" in by:
        res = resolve_managers(emp)
        teams: dict[str, Bundle] = {}
        orphans = []
        for r in rows:
            eid = str(r["employee_id"]).strip()
            m = _text(r.get("manager"))
            if not m:
                orphans.append(f"{eid} {_text(r['name'])}")
                continue
            rr = res[m]
            tkey = rr.employee_id if rr.employee_id else "?" + _key(m)
            if tkey not in teams:
                if rr.employee_id:
                    mid = rr.employee_id
                    mail, why = address(mid)
                    teams[tkey] = Bundle("manager", "", _text(people[mid]["name"]), _text(people[mid]["name"]), mid,
                                         mail, [], why)
                else:
                    teams[tkey] = Bundle("manager", "", m, m, "", "", [], rr.why)
            teams[tkey].members.append(eid)
        by_name = {m: r.employee_id for m, r in res.items() if r.by == "name" and r.employee_id}
        if by_name:
            pairs = [f"{m!r} → {eid}" for m, eid in sorted(by_name.items(), key=lambda x: _natural(x[1] or ""))]
            n = len(pairs)
            problems.warning(Plural(
                "{n} manager is given by name, not by employee_id, and matched to the one employee of that name: "
                "{pairs}; their team bundles go to that employee",
                "{n} managers are given by name, not by employee_id, and matched to the one employee of that name: "
                "{pairs}; their team bundles go to that employee", n,
                pairs=", ".join(pairs[:10]) + (", …" if n > 10 else "")),
                Msg("check each match, or write the manager's employee_id in the manager column (a "
                    "name can also belong to a namesake who is not the manager)"), sheet="Employees")
        if orphans:
            problems.warning(Plural("{n} employee has no manager and is in no team bundle: {names}",
                                    "{n} employees have no manager and are in no team bundle: {names}", len(orphans),
                                    names=", ".join(orphans[:10]) + (", …" if len(orphans) > 10 else "")),
                             Msg("fill in the manager column of the Employees sheet"), sheet="Employees")
        bundles.extend(teams.values())
    if "department" in by:
        deps: dict[str, Bundle] = {}
        for r in rows:
            d = _text(r.get("department"))
            if d not in deps:
                deps[d] = Bundle("department", "", d or labels["no_department"], d or labels["no_department"], "", "",
                                 [], English(Msg("department bundles are not mailed: the plan names no department "
                                                 "head")))
            deps[d].members.append(str(r["employee_id"]).strip())
        bundles.extend(deps.values())
    _name_bundles(bundles, {eid: _card_stem(people[eid]) for eid in carded_ids if eid in people})
    _shared_addresses(bundles)
    return bundles


def _card_stem(row: dict[str, Any]) -> str:
    return f"{_text(row['employee_id'])} {_text(row['name'])}".strip()


def _name_bundles(bundles: list[Bundle], stems: dict[str, str]) -> None:
    """Safe, unique (case-insensitively, per mode) folder names."""
    used: dict[str, set[str]] = {}
    for b in bundles:
        base = stems.get(b.members[0], b.members[0]) if b.by == "employee" and b.members else b.team
        name = safe_component(base, max_len=90, fallback="_unnamed")
        seen = used.setdefault(b.by, set())
        n, candidate = 2, name
        while candidate.casefold() in seen:
            candidate, n = f"{name[:80]} ({n})", n + 1
        seen.add(candidate.casefold())
        b.name = candidate


def _shared_addresses(bundles: list[Bundle]) -> None:
    """An address that several different people would receive at: no bundle goes there."""
    owners: dict[str, set[str]] = {}
    spellings: dict[str, set[str]] = {}
    for b in bundles:
        if b.recipient_email:
            mailbox = canonical_address(b.recipient_email)
            owners.setdefault(mailbox, set()).add(b.recipient_id or b.key)
            spellings.setdefault(mailbox, set()).add(b.recipient_email)
    for b in bundles:
        mailbox = canonical_address(b.recipient_email) if b.recipient_email else ""
        who = owners.get(mailbox, set())
        if len(who) > 1:
            also = sorted(spellings[mailbox] - {b.recipient_email})
            ids = ", ".join(sorted(who, key=_natural))
            b.note = English(Msg(
                "{address} (also written {also}) is the address of {n} employees ({ids}): each would see the "
                "others' cards; give everyone their own address", address=b.recipient_email, also=", ".join(also),
                n=len(who), ids=ids) if also else Msg(
                "{address} is the address of {n} employees ({ids}): each would see the others' cards; give "
                "everyone their own address", address=b.recipient_email, n=len(who), ids=ids))


def _natural(text: str) -> tuple[Any, ...]:
    import re

    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.casefold()) for p in re.split(r"(\d+)", text))
