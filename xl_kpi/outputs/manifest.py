"""``OUT/manifest.csv`` (one row per card: file, sha256, total bonus, status) and ``OUT/errors.csv``.

Both are CSVs for Excel written through :func:`xl_kpi.outputs.csvsafe.neutralise` (no cell runs as a
formula), rows in a fixed order, so that ``xl-kpi verify`` can recompute them byte for byte.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.money import round_money
from xl_kpi.outputs.atomic import open_atomic, write_atomic
from xl_kpi.outputs.csvsafe import csv_bytes, csv_chunks
from xl_kpi.outputs.values import ILLEGAL_CHARACTERS, is_missing, number, text

MANIFEST_COLUMNS = ("employee_id", "file", "sha256", "total_bonus", "status")
ERROR_COLUMNS = ("employee_id", "name", "reason")


def write_manifest(records: Iterable[Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``OUT/manifest.csv``: employee_id, file (relative to OUT, ``/``), sha256, total_bonus, status.

    ``records`` are dicts or objects with ``employee_id``, ``path`` (absolute, or relative to
    ``out_dir``), ``sha256``, ``total_bonus`` and ``status``. Rows are sorted by employee id
    (numbers in ids compare as numbers: E2 before E10), so parallel runs give the same file.
    UTF-8 with BOM; text is neutralised by :mod:`xl_kpi.outputs.csvsafe` (Excel runs no formula).
    """
    target = Path(out_dir) / "manifest.csv"
    with open_atomic(target) as f:  # streamed: 100,000 rows are never one text and its bytes
        for chunk in _manifest_chunks(records, out_dir):
            f.write(chunk)
    return target


def manifest_bytes(records: Iterable[Any], out_dir: str | os.PathLike[str]) -> bytes:
    """The bytes :func:`write_manifest` writes (``xl-kpi verify`` recomputes them to compare)."""
    return b"".join(_manifest_chunks(records, out_dir))


def _manifest_chunks(records: Iterable[Any], out_dir: str | os.PathLike[str]) -> Iterator[bytes]:
    """:func:`manifest_bytes` in pieces (:func:`~xl_kpi.outputs.csvsafe.csv_chunks`). The rows are put in order by
    their positions, then made as they are written: 100,000 rows held as text tuples, each with its sort key, cost
    ~75 MB while the cards were still being written."""
    out = Path(out_dir)
    resolved = out.resolve()
    prefix = os.fspath(out).rstrip(os.sep) + os.sep
    fields = [_fields(rec) for rec in records]
    totals = [number(total) for _, _, _, total, _ in fields]
    rounded = round_money(np.array([np.nan if t is None else t for t in totals], dtype=float)) if fields else []
    ids = [_text(eid) for eid, *_ in fields]

    def relative(i: int) -> str:
        return _text(_relative(fields[i][1], out, resolved, prefix))

    keys = _sort_keys(ids)
    order = sorted(range(len(fields)), key=keys.__getitem__)
    a = 0
    while a < len(order):  # ids that sort alike (rare): by file, as the key (id, file) orders them
        b = a + 1
        while b < len(order) and keys[order[b]] == keys[order[a]]:
            b += 1
        if b - a > 1:
            order[a:b] = sorted(order[a:b], key=relative)
        a = b
    del keys

    def rows() -> Iterator[tuple[str, str, str, str, str]]:
        for i in order:
            _, _, digest, _, status = fields[i]
            yield (ids[i], relative(i), _text(digest), "" if totals[i] is None else f"{rounded[i]:.2f}", _text(status))

    yield from csv_chunks(MANIFEST_COLUMNS, rows(), plain=(3,))


def _sort_keys(ids: list[str]) -> list[Any]:
    """:func:`_natural` of each id, or, when every id is some text and a number (``E000123``, ``42``), the pair
    (text casefolded, number): the same order, in a third of the memory."""
    pairs = []
    for t in ids:
        parts = _DIGITS.split(t)
        if len(parts) != 3 or parts[2] or parts[0].isdigit():
            return [_natural(t) for t in ids]
        pairs.append((parts[0].casefold(), int(parts[1])))
    return pairs


def _text(v: Any) -> str:
    """:func:`xl_kpi.outputs.values.text`, without its type checks for the plain ``str`` a record mostly holds."""
    return ILLEGAL_CHARACTERS.sub("", v) if type(v) is str else text(v)


def write_errors(rows: Iterable[Any], out_dir: str | os.PathLike[str]) -> Path | None:
    """Write ``OUT/errors.csv`` (employee_id, name, reason) if there are errors; otherwise remove it.

    Returns the path written, or None when there was nothing to report (a stale errors.csv
    from an earlier run is deleted then).
    """
    out = Path(out_dir)
    target = out / "errors.csv"
    data = errors_bytes(rows)
    if data is None:
        try:
            target.unlink()
        except FileNotFoundError:
            pass
        return None
    write_atomic(target, data)
    return target


def errors_bytes(rows: Iterable[Any]) -> bytes | None:
    """The bytes :func:`write_errors` writes, or None when there is no error (no errors.csv then)."""
    data = [[_get(r, "employee_id"), _get(r, "name"), _get(r, "reason")] for r in rows]
    return csv_bytes(ERROR_COLUMNS, [[text(v) for v in row] for row in data]) if data else None


def _fields(rec: Any) -> tuple[Any, ...]:
    """A record's employee_id, path, sha256, total_bonus and status (a dict, a Series or an object's attributes)."""
    if isinstance(rec, (Mapping, pd.Series)):
        return tuple(rec.get(name) for name in _RECORD_FIELDS)
    return tuple(getattr(rec, name, None) for name in _RECORD_FIELDS)


_RECORD_FIELDS = ("employee_id", "path", "sha256", "total_bonus", "status")


def _get(rec: Any, name: str) -> Any:
    if isinstance(rec, Mapping):
        return rec.get(name)
    if isinstance(rec, pd.Series):
        return rec.get(name)
    return getattr(rec, name, None)


def _relative(path: Any, out: Path, resolved: Path | None = None, prefix: str | None = None) -> str:
    """``path`` relative to ``out``, '/'-separated. A card path under ``out`` as written is cut lexically
    (``prefix``: ``out`` and a separator, when the caller has it: cut as text if what follows is already a plain
    relative path, else by pathlib); anything else is compared after resolving links (``resolved`` is ``out``
    resolved, computed once)."""
    if is_missing(path) or path == "":
        return ""
    if prefix is not None and os.sep == "/":
        s = os.fspath(path)
        if s.startswith(prefix) and _plain_rest(rest := s[len(prefix):]):
            return rest
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    if p.is_relative_to(out) and ".." not in p.parts:
        return p.relative_to(out).as_posix()
    try:
        return p.resolve().relative_to(resolved or out.resolve()).as_posix()
    except ValueError:
        return Path(os.path.relpath(p, out)).as_posix()


def _plain_rest(rest: str) -> bool:
    """True when ``rest`` is a relative '/'-path pathlib would print unchanged: no empty, ``.`` or ``..`` part."""
    return bool(rest) and "//" not in rest and not rest.endswith("/") and not rest.startswith("/") and all(
        part not in (".", "..") for part in rest.split("/"))


_DIGITS = re.compile(r"(\d+)")


def _natural(value: Any) -> tuple[Any, ...]:
    """Sort key in which the numbers inside an id compare as numbers (E2 before E10)."""
    t = _text(value)
    if t.isdigit() and t.isascii():  # what the split below gives for a plain number, without it
        return ((1, 0, ""), (0, int(t), ""), (1, 0, ""))
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
                 for part in _DIGITS.split(t))
