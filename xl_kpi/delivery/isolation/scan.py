"""Matching: every non-audience name, id and amount looked for in a file's text (and an encrypted file's bytes)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from xl_kpi.delivery.isolation.audience import _Allowed, _Company, _distinctive, _money_text
from xl_kpi.delivery.isolation.model import AXIS_STEP, RAW_MIN_DIGITS, SHORT_ID, IsolationReport, Leak
from xl_kpi.delivery.isolation.text import _SPACES, _cents, _fold, _Text, norm_name, numbers_in

# ------------------------------------------------------------------------------ matching


class _Scanner:
    def __init__(self, company: _Company, report: IsolationReport) -> None:
        self.company = company
        self.report = report

    def match(self, label: str, text: _Text, allowed: _Allowed, audience_label: str) -> None:
        """Record every foreign name, id and amount in ``text``."""
        c = self.company
        found: dict[tuple[str, str], str] = {}
        # names: mask the allowed ones first (namesakes, managers, superstrings), then search
        for chunks in (text.spaced, text.glued):
            if not chunks or c._name_re is None:
                continue
            blob = norm_name(" \n ".join(chunks)) if chunks is text.spaced else "\n".join(norm_name(x) for x in chunks)
            if allowed.mask is not None:
                blob = allowed.mask.sub("\x00", blob)
            for m in c._name_re.finditer(blob):
                for p in c._by_key.get(m.group(1), []):
                    if p.id not in allowed.audience:
                        found.setdefault((p.id, "name"), _snippet(blob, m))
        # ids, exactly as written: long ones as whole tokens of the content; short ones (a letter, "E1", "9") only
        # as a whole text value (a text cell, a name or title) or at the start of a file name
        exact = "\n".join(_id_form_line(x) for x in text.plain + text.rendered + text.filenames)
        if c._id_re is not None:
            for m in c._id_re.finditer(exact):
                token = m.group(1)
                if norm_name(token) in allowed.names:
                    continue  # an audience member's manager written as an id is a mention, like a name
                for p in c.whose_id(token):
                    if p.id in allowed.audience:
                        continue
                    if p.id.isdigit() and _cents(p.id) in allowed.numbers:
                        self.report.skipped_ambiguous += 1
                        continue
                    found.setdefault((p.id, "id"), _snippet(exact, m))
        if c._short:
            values = set(text.cells) | {f.split(" ", 1)[0] for f in text.filenames}
            prefixes = {f.split(" ", 1)[0] for f in text.filenames}
            for v in values:
                if len(v) >= SHORT_ID or norm_name(v) in allowed.names:
                    continue
                for p in c.whose_id(v):
                    if p.id in allowed.audience or len(p.form) >= SHORT_ID:
                        continue
                    if p.id.isdigit() and _cents(p.id) in allowed.numbers and v not in prefixes:
                        self.report.skipped_ambiguous += 1
                        continue
                    found.setdefault((p.id, "id"), v)
        # amounts: every number in the file, every reading
        nums = numbers_in("\n".join(_fold_line(x) for x in text.plain))
        drawn = numbers_in("\n".join(_fold_line(x) for x in text.rendered))
        owners: dict[int, list[tuple[str, str]]] = {}
        for p in c.people.values():
            if p.id in allowed.audience:
                continue
            for f, cents in p.amounts.items():
                if not _distinctive(cents):
                    continue
                if cents not in nums and (cents not in drawn or cents % AXIS_STEP == 0):
                    continue
                if cents in allowed.numbers:
                    self.report.skipped_ambiguous += 1
                    continue
                owners.setdefault(cents, []).append((p.id, f))
        amount_hits = []
        for cents, who in sorted(owners.items()):
            ids = sorted({i for i, _ in who}, key=_natural_key)
            what = ", ".join(f"{f} of {i}" for i, f in who[:6]) + (", …" if len(who) > 6 else "")
            amount_hits.append((ids[0] if len(ids) == 1 else ", ".join(ids), f"{_money_text(cents)} ({what})"))
        for (eid, kind), ev in sorted(found.items()):
            self.leak(label, kind, eid, ev, audience_label)
        for eid, ev in amount_hits:
            self.leak(label, "amount", eid, ev, audience_label)

    def leak(self, label: str, kind: str, eid: str, evidence: str, audience_label: str) -> None:
        p = self.company.people.get(eid)
        self.report.leaks.append(Leak(label, kind, eid, p.name if p else "", evidence, audience_label))

    def raw(self, label: str, data: bytes, audience_label: str) -> None:
        """Encrypted bytes: no name (UTF-8, UTF-16) and no long number of anybody may be readable.

        The container's own clear-text XML attributes (``spinCount="100000"``, salts) are blanked
        first: they are encryption parameters, not anybody's data.
        """
        data = _ATTR_BYTES.sub(b"", data)
        for p in self.company.people.values():
            needles = []
            if len(p.name.strip()) >= 4:
                for form in {p.name.strip(), unicodedata.normalize("NFC", p.name.strip())}:
                    needles += [form.encode("utf-8"), form.encode("utf-16-le")]
            if len(p.id) >= RAW_MIN_DIGITS:
                needles += [p.id.encode("utf-8"), p.id.encode("utf-16-le")]
            for cents in p.amounts.values():
                units, kop = divmod(cents, 100)
                for s in {str(units), f"{units}.{kop:02d}"} if kop else {str(units)}:
                    if len(s) >= RAW_MIN_DIGITS:
                        needles.append(s.encode("ascii"))
            for n in needles:
                if n in data:
                    self.leak(label, "plaintext", p.id, f"{n[:40]!r} readable in the encrypted bytes", audience_label)
                    break


def _natural_key(text: str) -> tuple[Any, ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text))


_ATTR_BYTES = re.compile(rb'[A-Za-z]+="[^"\x00]{0,300}"')


def _id_form_line(s: str) -> str:
    """Like :func:`_id_form`, but line breaks kept (they separate cells and PDF text blocks)."""
    return re.sub(r"[^\S\n]+", " ", unicodedata.normalize("NFC", s).translate(_SPACES))


def _fold_line(s: str) -> str:
    """Folded like a name, but line breaks kept (they separate cells and PDF text blocks)."""
    return re.sub(r"[^\S\n]+", " ", _fold(s))


def _snippet(blob: str, m: re.Match[str]) -> str:
    a, b = max(0, m.start() - 25), min(len(blob), m.end() + 25)
    return "…" + blob[a:b].replace("\n", " ").replace("\x00", "▒") + "…"
