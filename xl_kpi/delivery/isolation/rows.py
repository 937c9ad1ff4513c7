"""The rows sheet of a card (issue 13 §1) under the isolation proof: every listed raw row must be the file's
audience's own, or, in a ``for team`` section, a row of somebody in an audience member's team.

The sheet (``xl/worksheets/xl_kpi_rows*.xml``, :mod:`xl_kpi.outputs.cards.rows`) has one section per KPI: a header
row whose column C says whose rows follow (``Employee`` or ``Employee (team)``, in either language), then one row
per raw row with its file row number in A and the person's name as in the plan in C. A row whose person is not
allowed there is a ``row`` finding; the names (and ids) of the team members a team section rightly lists are then
allowed in the rest of the file as mentions, their amounts still are not.
"""

from __future__ import annotations

import re
import zipfile
from xml.etree import ElementTree as ET

from xl_kpi.delivery.isolation.audience import _Allowed, _mask
from xl_kpi.delivery.isolation.text import norm_name
from xl_kpi.i18n import English, Msg
from xl_kpi.outputs.cards.rows import PART_STEM, TEXTS

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_OWN = {norm_name(t["person"]) for t in TEXTS.values()}
_TEAM = {norm_name(t["member"]) for t in TEXTS.values()}
_REF = re.compile(r"([A-Z]+)(\d+)")


def rows_parts(names: list[str]) -> list[str]:
    """The rows-sheet parts among a workbook's part names."""
    return [n for n in names if n.startswith(PART_STEM) and n.endswith(".xml")]


def listed(xml: bytes) -> list[tuple[int, bool, str]]:
    """(sheet row, team section?, person's name) of every listed raw row of a rows sheet."""
    out: list[tuple[int, bool, str]] = []
    team: bool | None = None
    for row in ET.fromstring(xml).iter(f"{_NS}row"):
        cells: dict[str, tuple[str | None, str]] = {}
        for c in row.iter(f"{_NS}c"):
            m = _REF.match(c.get("r", ""))
            if m is None:
                continue
            v = c.find(f"{_NS}v")
            text = "".join(t.text or "" for t in c.iter(f"{_NS}t")) if c.get("t") == "inlineStr" else (
                v.text if v is not None else "")
            cells[m.group(1)] = (c.get("t"), text or "")
        kind_c = norm_name(cells.get("C", (None, ""))[1])
        if kind_c in _OWN or kind_c in _TEAM:
            team = kind_c in _TEAM
            continue
        a = cells.get("A")
        if team is not None and a is not None and a[0] is None and a[1].strip().isdigit():
            out.append((int(row.get("r", "0")), team, cells.get("C", (None, ""))[1]))
    return out


def check_rows(scanner: object, label: str, zf: zipfile.ZipFile, parts: list[str], allowed: _Allowed,
               audience_label: str) -> _Allowed:
    """Report every listed row that is not the audience's (or their team's, in a team section); return
    ``allowed`` with the rightly listed team members' names and ids allowed as mentions."""
    company = scanner.company  # type: ignore[attr-defined]
    own = set(allowed.audience)
    team = set(own)
    for eid in own:
        team |= company.team(eid)
    extra: set[str] = set()
    for part in parts:
        for r, in_team, name in listed(zf.read(part)):
            may = team if in_team else own
            people = company._by_key.get(norm_name(name), [])
            if not any(p.id in may for p in people):
                who = people[0].id if len(people) == 1 else ""
                scanner.leak(f"{label}!/{part}", "row", who, English(  # type: ignore[attr-defined]
                    Msg("row {row} lists a raw row of {name!r} in a team section", row=r, name=name) if in_team else
                    Msg("row {row} lists a raw row of {name!r} in a section of the owner's own rows", row=r,
                        name=name)), audience_label)
            else:
                extra |= {p.key for p in people if p.id in may} | {norm_name(p.id) for p in people if p.id in may}
    extra -= allowed.names
    if not extra:
        return allowed
    names = allowed.names | extra
    return _Allowed(allowed.audience, names, allowed.numbers, _mask(names))
