"""LibreOffice headless helpers for the tests: recalculate workbooks, compare with cached values.

LibreOffice keeps the cached values of an xlsx unless told otherwise, so every call runs with a
private profile whose ``registrymodifications.xcu`` sets Calc's *Recalculation on file load* for
Excel 2007+ files (``OOXMLRecalcMode``) to 0 = always. Many files go in one call (each call costs
seconds), into a different folder; ``soffice`` exits 0 even when a conversion fails, so every
expected output is checked.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl

_ITEM = '<item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse"><value>{value}</value></prop></item>'
XCU = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
    + _ITEM.format(path="/org.openoffice.Office.Calc/Formula/Load", name="OOXMLRecalcMode", value=0) + "\n"
    + _ITEM.format(path="/org.openoffice.Office.Calc/Formula/Load", name="ODFRecalcMode", value=0) + "\n"
    + _ITEM.format(path="/org.openoffice.Office.Common/Misc", name="FirstRun", value="false") + "\n"
    "</oor:items>\n"
)
"""Profile settings: always recalculate on load (0 = always, 1 = never, 2 = ask)."""

FILTERS = {"xlsx": "xlsx:Calc MS Excel 2007 XML", "pdf": "pdf:calc_pdf_Export"}


class LibreOfficeError(RuntimeError):
    """A conversion did not produce the expected file."""


def soffice() -> str | None:
    """Path of the LibreOffice binary, or None."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def require_soffice() -> str:
    """The soffice path; skips the calling test when missing (fails instead when CI=true)."""
    import pytest

    path = soffice()
    if path is None:
        msg = "LibreOffice (soffice) is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " but CI=true: LibreOffice tests must run in CI")
        pytest.skip(msg)
    return path


def _profile(root: Path) -> str:
    user = root / "user"
    user.mkdir(parents=True, exist_ok=True)
    (user / "registrymodifications.xcu").write_text(XCU, encoding="utf-8")
    return root.resolve().as_uri()


def convert(paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], fmt: str = "xlsx",
            *, timeout: float = 600) -> list[Path]:
    """Open each file in LibreOffice (recalculating everything) and save it as ``fmt`` into ``out_dir``.

    One soffice process for all files. ``out_dir`` must differ from every input's folder and the
    input names must be unique (outputs are named after them). Returns the output paths, in order.
    """
    exe = soffice()
    if exe is None:
        raise LibreOfficeError("LibreOffice (soffice) is not installed")
    srcs = [Path(p).resolve() for p in paths]
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if any(p.parent == out for p in srcs):
        raise ValueError("out_dir must differ from the input folders (LibreOffice would overwrite the inputs)")
    stems = [p.stem for p in srcs]
    if len(set(stems)) != len(stems):
        raise ValueError("input file names must be unique: the outputs are named after them")
    expected = [out / f"{p.stem}.{fmt}" for p in srcs]
    for e in expected:
        e.unlink(missing_ok=True)
    if not srcs:
        return []
    with tempfile.TemporaryDirectory(prefix="xl-kpi-lo-") as prof:
        cmd = [exe, f"-env:UserInstallation={_profile(Path(prof))}", "--headless", "--norestore", "--nolockcheck",
               "--nodefault", "--convert-to", FILTERS.get(fmt, fmt), "--outdir", str(out), *map(str, srcs)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    missing = [str(e) for e in expected if not e.exists() or e.stat().st_size == 0]
    if missing:
        raise LibreOfficeError(
            f"LibreOffice did not write {len(missing)} of {len(expected)} files (exit {proc.returncode}): "
            f"{missing[:3]}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
        )
    return expected


def recalc(paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Recalculated xlsx copies of ``paths`` in ``out_dir`` (one LibreOffice call)."""
    return convert(paths, out_dir, "xlsx")


def to_pdf(paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]) -> list[Path]:
    """PDF renderings of ``paths`` in ``out_dir`` (one LibreOffice call)."""
    return convert(paths, out_dir, "pdf")


@dataclass(frozen=True)
class Mismatch:
    """A formula cell whose cached value differs from LibreOffice's recalculated value."""

    sheet: str
    cell: str
    formula: str
    cached: Any
    recalculated: Any


class Mismatches(list):
    """A list of :class:`Mismatch` that also says how many formula cells were compared."""

    compared: int = 0


def is_money_format(fmt: str | None) -> bool:
    """Number formats with two decimals and grouping (``#,##0.00 "₽"``) hold money."""
    return bool(fmt) and "0.00" in fmt and "#,##0" in fmt


def _same(a: Any, b: Any, tol: float) -> bool:
    if a == "" or a is None:
        a = None
    if b == "" or b is None:
        b = None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return False
        return abs(a - b) <= tol * max(1.0, abs(a)) if tol < 1e-3 else abs(a - b) <= tol
    return a == b


def _load(path: str | os.PathLike[str], data_only: bool = False) -> openpyxl.Workbook:
    with warnings.catch_warnings():  # LibreOffice writes extension lists openpyxl does not read
        warnings.simplefilter("ignore", UserWarning)
        return openpyxl.load_workbook(path, data_only=data_only)


def formula_cells_vs_cached(
    original: str | os.PathLike[str],
    recalculated: str | os.PathLike[str],
    *,
    tol: float = 1e-9,
    money_tol: float = 0.005,
    sheets: Iterable[str] | None = None,
) -> Mismatches:
    """Every formula cell of ``original`` whose cached value differs from ``recalculated``'s value.

    Scores and coefficients must agree to ``tol`` (relative for values above 1); money cells
    (:func:`is_money_format`) to ``money_tol`` (a kopeck: strictly, half of one). Empty text and
    no value count as equal. ``.compared`` on the result is the number of formula cells checked.
    """
    wf = _load(original)
    wc = _load(original, data_only=True)
    wr = _load(recalculated, data_only=True)
    out = Mismatches()
    for ws in wf.worksheets:
        if sheets is not None and ws.title not in set(sheets):
            continue
        cs, rs = wc[ws.title], wr[ws.title]
        for row in ws.iter_rows():
            for c in row:
                if c.data_type != "f":
                    continue
                out.compared += 1
                cached = cs[c.coordinate].value
                got = rs[c.coordinate].value
                t = money_tol if is_money_format(c.number_format) else tol
                if not _same(cached, got, t):
                    out.append(Mismatch(ws.title, c.coordinate, str(c.value), cached, got))
    return out
