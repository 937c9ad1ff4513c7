"""Builders of malformed input files for tests/test_bad_inputs.py: each makes one small file quickly.

They start from the good plan and facts of tests/_plan_helpers.py (written by openpyxl) and break
one thing: the bytes of the file (truncated, encrypted, renamed), the zip around an .xlsx (a bomb),
or the XML of one sheet (a formula without a saved value, an error value, a cell at XFD1048576,
a DOCTYPE with entities).
"""

from __future__ import annotations

import re
import struct
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from openpyxl import load_workbook

from tests import _plan_helpers as ph

Change = Callable[[bytes], bytes] | bytes | None
"""How to change one part of a zip: a function of its bytes, new bytes, or None to remove it."""


def rewrite_zip(src: Path, changes: Mapping[str, Change], dst: Path | None = None) -> Path:
    """Copy an .xlsx (zip) with some parts changed, added or removed; ``dst`` defaults to ``src``."""
    parts: dict[str, tuple[zipfile.ZipInfo | None, bytes]] = {}
    with zipfile.ZipFile(src) as z:
        for info in z.infolist():
            parts[info.filename] = (info, z.read(info))
    for name, change in changes.items():
        info, data = parts.get(name, (None, b""))
        if change is None:
            parts.pop(name, None)
        elif callable(change):
            parts[name] = (info, change(data))
        else:
            parts[name] = (info, change)
    dst = dst or src
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for name, (info, data) in parts.items():
            z.writestr(info if info is not None else name, data, compress_type=zipfile.ZIP_DEFLATED)
    return dst


def sheet_member(path: Path, title: str) -> str:
    """The zip part of the worksheet called ``title`` (xl/worksheets/sheetN.xml)."""
    with zipfile.ZipFile(path) as z:
        wb = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
    rid = re.search(rf'<sheet [^>]*name="{re.escape(title)}"[^>]*r:id="([^"]+)"', wb).group(1)
    target = re.search(rf'<Relationship [^>]*Id="{rid}"[^>]*/>', rels).group(0)
    target = re.search(r'Target="([^"]+)"', target).group(1)
    return target.lstrip("/") if target.startswith("/") else "xl/" + target


def patch_sheet(path: Path, title: str, change: Callable[[bytes], bytes]) -> Path:
    """Rewrite the XML of one worksheet in place."""
    return rewrite_zip(path, {sheet_member(path, title): change})


def set_cell_xml(path: Path, title: str, ref: str, cell_xml: str) -> Path:
    """Replace cell ``ref`` (which must exist) of a sheet by raw XML, e.g. ``<c r="C2"><v>inf</v></c>``."""
    pattern = re.compile(rb'<c r="' + ref.encode() + rb'"[^>]*?(?:/>|>.*?</c>)', re.S)

    def change(xml: bytes) -> bytes:
        new, n = pattern.subn(cell_xml.encode(), xml, count=1)
        assert n == 1, f"cell {ref} not found"
        return new

    return patch_sheet(path, title, change)


def add_row_xml(path: Path, title: str, row_xml: str) -> Path:
    """Append raw ``<row>`` XML at the end of a sheet's data."""
    return patch_sheet(path, title, lambda x: x.replace(b"</sheetData>", row_xml.encode() + b"</sheetData>"))


def edit_workbook(path: Path, change: Callable[..., None]) -> Path:
    """Open an .xlsx with openpyxl, let ``change(wb)`` edit it, save it back."""
    wb = load_workbook(path)
    change(wb)
    wb.save(path)
    return path


def facts_workbook(folder: Path, values: Mapping[tuple[str, str], object] | None = None,
                   name: str = "facts.xlsx") -> Path:
    """The good facts as a workbook, sheet Facts: header in row 1, E1 deals in row 2 (fact in C2)."""
    return ph.write_workbook(folder / name, {"Facts": ph.facts_rows(dict(values or {}))})


LAUGHS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]>\n"
)
"""A DTD whose entity &lol9; expands to 10⁹ 'lol's (the 'billion laughs')."""


def billion_laughs_in_sheet(path: Path, title: str, ref: str) -> Path:
    """Put the billion-laughs DTD in a sheet and &lol9; in cell ``ref``."""
    set_cell_xml(path, title, ref, f'<c r="{ref}" t="inlineStr"><is><t>&lol9;</t></is></c>')
    return patch_sheet(path, title, lambda x: LAUGHS.encode() + x[x.index(b"<worksheet"):])


def billion_laughs_in_shared_strings(path: Path, title: str, ref: str) -> Path:
    """Add a sharedStrings.xml with the billion-laughs DTD, and make cell ``ref`` use its string."""
    sst = (LAUGHS + '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
           'uniqueCount="1"><si><t>&lol9;</t></si></sst>').encode()
    set_cell_xml(path, title, ref, f'<c r="{ref}" t="s"><v>0</v></c>')
    return rewrite_zip(path, {
        "xl/sharedStrings.xml": sst,
        "xl/_rels/workbook.xml.rels": lambda x: x.replace(b"</Relationships>", (
            b'<Relationship Id="rIdSst" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            b'sharedStrings" Target="sharedStrings.xml"/></Relationships>')),
        "[Content_Types].xml": lambda x: x.replace(b"</Types>", (
            b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            b'spreadsheetml.sharedStrings+xml"/></Types>')),
    })


def shared_strings_claiming(path: Path, count: int) -> Path:
    """A sharedStrings.xml that claims ``count`` unique strings but holds one (calamine would reserve them all)."""
    sst = ('<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/'
           f'main" count="{count}" uniqueCount="{count}"><si><t>x</t></si></sst>').encode()
    return rewrite_zip(path, {
        "xl/sharedStrings.xml": sst,
        "xl/_rels/workbook.xml.rels": lambda x: x.replace(b"</Relationships>", (
            b'<Relationship Id="rIdSst" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            b'sharedStrings" Target="sharedStrings.xml"/></Relationships>')),
    })


def zip_bomb(path: Path, title: str, megabytes: int = 60) -> Path:
    """Pad a sheet's XML with ``megabytes`` MB of spaces: it compresses about 1000 times (a zip bomb)."""
    pad = b" " * (megabytes * 1024 * 1024)
    return patch_sheet(path, title, lambda x: x.replace(b"<sheetData>", b"<sheetData>" + pad, 1))


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file short (a download that did not finish)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def corrupt_part(path: Path, member: str) -> Path:
    """Damage the compressed bytes of one part in place (the zip directory stays intact)."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    for i in range(start + 2, start + info.compress_size - 2, 3):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def encrypt(src: Path, dst: Path, password: str = "secret") -> Path:
    """Excel's 'Encrypt with Password' (an OLE2 container around the encrypted .xlsx), via msoffcrypto-tool."""
    import io

    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(src.read_bytes())).encrypt(password, out)
    dst.write_bytes(out.getvalue())
    return dst


def cfb(path: Path, streams: Mapping[str, bytes]) -> Path:
    """A minimal OLE2 (Compound File Binary, version 3) container with the given root streams.

    Enough for an 'old .xls' (a ``Workbook`` stream holding a BIFF8 BOF record): each stream is
    padded to at least 4096 bytes, so it lives in ordinary sectors and no mini stream is needed.
    """
    free, end, fat_sect, nostream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    datas = [(n, d + b"\0" * max(0, 4096 - len(d))) for n, d in streams.items()]
    sectors: list[bytes] = []
    fat: list[int] = [fat_sect, end]  # sector 0: the FAT, sector 1: the directory
    starts = []
    next_sector = 2
    for _, d in datas:
        count = -(-len(d) // 512)
        starts.append(next_sector)
        fat += [next_sector + i + 1 for i in range(count - 1)] + [end]
        sectors += [d[i * 512:(i + 1) * 512].ljust(512, b"\0") for i in range(count)]
        next_sector += count
    assert len(fat) <= 128 and len(datas) <= 3
    fat_bytes = struct.pack("<128I", *(fat + [free] * (128 - len(fat))))

    def entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0" if name else b""
        return (raw.ljust(64, b"\0") + struct.pack("<HBB", len(raw), kind, 1 if name else 0)
                + struct.pack("<III", nostream, right, child) + b"\0" * 16 + b"\0" * 4 + b"\0" * 16
                + struct.pack("<IQ", start, size))

    entries = [entry("Root Entry", 5, 1 if datas else nostream, nostream, end, 0)]
    for i, ((name, d), start) in enumerate(zip(datas, starts, strict=True)):
        right = i + 2 if i + 1 < len(datas) else nostream
        entries.append(entry(name, 2, nostream, right, start, len(d)))
    directory = b"".join(entries).ljust(512, b"\0")
    for j in range(len(entries), 4):  # unused entries
        directory = directory[: j * 128] + entry("", 0, nostream, nostream, 0, 0) + directory[(j + 1) * 128:]
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + b"\0" * 6 + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<109I", 0, *([free] * 108)))
    path.write_bytes(header + fat_bytes + directory + b"".join(sectors))
    return path


BIFF8_BOF = struct.pack("<HHHHHHII", 0x0809, 16, 0x0600, 0x0005, 0x2775, 0x07CD, 0, 0)
"""The record that starts an Excel 97–2003 workbook stream."""


def old_xls(path: Path) -> Path:
    """An 'Excel 97–2003 workbook': an OLE2 container with a Workbook stream."""
    return cfb(path, {"Workbook": BIFF8_BOF})


def sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes of zeros, made instantly (sparse where the file system allows)."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path
