"""What a file really is, whatever its name: :func:`check_file` (there, a regular file, not too large),
:func:`sniff` (its first bytes), :func:`zip_kind`, :func:`cfb_kind`, and the refusal with the fix for a file
that is not what its name promises; ``_read_input``, the one read of its bytes (hashed)."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path

from xl_kpi.i18n import Msg
from xl_kpi.inputs.inputbytes import ChangedWhileReading, read_input
from xl_kpi.inputs.readers.limits import _PASSWORD_FIX, MB, FileReadError, _mb, _raise_limit

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
OTHER_WORKBOOK_SUFFIXES = (".xls", ".xlsb", ".ods")
WORKBOOK_SUFFIXES = (*XLSX_SUFFIXES, *OTHER_WORKBOOK_SUFFIXES)
"""Suffixes recognised as workbooks; only .xlsx and .xlsm are read, the others are refused with a fix."""



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


_NOT_A_SPREADSHEET = Msg("give the CSV or Excel (.xlsx) file itself")
_SAVE_AS_XLSX = Msg("open it in Excel and save it as an Excel Workbook (.xlsx): File → Save As → Excel Workbook")
_ROLES = {"data file": Msg("a data file"), "card template": Msg("a card template")}
"""How a file's role is named in a message (the plan workbook has its own wording)."""


def _refuse(name: str, kind: str, expected: str, path: Path, role: str = "data file") -> FileReadError:
    """The error for a file whose content is not what ``expected`` ('csv' or 'xlsx') needs."""
    if role == "plan workbook" and kind in ("text", "html", "xml", "pdf", "binary"):
        what = {"text": Msg("a text (CSV) file"), "html": Msg("a web page (HTML)"), "xml": Msg("an XML file"),
                "pdf": Msg("a PDF document"), "binary": Msg("not a spreadsheet")}[kind]
        return FileReadError(name, Msg("the plan must be an Excel workbook (.xlsx) with the sheets Employees, KPIs "
                                       "and Plan; this is {what}", what=what),
                             Msg("give the plan workbook (.xlsx) with --plan; data files go after --data"))
    if kind == "empty":
        return FileReadError(name, Msg("the file is empty (0 bytes, or only blank space)"),
                             Msg("export or save the file again; a download or copy that did not finish leaves it "
                                 "empty"))
    if kind == "cfb":
        what = cfb_kind(path)
        if what == "encrypted":
            return FileReadError(name, Msg("the workbook is protected with a password (encrypted), so it cannot "
                                           "be read"), _PASSWORD_FIX)
        if what == "xls":
            return FileReadError(name, Msg("this is an old Excel 97–2003 workbook (.xls); xl_kpi reads .xlsx and "
                                           ".csv"), _SAVE_AS_XLSX)
        label = {"doc": Msg("a Word document (.doc)"), "ppt": Msg("a PowerPoint file (.ppt)")}.get(
            what, Msg("an OLE2 file"))
        return FileReadError(name, Msg("this is {label}, not a spreadsheet", label=label), _NOT_A_SPREADSHEET)
    if kind == "zip":
        try:
            with zipfile.ZipFile(path) as z:
                inner = zip_kind(set(z.namelist()))
        except Exception:  # a damaged archive: say what it is not
            inner = "zip"
        if inner == "xlsx" and expected == "csv":
            return FileReadError(name, Msg("this is an Excel workbook (.xlsx), but its name ends in {suffix}",
                                           suffix=path.suffix), Msg("rename it to .xlsx"))
        labels = {"xlsb": Msg("an Excel binary workbook (.xlsb)"), "ods": Msg("an OpenDocument spreadsheet (.ods)"),
                  "docx": Msg("a Word document (.docx)"), "pptx": Msg("a PowerPoint file (.pptx)"),
                  "zip": Msg("a zip archive"), "xlsx": Msg("an Excel workbook")}
        fix = _SAVE_AS_XLSX if inner in ("xlsb", "ods") else (
            Msg("unpack it and give the files inside") if inner == "zip" else _NOT_A_SPREADSHEET)
        reason = (Msg("this is {label}, not a CSV file", label=labels[inner]) if expected == "csv" else
                  Msg("this is {label}, not an .xlsx", label=labels[inner]))
        return FileReadError(name, reason, fix)
    if kind == "html":
        return FileReadError(name, Msg("this is a web page (HTML) with a spreadsheet's name, as some systems "
                                       "export 'Excel' files"),
                             Msg("open it in Excel and save it as an Excel Workbook (.xlsx), or export the data as "
                                 "CSV"))
    if kind == "xml":
        return FileReadError(name, Msg("this is an XML file (perhaps an Excel 2003 XML spreadsheet), not an .xlsx "
                                       "or CSV"), _SAVE_AS_XLSX)
    if kind == "pdf":
        return FileReadError(name, Msg("this is a PDF document, not a spreadsheet"), _NOT_A_SPREADSHEET)
    if kind == "text":
        return FileReadError(name, Msg("this is a text file (CSV?), but its name ends in {suffix}",
                                       suffix=path.suffix),
                             Msg("rename it to .csv if it is a CSV export, or give the .xlsx workbook"))
    return FileReadError(name, Msg("this is a binary file, not a CSV text file or an Excel workbook"),
                         _NOT_A_SPREADSHEET)


def _read_input(path: Path) -> bytes:
    """The file's bytes, read once and hashed (:mod:`xl_kpi.inputs.inputbytes`); a :class:`FileReadError` if not."""
    try:
        return read_input(path)
    except ChangedWhileReading:
        raise FileReadError(path.name, Msg("the file changed while xl-kpi was reading it"),
                            Msg("wait until it is saved (or copied) completely, then run again")) from None
    except FileNotFoundError:
        raise FileReadError(path.name, Msg("file not found"), Msg("check the path")) from None
    except OSError as e:
        raise FileReadError(path.name, Msg("cannot read the file ({error})", error=str(e.strerror or e)),
                            Msg("check the file")) from None


def check_file(path: Path, max_bytes: int, role: str) -> tuple[int, str]:
    """(size, kind) of a file, refused if missing or larger than ``max_bytes``; ``role`` names it in messages."""
    name = path.name
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise FileReadError(name, Msg("this is a folder, not a file") if path.is_dir() else
                                Msg("this is not a regular file (a device or a pipe?)"), Msg("give the path of a file"))
        if size > max_bytes:
            plan = role == "plan workbook"
            raise_limit = _raise_limit("plan_bytes" if plan else "data_bytes", str(int(size // MB + 1)))
            raise FileReadError(
                name, Msg("the file is {size}, more than the {limit} a plan workbook may have; it was not opened",
                          size=_mb(size), limit=_mb(max_bytes)) if plan else
                Msg("the file is {size}, more than the {limit} {role} may have; it was not opened", size=_mb(size),
                    limit=_mb(max_bytes), role=_ROLES.get(role, f"a {role}")),
                Msg("check that this is the right file (a plan workbook is usually well under 1 MB); {raise_limit}",
                    raise_limit=raise_limit) if plan else
                Msg("check that this is the right file; {raise_limit}", raise_limit=raise_limit))
        with open(path, "rb") as f:
            head = f.read(8192)
    except FileNotFoundError:
        raise FileReadError(name, Msg("file not found"), Msg("check the path")) from None
    except PermissionError:
        raise FileReadError(name, Msg("permission denied: the file cannot be opened"),
                            Msg("close it in Excel if it is open there, or check the file's permissions")) from None
    except OSError as e:
        raise FileReadError(name, Msg("cannot read the file ({error})", error=str(e.strerror or e)),
                            Msg("check the file")) from None
    return size, sniff(head)
