"""Low-level xlsx and zip plumbing, one copy for the package: the zip writer (workbooks and the bundles of
``distribute``), ``.rels`` parsing, XML escaping, cell references and column letters, row plans.

Why not openpyxl for everything: a user's restyled template may hold things openpyxl drops on a
round trip (images without Pillow, shapes, text boxes, sparklines, extension lists). So the card
template is edited at the XML level: rows are copied and renumbered, and every reference to a
row (formulas, merged cells, conditional formats, charts, drawings, defined names, print area)
is moved with a :class:`RowPlan`. The output zip is written by hand so unchanged parts are
compressed once and reused, and every entry has a fixed timestamp (deterministic bytes).
"""

from __future__ import annotations

import re
import stat
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePosixPath
from zipfile import ZipFile

from openpyxl.formula.tokenizer import Token, Tokenizer
from openpyxl.formula.translate import Translator
from openpyxl.utils.cell import column_index_from_string, get_column_letter

MAX_ROW = 1_048_576
COMPRESS_LEVEL = 6
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01, the zip epoch: fixed so output is deterministic
_DOS_TIME = 0
_ZIP32 = 0xFFFFFFFF


# ----------------------------------------------------------------------------------------------
# zip


def read_parts(data: bytes) -> dict[str, bytes]:
    """All parts of an xlsx (a zip), in archive order."""
    with ZipFile(BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One compressed zip member, ready to be placed at any offset."""

    name: bytes
    flags: int
    crc: int
    size: int
    comp: bytes
    method: int = 8
    """8: deflated, 0: stored (``comp`` is the data itself)."""

    @property
    def header(self) -> bytes:
        """The local file header (the compressed data follows it)."""
        return (
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50, 20, self.flags, self.method, _DOS_TIME, _DOS_DATE,
                self.crc, len(self.comp), self.size, len(self.name), 0,
            )
            + self.name
        )

    @property
    def local(self) -> bytes:
        """Local file header followed by the compressed data."""
        return self.header + self.comp


def deflate(name: str, data: bytes, level: int = COMPRESS_LEVEL) -> ZipEntry:
    """Compress one part (raw deflate, as zip stores it); ``level`` 0 stores it uncompressed (method 0: a
    card's 20 KB of per-employee XML costs ~15 µs instead of ~150 µs of zlib set-up and level-1 deflate)."""
    if level == 0:
        comp, method = data, 0
    else:
        co = zlib.compressobj(level, zlib.DEFLATED, -15)
        comp, method = co.compress(data) + co.flush(), 8
    try:
        raw = name.encode("ascii")
        flags = 0
    except UnicodeEncodeError:
        raw = name.encode("utf-8")
        flags = 0x800
    return ZipEntry(raw, flags, zlib.crc32(data), len(data), comp, method)


def _central(e: ZipEntry, offset: int, made_by: int, external: int) -> bytes:
    if offset > _ZIP32 or len(e.comp) > _ZIP32 or e.size > _ZIP32:
        raise ValueError("a zip archive larger than 4 GiB: split it into smaller ones")
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50, made_by, 20, e.flags, e.method, _DOS_TIME, _DOS_DATE,
            e.crc, len(e.comp), e.size, len(e.name), 0, 0, 0, 0, external, offset,
        )
        + e.name
    )


def _end(n: int, cd_size: int, offset: int) -> bytes:
    if offset > _ZIP32 or cd_size > _ZIP32:
        raise ValueError("a zip archive larger than 4 GiB: split it into smaller ones")
    zip64 = b""
    if n > 0xFFFF:  # zip64 end of central directory record and its locator (APPNOTE 4.3.14, 4.3.15)
        zip64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_size, offset)
        zip64 += struct.pack("<IIQI", 0x07064B50, 0, offset + cd_size, 1)
    m = min(n, 0xFFFF)
    return zip64 + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, m, m, cd_size, offset, 0)


def _made_by(unix_mode: int | None) -> tuple[int, int]:
    return (20, 0) if unix_mode is None else ((3 << 8) | 20, (stat.S_IFREG | unix_mode) << 16)


def build_zip(
    entries: Sequence[ZipEntry], locals_: Sequence[bytes] | None = None, *, unix_mode: int | None = None
) -> bytes:
    """A zip archive of ``entries`` in order; ``locals_`` may give each entry's prebuilt local block.

    ``unix_mode`` (e.g. ``0o644``): record the entries as regular files with those permissions,
    made on Unix (what :mod:`zipfile` writes for a ``ZipInfo`` with ``create_system = 3``), so a
    file unpacked from a bundle is readable; ``None``: no permissions (what Excel writes). More than
    65,535 entries get a zip64 end record; an archive past 4 GiB is refused (xl_kpi never needs one).
    """
    made_by, external = _made_by(unix_mode)
    out: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for i, e in enumerate(entries):
        block = locals_[i] if locals_ is not None else e.local
        central.append(_central(e, offset, made_by, external))
        out.append(block)
        offset += len(block)
    cd = b"".join(central)
    return b"".join(out) + cd + _end(len(entries), len(cd), offset)


def stream_zip(files: Iterable[tuple[str, Callable[[], bytes]]], write: Callable[[bytes], object],
               level: int = COMPRESS_LEVEL) -> None:
    """:func:`write_zip`, the same bytes, handed to ``write`` piece by piece: each file's bytes are asked for
    (``files`` gives name and a function returning them) only when it is its turn and dropped once it is
    compressed, so a bundle is never held whole in memory."""
    made_by, external = _made_by(0o644)
    central: list[bytes] = []
    offset = n = 0
    for name, content in sorted(files, key=lambda x: x[0]):
        e = deflate(name, content(), level)
        central.append(_central(e, offset, made_by, external))
        header = e.header
        write(header)
        write(e.comp)
        offset += len(header) + len(e.comp)
        n += 1
        del e
    cd = b"".join(central)
    write(cd + _end(n, len(cd), offset))


def write_zip(files: Iterable[tuple[str, bytes]], level: int = COMPRESS_LEVEL) -> bytes:
    """A deterministic zip of files for people (bundles): sorted by name, fixed timestamps, ``rw-r--r--``."""
    return build_zip([deflate(n, d, level) for n, d in sorted(files, key=lambda x: x[0])], unix_mode=0o644)


def write_xlsx(parts: dict[str, bytes] | Iterable[tuple[str, bytes]]) -> bytes:
    """Zip ``parts`` deterministically ([Content_Types].xml first, fixed timestamps)."""
    items = list(parts.items()) if isinstance(parts, dict) else list(parts)
    items.sort(key=lambda kv: kv[0] != "[Content_Types].xml")
    return build_zip([deflate(n, d) for n, d in items])


# ----------------------------------------------------------------------------------------------
# XML text

_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")
_NEEDS = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]|_x[0-9A-Fa-f]{4}_")


def _ooxml_escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    return "_x005F" if ch == "_" else f"_x{ord(ch):04X}_"


def xml_text(s: str) -> str:
    """Escape text for an element body; control characters become OOXML ``_xHHHH_`` escapes."""
    if not _NEEDS.search(s):
        return s
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _ILLEGAL.sub(_ooxml_escape, s)


def xml_attr(s: str) -> str:
    """Escape text for a double-quoted attribute value."""
    return xml_text(s).replace('"', "&quot;")


_ENTITY = re.compile(r"&(#x[0-9A-Fa-f]+|#\d+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_OOXML_ESC = re.compile(r"_x([0-9A-Fa-f]{4})_")


def xml_unescape(s: str) -> str:
    """Undo XML entity escaping (not the OOXML ``_xHHHH_`` escapes)."""
    if "&" not in s:
        return s

    def one(m: re.Match[str]) -> str:
        g = m.group(1)
        if g[0] == "#":
            return chr(int(g[2:], 16) if g[1] in "xX" else int(g[1:]))
        return _NAMED[g]

    return _ENTITY.sub(one, s)


def ooxml_unescape(s: str) -> str:
    """Undo the OOXML ``_xHHHH_`` escapes used in shared and inline strings."""
    return _OOXML_ESC.sub(lambda m: chr(int(m.group(1), 16)), s) if "_x" in s else s


ATTR_RE = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def parse_attrs(s: str) -> list[tuple[str, str]]:
    """Attributes of a start tag, in order, values still XML-escaped."""
    return [(m.group(1), m.group(2) if m.group(2) is not None else m.group(3)) for m in ATTR_RE.finditer(s)]


def render_attrs(attrs: Iterable[tuple[str, str]]) -> str:
    """`` k="v"`` for each pair (values already escaped)."""
    return "".join(f' {k}="{v}"' for k, v in attrs)


_T_RE = re.compile(r"<(?:\w+:)?t(?:\s[^>]*)?>(.*?)</(?:\w+:)?t>|<(?:\w+:)?t\s*/>", re.S)
_RPH_RE = re.compile(r"<(?:\w+:)?rPh\b.*?</(?:\w+:)?rPh>", re.S)


def string_item_text(si_inner: str) -> str:
    """Plain text of a shared-string item or inline string (rich-text runs joined, phonetics skipped)."""
    si_inner = _RPH_RE.sub("", si_inner)
    return ooxml_unescape(xml_unescape("".join(m.group(1) or "" for m in _T_RE.finditer(si_inner))))


# ----------------------------------------------------------------------------------------------
# relationships (.rels parts)

_REL_RE = re.compile(r"<Relationship\b([^>]*?)/?>", re.S)


def rels_path(part: str) -> str:
    """The relationships part of ``part``: 'xl/workbook.xml' → 'xl/_rels/workbook.xml.rels'."""
    p = PurePosixPath(part)
    return str(p.parent / "_rels" / (p.name + ".rels"))


def resolve_target(base_part: str, target: str) -> str:
    """The part a relationship of ``base_part`` points to: relative to its folder, or absolute ('/xl/...')."""
    if target.startswith("/"):
        return target.lstrip("/")
    parts = list(PurePosixPath(base_part).parent.parts)
    for seg in target.split("/"):
        if seg == "..":
            if parts:
                parts.pop()
        elif seg and seg != ".":
            parts.append(seg)
    return "/".join(parts)


def read_rels(parts: Mapping[str, bytes], part: str) -> list[dict[str, str]]:
    """The internal relationships of ``part`` in document order: each one's attributes (``Id``,
    ``Type``, ``Target``, unescaped as written) plus ``path``, the part it points to. External
    targets (``TargetMode="External"``, e.g. hyperlinks) are left out; no .rels part gives ``[]``."""
    data = parts.get(rels_path(part))
    if data is None:
        return []
    out = []
    for m in _REL_RE.finditer(data.decode("utf-8")):
        a = dict(parse_attrs(m.group(1)))
        if a.get("TargetMode") == "External":
            continue
        a["path"] = resolve_target(part, xml_unescape(a.get("Target", "")))
        out.append(a)
    return out


# ----------------------------------------------------------------------------------------------
# cell references


# One column-letter conversion for the whole package: openpyxl's, cached (inputs use it directly).
col_index = column_index_from_string
"""'A' → 1, 'AA' → 27 (case-insensitive, 'A' to 'ZZZ')."""
col_letters = get_column_letter
"""1 → 'A', 27 → 'AA' (1 to 18,278)."""


CELL_RE = re.compile(r"^(\$?)([A-Za-z]{1,3})(\$?)(\d+)$")
_ROWS_RE = re.compile(r"^(\$?)(\d+):(\$?)(\d+)$")
_COLS_RE = re.compile(r"^\$?[A-Za-z]{1,3}:\$?[A-Za-z]{1,3}$")
_SHEET_REF_RE = re.compile(r"^(?:('(?:[^']|'')+'|[^'!]+)!)?(.+)$", re.S)


def split_cell(ref: str) -> tuple[int, int]:
    """'B12' → (12, 2): (row, column)."""
    m = CELL_RE.match(ref)
    if not m:
        raise ValueError(f"not a cell reference: {ref!r}")
    return int(m.group(4)), col_index(m.group(2))


def unquote_sheet(s: str) -> str:
    """"'My sheet'" → "My sheet"."""
    return s[1:-1].replace("''", "'") if s.startswith("'") else s


def quote_sheet(name: str) -> str:
    """Sheet name as written in a formula (always quoted unless plain ASCII word)."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) and not CELL_RE.match(name):
        return name
    return "'" + name.replace("'", "''") + "'"


def split_sheet_ref(token: str) -> tuple[str | None, str]:
    """"'My sheet'!$A$1:$B$2" → ("My sheet", "$A$1:$B$2")."""
    m = _SHEET_REF_RE.match(token)
    if not m or m.group(1) is None:
        return None, token
    return unquote_sheet(m.group(1)), m.group(2)


def range_cells(area: str) -> list[tuple[int, int]] | None:
    """Cells of "A1:B3" / "$A$1" as (row, col) pairs, row by row; None if not a plain cell area."""
    ends = area.split(":")
    if len(ends) > 2:
        return None
    try:
        (r1, c1), (r2, c2) = split_cell(ends[0]), split_cell(ends[-1])
    except ValueError:
        return None
    r1, r2 = sorted((r1, r2))
    c1, c2 = sorted((c1, c2))
    return [(r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)]


class RowPlan:
    """Where each template row goes in the output.

    ``sources[i]`` is the template row emitted as output row ``i + 1``; a template row may be
    emitted several times (a repeated block) and all template rows up to the template's last row
    appear at least once. A reference to a template row goes to its first copy; a range's end
    goes to the last copy of its end row, so ranges that cover a block grow with it. Inside a
    copied row, a relative reference to that same row stays on the copy.
    """

    def __init__(self, sources: Sequence[int], template_rows: int) -> None:
        self.sources = list(sources)
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        for i, src in enumerate(self.sources, 1):
            self.first.setdefault(src, i)
            self.last[src] = i
        self.template_rows = template_rows
        self.delta = len(self.sources) - template_rows
        self.repeated = {r for r in self.first if self.first[r] != self.last[r]}

    def first_of(self, r: int) -> int:
        """Output row of a reference to template row ``r`` (its first copy)."""
        got = self.first.get(r)
        if got is not None:
            return got
        return r if r >= MAX_ROW else min(MAX_ROW, r + self.delta)

    def last_of(self, r: int) -> int:
        """Output row of a range end at template row ``r`` (its last copy)."""
        got = self.last.get(r)
        if got is not None:
            return got
        return r if r >= MAX_ROW else min(MAX_ROW, r + self.delta)

    @property
    def identity(self) -> bool:
        """True when no row moves."""
        return self.delta == 0 and not self.repeated


IDENTITY_PLAN = RowPlan([], 0)


def _map_area(area: str, plan: RowPlan, copy: tuple[int, int] | None, grow: bool = False) -> str:
    """Move the rows of an area (no sheet part): 'A1', '$A$1:B4', '3:5'; columns-only unchanged.

    ``grow``: a single cell on a repeated row becomes the column of all its copies (what a
    conditional format or a chart series on the KPI row means).
    """
    if ":" not in area:
        m = CELL_RE.match(area)
        if not m:
            return area
        r = int(m.group(4))
        if copy is not None and r == copy[0] and not m.group(3):
            nr = copy[1]
        elif grow and r in plan.repeated:
            a = f"{m.group(1)}{m.group(2)}{m.group(3)}"
            return f"{a}{plan.first_of(r)}:{a}{plan.last_of(r)}"
        else:
            nr = plan.first_of(r)
        return f"{m.group(1)}{m.group(2)}{m.group(3)}{nr}"
    a, _, b = area.partition(":")
    ma, mb = CELL_RE.match(a), CELL_RE.match(b)
    if ma and mb:
        r1, r2 = int(ma.group(4)), int(mb.group(4))
        if copy is not None and r1 == r2 == copy[0] and not ma.group(3) and not mb.group(3):
            n1 = n2 = copy[1]
        else:
            lo, hi = min(r1, r2), max(r1, r2)
            n1, n2 = plan.first_of(lo), plan.last_of(hi)
            if r1 > r2:
                n1, n2 = n2, n1
        return f"{ma.group(1)}{ma.group(2)}{ma.group(3)}{n1}:{mb.group(1)}{mb.group(2)}{mb.group(3)}{n2}"
    mr = _ROWS_RE.match(area)
    if mr:
        r1, r2 = sorted((int(mr.group(2)), int(mr.group(4))))
        return f"{mr.group(1)}{plan.first_of(r1)}:{mr.group(3)}{plan.last_of(r2)}"
    return area


def map_range(ref: str, plan: RowPlan) -> str:
    """Move a plain range reference (no sheet): 'B12' or 'B12:C14'."""
    return _map_area(ref, plan, None)


def map_sqref(sqref: str, plan: RowPlan, grow: bool = True) -> str:
    """Move a space-separated list of ranges (conditional formats, validations); cells on a
    repeated row cover all its copies unless ``grow`` is False."""
    return " ".join(_map_area(part, plan, None, grow) for part in sqref.split())


def shift_formula(
    formula: str,
    plan: RowPlan,
    *,
    sheet: str,
    own_sheet: bool,
    copy: tuple[int, int] | None = None,
    grow: bool = False,
) -> str:
    """Move the row references of ``formula`` (no leading '=') that point into ``sheet``.

    ``own_sheet``: unqualified references belong to ``sheet`` (the formula lives on it).
    ``copy``: (template row, output row) when the formula sits in a copy of a repeated row.
    ``grow``: single cells on a repeated row become the whole copied column (chart series).
    Text literals, names, functions and references to other sheets are left alone.
    """
    if plan.identity or not formula:
        return formula
    try:
        tok = Tokenizer("=" + formula)
    except Exception:  # an odd formula we cannot parse: leave it as it is
        return formula
    changed = False
    for t in tok.items:
        if t.type != Token.OPERAND or t.subtype != Token.RANGE:
            continue
        sh, area = split_sheet_ref(t.value)
        if sh is None:
            if not own_sheet or "!" in t.value:
                continue
        elif sh != sheet:
            continue
        new_area = _map_area(area, plan, copy, grow)
        if new_area != area:
            prefix = t.value[: len(t.value) - len(area)]
            t.value = prefix + new_area
            changed = True
    return tok.render()[1:] if changed else formula


def refers_to(formula: str, sheet: str, *, own_sheet: bool = False) -> bool:
    """True when ``formula`` has a reference into ``sheet`` (unqualified ones count if ``own_sheet``)."""
    try:
        tok = Tokenizer("=" + formula)
    except Exception:
        return sheet in formula
    for t in tok.items:
        if t.type == Token.OPERAND and t.subtype == Token.RANGE:
            sh, _ = split_sheet_ref(t.value)
            if sh == sheet or (sh is None and own_sheet and "!" not in t.value):
                return True
    return False


def translate_shared(master: str, origin: str, target: str) -> str:
    """A shared formula's text as it reads in ``target`` (Excel stores it once, at ``origin``)."""
    return Translator("=" + master, origin=origin).translate_formula(target)[1:]


def number_text(x: float) -> str:
    """A finite float as written in a ``<v>`` element (shortest round-trip form, no trailing .0)."""
    r = repr(float(x))
    return r[:-2] if r.endswith(".0") else r
