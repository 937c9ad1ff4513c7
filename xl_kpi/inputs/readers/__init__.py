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

Where things are:

* :mod:`~xl_kpi.inputs.readers.limits`: :class:`Limits`, :data:`LIMIT_ENV`, :func:`limits`, :class:`FileReadError`;
* :mod:`~xl_kpi.inputs.readers.sniff`: what a file is (1, 2): :func:`check_file`, :func:`sniff`, the refusals;
* :mod:`~xl_kpi.inputs.readers.csvfile`: CSV (3): :func:`read_csv_grid`, encoding and separator;
* :mod:`~xl_kpi.inputs.readers.prescan`: the .xlsx pre-scan (4): :func:`scan_xlsx`, zip and workbook checks;
* :mod:`~xl_kpi.inputs.readers.sheetscan`: one worksheet's XML streamed, :class:`SheetInfo`;
* :mod:`~xl_kpi.inputs.readers.workbook`: :func:`read_workbook`, the pre-scan then calamine.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# limits and sniff are light (no pandas) and share their names with functions: imported as they are, so that
# ``readers.limits`` and ``readers.sniff`` stay the functions once the modules are loaded
from xl_kpi.inputs.readers.limits import LIMIT_ENV, MB, FileReadError, Limits, limits
from xl_kpi.inputs.readers.sniff import (
    CFB_MAGIC,
    CSV_SUFFIXES,
    OTHER_WORKBOOK_SUFFIXES,
    WORKBOOK_SUFFIXES,
    XLSX_SUFFIXES,
    cfb_kind,
    check_file,
    sniff,
    zip_kind,
)

if TYPE_CHECKING:
    from xl_kpi.inputs.readers.csvfile import detect_encoding, detect_separator, read_csv_grid
    from xl_kpi.inputs.readers.prescan import scan_xlsx
    from xl_kpi.inputs.readers.sheetscan import CHUNK, SheetInfo
    from xl_kpi.inputs.readers.workbook import Sheet, read_workbook, read_workbook_grids

_HOMES = {
    **dict.fromkeys(["detect_encoding", "detect_separator", "read_csv_grid"], "csvfile"),
    "scan_xlsx": "prescan",
    **dict.fromkeys(["CHUNK", "SheetInfo"], "sheetscan"),
    **dict.fromkeys(["Sheet", "read_workbook", "read_workbook_grids"], "workbook"),
}
"""The module of each name, imported on first use (PEP 562): reading a CSV file (the command line's early read)
needs neither pandas nor the workbook readers."""


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'xl_kpi.inputs.readers' has no attribute {name!r}")
    value = getattr(import_module(f"xl_kpi.inputs.readers.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "CFB_MAGIC",
    "CHUNK",
    "CSV_SUFFIXES",
    "LIMIT_ENV",
    "MB",
    "OTHER_WORKBOOK_SUFFIXES",
    "WORKBOOK_SUFFIXES",
    "XLSX_SUFFIXES",
    "FileReadError",
    "Limits",
    "Sheet",
    "SheetInfo",
    "cfb_kind",
    "check_file",
    "detect_encoding",
    "detect_separator",
    "limits",
    "read_csv_grid",
    "read_workbook",
    "read_workbook_grids",
    "scan_xlsx",
    "sniff",
    "zip_kind",
]
