"""Matching: every non-audience name, id and amount looked for in a file's text (and an encrypted file's bytes)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from xl_kpi.delivery.isolation.audience import _Allowed, _Company, _money_text
from xl_kpi.delivery.isolation.container import clear_text
from xl_kpi.delivery.isolation.model import AXIS_STEP, SHORT_ID, IsolationReport, Leak
from xl_kpi.delivery.isolation.text import _SPACES, _WS, _cents, _fold, _Text, norm_name, numbers_in
from xl_kpi.i18n import English, Msg

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
        if c._name_re is not None:
            if text.spaced:
                names = self._names(norm_name(" \n ".join(_nameless(text.spaced, c, allowed))), allowed)
                if names:  # the same finding in the whole text, for the evidence as it reads there
                    names = self._names(norm_name(" \n ".join(text.spaced)), allowed)
                for key, evidence in names:
                    found.setdefault(key, evidence)
            if text.glued:
                for key, evidence in self._names(_norm_lines(text.glued), allowed):
                    found.setdefault(key, evidence)
        # ids, exactly as written: long ones as whole tokens of the content; short ones (a letter, "E1", "9") only
        # as a whole text value (a text cell, a name or title) or at the start of a file name
        exact = _id_form_line("\n".join(text.plain + text.rendered + text.filenames))
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
        plain, rendered = _fold_line("\n".join(text.plain)), _fold_line("\n".join(text.rendered))
        nums = numbers_in(plain, _own_names(allowed, plain))
        drawn = numbers_in(rendered, _own_names(allowed, rendered))
        owners: dict[int, list[tuple[str, str]]] = {}
        candidates = nums | {d for d in drawn if d % AXIS_STEP != 0}
        for cents, where in c.amount_hits(candidates):  # the file's numbers looked up, not everyone's amounts
            if cents in allowed.numbers:  # also the audience's own: each other owner is a coincidence set aside
                self.report.skipped_ambiguous += c.count_outside(where, allowed.audience)
                continue
            for pid, f in c.owners_at(where):
                if pid not in allowed.audience:
                    owners.setdefault(cents, []).append((pid, f))
        amount_hits = []
        for cents, who in sorted(owners.items()):
            ids = sorted({i for i, _ in who}, key=_natural_key)
            what = ", ".join(f"{f} of {i}" for i, f in who[:6]) + (", …" if len(who) > 6 else "")
            amount_hits.append((ids[0] if len(ids) == 1 else ", ".join(ids), f"{_money_text(cents)} ({what})"))
        for (eid, kind), ev in sorted(found.items()):
            self.leak(label, kind, eid, ev, audience_label)
        for eid, ev in amount_hits:
            self.leak(label, "amount", eid, ev, audience_label)

    def _names(self, blob: str, allowed: _Allowed) -> list[tuple[tuple[str, str], str]]:
        """Every name of somebody outside the audience in ``blob`` (normalised) once the allowed names are masked:
        ((employee id, "name"), evidence), in the order found."""
        c = self.company
        if allowed.mask is not None:
            blob = allowed.mask.sub("\x00", blob)
        out = []
        for m in c._name_re.finditer(blob):  # type: ignore[union-attr]
            for p in c._by_key.get(m.group(1), []):
                if p.id not in allowed.audience:
                    out.append(((p.id, "name"), _snippet(blob, m)))
        return out

    def leak(self, label: str, kind: str, eid: str, evidence: str, audience_label: str) -> None:
        p = self.company.people.get(eid)
        self.report.leaks.append(Leak(label, kind, eid, p.name if p else "", evidence, audience_label))

    def raw(self, label: str, data: bytes, audience_label: str) -> None:
        """Encrypted bytes: no name (UTF-8, UTF-16) and no long number of anybody may be readable in the
        container's clear text (:func:`~xl_kpi.delivery.isolation.container.clear_text`: all but the ciphertext
        stream, which is proven by decrypting it).

        The container's own clear-text XML attributes (``spinCount="100000"``, salts) are blanked
        first: they are encryption parameters, not anybody's data.
        """
        data = _ATTR_BYTES.sub(b"", clear_text(data))
        pattern, owner = self.company.raw_pattern()
        if pattern is None:
            return
        seen: set[str] = set()
        for m in pattern.finditer(data):
            n = m.group(1)
            eid = owner[n]
            if eid not in seen:
                seen.add(eid)
                why = English(Msg("{text!r} readable in the encrypted bytes", text=n[:40]))
                self.leak(label, "plaintext", eid, why, audience_label)


def _nameless(chunks: list[str], company: _Company, allowed: _Allowed) -> list[str]:
    """``chunks`` (a file's spaced text) without the chunks no name can touch, each run of them one ``"\\x00"``.

    A chunk of ASCII letters and digits only (a cell reference ``B12``, a style index ``3``, a colour
    ``FF0000``) is one word, between the spaces that join the chunks. A match of a name (or of an allowed name
    that masks) starts and ends at word boundaries, so one touching that chunk covers it whole, and the chunk
    is then one of the words of that name. When it is the word of no name in the company and no name the file
    may show, no match touches it: leaving it out finds exactly the same names. The ``"\\x00"`` in its place
    is in no name and, like the spaces around it, no letter, so no name is found across the gap that was not
    found across the chunk. (Two thirds of a card's spaced text are such chunks.)"""
    words, allowed_words = company._name_words, allowed.words
    out: list[str] = []
    gap = False
    for x in chunks:
        if x.isascii() and x.isalnum():
            low = x.lower()
            if low not in words and low not in allowed_words:
                if not gap:
                    out.append("\x00")
                    gap = True
                continue
        out.append(x)
        gap = False
    return out


def _own_names(allowed: _Allowed, text: str) -> list[tuple[int, int]]:
    """Where ``text`` (folded like a name) spells one of the names the audience may see, with letters in it:
    the numbers inside such an occurrence ("Иван Петров 4050") are part of the name, not anybody's amount.

    Only whole occurrences count (the mask's word boundaries), and never a name of digits alone (a manager
    or team member written as an id): that would hide the same number written as an amount."""
    if allowed.mask is None or not text:
        return []
    return [m.span(1) for m in allowed.mask.finditer(text) if any(ch.isalpha() for ch in m.group(1))]


def _natural_key(text: str) -> tuple[Any, ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text))


_ATTR_BYTES = re.compile(rb'[A-Za-z]+="[^"\x00]{0,300}"')


def _id_form_line(s: str) -> str:
    """Like :func:`_id_form`, but line breaks kept (they separate cells and PDF text blocks)."""
    return re.sub(r"[^\S\n]+", " ", unicodedata.normalize("NFC", s).translate(_SPACES))


_SEP = "\x01"  # between chunks: not white space, composes with nothing under NFC, never in XML text


def _norm_lines(chunks: list[str]) -> str:
    """``"\\n".join(norm_name(x) for x in chunks)`` in one pass over the joined text (same result)."""
    blob = _WS.sub(" ", _fold(_SEP.join(c.replace(_SEP, " ") for c in chunks)))
    return _SEP_SPACED.sub("\n", blob).strip()


_SEP_SPACED = re.compile(f" ?{_SEP} ?")


def _fold_line(s: str) -> str:
    """Folded like a name, but line breaks kept (they separate cells and PDF text blocks)."""
    return re.sub(r"[^\S\n]+", " ", _fold(s))


def _snippet(blob: str, m: re.Match[str]) -> str:
    a, b = max(0, m.start() - 25), min(len(blob), m.end() + 25)
    return "…" + blob[a:b].replace("\n", " ").replace("\x00", "▒") + "…"
