"""Files reduced to searchable text: XML parts of workbooks, formulas, binary parts, HTML, PDF; names and numbers
normalised the same way on both sides (:func:`norm_name`, :func:`numbers_in`)."""

from __future__ import annotations

import bisect
import hashlib
import html
import html.parser
import re
import shutil
import subprocess
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any
from xml.parsers import expat as _expat

from xl_kpi.delivery.isolation.model import _LAYOUT_TAGS, _OLE, _TEXT_ATTRS
from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import English, Msg

# ------------------------------------------------------------------------------------ text


_WS = re.compile(r"\s+")
_ZW = dict.fromkeys(c for c in range(0x2000, 0x2070) if unicodedata.category(chr(c)) == "Cf")
_SPACES = {0x00A0: " ", 0x2007: " ", 0x2009: " ", 0x202F: " ", 0x2002: " ", 0x2003: " ", 0x00AD: None,
           0xFEFF: None, **_ZW}


_ODD = re.compile("[" + "".join(re.escape(chr(c)) for c in _SPACES) + "]")


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFC", s)
    if _ODD.search(s):  # translate() is slow on long text; most text has none of these
        s = s.translate(_SPACES)
    return s.casefold().replace("ё", "е")


def _id_form(s: Any) -> str:
    """An id or a whole cell as written, for exact comparison: NFC, odd spaces made plain, white space collapsed.

    Ids are exact (case included, see :mod:`xl_kpi.inputs.identity`); only names are case-folded.
    """
    if s is None or (isinstance(s, float) and s != s):
        return ""
    return " ".join(unicodedata.normalize("NFC", str(s)).translate(_SPACES).split())  # = \s+ → " ", stripped


def norm_name(s: Any) -> str:
    """A name or text reduced for matching: NFC, case-folded, ё→е, white space collapsed."""
    if s is None or (isinstance(s, float) and s != s):
        return ""
    return " ".join(_fold(str(s)).split())  # str.split() splits where \s matches: the same, much faster


def _cents(x: Any) -> int | None:
    try:
        d = Decimal(str(x))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    if not d:
        return 0
    if d.adjusted() > _MAX_DIGITS:
        return None  # beyond any float: nobody's amount (and 1e999999999 must not build a billion digits)
    with localcontext() as ctx:  # enough digits for the whole number (29 digits and more, 1e30, exactly)
        ctx.prec = max(ctx.prec, d.adjusted() + 4)
        return int((d * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


_MAX_DIGITS = 400
"""Numbers with more digits before the point than this are nobody's amount: a float stops at 1.8e308."""


_NUM = re.compile(
    r"(?<![\w.,])("
    r"\d+(?:\.\d+)?[eE][-+]?\d+"  # 2.295E4
    r"|\d{1,3}(?:[ '’]\d{3})+(?:[.,]\d+)?"  # 22 950,00 / 22'950.00
    r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # 22,950.00
    r"|\d{1,3}(?:\.\d{3})+(?:,\d+)?"  # 22.950,00
    r"|\d+(?:[.,]\d+)?"  # 22950 / 22950.0 / 22950,00
    r")(?!\d)"
)


def numbers_in(text: str, inside: Sequence[tuple[int, int]] = ()) -> set[int]:
    """Every number written in ``text``, in cents, under each reading its format allows.

    ``22 950,00``, ``22,950.00``, ``22.950,00``, ``22950``, ``22950.000000000004`` all give
    2295000; ``1,500`` gives both 150000 and 150 (grouping or decimal comma). ``inside``: sorted,
    non-overlapping (start, end) spans of ``text`` (the audience's own names); a number written
    wholly inside one is part of the name and not read (one reaching past it still is, whole).
    """
    out: set[int] = set()
    starts = [a for a, _ in inside]
    for m in _NUM.finditer(text):
        if starts:
            i = bisect.bisect_right(starts, m.start(1)) - 1
            if i >= 0 and m.end(1) <= inside[i][1]:
                continue
        tok = m.group(1)
        if tok.isdecimal():  # the common cases first, in whole numbers: the same cents as below
            out.add(int(tok) * 100)
            continue
        whole, dot, frac = tok.partition(".")
        if dot and whole.isdecimal() and frac.isdecimal():  # 22950.5, 0.8850000000000001 (and 1.500: also 1500)
            out.add(int(whole) * 100 + _half_up(int(frac) * 100, 10 ** len(frac)))
            if len(frac) == 3:
                out.add(int(whole + frac) * 100)
            continue
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


def _half_up(num: int, den: int) -> int:
    """``num / den`` rounded half up (both >= 0), in whole numbers: what ``_cents`` gives a fraction's cents."""
    q, r = divmod(num, den)
    return q + (2 * r >= den)


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


class _XmlHandler:
    """Every text node (CDATA included), attribute value (any quoting), comment and processing
    instruction of one XML part, in document order, into a :class:`_Text`.

    Its methods are expat's handlers (:func:`_xml_text`) and, by the same names, a SAX content and
    lexical handler's (the tests drive it with ``xml.sax`` too and compare)."""

    def __init__(self, out: _Text) -> None:
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
        if self.buf:  # (called for every element: the checks are inlined)
            self._flush()
        local = name.rpartition(":")[2]
        if local in _SEGMENT and self.glued:
            self._glue()
        self.stack.append(local)
        if local == "c":
            self.cell_types.append(attrs.get("t", "n"))
        if not attrs:
            return
        for key, value in attrs.items():
            if not value.strip():
                continue
            if key.rpartition(":")[2] in _TEXT_ATTRS:
                self.out.add(value, cell=True)
            else:
                self.out.spaced.append(value)

    def endElement(self, name: str) -> None:
        if self.buf:
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

    processing_instruction = processingInstruction

    def comment(self, content: str) -> None:
        self._flush()
        if content.strip():
            self.out.add(content)

    def endDocument(self) -> None:
        self._flush()
        self._glue()


def _xml_text(data: bytes, out: _Text) -> str | None:
    """Read an XML part with a real parser; ``None``, or why it is not readable as XML.

    The parser is expat (pyexpat, the parser under ``xml.sax`` and ``defusedxml``), driven directly, with
    defusedxml's guards: a document type declaration, an entity declaration or an external entity
    reference stops it. A part that is not well-formed XML is read by :func:`_loose_xml_text` instead
    (every text run, CDATA section, attribute and comment), so nothing in it goes unseen; a part that
    declares a document type or entities is read that way too, and reported: entities can assemble text
    that is written nowhere, and Excel never writes them.
    """
    from defusedxml import DefusedXmlException

    part = _Text()
    handler = _XmlHandler(part)
    parser = _expat.ParserCreate()
    parser.buffer_text = True  # one call per text run, not per buffer of the parser
    parser.StartElementHandler = handler.startElement
    parser.EndElementHandler = handler.endElement
    parser.CharacterDataHandler = handler.characters
    parser.CommentHandler = handler.comment
    parser.ProcessingInstructionHandler = handler.processing_instruction
    parser.StartDoctypeDeclHandler = _forbid_dtd
    parser.EntityDeclHandler = _forbid_entity
    parser.UnparsedEntityDeclHandler = _forbid_unparsed_entity
    parser.ExternalEntityRefHandler = _forbid_external
    try:
        parser.Parse(data, True)
        handler.endDocument()
    except DefusedXmlException:
        _loose_xml_text(_decode_xml(data), out)
        return English(Msg("it declares a document type or entities (<!DOCTYPE …>), which xl_kpi never writes"))
    except (_expat.ExpatError, ValueError, UnicodeError):
        _loose_xml_text(_decode_xml(data), out)
        return None
    out.extend(part)
    return None


def _forbid_dtd(name: str, sysid: str | None, pubid: str | None, has_internal_subset: bool) -> None:
    from defusedxml import DTDForbidden

    raise DTDForbidden(name, sysid, pubid)


def _forbid_entity(name: str, is_parameter_entity: bool, value: str | None, base: str | None, sysid: str | None,
                   pubid: str | None, notation_name: str | None) -> None:
    from defusedxml import EntitiesForbidden

    raise EntitiesForbidden(name, value, base, sysid, pubid, notation_name)


def _forbid_unparsed_entity(name: str, base: str | None, sysid: str | None, pubid: str | None,
                            notation_name: str | None) -> None:
    from defusedxml import EntitiesForbidden

    raise EntitiesForbidden(name, None, base, sysid, pubid, notation_name)


def _forbid_external(context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
    from defusedxml import ExternalReferenceForbidden

    raise ExternalReferenceForbidden(context, base, sysid, pubid)


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
    not be read as they should (part, why).

    Reading a part is a function of its bytes alone, so a part's text is kept by its sha256: the parts every
    card shares with the template (styles, theme, ...) are read once per process, not once per card. Both
    caches are small and drop the least recently used entry: memory does not grow with the headcount."""
    digest = _sha(data)
    cached = _recall(_OFFICE, digest)
    if cached is not None:
        return cached
    content, nested, broken = _Text(), [], []
    for n in names:
        part = zf.read(n)
        if part[:4] in (b"PK\x03\x04", _OLE[:4]) or part[:5] == b"%PDF-":
            nested.append((n, part))
            continue
        key = _sha(part)
        known = _recall(_PARTS, key)
        if known is None:
            text = _Text()
            why = _xml_text(part, text) if _looks_like_xml(part) else _binary_text(part, text)
            known = (text, why)
            _remember(_PARTS, key, known)
        content.extend(known[0])
        if known[1]:
            broken.append((n, known[1]))
    result = (content, nested, broken)
    _remember(_OFFICE, digest, result)
    return result


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
    return None




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


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_DECRYPTED: dict[tuple[str, str], bytes] = {}
_OFFICE: dict[str, tuple[_Text, list[tuple[str, bytes]], list[tuple[str, str]]]] = {}
_PARTS: dict[str, tuple[_Text, str | None]] = {}
_PDF_TEXT: dict[str, list[str]] = {}
_CACHE_SIZE = 256
"""Entries per cache. Decrypting (100,000 hash rounds) and pdftotext are slow, and the same bytes are often
checked again soon (a card and its employee's bundle, which the check runs one after the other; a bundle and
the e-mail carrying it); template parts recur in every card. The least recently used entry goes first, so
the caches hold what recurs and memory stays flat in the headcount."""


def _recall(cache: dict[Any, Any], key: Any) -> Any:
    """The cached value (now the most recently used) or None."""
    value = cache.pop(key, None)
    if value is not None:
        cache[key] = value
    return value


def _remember(cache: dict[Any, Any], key: Any, value: Any, size: int | None = None) -> None:
    cache.pop(key, None)
    while len(cache) >= (size or _CACHE_SIZE):
        del cache[next(iter(cache))]  # dicts keep insertion order: the first is the least recently used
    cache[key] = value


def _pdf_text(data: bytes) -> list[str]:
    """The text of a PDF (``pdftotext``) and its document information (``pdfinfo``: title, author...)."""
    digest = _sha(data)
    text = _recall(_PDF_TEXT, digest)
    if text is None:
        text = _run_pdf_tools(data)
        _remember(_PDF_TEXT, digest, text)
    return text


def _run_pdf_tools(data: bytes) -> list[str]:
    out = []
    for tool, args in (("pdftotext", ["-enc", "UTF-8", "-", "-"]), ("pdfinfo", ["-enc", "UTF-8", "-"])):
        exe = shutil.which(tool)
        if exe is None:
            raise KpiError(Msg("{tool} is not installed (needed to read the PDFs); apt-get install poppler-utils",
                               tool=tool))
        proc = subprocess.run([exe, *args], input=data, capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise KpiError(Msg("{tool} failed: {error}", tool=tool, error=proc.stderr.decode("utf-8", "replace")[:300]))
        text = proc.stdout.decode("utf-8", "replace")
        if tool == "pdfinfo":  # only the descriptive fields: sizes and dates are not content
            text = "\n".join(v for k, _, v in (ln.partition(":") for ln in text.splitlines())
                             if k.strip() in ("Title", "Subject", "Keywords", "Author"))
        out.append(text)
    return out
