"""The isolation check: prove that no file meant for one person holds another person's pay data.

:func:`check` opens every file ``xl-kpi generate`` and ``xl-kpi distribute`` produced for a
person (not the HR-only files: ``summary.xlsx``, ``results/``, ``index.csv``, ``passwords.csv``):

* ``cards/**.xlsx``: meant for the employee ``manifest.csv`` lists it for;
* ``distribution/<by>/<bundle>`` (folder or ``.zip``): meant for the bundle's members, as
  ``distribution/index.csv`` lists them (a manager sees their team, an employee themself);
* ``outbox/*.eml`` (``--dry-run`` messages): meant for the addressee; the audience is every
  bundle ``index.csv`` addresses to that e-mail address.

Every file is reduced to text: workbooks are unzipped and every XML part read (cell values
and cached formula results, shared and inline strings, sheet and defined names, document
properties, chart caches, drawings, comments); encrypted workbooks are decrypted with
``passwords.csv`` (and their raw bytes must hold no plain name or number at all); PDFs go
through ``pdftotext``; zip archives, e-mails and their attachments are opened recursively, and
their file names count as text too.

Then, for every employee who is *not* in the file's audience, none of these may occur:

* **name**: the full name as in the plan, compared without regard to case, ``ё``/``е`` and white
  space (so a name wrapped over two lines in a PDF still counts);
* **id**: the employee id as a whole token (``1001`` does not match ``21001`` or ``1,001.50``);
  ids of 1-3 digits only as a whole text cell or at the start of a file name (``7`` is
  everywhere: row numbers, dates, percentages);
* **amount**: their bonus, total pay or salary, in any way it is written (``22950``,
  ``22950.0``, ``22 950,00``, ``22,950.00``, ``22950.000000000004``): every number in the file
  is parsed, so the format does not matter.

False positives are avoided, not waved through:

* a name that is also legitimately in the file is not evidence: the audience's own names and the
  names of their managers (a card says who the manager is) are masked before searching, so a
  namesake of an audience member is not flagged by name (their id and amounts still are);
* an amount or numeric id that equals any number of the audience's own data (their salaries,
  pools, bonuses, KPI bases, norms, facts, line bonuses, the team's totals, the period) is not
  evidence: two employees with the same bonus, an id that is also a KPI fact;
* amounts below 1,000 without kopecks (``500``) are too common to mean anything (percentages,
  thresholds, KPI values) and are not used; names and ids still are;
* in the text of a PDF, whole multiples of 250 (``50,000.00``) are not evidence either: chart axes
  print such ticks, and they belong to nobody (the workbooks, where axes are not stored, still
  count them);
* XML is read as content only: layout numbers (drawing anchors and offsets, chart indexes) and
  attributes other than names and titles are not searched for ids or amounts.

Encrypted workbooks are also searched *as bytes*, before decryption: no name (UTF-8 or UTF-16)
of anybody, no id of five characters or more and no amount of five digits or more may be
readable (shorter numbers occur by chance in ciphertext); the container's own clear-text
parameters (``spinCount="100000"``, salts) are blanked first.

Integrity findings are reported with the leaks, because the check can only vouch for what it
can read: a file in a bundle that ``index.csv`` does not list (``unlisted``), a file that differs
from the sha256 recorded for it (``modified``), a listed file that is gone (``missing``), a
file that cannot be opened or decrypted (``unreadable``), an e-mail with more than one
recipient or to an address that several employees share (``recipients``).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
import html.parser
import io
import os
import re
import shutil
import subprocess
import unicodedata
import xml.sax
import xml.sax.handler
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.errors import KpiError
from xl_kpi.inputs.identity import canonical_address
from xl_kpi.outputs.csvsafe import read_rows

__all__ = ["IsolationReport", "Leak", "check", "check_report", "norm_name", "numbers_in"]

KINDS = ("name", "id", "amount", "plaintext", "unlisted", "modified", "missing", "unreadable", "recipients")
AMOUNT_FIELDS = ("bonus", "total_pay", "salary")
_MONEY = ("salary", "bonus_pool", "kpi_bonus", "bonus", "total_pay")
MIN_AMOUNT = 1000
"""Amounts below this (in currency units) count as evidence only when they have kopecks/cents."""
SHORT_ID = 4
"""Numeric ids shorter than this are matched only as a whole text cell or a file-name prefix."""
AXIS_STEP = 250_00
"""In a PDF, whole multiples of 250 are not evidence: chart axes print such ticks (5,000 … 45,000)."""
RAW_MIN_DIGITS = 5
"""In encrypted bytes, numbers are looked for only when at least this long (shorter ones occur by chance)."""

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LAYOUT_TAGS = {"col", "colOff", "row", "rowOff", "idx", "order", "x", "y", "cx", "cy"}
_TEXT_ATTRS = {"name", "title", "descr", "tooltip", "display"}


@dataclass(frozen=True, order=True)
class Leak:
    """One finding: ``kind`` of evidence that ``employee_id``'s data is in ``file``, meant for ``audience``."""

    file: str
    kind: str
    employee_id: str = ""
    name: str = ""
    evidence: str = ""
    audience: str = ""

    def __str__(self) -> str:
        who = f"{self.employee_id} {self.name}".strip()
        about = f" of {who}" if who else ""
        return f"{self.file}: {self.kind}{about}: {self.evidence} (meant for {self.audience or 'nobody'})"


@dataclass
class IsolationReport:
    """What :func:`check` looked at and found."""

    leaks: list[Leak] = field(default_factory=list)
    files: int = 0
    """Files opened (an archive's members and a message's attachments each count)."""
    decrypted: int = 0
    """Encrypted workbooks opened with their password."""
    skipped_ambiguous: int = 0
    """Matches not counted as evidence because the value is also the audience's own (see the module doc)."""

    @property
    def ok(self) -> bool:
        return not self.leaks


# ------------------------------------------------------------------------------------ text


_WS = re.compile(r"\s+")
_ZW = dict.fromkeys(c for c in range(0x2000, 0x2070) if unicodedata.category(chr(c)) == "Cf")
_SPACES = {0x00A0: " ", 0x2007: " ", 0x2009: " ", 0x202F: " ", 0x2002: " ", 0x2003: " ", 0x00AD: None,
           0xFEFF: None, **_ZW}


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFC", s).translate(_SPACES)
    return s.casefold().replace("ё", "е")


def _id_form(s: Any) -> str:
    """An id or a whole cell as written, for exact comparison: NFC, odd spaces made plain, white space collapsed.

    Ids are exact (case included, see :mod:`xl_kpi.inputs.identity`); only names are case-folded.
    """
    if s is None or (isinstance(s, float) and s != s):
        return ""
    return _WS.sub(" ", unicodedata.normalize("NFC", str(s)).translate(_SPACES)).strip()


def norm_name(s: Any) -> str:
    """A name or text reduced for matching: NFC, case-folded, ё→е, white space collapsed."""
    if s is None or (isinstance(s, float) and s != s):
        return ""
    return _WS.sub(" ", _fold(str(s))).strip()


def _cents(x: Any) -> int | None:
    try:
        d = Decimal(str(x))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    return int((d * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


_NUM = re.compile(
    r"(?<![\w.,])("
    r"\d+(?:\.\d+)?[eE][-+]?\d+"  # 2.295E4
    r"|\d{1,3}(?:[ '’]\d{3})+(?:[.,]\d+)?"  # 22 950,00 / 22'950.00
    r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # 22,950.00
    r"|\d{1,3}(?:\.\d{3})+(?:,\d+)?"  # 22.950,00
    r"|\d+(?:[.,]\d+)?"  # 22950 / 22950.0 / 22950,00
    r")(?!\d)"
)


def numbers_in(text: str) -> set[int]:
    """Every number written in ``text``, in cents, under each reading its format allows.

    ``22 950,00``, ``22,950.00``, ``22.950,00``, ``22950``, ``22950.000000000004`` all give
    2295000; ``1,500`` gives both 150000 and 150 (grouping or decimal comma).
    """
    out: set[int] = set()
    for m in _NUM.finditer(text):
        tok = m.group(1)
        compact = tok.replace(" ", "").replace("'", "").replace("’", "")
        readings: list[str] = []
        if compact != tok:  # space-grouped; also the parts, in case they were separate numbers
            readings.extend(re.split(r"[ '’]", tok))
        if "e" in compact.lower():
            readings.append(compact.replace(",", "."))
        elif "," in compact and "." in compact:
            dec = "," if compact.rfind(",") > compact.rfind(".") else "."
            grp = "." if dec == "," else ","
            readings.append(compact.replace(grp, "").replace(dec, "."))
        elif "," in compact or "." in compact:
            sep = "," if "," in compact else "."
            parts = compact.split(sep)
            if len(parts) > 2:
                readings.append("".join(parts))
            else:
                readings.append(f"{parts[0]}.{parts[1]}")
                if len(parts[1]) == 3 and compact == tok:
                    readings.append(parts[0] + parts[1])
        else:
            readings.append(compact)
        for r in readings:
            c = _cents(r.replace(",", "."))
            if c is not None:
                out.add(c)
    return out


@dataclass
class _Text:
    """The text of one file: ``spaced`` markup→space, ``glued`` markup removed, ``plain`` content nodes."""

    spaced: list[str] = field(default_factory=list)
    glued: list[str] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)
    cells: set[str] = field(default_factory=set)
    """Whole text values (text cells, names and titles, file names) as :func:`_id_form`: where short ids count."""
    filenames: list[str] = field(default_factory=list)
    """Base file names as :func:`_id_form`."""
    rendered: list[str] = field(default_factory=list)
    """Text of a rendering (PDF): its numbers include chart axis ticks, which belong to nobody."""

    def add(self, text: str, *, cell: bool = False, numbers: bool = True) -> None:
        self.spaced.append(text)
        if numbers:
            self.plain.append(text)
        if cell:
            c = _id_form(text)
            if c:
                self.cells.add(c)

    def extend(self, other: _Text) -> None:
        self.spaced += other.spaced
        self.glued += other.glued
        self.plain += other.plain
        self.cells |= other.cells
        self.filenames += other.filenames
        self.rendered += other.rendered

    def add_filename(self, name: str) -> None:
        base = name.rsplit("/", 1)[-1]
        self.filenames.append(_id_form(base))
        self.add(base, cell=True)


_SEGMENT = {"si", "is", "c", "v", "f", "p", "pt", "row", "sheet", "definedName"}
"""Elements that end a run of text: rich-text runs inside one of them are glued together."""
_FORMULA_TAGS = {"f", "formula", "formula1", "formula2", "definedName"}
"""Elements holding a formula: cell references and function names are not content (``$D$30`` is no id D)."""
_TEXT_CELL_TYPES = {"str", "inlineStr", "e"}
"""Cell types (``<c t=…>``) whose ``<v>`` is text, as a shared string (``<t>``) is."""


class _XmlHandler(xml.sax.handler.ContentHandler, xml.sax.handler.LexicalHandler):
    """Every text node (CDATA included), attribute value (any quoting), comment and processing
    instruction of one XML part, in document order, into a :class:`_Text`."""

    def __init__(self, out: _Text) -> None:
        super().__init__()
        self.out = out
        self.stack: list[str] = []
        self.cell_types: list[str] = []
        self.buf: list[str] = []
        self.glued: list[str] = []

    def _flush(self) -> None:
        if not self.buf:
            return
        text, self.buf = "".join(self.buf), []
        if not text.strip():
            return
        local = self.stack[-1] if self.stack else ""
        ctype = self.cell_types[-1] if self.cell_types else ""
        if local == "v" and ctype == "s" and text.strip().isdigit():
            return  # an index into the shared strings (whose text is read there), not content
        self.glued.append(text)
        if local in _FORMULA_TAGS:
            self.out.add(text, numbers=False)  # names anywhere in it; ids and amounts only in its literals
            literals = _formula_literals(text)
            if literals:
                self.out.plain.append(literals)
            return
        cell = local == "t" or (local == "v" and (ctype in _TEXT_CELL_TYPES or "strCache" in self.stack))
        self.out.add(text, cell=cell, numbers=local not in _LAYOUT_TAGS)

    def _glue(self) -> None:
        if self.glued:
            self.out.glued.append("".join(self.glued))
            self.glued = []

    def startElement(self, name: str, attrs: Any) -> None:
        self._flush()
        local = name.rsplit(":", 1)[-1]
        if local in _SEGMENT:
            self._glue()
        self.stack.append(local)
        if local == "c":
            self.cell_types.append(attrs.get("t", "n"))
        for key, value in attrs.items():
            if not value.strip():
                continue
            if key.rsplit(":", 1)[-1] in _TEXT_ATTRS:
                self.out.add(value, cell=True)
            else:
                self.out.spaced.append(value)

    def endElement(self, name: str) -> None:
        self._flush()
        local = self.stack.pop() if self.stack else ""
        if local == "c" and self.cell_types:
            self.cell_types.pop()
        if local in _SEGMENT:
            self._glue()

    def characters(self, content: str) -> None:
        self.buf.append(content)

    def ignorableWhitespace(self, whitespace: str) -> None:
        self.buf.append(whitespace)

    def processingInstruction(self, target: str, data: str) -> None:
        self._flush()
        if data.strip():
            self.out.add(data)

    def comment(self, content: str) -> None:
        self._flush()
        if content.strip():
            self.out.add(content)

    def endDocument(self) -> None:
        self._flush()
        self._glue()


def _xml_text(data: bytes, out: _Text) -> str | None:
    """Read an XML part with a real (defused) parser; ``None``, or why it is not readable as XML.

    A part that is not well-formed XML is read by :func:`_loose_xml_text` instead (every text run,
    CDATA section, attribute and comment), so nothing in it goes unseen; a part that declares a
    document type or entities is read that way too, and reported: entities can assemble text that
    is written nowhere, and Excel never writes them.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.expatreader import DefusedExpatParser

    part = _Text()
    handler = _XmlHandler(part)
    parser = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.setContentHandler(handler)
    parser.setProperty(xml.sax.handler.property_lexical_handler, handler)
    parser.setErrorHandler(xml.sax.handler.ErrorHandler())
    try:
        parser.parse(io.BytesIO(data))
    except DefusedXmlException:
        _loose_xml_text(_decode_xml(data), out)
        return "it declares a document type or entities (<!DOCTYPE …>), which xl_kpi never writes"
    except (xml.sax.SAXException, ValueError, UnicodeError):
        _loose_xml_text(_decode_xml(data), out)
        return None
    out.extend(part)
    return None


def _decode_xml(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace")
    if data[:2] == b"<\x00":
        return data.decode("utf-16-le", "replace")
    return data.decode("utf-8", "replace")


_LOOSE = re.compile(
    r"<!\[CDATA\[(.*?)(?:\]\]>|$)"  # CDATA
    r"|<!--(.*?)(?:-->|$)"  # comment
    r"""|<[!?/]?[^\s<>"'/]*((?:[^<>"']|"[^"]*"|'[^']*')*)>"""  # a tag (or declaration) and its attributes
    r"|([^<]+)|<",  # text; a stray '<'
    re.S)
_LOOSE_QUOTED = re.compile(r"""(?:([\w:.-]+)\s*=\s*)?(?:"([^"]*)"|'([^']*)')""")


def _loose_xml_text(text: str, out: _Text) -> None:
    """What is not well-formed XML: every text run, CDATA section, comment and attribute value, by regex."""
    for m in _LOOSE.finditer(text):
        cdata, comment, attrs, run = m.groups()
        for chunk in (cdata, comment, html.unescape(run) if run else None):
            if chunk and chunk.strip():
                out.add(chunk)
                out.glued.append(chunk)
        if attrs and attrs.strip():
            for a in _LOOSE_QUOTED.finditer(attrs):
                value = html.unescape(a.group(2) if a.group(2) is not None else a.group(3))
                if value.strip():
                    out.add(value, cell=bool(a.group(1)) and a.group(1).rsplit(":", 1)[-1] in _TEXT_ATTRS)
            out.spaced.append(html.unescape(_LOOSE_QUOTED.sub(" ", attrs)))


_F_STRING = re.compile(r'"((?:[^"]|"")*)"')
_F_SHEET = re.compile(r"'(?:[^']|'')*'")
_F_NUMBER = re.compile(r"(?<![\w$.:!])(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)(?![\w(:$])")


def _formula_literals(formula: str) -> str:
    """The content of a formula: its string and number literals (not cell references, sheet or function names)."""
    strings = [m.group(1).replace('""', '"') for m in _F_STRING.finditer(formula)]
    rest = _F_SHEET.sub(" ", _F_STRING.sub(" ", formula))
    return "\n".join(strings + _F_NUMBER.findall(rest))


def _office_text(data: bytes, zf: zipfile.ZipFile, names: list[str]
                 ) -> tuple[_Text, list[tuple[str, bytes]], list[tuple[str, str]]]:
    """The text of every part of an Office package, the packages embedded in it, and the parts that could
    not be read as they should (part, why); cached by sha256."""
    digest = _sha(data)
    if digest not in _OFFICE:
        content, nested, broken = _Text(), [], []
        for n in names:
            part = zf.read(n)
            if part[:4] in (b"PK\x03\x04", _OLE[:4]) or part[:5] == b"%PDF-":
                nested.append((n, part))
            elif _looks_like_xml(part):
                why = _xml_text(part, content)
                if why:
                    broken.append((n, why))
            else:
                _binary_text(part, content)
        _remember(_OFFICE, digest, (content, nested, broken))
    return _OFFICE[digest]


def _looks_like_xml(part: bytes) -> bool:
    head = part[:64]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        head = head[2:].replace(b"\x00", b"")
    elif head[:2] == b"<\x00":
        head = head.replace(b"\x00", b"")
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<"


def _binary_text(data: bytes, out: _Text) -> None:
    """A part that is not XML (an image, a binary blob): only names are looked for in it."""
    out.spaced.append(data.decode("utf-8", "ignore"))
    out.spaced.append(data.decode("utf-16-le", "ignore"))


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
        self._period_numbers = numbers_in(str(getattr(results, "period", "") or "").replace("-", " - "))
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


# ------------------------------------------------------------------------------- opening


class _Opener:
    """Turns bytes (xlsx, encrypted xlsx, pdf, zip, eml, text) into :class:`_Text`, recursing."""

    def __init__(self, scanner: _Scanner) -> None:
        self.scanner = scanner

    def scan(self, label: str, data: bytes, allowed: _Allowed, audience_label: str, passwords: list[str],
             depth: int = 0) -> None:
        self.scanner.report.files += 1
        if depth > 4:
            self.scanner.leak(label, "unreadable", "", "nested too deeply to check", audience_label)
            return
        text = _Text()
        text.add_filename(label)
        if data[:8] == _OLE:
            self.scanner.raw(label, data, audience_label)
            plain = self._decrypt(data, passwords)
            if plain is None:
                why = "encrypted, and no password in passwords.csv opens it" if passwords else \
                    "encrypted, and there is no password for it in passwords.csv"
                self.scanner.leak(label, "unreadable", "", why, audience_label)
                self.scanner.match(label, text, allowed, audience_label)
                return
            self.scanner.report.decrypted += 1
            data = plain
        if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
            try:
                zf = zipfile.ZipFile(io.BytesIO(data))
                names = [i.filename for i in zf.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError) as e:
                self.scanner.leak(label, "unreadable", "", f"damaged zip ({e})", audience_label)
                return
            with zf:
                if "[Content_Types].xml" in names:
                    content, nested, broken = _office_text(data, zf, names)
                    text.extend(content)
                    for n, why in broken:
                        self.scanner.leak(f"{label}!/{n}", "unreadable", "", why, audience_label)
                    for n, part in nested:
                        self.scan(f"{label}!/{n}", part, allowed, audience_label, passwords, depth + 1)
                else:
                    for n in names:
                        text.add_filename(n)
                        self.scan(f"{label}!/{n}", zf.read(n), allowed, audience_label, passwords, depth + 1)
        elif data[:5] == b"%PDF-":
            for chunk in _pdf_text(data):
                text.add(chunk, numbers=False)
                text.rendered.append(chunk)
        elif label.lower().endswith(".eml"):
            self._eml(label, data, text, allowed, audience_label, passwords, depth)
        else:
            text.add(data.decode("utf-8", "replace"))
        self.scanner.match(label, text, allowed, audience_label)

    def _decrypt(self, data: bytes, passwords: list[str]) -> bytes | None:
        from xl_kpi.delivery.crypto import WrongPasswordError, decrypt_xlsx

        digest = _sha(data)
        for pw in dict.fromkeys(passwords):
            key = (digest, hashlib.sha256(pw.encode("utf-8")).hexdigest())
            if key in _DECRYPTED:
                return _DECRYPTED[key]
            try:
                plain = decrypt_xlsx(data, pw)
            except (WrongPasswordError, KpiError):
                continue
            except Exception:  # a damaged container: "unreadable", not a crash
                continue
            _remember(_DECRYPTED, key, plain)
            return plain
        return None

    def _eml(self, label: str, data: bytes, text: _Text, allowed: _Allowed, audience_label: str,
             passwords: list[str], depth: int) -> None:
        msg = email.message_from_bytes(data, policy=email.policy.default)
        for h in ("Subject", "To", "Cc", "Bcc", "From", "Reply-To"):
            for v in msg.get_all(h, []):
                text.add(str(v), cell=True)
        for part in msg.walk():
            if part.is_multipart():
                continue
            fname = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if fname:
                text.add_filename(fname)
                self.scan(f"{label}!/{fname}", payload, allowed, audience_label, passwords, depth + 1)
            elif part.get_content_maintype() == "text":
                charset = part.get_content_charset() or "utf-8"
                try:
                    body = payload.decode(charset, "replace")
                except LookupError:
                    body = payload.decode("utf-8", "replace")
                if part.get_content_subtype() == "html":
                    _html_text(body, text)
                else:
                    text.add(body)
            else:
                self.scan(f"{label}!/part", payload, allowed, audience_label, passwords, depth + 1)


class _HtmlText(html.parser.HTMLParser):
    """Text, attribute values, comments and declarations of an HTML body (not XML: no XML parser)."""

    def __init__(self, out: _Text) -> None:
        super().__init__(convert_charrefs=True)
        self.out = out

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.out.add(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and value.strip():
                self.out.add(value, cell=name in _TEXT_ATTRS or name in ("alt", "value"))

    handle_startendtag = handle_starttag

    def handle_comment(self, data: str) -> None:
        self.handle_data(data)

    def handle_decl(self, decl: str) -> None:
        self.handle_data(decl)

    def unknown_decl(self, data: str) -> None:  # <![CDATA[…]]> and the like
        self.handle_data(data)

    def handle_pi(self, data: str) -> None:
        self.handle_data(data)


def _html_text(body: str, out: _Text) -> None:
    parser = _HtmlText(out)
    parser.feed(body)
    parser.close()


_DECRYPTED: dict[tuple[str, str], bytes] = {}
_OFFICE: dict[str, tuple[_Text, list[tuple[str, bytes]], list[tuple[str, str]]]] = {}
_PDF_TEXT: dict[str, list[str]] = {}
_CACHE_SIZE = 4096
"""Decrypting (100,000 hash rounds) and pdftotext are slow; the same bytes are often checked twice
(a bundle and the e-mail that carries it, the check before sending and the one after)."""


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _pdf_text(data: bytes) -> list[str]:
    """The text of a PDF (``pdftotext``) and its document information (``pdfinfo``: title, author...)."""
    digest = _sha(data)
    if digest not in _PDF_TEXT:
        _remember(_PDF_TEXT, digest, _run_pdf_tools(data))
    return _PDF_TEXT[digest]


def _run_pdf_tools(data: bytes) -> list[str]:
    out = []
    for tool, args in (("pdftotext", ["-enc", "UTF-8", "-", "-"]), ("pdfinfo", ["-enc", "UTF-8", "-"])):
        exe = shutil.which(tool)
        if exe is None:
            raise KpiError(f"{tool} is not installed (needed to read the PDFs); apt-get install poppler-utils")
        proc = subprocess.run([exe, *args], input=data, capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise KpiError(f"{tool} failed: {proc.stderr.decode('utf-8', 'replace')[:300]}")
        text = proc.stdout.decode("utf-8", "replace")
        if tool == "pdfinfo":  # only the descriptive fields: sizes and dates are not content
            text = "\n".join(v for k, _, v in (ln.partition(":") for ln in text.splitlines())
                             if k.strip() in ("Title", "Subject", "Keywords", "Author"))
        out.append(text)
    return out


# -------------------------------------------------------------------------------- the check



def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check(out_dir: str | os.PathLike[str]) -> list[Leak]:
    """Every leak (and integrity finding) in the files produced for people under ``out_dir``; [] = isolated."""
    return check_report(out_dir).leaks


def check_report(
    out_dir: str | os.PathLike[str], *, cards: bool = True, distribution: bool = True, outbox: bool = True
) -> IsolationReport:
    """Run the isolation check (see the module doc); the parts to look at can be switched off."""
    from xl_kpi.outputs.layout import FOLDER, INDEX, OUTBOX, PASSWORDS
    from xl_kpi.outputs.results_files import load_results

    out = Path(out_dir)
    company = _Company(load_results(out))
    report = IsolationReport()
    scanner = _Scanner(company, report)
    opener = _Opener(scanner)

    if cards:
        _check_cards(out, company, scanner, opener)

    dist = out / FOLDER
    index_rows = read_rows(dist / INDEX) if (dist / INDEX).exists() else []
    pw_rows = read_rows(dist / PASSWORDS) if (dist / PASSWORDS).exists() else []
    passwords: dict[str, str] = {}
    for r in pw_rows:
        if r.get("bundle") and r.get("password"):
            passwords[_bundle_key(r["bundle"])] = r["password"]
    bundles: dict[str, dict[str, Any]] = {}
    for r in index_rows:
        b = bundles.setdefault(r["bundle"], {"members": set(), "files": {}, "recipient": r.get("recipient", ""),
                                             "email": r.get("recipient_email", "")})
        if r.get("employee_id"):
            b["members"].add(r["employee_id"].strip())
        b["files"][r["file"]] = r.get("sha256", "")

    if distribution and dist.is_dir():
        _check_distribution(dist, bundles, passwords, company, scanner, opener, FOLDER)

    box = out / OUTBOX
    if outbox and box.is_dir():
        by_address: dict[str, dict[str, Any]] = {}
        for name, b in bundles.items():
            a = canonical_address(b["email"])
            if a:
                entry = by_address.setdefault(a, {"members": set(), "passwords": [], "names": set()})
                entry["members"] |= b["members"]
                entry["names"].add(b["recipient"])
                if _bundle_key(name) in passwords:
                    entry["passwords"].append(passwords[_bundle_key(name)])
        for path in sorted(box.rglob("*.eml")):
            _check_eml(out, path, by_address, company, scanner, opener)
    report.leaks.sort()
    return report


def _bundle_key(bundle: str) -> str:
    return bundle[:-4] if bundle.lower().endswith(".zip") else bundle


def _check_cards(out: Path, company: _Company, scanner: _Scanner, opener: _Opener) -> None:
    cards = out / "cards"
    if not cards.is_dir():
        return
    manifest = {}
    if (out / "manifest.csv").exists():
        for r in read_rows(out / "manifest.csv"):
            if r.get("file"):
                manifest[r["file"]] = (r.get("employee_id", "").strip(), r.get("sha256", ""))
    for path in sorted(p for p in cards.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        data = path.read_bytes()
        eid, sha = manifest.get(rel, ("", ""))
        audience = frozenset({eid}) if eid else frozenset()
        label = f"{eid} {company.people[eid].name}" if eid in company.people else ""
        if not eid:
            scanner.leak(rel, "unlisted", "", "not in manifest.csv", label)
        elif sha and _sha(data) != sha:
            scanner.leak(rel, "modified", eid, "differs from the sha256 in manifest.csv", label)
        opener.scan(rel, data, company.allowed(audience), label, [])


def _check_distribution(dist: Path, bundles: dict[str, dict[str, Any]], passwords: dict[str, str],
                        company: _Company, scanner: _Scanner, opener: _Opener, folder: str) -> None:
    from xl_kpi.outputs.layout import HR_FILES

    seen: set[str] = set()
    for top in sorted(dist.iterdir()):
        if top.name in HR_FILES and top.is_file():
            continue
        if top.is_file():
            scanner.leak(f"{folder}/{top.name}", "unlisted", "", "a file nobody is meant to get", "")
            opener.scan(f"{folder}/{top.name}", top.read_bytes(), company.allowed(frozenset()), "", [])
            continue
        for entry in sorted(top.iterdir()):
            bundle = f"{top.name}/{entry.name}"
            seen.add(bundle)
            info = bundles.get(bundle)
            members = frozenset(info["members"]) if info else frozenset()
            aud = (f"{info['recipient']} <{info['email']}>" if info["email"] else info["recipient"]) if info else ""
            allowed = company.allowed(members, [info["recipient"]] if info else [])
            pw = [passwords[_bundle_key(bundle)]] if _bundle_key(bundle) in passwords else []
            label = f"{folder}/{bundle}"
            if info is None:
                scanner.leak(label, "unlisted", "", "a bundle index.csv does not list", "")
            if entry.is_dir():
                files = {p.relative_to(entry).as_posix(): p for p in sorted(entry.rglob("*")) if p.is_file()}
                for rel, p in files.items():
                    data = p.read_bytes()
                    _integrity(scanner, f"{label}/{rel}", data, info, rel, aud)
                    opener.scan(f"{label}/{rel}", data, allowed, aud, pw)
                listed = set(info["files"]) if info else set()
            else:
                data = entry.read_bytes()
                try:
                    with zipfile.ZipFile(io.BytesIO(data)) as zf:
                        files = {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
                except (zipfile.BadZipFile, OSError):
                    files = {}
                for rel, member in files.items():
                    _integrity(scanner, f"{label}!/{rel}", member, info, rel, aud)
                opener.scan(label, data, allowed, aud, pw)
                listed = set(info["files"]) if info else set()
            for missing in sorted(listed - set(files)):
                scanner.leak(f"{label}/{missing}", "missing", "", "listed in index.csv but not there", aud)
    for bundle in sorted(set(bundles) - seen):
        scanner.leak(f"{folder}/{bundle}", "missing", "", "listed in index.csv but not there", "")


def _integrity(scanner: _Scanner, label: str, data: bytes, info: dict[str, Any] | None, rel: str, aud: str) -> None:
    if info is None:
        return
    if rel not in info["files"]:
        scanner.leak(label, "unlisted", "", "a file index.csv does not list for this bundle", aud)
    elif info["files"][rel] and info["files"][rel] != _sha(data):
        scanner.leak(label, "modified", "", "differs from the sha256 in index.csv", aud)


def _check_eml(out: Path, path: Path, by_address: dict[str, dict[str, Any]], company: _Company,
               scanner: _Scanner, opener: _Opener) -> None:
    rel = path.relative_to(out).as_posix()
    data = path.read_bytes()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    addrs = [a for _, a in getaddresses([str(v) for h in ("To", "Cc", "Bcc") for v in msg.get_all(h, [])]) if a]
    if len(addrs) != 1:
        scanner.leak(rel, "recipients", "", f"{len(addrs)} recipients ({', '.join(addrs[:5])}); exactly one expected",
                     "")
    address = canonical_address(addrs[0]) if addrs else ""
    entry = by_address.get(address, {"members": set(), "passwords": [], "names": set()})
    owners = company.audience_of_address(address)
    if len(owners) > 1:
        scanner.leak(rel, "recipients", "", f"{address} is the address of {len(owners)} employees "
                     f"({', '.join(sorted(owners))})", address)
    members = frozenset(entry["members"] | owners)
    allowed = company.allowed(members, sorted(entry["names"]))
    opener.scan(rel, data, allowed, address, entry["passwords"])
