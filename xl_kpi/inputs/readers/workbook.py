"""Reading an .xlsx/.xlsm: checked and pre-scanned (:func:`~xl_kpi.inputs.readers.prescan.scan_xlsx`),
then read with calamine, a crash of which is a :class:`FileReadError` naming the file."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from xl_kpi.i18n import Msg
from xl_kpi.inputs.readers.limits import FileReadError, _check_cell_text, limits
from xl_kpi.inputs.readers.prescan import scan_xlsx
from xl_kpi.inputs.readers.sheetscan import SheetInfo
from xl_kpi.inputs.readers.sniff import XLSX_SUFFIXES, _read_input, _refuse, check_file


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
    # raw data may hold more cells than a plan (Limits.source_cells); the plan keeps Limits.cells
    infos = scan_xlsx(path, lim if role == "plan workbook" else replace(lim, cells=lim.source_cells), data=data)
    if suffix not in XLSX_SUFFIXES:
        raise FileReadError(name, Msg("this is an Excel workbook (.xlsx), but its name ends in {suffix}",
                                      suffix=path.suffix) if path.suffix else
                            Msg("this is an Excel workbook (.xlsx), but its name has no extension"),
                            Msg("rename it to .xlsx"))
    try:
        # keep_default_na=False: text such as N/A, NULL, None, #N/A stays text (the number reader then names
        # the cell), as in a CSV; only a truly empty cell is empty.
        grids = pd.read_excel(io.BytesIO(data), sheet_name=None, header=None, engine="calamine",
                              keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise FileReadError(name, Msg("file not found"), Msg("check the path")) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # calamine raises its own types for damaged parts (a Rust panic is a BaseException)
        raise FileReadError(name, Msg("cannot read it as a workbook: the file is damaged ({error})",
                                      error=f"{type(e).__name__}: {str(e)[:200]}"),
                            Msg("open it in Excel and save it again, or export it anew")) from None
    sheets = []
    for sheet_name, grid in grids.items():
        key = str(sheet_name)
        _check_cell_text(grid, name, key, lim)
        sheets.append(Sheet(key, grid, infos.get(key)))
    return sheets


def read_workbook_grids(path: str | Path) -> dict[str, pd.DataFrame]:
    """Every sheet of a workbook as a grid (row 0 = Excel row 1, column 0 = A); see :func:`read_workbook`."""
    return {s.name: s.grid for s in read_workbook(path)}
