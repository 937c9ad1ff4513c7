""":func:`scan_xlsx`, the pre-scan of an .xlsx before calamine reads it: the zip's directory (zip bombs,
encrypted parts), XML that declares entities, a shared-string table claiming more strings than it holds,
the workbook's calculation settings, and each worksheet's used range against the limits."""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from pathlib import Path

from xl_kpi.i18n import Msg, english
from xl_kpi.inputs.readers.limits import (
    _BOMB_FIX,
    _DAMAGED_FIX,
    _PASSWORD_FIX,
    MB,
    FileReadError,
    Limits,
    _count,
    _mb,
    _raise_limit,
    limits,
)
from xl_kpi.inputs.readers.sheetscan import SheetInfo, _scan_sheet
from xl_kpi.inputs.readers.sniff import _refuse, zip_kind
from xl_kpi.inputs.readers.xmltext import unescape

_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.I)
_SST_COUNT = re.compile(rb"\buniqueCount=\"(\d+)\"")


def scan_xlsx(path: Path, lim: Limits | None = None, *, data: bytes | None = None) -> dict[str, SheetInfo]:
    """Check an .xlsx against the limits without parsing its XML; what each worksheet holds, by sheet name.

    ``data``: the file's bytes, already read (then ``path`` only names it).
    """
    lim = lim or limits()
    name = path.name
    try:
        zf = zipfile.ZipFile(path if data is None else io.BytesIO(data))
    except Exception as e:  # zipfile raises BadZipFile, NotImplementedError, struct.error… on a damaged archive
        raise FileReadError(name, Msg("cannot read it as a workbook: it is not a complete zip archive ({error})",
                                      error=str(e)), _DAMAGED_FIX) from None
    zf.filename = str(path)  # named by its path also when read from bytes (messages say what it is)
    try:
        with zf:
            return _scan_zip(zf, name, lim)
    except FileReadError:
        raise
    except Exception as e:  # a damaged part: bad CRC, bad deflate data, an unsupported method, a bad header…
        raise FileReadError(name, Msg("cannot read it as a workbook: a part of it is damaged ({error})",
                                      error=f"{type(e).__name__}: {str(e)[:200]}"), _DAMAGED_FIX) from None


def _scan_zip(zf: zipfile.ZipFile, name: str, lim: Limits) -> dict[str, SheetInfo]:
    infos = zf.infolist()
    if len(infos) > lim.zip_members:
        raise FileReadError(name, Msg("the workbook has {n} parts, more than {limit}", n=_count(len(infos)),
                                      limit=_count(lim.zip_members)), _BOMB_FIX)
    total = sum(i.file_size for i in infos)
    if total > lim.unzipped_bytes:
        raise FileReadError(name, Msg("the workbook would unpack to {size}, more than the {limit} allowed",
                                      size=_mb(total), limit=_mb(lim.unzipped_bytes)),
                            Msg("export fewer rows (e.g. one month), or {raise_limit}",
                                raise_limit=_raise_limit("unzipped_bytes", str(int(total // MB + 1)))))
    for i in infos:
        if i.file_size > MB and i.file_size > lim.zip_ratio * max(i.compress_size, 1):
            ratio = i.file_size / max(i.compress_size, 1)
            raise FileReadError(name, Msg("its part {part} unpacks {ratio} times larger ({size} from {packed}); "
                                          "ordinary sheets compress 10–30 times: a zip bomb?", part=i.filename,
                                          ratio=_count(round(ratio)), size=_mb(i.file_size),
                                          packed=_mb(i.compress_size)), _BOMB_FIX)
        if i.flag_bits & 0x1:
            raise FileReadError(name, Msg("its part {part} is encrypted", part=i.filename), _PASSWORD_FIX)
    names = {i.filename for i in infos}
    kind = zip_kind(names)
    if kind != "xlsx":
        raise _refuse(name, "zip", "xlsx", Path(zf.filename or name))
    for i in infos:
        if i.filename.casefold().endswith((".xml", ".rels", ".vml")):
            head = _head(zf, i, 65536)
            if _DTD.search(head):
                raise FileReadError(
                    name, Msg("its part {part} declares a document type or entities (<!DOCTYPE …>), which Excel "
                              "never writes; such XML can expand into gigabytes (an 'XML bomb')", part=i.filename),
                    _BOMB_FIX)
    wb_xml = _read_small(zf, "xl/workbook.xml", name)
    rels = _relationships(zf, "xl/_rels/workbook.xml.rels", name)
    stale: str = ""
    calc = re.search(rb"<(?:[\w.-]+:)?calcPr\b([^>]*)>", wb_xml)
    if calc and re.search(rb'\bfullCalcOnLoad="(?:1|true)"', calc.group(1)):
        stale = english(Msg("the workbook asks to be recalculated when opened (it was saved by a program that does "
                            "not calculate)"))
    elif calc and re.search(rb'\bcalcMode="manual"', calc.group(1)):
        stale = english(Msg("the workbook is set to manual calculation"))
    for target in (t for t, kind in rels.values() if kind.endswith("/sharedStrings")):
        if target in names:
            _check_shared_strings(zf, zf.getinfo(target), name)
    out: dict[str, SheetInfo] = {}
    area = 0
    for m in re.finditer(rb"<(?:[\w.-]+:)?sheet\b([^>]*)/?>", wb_xml):
        attrs = m.group(1)
        sheet_name = _attr(attrs, b"name")
        rid = _attr(attrs, rb"(?:[\w.-]+:)?id")
        if sheet_name is None or rid is None or rid not in rels:
            continue
        target, rel_type = rels[rid]
        if not rel_type.endswith("/worksheet"):
            continue
        if target not in names:
            raise FileReadError(name, Msg("cannot read it as a workbook: the part {part} of sheet {sheet} is "
                                          "missing", part=target, sheet=sheet_name), _DAMAGED_FIX)
        info = _scan_sheet(zf, zf.getinfo(target), sheet_name, name, lim)
        info.stale = stale if info.formulas else ""
        info.state = _attr(attrs, b"state") or "visible"
        out[sheet_name] = info
        size = info.rows * info.columns
        reach = Msg("its used range reaches {corner} ({rows} rows × {columns} columns)", corner=info.corner,
                    rows=_count(info.rows), columns=_count(info.columns))
        if info.rows > lim.rows or info.columns > lim.columns:
            raise FileReadError(name, Msg("{reach}, more than the {rows} rows or {columns} columns a sheet may have",
                                          reach=reach, rows=_count(lim.rows), columns=_count(lim.columns)),
                                Msg("delete the rows and columns outside the table, or {raise_limit}",
                                    raise_limit=_raise_limit("rows" if info.rows > lim.rows else "columns",
                                                             str(max(info.rows, info.columns)))), sheet=sheet_name)
        if size > 1_000_000 and size > 100 * max(info.filled, 1):
            cells = info.far_cells
            fix = (Msg("delete {first} and {second} (or the rows and columns between the table and them), save, and "
                       "run again", first=cells[0], second=cells[1]) if len(cells) > 1 else
                   Msg("delete {cell} (or the rows and columns between the table and it), save, and run again",
                       cell=cells[0] if cells else ""))
            raise FileReadError(
                name, Msg("{reach}, but only {filled} cells are filled: a stray value far below or to the right of "
                          "the table?", reach=reach, filled=_count(info.filled)), fix, sheet=sheet_name)
        area += size
        if area > lim.cells:
            which = "source_cells" if lim.cells == lim.source_cells else "cells"
            raise FileReadError(
                name, Msg("{reach}; with the sheets before it the workbook holds {cells} cells, more than the "
                          "{limit} one file may have", reach=reach, cells=_count(area), limit=_count(lim.cells)),
                Msg("export only the rows and columns needed, or {raise_limit}",
                    raise_limit=_raise_limit(which, str(area))), sheet=sheet_name)
    return out


def _head(zf: zipfile.ZipFile, info: zipfile.ZipInfo, n: int) -> bytes:
    with zf.open(info) as f:
        return f.read(n)


def _read_small(zf: zipfile.ZipFile, member: str, name: str, limit: int = 32 * MB) -> bytes:
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise FileReadError(name, Msg("cannot read it as a workbook: the part {part} is missing", part=member),
                            _DAMAGED_FIX) from None
    if info.file_size > limit:
        raise FileReadError(name, Msg("its part {part} is {size}, far more than a workbook needs", part=member,
                                      size=_mb(info.file_size)), _BOMB_FIX)
    with zf.open(info) as f:
        return f.read(limit + 1)


def _attr(attrs: bytes, key: bytes) -> str | None:
    m = re.search(rb"(?:^|\s)" + key + rb'="([^"]*)"', attrs)
    return unescape(m.group(1).decode("utf-8", "replace")) if m else None


def _relationships(zf: zipfile.ZipFile, member: str, name: str) -> dict[str, tuple[str, str]]:
    """Id → (part path inside the zip, relationship type) of a .rels part."""
    data = _read_small(zf, member, name)
    base = posixpath.dirname(posixpath.dirname(member))  # xl/_rels/workbook.xml.rels → xl
    out = {}
    for m in re.finditer(rb"<(?:[\w.-]+:)?Relationship\b([^>]*)/?>", data):
        rid, target, kind = (_attr(m.group(1), k) for k in (b"Id", b"Target", b"Type"))
        if rid and target:
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(base, target))
            out[rid] = (path, kind or "")
    return out


def _check_shared_strings(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
    """A shared-string table must not claim more strings than it can hold (calamine reserves room for them)."""
    m = _SST_COUNT.search(_head(zf, info, 4096))
    if m and int(m.group(1)) * 5 > info.file_size + 64:  # the smallest string, <si/>, takes 5 bytes
        raise FileReadError(name, Msg("its shared-string table claims {n} strings but is only {size}",
                                      n=_count(int(m.group(1))), size=_mb(info.file_size)), _BOMB_FIX)
