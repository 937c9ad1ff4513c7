"""Reading input files without trusting them: what a file really is, how big it may be, and what is inside.

Every plan workbook and data file passes here before a parser sees it:

1. **Size.** A file larger than its limit (:class:`Limits`: 50 MB for the plan, 200 MB for a data
   file) is refused before it is opened.
2. **What it is.** The first bytes say what the file is, whatever its name: an .xlsx (a zip), an
   old .xls or a password-protected workbook (both OLE2 containers), a PDF, a web page saved as
   "Excel", text. Anything that is not what its name promises is refused with the fix.
3. **CSV**: rows, columns and cells are counted before pandas parses the text; cells longer than
   Excel allows (32 767 characters) are refused.
4. **XLSX**: a pre-scan reads the zip's directory and streams each worksheet's XML with regular
   expressions (no XML parser, nothing expanded) before calamine reads the values. It refuses zip
   bombs (unpacked size, compression ratio), XML with a ``<!DOCTYPE>`` (entity expansion, "billion
   laughs"), a shared-string table claiming more strings than it holds, and a used range larger
   than the cell limit (a stray value at XFD1048576 would make calamine allocate the whole grid).
   It also records, per sheet, what calamine does not tell: formula cells without a saved value,
   error values (#DIV/0!) and NaN/inf numbers, merged cells, hidden and filtered rows, formulas
   that refer to other workbooks, and whether the saved formula results may be stale.

The limits can be raised (or lowered) with environment variables, e.g. ``XL_KPI_MAX_PLAN_MB=80``;
see :data:`LIMIT_ENV` and docs/plan.md ("What xl_kpi refuses to read").
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import unescape

import pandas as pd
from openpyxl.utils.cell import column_index_from_string, get_column_letter

from xl_kpi.engine.errors import KpiError
from xl_kpi.inputs.inputbytes import ChangedWhileReading, read_input

MB = 1024 * 1024

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
OTHER_WORKBOOK_SUFFIXES = (".xls", ".xlsb", ".ods")
WORKBOOK_SUFFIXES = (*XLSX_SUFFIXES, *OTHER_WORKBOOK_SUFFIXES)
"""Suffixes recognised as workbooks; only .xlsx and .xlsm are read, the others are refused with a fix."""


@dataclass(frozen=True)
class Limits:
    """What one input file may hold; a file beyond any limit is refused before it is parsed."""

    plan_bytes: int = 50 * MB
    """Size of the plan workbook on disk."""
    data_bytes: int = 200 * MB
    """Size of one data file (CSV or XLSX) on disk."""
    unzipped_bytes: int = 500 * MB
    """Total unpacked size of the parts of one .xlsx."""
    zip_ratio: float = 200.0
    """Highest compression ratio of one part larger than 1 MB (ordinary sheets: 10–30)."""
    zip_members: int = 10_000
    """Parts in one .xlsx."""
    cells: int = 5_000_000
    """Rows × columns of the used ranges of one workbook's sheets, or of one CSV file."""
    rows: int = 1_048_576
    """Rows of one sheet or CSV file (Excel's own limit)."""
    columns: int = 16_384
    """Columns of one sheet or CSV file (Excel's own limit)."""
    cell_chars: int = 32_767
    """Characters in one cell (Excel's own limit)."""


LIMIT_ENV: dict[str, tuple[str, int]] = {
    "plan_bytes": ("XL_KPI_MAX_PLAN_MB", MB),
    "data_bytes": ("XL_KPI_MAX_DATA_MB", MB),
    "unzipped_bytes": ("XL_KPI_MAX_UNZIPPED_MB", MB),
    "zip_ratio": ("XL_KPI_MAX_ZIP_RATIO", 1),
    "zip_members": ("XL_KPI_MAX_ZIP_PARTS", 1),
    "cells": ("XL_KPI_MAX_CELLS", 1),
    "rows": ("XL_KPI_MAX_ROWS", 1),
    "columns": ("XL_KPI_MAX_COLUMNS", 1),
    "cell_chars": ("XL_KPI_MAX_CELL_CHARS", 1),
}
"""Environment variable (and its unit in bytes) that overrides each limit."""


class FileReadError(KpiError):
    """A file cannot be read: ``reason`` says why, ``fix`` what to do; ``where`` may name sheet, row, column."""

    def __init__(self, file: str, reason: str | None = None, fix: str = "", **where: Any) -> None:
        if reason is None:  # FileReadError("deals.csv: cannot …"), the older one-argument form
            file, _, reason = file.partition(": ") if ": " in file else ("", "", file)
        self.file = file
        self.reason = reason
        self.fix = fix
        self.where = {k: v for k, v in where.items() if v is not None}
        super().__init__(f"{file}: {reason}" if file else reason)


def limits() -> Limits:
    """The limits in force: the defaults of :class:`Limits`, each overridden by its variable in LIMIT_ENV."""
    changes: dict[str, Any] = {}
    for f in fields(Limits):
        var, unit = LIMIT_ENV[f.name]
        text = os.environ.get(var, "").strip()
        if not text:
            continue
        try:
            value = float(text.replace(",", "."))
        except ValueError:
            value = -1.0
        if not value > 0:
            raise FileReadError("", f"the environment variable {var}={text!r} is not a positive number",
                                f"set {var} to a number ({'megabytes' if unit == MB else 'a count'}) or unset it")
        changes[f.name] = value if f.type == "float" else int(value * unit)
    return replace(Limits(), **changes) if changes else Limits()


def _mb(n: float) -> str:
    """A size for people: '350 bytes', '12 KB', '100.0 MB'."""
    if n < 1024:
        return f"{int(n)} bytes"
    if n < MB:
        return f"{n / 1024:,.0f} KB".replace(",", " ")
    return f"{n / MB:,.1f} MB".replace(",", " ")


def _count(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def _raise_limit(name: str, value: str) -> str:
    return f"if the file is right, raise the limit: set the environment variable {LIMIT_ENV[name][0]}={value}"


# ------------------------------------------------------------------------------------- sniffing

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HTML_START = (b"<!doctype html", b"<html", b"<table", b"<head", b"<body", b"<meta", b"<style", b"<div")


def sniff(head: bytes) -> str:
    """What the first bytes of a file say it is.

    One of ``empty``, ``zip``, ``cfb`` (OLE2: an old .xls, .doc, or an encrypted Office file),
    ``pdf``, ``html``, ``xml``, ``binary``, ``text``.

    >>> sniff(b""), sniff(b"PK\\x03\\x04..."), sniff(b"employee_id;fact\\r\\n"), sniff(b"  <HTML><body>")
    ('empty', 'zip', 'text', 'html')
    """
    if not head.strip(b" \t\r\n\x00"):
        return "empty"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "zip"
    if head.startswith(CFB_MAGIC):
        return "cfb"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "text"
    text = head.removeprefix(codecs.BOM_UTF8).lstrip().lower()
    if text.startswith(_HTML_START):
        return "html"
    if text.startswith(b"<?xml"):
        return "html" if b"<html" in text[:2048] else "xml"
    if b"\x00" in head[:8192]:
        return "binary"
    return "text"


def zip_kind(names: set[str]) -> str:
    """What a zip archive holds: ``xlsx``, ``xlsb``, ``ods``, ``docx``, ``pptx`` or ``zip``."""
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "content.xml" in names and "mimetype" in names:
        return "ods"
    if any(n.startswith("word/") for n in names):
        return "docx"
    if any(n.startswith("ppt/") for n in names):
        return "pptx"
    return "zip"


def cfb_kind(path: Path) -> str:
    """What an OLE2 container holds: ``encrypted`` (a password-protected .xlsx), ``xls``, ``doc``, ``ppt``, ``ole``."""
    try:
        import olefile  # installed with msoffcrypto-tool

        with olefile.OleFileIO(str(path)) as ole:
            names = {"/".join(p).casefold() for p in ole.listdir(streams=True, storages=True)}
    except Exception:  # a damaged container: classify by the names in the raw bytes
        data = path.read_bytes()
        names = {n.casefold() for n in ("EncryptionInfo", "Workbook", "Book", "WordDocument", "PowerPoint Document")
                 if n.encode("utf-16-le") in data}
    if "encryptioninfo" in names or "encryptedpackage" in names:
        return "encrypted"
    if "workbook" in names or "book" in names:
        return "xls"
    if "worddocument" in names:
        return "doc"
    if "powerpoint document" in names:
        return "ppt"
    return "ole"


_NOT_A_SPREADSHEET = "give the CSV or Excel (.xlsx) file itself"
_SAVE_AS_XLSX = "open it in Excel and save it as an Excel Workbook (.xlsx): File → Save As → Excel Workbook"
_PASSWORD_FIX = ("remove the password: open the file in Excel, File → Info → Protect Workbook → Encrypt with "
                 "Password, clear the password, save; then run again")


def _refuse(name: str, kind: str, expected: str, path: Path, role: str = "data file") -> FileReadError:
    """The error for a file whose content is not what ``expected`` ('csv' or 'xlsx') needs."""
    if role == "plan workbook" and kind in ("text", "html", "xml", "pdf", "binary"):
        what = {"text": "a text (CSV) file", "html": "a web page (HTML)", "xml": "an XML file",
                "pdf": "a PDF document", "binary": "not a spreadsheet"}[kind]
        return FileReadError(name, f"the plan must be an Excel workbook (.xlsx) with the sheets Employees, KPIs and "
                             f"Plan; this is {what}", "give the plan workbook (.xlsx) with --plan; data files go "
                             "after --data")
    if kind == "empty":
        return FileReadError(name, "the file is empty (0 bytes, or only blank space)",
                             "export or save the file again; a download or copy that did not finish leaves it empty")
    if kind == "cfb":
        what = cfb_kind(path)
        if what == "encrypted":
            return FileReadError(name, "the workbook is protected with a password (encrypted), so it cannot be read",
                                 _PASSWORD_FIX)
        if what == "xls":
            return FileReadError(name, "this is an old Excel 97–2003 workbook (.xls); xl_kpi reads .xlsx and .csv",
                                 _SAVE_AS_XLSX)
        label = {"doc": "a Word document (.doc)", "ppt": "a PowerPoint file (.ppt)"}.get(what, "an OLE2 file")
        return FileReadError(name, f"this is {label}, not a spreadsheet", _NOT_A_SPREADSHEET)
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as z:
                inner = zip_kind(set(z.namelist()))
        except Exception:  # a damaged archive: say what it is not
            inner = "zip"
        if inner == "xlsx" and expected == "csv":
            return FileReadError(name, f"this is an Excel workbook (.xlsx), but its name ends in {path.suffix}",
                                 "rename it to .xlsx")
        labels = {"xlsb": "an Excel binary workbook (.xlsb)", "ods": "an OpenDocument spreadsheet (.ods)",
                  "docx": "a Word document (.docx)", "pptx": "a PowerPoint file (.pptx)", "zip": "a zip archive",
                  "xlsx": "an Excel workbook"}
        fix = _SAVE_AS_XLSX if inner in ("xlsb", "ods") else (
            "unpack it and give the files inside" if inner == "zip" else _NOT_A_SPREADSHEET)
        return FileReadError(name, f"this is {labels[inner]}, not {'a CSV file' if expected == 'csv' else 'an .xlsx'}",
                             fix)
    if kind == "html":
        return FileReadError(name, "this is a web page (HTML) with a spreadsheet's name, as some systems "
                             "export 'Excel' files", "open it in Excel and save it as an Excel Workbook (.xlsx), "
                             "or export the data as CSV")
    if kind == "xml":
        return FileReadError(name, "this is an XML file (perhaps an Excel 2003 XML spreadsheet), not an .xlsx or CSV",
                             _SAVE_AS_XLSX)
    if kind == "pdf":
        return FileReadError(name, "this is a PDF document, not a spreadsheet", _NOT_A_SPREADSHEET)
    if kind == "text":
        return FileReadError(name, f"this is a text file (CSV?), but its name ends in {path.suffix}",
                             "rename it to .csv if it is a CSV export, or give the .xlsx workbook")
    return FileReadError(name, "this is a binary file, not a CSV text file or an Excel workbook", _NOT_A_SPREADSHEET)


def _read_input(path: Path) -> bytes:
    """The file's bytes, read once and hashed (:mod:`xl_kpi.inputs.inputbytes`); a :class:`FileReadError` if not."""
    try:
        return read_input(path)
    except ChangedWhileReading:
        raise FileReadError(path.name, "the file changed while xl-kpi was reading it",
                            "wait until it is saved (or copied) completely, then run again") from None
    except FileNotFoundError:
        raise FileReadError(path.name, "file not found", "check the path") from None
    except OSError as e:
        raise FileReadError(path.name, f"cannot read the file ({e.strerror or e})", "check the file") from None


def check_file(path: Path, max_bytes: int, role: str) -> tuple[int, str]:
    """(size, kind) of a file, refused if missing or larger than ``max_bytes``; ``role`` names it in messages."""
    name = path.name
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise FileReadError(name, "this is a folder, not a file" if path.is_dir() else
                                "this is not a regular file (a device or a pipe?)", "give the path of a file")
        if size > max_bytes:
            which = "plan_bytes" if role == "plan workbook" else "data_bytes"
            raise FileReadError(
                name, f"the file is {_mb(size)}, more than the {_mb(max_bytes)} a {role} may have; it was not opened",
                "check that this is the right file" + (" (a plan workbook is usually well under 1 MB)"
                                                        if role == "plan workbook" else "") + "; "
                + _raise_limit(which, str(int(size // MB + 1))))
        with open(path, "rb") as f:
            head = f.read(8192)
    except FileNotFoundError:
        raise FileReadError(name, "file not found", "check the path") from None
    except PermissionError:
        raise FileReadError(name, "permission denied: the file cannot be opened",
                            "close it in Excel if it is open there, or check the file's permissions") from None
    except OSError as e:
        raise FileReadError(name, f"cannot read the file ({e.strerror or e})", "check the file") from None
    return size, sniff(head)


# ------------------------------------------------------------------------------------------ CSV


def detect_encoding(data: bytes) -> str:
    """'utf-8-sig' (BOM), 'utf-16' (BOM), 'utf-8' if it decodes, else 'cp1251' (Russian Windows Excel)."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8"


def detect_separator(text: str) -> str:
    """The separator used in the first non-empty line: ';', tab or ',' (the most frequent, outside quotes)."""
    for line in text.splitlines():
        if line.strip():
            counts = {sep: _count_outside_quotes(line, sep) for sep in (";", "\t", ",")}
            best = max(counts, key=lambda s: counts[s])
            return best if counts[best] else ","
    return ","


def _count_outside_quotes(line: str, sep: str) -> int:
    try:
        return len(next(csv.reader([line], delimiter=sep))) - 1
    except (csv.Error, StopIteration):
        return line.count(sep)


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_EOF_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


def read_csv_grid(path: str | Path, *, max_bytes: int | None = None) -> pd.DataFrame:
    """A CSV file as a grid of text cells (row 0 = line 1), guessing encoding and separator.

    Refuses (:class:`FileReadError`) a file that is too large, is not text, or holds more rows,
    columns, cells or characters in a cell than :func:`limits` allow. An empty file gives an
    empty grid.
    """
    path = Path(path)
    lim = limits()
    name = path.name
    _, kind = check_file(path, max_bytes or lim.data_bytes, "data file")
    if kind == "empty":
        return pd.DataFrame()
    if kind != "text":
        raise _refuse(name, kind, "csv", path)
    data = _read_input(path)
    encoding = detect_encoding(data)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise FileReadError(name, "the text is neither UTF-8 nor cp1251",
                            "save it as CSV UTF-8 (Excel: File → Save As → CSV UTF-8)") from None
    del data
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise FileReadError(name, "the file holds NUL characters: it is not a text (CSV) file", _NOT_A_SPREADSHEET)
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    if lines > lim.rows:
        raise FileReadError(name, f"the file has {_count(lines)} lines, more than the {_count(lim.rows)} rows "
                            "a table may have", "split the export (e.g. by month), or "
                            + _raise_limit("rows", str(lines)))
    sep = detect_separator(text)
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    width = _count_outside_quotes(first, sep) + 1
    if width > lim.columns:
        raise FileReadError(name, f"the header line has {_count(width)} columns, more than the "
                            f"{_count(lim.columns)} a table may have", "check the separator and the export, or "
                            + _raise_limit("columns", str(width)), row=1)
    if lines * width > lim.cells:
        raise FileReadError(name, f"the file has {_count(lines)} lines × {_count(width)} columns = "
                            f"{_count(lines * width)} cells, more than the {_count(lim.cells)} one file may have",
                            "export only the rows and columns needed (e.g. one month), or "
                            + _raise_limit("cells", str(lines * width)))
    try:
        grid = pd.read_csv(
            io.StringIO(text), sep=sep, header=None, dtype=str, keep_default_na=False, na_values=[""],
            skip_blank_lines=False, engine="c",
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except pd.errors.ParserError as e:
        raise _csv_parser_error(name, sep, str(e)) from None
    _check_line_widths(text, sep, name)
    _check_cell_text(grid, name, None, lim)
    return grid


def _check_line_widths(text: str, sep: str, name: str) -> None:
    """Refuse a CSV line with fewer values than the first line: pandas pads it with empty cells, so a
    missing amount would silently drop out of a sum. Blank lines are allowed (they are empty rows)."""
    import csv

    old = csv.field_size_limit()
    try:
        csv.field_size_limit(max(old, len(text) + 1))
        width = None
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=False)
        start = 1
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                start = reader.line_num + 1
                continue
            if width is None:
                width = len(record)
            elif len(record) < width:
                raise FileReadError(
                    name, f"line {start} has {len(record)} values but the first line has {width} "
                    f"(separator {sep!r})", f"add the missing values (an empty value is two {sep!r} in a row), "
                    "or re-export the file", row=start)
            start = reader.line_num + 1
    except csv.Error:  # pandas has read it; a quoting corner the csv module sees otherwise is not our concern
        return
    finally:
        csv.field_size_limit(old)


def _csv_parser_error(name: str, sep: str, message: str) -> FileReadError:
    m = _FIELDS.search(message)
    if m:
        want, line, got = (int(x) for x in m.groups())
        return FileReadError(
            name, f"line {line} has {got} values but the first line has {want} (separator {sep!r})",
            f"a {sep!r} inside a value? put such values in double quotes, or remove the extra {sep!r}", row=line)
    m = _EOF_QUOTE.search(message)
    if m:
        line = int(m.group(1)) + 1
        return FileReadError(name, f'a double quote (") opened on line {line} is never closed',
                             'close the quote, or double a quote that belongs to the text ("")', row=line)
    return FileReadError(name, f"cannot read it as CSV with separator {sep!r}: {message.strip()}",
                         "save it from Excel as CSV UTF-8 and try again")


def _check_cell_text(grid: pd.DataFrame, name: str, sheet: str | None, lim: Limits) -> None:
    """Refuse a grid with a text cell longer than ``lim.cell_chars`` (the first such cell is named)."""
    for j, c in enumerate(grid.columns):
        col = grid[c]
        if not (pd.api.types.is_object_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype)):
            continue
        try:
            lengths = col.str.len().fillna(0)
        except (AttributeError, TypeError):  # numbers or dates mixed with text
            lengths = col.map(lambda v: len(v) if isinstance(v, str) else 0)
        if len(lengths) and int(lengths.max()) > lim.cell_chars:
            i = int(lengths.to_numpy().argmax())
            raise FileReadError(
                name, f"cell {get_column_letter(j + 1)}{i + 1} holds {_count(int(lengths.iloc[i]))} characters, more "
                f"than the {_count(lim.cell_chars)} a spreadsheet cell can hold",
                "check the file (in a CSV, a quote left open swallows the rest of the file into one cell); "
                + _raise_limit("cell_chars", str(int(lengths.iloc[i]))),
                sheet=sheet, row=i + 1, column=get_column_letter(j + 1))


# ----------------------------------------------------------------------------------------- XLSX


@dataclass
class SheetInfo:
    """What the pre-scan of one worksheet found; cells as (row, column), both 1-based as in Excel."""

    name: str
    rows: int = 0
    """Last row holding a cell with content (calamine's grid has this many rows)."""
    columns: int = 0
    """Last column holding a cell with content."""
    filled: int = 0
    """Cells with content."""
    far_cells: list[str] = field(default_factory=list)
    """The filled cells that reach the last row and the last column (e.g. ['XFD1048576'])."""
    hidden_rows: list[int] = field(default_factory=list)
    filtered: bool = False
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    """Merged ranges as (first row, first column, last row, last column)."""
    no_value: dict[tuple[int, int], str] = field(default_factory=dict)
    """Formula cells without a saved value → the formula."""
    bad_values: dict[tuple[int, int], str] = field(default_factory=dict)
    """Cells holding an error value (#DIV/0!) or a NaN/inf number → what they hold."""
    external: dict[tuple[int, int], str] = field(default_factory=dict)
    """Formulas that refer to another workbook (their saved value is used) → the formula."""
    formulas: int = 0
    """Formula cells with a saved value."""
    stale: str = ""
    """Why the saved formula results may be out of date ('' when there is no reason to think so)."""
    state: str = "visible"
    """The sheet's visibility in xl/workbook.xml: visible, hidden or veryHidden (unhidden only in VBA)."""

    @property
    def corner(self) -> str:
        """The bottom-right corner of the used range ('XFD1048576'); '' for an empty sheet."""
        return _cell_name(self.rows, self.columns) if self.rows and self.columns else ""


@dataclass
class Sheet:
    """One worksheet as read: the grid (row 0 = Excel row 1, column 0 = A) and what the pre-scan found."""

    name: str
    grid: pd.DataFrame
    info: SheetInfo | None = None


def read_workbook(path: str | Path, *, max_bytes: int | None = None, role: str = "data file") -> list[Sheet]:
    """Every worksheet of an .xlsx/.xlsm, pre-scanned (see the module doc) and then read with calamine.

    Raises :class:`FileReadError` for a file that is too large, is not an .xlsx, is damaged,
    encrypted, or beyond a limit. ``role`` names the file in messages ("plan workbook").
    """
    path = Path(path)
    lim = limits()
    name = path.name
    _, kind = check_file(path, max_bytes or (lim.plan_bytes if role == "plan workbook" else lim.data_bytes), role)
    if kind != "zip":
        raise _refuse(name, kind, "xlsx", path, role)
    suffix = path.suffix.casefold()
    data = _read_input(path)  # read once: scanned, parsed and hashed are the same bytes
    infos = scan_xlsx(path, lim, data=data)
    if suffix not in XLSX_SUFFIXES:
        raise FileReadError(name, f"this is an Excel workbook (.xlsx), but its name ends in {path.suffix or '(none)'}",
                            "rename it to .xlsx")
    try:
        # keep_default_na=False: text such as N/A, NULL, None, #N/A stays text (the number reader then names
        # the cell), as in a CSV; only a truly empty cell is empty.
        grids = pd.read_excel(io.BytesIO(data), sheet_name=None, header=None, engine="calamine",
                              keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise FileReadError(name, "file not found", "check the path") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # calamine raises its own types for damaged parts (a Rust panic is a BaseException)
        raise FileReadError(name, f"cannot read it as a workbook: the file is damaged ({type(e).__name__}: "
                            f"{str(e)[:200]})", "open it in Excel and save it again, or export it anew") from None
    sheets = []
    for sheet_name, grid in grids.items():
        key = str(sheet_name)
        _check_cell_text(grid, name, key, lim)
        sheets.append(Sheet(key, grid, infos.get(key)))
    return sheets


def read_workbook_grids(path: str | Path) -> dict[str, pd.DataFrame]:
    """Every sheet of a workbook as a grid (row 0 = Excel row 1, column 0 = A); see :func:`read_workbook`."""
    return {s.name: s.grid for s in read_workbook(path)}


_DAMAGED_FIX = ("the file is damaged or incomplete (cut short while copying, downloading or e-mailing?): "
                "download or save it again from Excel")
_BOMB_FIX = "this is not an ordinary Excel file; save the data again from Excel, or ask who sent it"
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
        raise FileReadError(name, f"cannot read it as a workbook: it is not a complete zip archive ({e})",
                            _DAMAGED_FIX) from None
    zf.filename = str(path)  # named by its path also when read from bytes (messages say what it is)
    try:
        with zf:
            return _scan_zip(zf, name, lim)
    except FileReadError:
        raise
    except Exception as e:  # a damaged part: bad CRC, bad deflate data, an unsupported method, a bad header…
        raise FileReadError(name, f"cannot read it as a workbook: a part of it is damaged ({type(e).__name__}: "
                            f"{str(e)[:200]})", _DAMAGED_FIX) from None


def _scan_zip(zf: zipfile.ZipFile, name: str, lim: Limits) -> dict[str, SheetInfo]:
    infos = zf.infolist()
    if len(infos) > lim.zip_members:
        raise FileReadError(name, f"the workbook has {_count(len(infos))} parts, more than {_count(lim.zip_members)}",
                            _BOMB_FIX)
    total = sum(i.file_size for i in infos)
    if total > lim.unzipped_bytes:
        raise FileReadError(name, f"the workbook would unpack to {_mb(total)}, more than the "
                            f"{_mb(lim.unzipped_bytes)} allowed", "export fewer rows (e.g. one month), or "
                            + _raise_limit("unzipped_bytes", str(int(total // MB + 1))))
    for i in infos:
        if i.file_size > MB and i.file_size > lim.zip_ratio * max(i.compress_size, 1):
            ratio = i.file_size / max(i.compress_size, 1)
            raise FileReadError(name, f"its part {i.filename} unpacks {_count(round(ratio))} times larger "
                                f"({_mb(i.file_size)} from {_mb(i.compress_size)}); ordinary sheets compress "
                                "10–30 times: a zip bomb?", _BOMB_FIX)
        if i.flag_bits & 0x1:
            raise FileReadError(name, f"its part {i.filename} is encrypted", _PASSWORD_FIX)
    names = {i.filename for i in infos}
    kind = zip_kind(names)
    if kind != "xlsx":
        raise _refuse(name, "zip", "xlsx", Path(zf.filename or name))
    for i in infos:
        if i.filename.casefold().endswith((".xml", ".rels", ".vml")):
            head = _head(zf, i, 65536)
            if _DTD.search(head):
                raise FileReadError(
                    name, f"its part {i.filename} declares a document type or entities (<!DOCTYPE …>), which Excel "
                    "never writes; such XML can expand into gigabytes (an 'XML bomb')", _BOMB_FIX)
    wb_xml = _read_small(zf, "xl/workbook.xml", name)
    rels = _relationships(zf, "xl/_rels/workbook.xml.rels", name)
    stale = ""
    calc = re.search(rb"<(?:[\w.-]+:)?calcPr\b([^>]*)>", wb_xml)
    if calc and re.search(rb'\bfullCalcOnLoad="(?:1|true)"', calc.group(1)):
        stale = "the workbook asks to be recalculated when opened (it was saved by a program that does not calculate)"
    elif calc and re.search(rb'\bcalcMode="manual"', calc.group(1)):
        stale = "the workbook is set to manual calculation"
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
            raise FileReadError(name, f"cannot read it as a workbook: the part {target} of sheet {sheet_name} is "
                                "missing", _DAMAGED_FIX)
        info = _scan_sheet(zf, zf.getinfo(target), sheet_name, name, lim)
        info.stale = stale if info.formulas else ""
        info.state = _attr(attrs, b"state") or "visible"
        out[sheet_name] = info
        size = info.rows * info.columns
        reach = f"its used range reaches {info.corner} ({_count(info.rows)} rows × {_count(info.columns)} columns)"
        stray = " and ".join(info.far_cells)
        if info.rows > lim.rows or info.columns > lim.columns:
            raise FileReadError(name, f"{reach}, more than the {_count(lim.rows)} rows or {_count(lim.columns)} "
                                "columns a sheet may have", "delete the rows and columns outside the table, or "
                                + _raise_limit("rows" if info.rows > lim.rows else "columns",
                                               str(max(info.rows, info.columns))), sheet=sheet_name)
        if size > 1_000_000 and size > 100 * max(info.filled, 1):
            raise FileReadError(
                name, f"{reach}, but only {_count(info.filled)} cells are filled: a stray value far below or to the "
                f"right of the table?", f"delete {stray} (or the rows and columns between the table and "
                f"{'them' if ' and ' in stray else 'it'}), save, and run again", sheet=sheet_name)
        area += size
        if area > lim.cells:
            raise FileReadError(
                name, f"{reach}; with the sheets before it the workbook holds {_count(area)} cells, more than the "
                f"{_count(lim.cells)} one file may have", "export only the rows and columns needed, or "
                + _raise_limit("cells", str(area)), sheet=sheet_name)
    return out


def _head(zf: zipfile.ZipFile, info: zipfile.ZipInfo, n: int) -> bytes:
    with zf.open(info) as f:
        return f.read(n)


def _read_small(zf: zipfile.ZipFile, member: str, name: str, limit: int = 32 * MB) -> bytes:
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise FileReadError(name, f"cannot read it as a workbook: the part {member} is missing", _DAMAGED_FIX) from None
    if info.file_size > limit:
        raise FileReadError(name, f"its part {member} is {_mb(info.file_size)}, far more than a workbook needs",
                            _BOMB_FIX)
    with zf.open(info) as f:
        return f.read(limit + 1)


def _attr(attrs: bytes, key: bytes) -> str | None:
    m = re.search(rb"(?:^|\s)" + key + rb'="([^"]*)"', attrs)
    return unescape(m.group(1).decode("utf-8", "replace"), {"&quot;": '"', "&apos;": "'"}) if m else None


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
        raise FileReadError(name, f"its shared-string table claims {_count(int(m.group(1)))} strings but is only "
                            f"{_mb(info.file_size)}", _BOMB_FIX)


_P = rb"(?:[A-Za-z_][\w.-]*:)?"
_CELL = re.compile(rb"<" + _P + rb'c(?=[\s>])(?: r="([A-Z]{1,3})([0-9]{1,7})")?[^>]*(?<!/)>')
_ROW_END = re.compile(rb"</" + _P + rb"row>")
_ROW = re.compile(rb"<" + _P + rb"row(?=[\s>/])([^>]*?)(/?)>")
_ROW_BLOCK = re.compile(rb"<" + _P + rb"row(?=[\s>/])([^>]*?)(?:/>|>(.*?)</" + _P + rb"row>)", re.S)
_CELL_TAG = re.compile(rb"<" + _P + rb"c(?=[\s>/])([^>]*?)(/?)>")
_REF = re.compile(rb'\br="([A-Z]{1,3})([0-9]{1,7})"')
_ROW_R = re.compile(rb'\br="([0-9]{1,7})"')
_ANY_R = re.compile(rb'\br="([^"]*)"')
_VALID_REF = re.compile(rb"[A-Z]{1,3}[0-9]{1,7}")
_VALID_ROW = re.compile(rb"[0-9]{1,7}")
_FORMULA = re.compile(
    rb"<" + _P + rb"c(?=[\s>])([^>]*)>\s*<" + _P + rb"f(?=[\s>/])([^>]*?)(?:/>|>([^<]*)</" + _P + rb"f>)"
    rb"\s*(?:<" + _P + rb"v\s*/>|<" + _P + rb"v>([^<]*)</" + _P + rb"v>)?")
_HAS_FORMULA = re.compile(rb"<" + _P + rb"f[\s>/]")
_ERROR_CELL = re.compile(
    rb"<" + _P + rb'c(?=[\s>])([^>]*\bt="e"[^>]*)>(?:\s*<' + _P + rb"f[^>]*?(?:/>|>[^<]*</" + _P + rb"f>))?"
    rb"\s*<" + _P + rb"v>([^<]*)</" + _P + rb"v>")
_NONFINITE = re.compile(
    rb"<" + _P + rb"c(?=[\s>])([^>]*)>(?:\s*<" + _P + rb"f[^>]*?(?:/>|>[^<]*</" + _P + rb"f>))?"
    rb"\s*<" + _P + rb"v>\s*([+-]?(?:nan|inf(?:inity)?))\s*</" + _P + rb"v>", re.I)
_NONFINITE_HINT = re.compile(rb"<v>[+-]?(?:[nN][aA][nN]|[iI][nN][fF])")
_NONFINITE_HINT_NS = re.compile(rb":v>[+-]?(?:[nN][aA][nN]|[iI][nN][fF])")
_MERGE = re.compile(rb"<" + _P + rb'mergeCell\b[^>]*\bref="([A-Z]{1,3})([0-9]{1,7})(?::([A-Z]{1,3})([0-9]{1,7}))?"')
_FILTER = re.compile(rb"<" + _P + rb"autoFilter\b")
_EXTERNAL = re.compile(r"\[\d+\]")
CHUNK = 8 * MB


def _col_number(letters: bytes) -> int:
    """b'AA' → 27, as the scanner's regular expressions give the letters (openpyxl's conversion)."""
    return column_index_from_string(letters.decode("ascii"))


def _cell_name(row: int, col: int) -> str:
    """'B12' for (12, 2); past the last column letters (ZZZ, a hostile file) Excel's other form, 'R1C20000'."""
    return f"{get_column_letter(col)}{row}" if col <= 18278 else f"R{row}C{col}"


def _chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, lim: Limits) -> Iterator[bytes]:
    """A worksheet's XML in pieces that end after a ``</row>`` (no cell is cut in two)."""
    read = 0
    carry = b""
    with zf.open(info) as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                if carry:
                    yield carry
                return
            read += len(block)
            if read > lim.unzipped_bytes or read > info.file_size:
                raise FileReadError(name, f"its part {info.filename} unpacks to more than it declares "
                                    f"({_mb(info.file_size)})", _BOMB_FIX)
            buf = carry + block
            cut = None
            for m in _ROW_END.finditer(buf, max(0, len(carry) - 64)):
                cut = m.end()
            if cut is None:
                carry = buf
                continue
            yield buf[:cut]
            carry = buf[cut:]


def _scan_sheet(zf: zipfile.ZipFile, info: zipfile.ZipInfo, sheet: str, name: str, lim: Limits) -> SheetInfo:
    out = SheetInfo(sheet)
    far_row = far_col = ""
    implicit_row = 0
    for chunk in _chunks(zf, info, name, lim):
        cells = _CELL.findall(chunk)
        if cells and (b"", b"") in cells:  # a cell without r="A1" first: locate every cell the slow way
            try:
                implicit_row, located = _cells_slowly(chunk, implicit_row)
            except _BadReference as e:
                raise FileReadError(name, f'a cell or row has the reference r="{e}", which is not an address in a '
                                    "sheet (A1 to XFD1048576)", _DAMAGED_FIX, sheet=sheet) from None
            for r, c in located:
                if r > out.rows:
                    out.rows, far_row = r, _cell_name(r, c)
                if c > out.columns:
                    out.columns, far_col = c, _cell_name(r, c)
            out.filled += len(located)
        elif cells:
            rows = [c[1] for c in cells]
            longest = len(max(rows, key=len))  # equally long digit strings compare as numbers
            top = max(rows) if len(min(rows, key=len)) == longest else max(r for r in rows if len(r) == longest)
            if int(top) > out.rows:
                out.rows = int(top)
                far_row = (cells[rows.index(top)][0] + top).decode()
            letters = {c[0] for c in cells}
            right = max(letters, key=lambda s: (len(s), s))
            if _col_number(right) > out.columns:
                out.columns = _col_number(right)
                far_col = next((c[0] + c[1]).decode() for c in cells if c[0] == right)
            out.filled += len(cells)
            implicit_row = int(cells[-1][1])
        if b'hidden="' in chunk:
            for m in _ROW.finditer(chunk):
                attrs = m.group(1)
                if re.search(rb'\bhidden="(?:1|true)"', attrs):
                    r = _ROW_R.search(attrs)
                    if r:
                        out.hidden_rows.append(int(r.group(1)))
        if (b"<f" in chunk or b":f" in chunk) and _HAS_FORMULA.search(chunk):
            _formulas(chunk, out)
        if b't="e"' in chunk:
            for m in _ERROR_CELL.finditer(chunk):
                ref = _REF.search(m.group(1))
                if ref:
                    out.bad_values[(int(ref.group(2)), _col_number(ref.group(1)))] = m.group(2).decode("utf-8",
                                                                                                      "replace")
        if _NONFINITE_HINT.search(chunk) or (b":v>" in chunk and _NONFINITE_HINT_NS.search(chunk)):
            for m in _NONFINITE.finditer(chunk):
                t = re.search(rb'\bt="([^"]*)"', m.group(1))
                ref = _REF.search(m.group(1))
                if ref and (t is None or t.group(1) == b"n"):
                    out.bad_values[(int(ref.group(2)), _col_number(ref.group(1)))] = m.group(2).decode()
        if b"mergeCell" in chunk:
            for m in _MERGE.finditer(chunk):
                c1, r1 = m.group(1), int(m.group(2))
                c2, r2 = m.group(3) or m.group(1), int(m.group(4) or m.group(2))
                out.merged.append((r1, _col_number(c1), r2, _col_number(c2)))
        if not out.filtered and b"autoFilter" in chunk and _FILTER.search(chunk):
            out.filtered = True
    # name the cell that stretches each dimension far beyond what the filled cells need
    deep = out.rows > 10 * max(out.filled / max(out.columns, 1), 1)
    wide = out.columns > 10 * max(out.filled / max(out.rows, 1), 1)
    out.far_cells = list(dict.fromkeys(c for c, far in ((far_row, deep), (far_col, wide)) if c and far)) or [
        c for c in (far_row,) if c]
    return out


class _BadReference(ValueError):
    """A cell or row whose r="…" is not an address Excel could write."""


def _cells_slowly(chunk: bytes, row: int) -> tuple[int, list[tuple[int, int]]]:
    """(last row, [(row, column)]) of the non-empty cells of a chunk whose cells may lack r="A1".

    Raises :class:`_BadReference` for an r="…" that is not a valid address (such as A99999999).
    """
    found: list[tuple[int, int]] = []
    for m in _ROW_BLOCK.finditer(chunk):
        r = _ANY_R.search(m.group(1))
        if r and not _VALID_ROW.fullmatch(r.group(1)):
            raise _BadReference(r.group(1).decode("utf-8", "replace")[:40])
        row = int(r.group(1)) if r else row + 1
        col = 0
        for c in _CELL_TAG.finditer(m.group(2) or b""):
            ref = _ANY_R.search(c.group(1))
            if ref and not _VALID_REF.fullmatch(ref.group(1)):
                raise _BadReference(ref.group(1).decode("utf-8", "replace")[:40])
            parts = _REF.search(c.group(1)) if ref else None
            col = _col_number(parts.group(1)) if parts else col + 1
            if not c.group(2):
                found.append((int(parts.group(2)) if parts else row, col))
    return row, found


def _formulas(chunk: bytes, out: SheetInfo) -> None:
    for m in _FORMULA.finditer(chunk):
        attrs, text, value = m.group(1), m.group(3), m.group(4)
        ref = _REF.search(attrs)
        if ref is None:
            continue
        cell = (int(ref.group(2)), _col_number(ref.group(1)))
        formula = "=" + unescape((text or b"").decode("utf-8", "replace"), {"&quot;": '"', "&apos;": "'"})
        kind = re.search(rb'\bt="([^"]*)"', attrs)
        cached = value is not None and (value.strip() != b"" or (kind is not None and kind.group(1) == b"str"))
        if not cached:
            out.no_value[cell] = formula if text else "(a shared formula)"
        else:
            out.formulas += 1
            if _EXTERNAL.search(formula):
                out.external[cell] = formula
