"""What one input file may hold (:class:`Limits`, raised or lowered by the variables of :data:`LIMIT_ENV`),
:class:`FileReadError`, which every reader raises, and the wording its messages share (sizes, counts, fixes)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import Msg, Plural, english
from xl_kpi.inputs.readers.letters import column_letter

if TYPE_CHECKING:
    import pandas as pd

MB = 1024 * 1024


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
    """Rows × columns of the used ranges of the plan workbook's sheets."""
    source_cells: int = 50_000_000
    """Rows × columns of one raw-data file (a CSV file, or the used ranges of a data workbook's sheets):
    a 1,000,000 × 8 CRM export passes, a decompression or stray-cell bomb still stops."""
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
    "source_cells": ("XL_KPI_MAX_SOURCE_CELLS", 1),
    "rows": ("XL_KPI_MAX_ROWS", 1),
    "columns": ("XL_KPI_MAX_COLUMNS", 1),
    "cell_chars": ("XL_KPI_MAX_CELL_CHARS", 1),
}
"""Environment variable (and its unit in bytes) that overrides each limit."""


class FileReadError(KpiError):
    """A file cannot be read: ``reason`` says why, ``fix`` what to do; ``where`` may name sheet, row, column."""

    def __init__(self, file: str, reason: str | Msg | None = None, fix: str | Msg = "", **where: Any) -> None:
        if reason is None:  # FileReadError("deals.csv: cannot …"), the older one-argument form
            file, _, reason = file.partition(": ") if ": " in file else ("", "", file)
        self.file = file
        self.reason = english(reason)  # str (the English text) that a Problem still shows in the reader's language
        self.fix = english(fix)
        self.where = {k: v for k, v in where.items() if v is not None}
        if isinstance(reason, Msg):  # rendered in the reader's language when shown
            super().__init__(Msg("{file}: {reason}", file=file, reason=reason) if file else reason)
        else:
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
            raise FileReadError("", Msg("the environment variable {var}={text} is not a positive number", var=var,
                                        text=repr(text)),
                                Msg("set {var} to a number (megabytes) or unset it", var=var) if unit == MB else
                                Msg("set {var} to a number (a count) or unset it", var=var))
        changes[f.name] = value if f.type == "float" else int(value * unit)
    return replace(Limits(), **changes) if changes else Limits()


def _mb(n: float) -> Msg:
    """A size for people: '350 bytes', '12 KB', '100.0 MB' (in the reader's language)."""
    if n < 1024:
        return Plural("{n} byte", "{n} bytes", int(n))
    if n < MB:
        return Msg("{size} KB", size=f"{n / 1024:,.0f}".replace(",", " "))
    return Msg("{size} MB", size=f"{n / MB:,.1f}".replace(",", " "))


def _count(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def _raise_limit(name: str, value: str) -> Msg:
    return Msg("if the file is right, raise the limit: set the environment variable {var}={value}",
               var=LIMIT_ENV[name][0], value=value)


_PASSWORD_FIX = Msg("remove the password: open the file in Excel, File → Info → Protect Workbook → Encrypt with "
                    "Password, clear the password, save; then run again")


def _check_cell_text(grid: pd.DataFrame, name: str, sheet: str | None, lim: Limits) -> None:
    """Refuse a grid with a text cell longer than ``lim.cell_chars`` (the first such cell is named)."""
    import pandas as pd  # here: the limits are read before pandas is needed (the command line's early read)

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
                name, Msg("cell {cell} holds {n} characters, more than the {limit} a spreadsheet cell can hold",
                          cell=f"{column_letter(j + 1)}{i + 1}", n=_count(int(lengths.iloc[i])),
                          limit=_count(lim.cell_chars)),
                Msg("check the file (in a CSV, a quote left open swallows the rest of the file into one cell); "
                    "{raise_limit}", raise_limit=_raise_limit("cell_chars", str(int(lengths.iloc[i])))),
                sheet=sheet, row=i + 1, column=column_letter(j + 1))


_DAMAGED_FIX = Msg("the file is damaged or incomplete (cut short while copying, downloading or e-mailing?): "
                   "download or save it again from Excel")
_BOMB_FIX = Msg("this is not an ordinary Excel file; save the data again from Excel, or ask who sent it")
