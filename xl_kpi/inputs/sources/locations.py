"""Where a native table is: a Parquet file or folder, or a Spark catalog table (``spark:db.table``).

:func:`binding` splits ``NAME=LOCATION``; :func:`location` tells whether a text names a native table
(None: an ordinary CSV or workbook). Shared by the readers (``native``) and the Spark backend (``spark``),
so neither imports the other's module for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xl_kpi.i18n import Msg, english
from xl_kpi.inputs.tables import header_key, header_keys

__all__ = ["PARQUET_SUFFIXES", "SPARK_PREFIX", "Location", "NativeError", "binding", "location", "wanted_columns"]

SPARK_PREFIX = "spark:"
PARQUET_SUFFIXES = (".parquet", ".pq")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NAME = re.compile(r"[^=\\/]+\Z")


class NativeError(Exception):
    """A native table that cannot be reached or read: ``reason`` and ``fix`` (texts or ``Msg``) for a
    :class:`Problem`."""

    def __init__(self, reason: Msg | str, fix: Msg | str) -> None:
        super().__init__(english(Msg("{reason} (fix: {fix})", reason=reason, fix=fix)))
        self.reason = english(reason)
        self.fix = english(fix)


@dataclass(frozen=True)
class Location:
    """Where a native table is: ``kind`` parquet (``target`` an absolute path) or spark (``db.table``)."""

    kind: Literal["parquet", "spark"]
    target: str
    text: str
    """As the user wrote it: what messages show as the table's file."""

    @property
    def default_name(self) -> str:
        """The table name when none is bound: the file or folder stem, or the catalog table's name."""
        if self.kind == "spark":
            return self.target.rsplit(".", 1)[-1]
        p = Path(self.target)
        return p.stem if p.suffix.casefold() in PARQUET_SUFFIXES else p.name


def binding(text: str) -> tuple[str, str] | None:
    """``NAME=LOCATION`` as (name, location), or None when ``text`` is not one."""
    name, eq, where = text.partition("=")
    if not eq or not where.strip() or not _NAME.match(name) or not name.strip():
        return None
    return name.strip(), where.strip()


def location(text: str | Path, base: Path | None = None) -> Location | None:
    """The native table ``text`` names, or None for an ordinary data file (CSV, workbook).

    ``spark:db.table`` (or ``spark:table``) is a catalog table; a path ending in .parquet or a
    folder holding Parquet files (a Spark or Hive output, partitions included) is Parquet. A
    relative path is taken from ``base`` (the plan's folder for a Sources row). Raises
    :class:`NativeError` for a catalog name that is not plain.
    """
    s = str(text).strip()
    if s.casefold().startswith(SPARK_PREFIX):
        name = s[len(SPARK_PREFIX):].strip()
        parts = name.split(".")
        if not name or len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
            raise NativeError(
                Msg('"{name}" is not a Spark table name', name=s),
                Msg("write spark:database.table (or spark:table) with letters, digits and _ only"),
            )
        return Location("spark", name, s)
    p = Path(s)
    if base is not None and not p.is_absolute():
        p = base / p
    if p.suffix.casefold() in PARQUET_SUFFIXES or (p.is_dir() and _has_parquet(p)):
        return Location("parquet", str(p.resolve()), s)
    return None


def _has_parquet(folder: Path) -> bool:
    return any(q.suffix.casefold() in PARQUET_SUFFIXES for q in folder.rglob("*") if q.is_file()
               and not q.name.startswith(("_", ".")))


def wanted_columns(available: Sequence[str], names: Iterable[str] | None) -> list[str]:
    """The columns of ``available`` that match any of ``names`` (header matching), in table order;
    every column when ``names`` is None."""
    if names is None:
        return list(available)
    wanted = {header_key(n) for n in names}
    return [c for c in available if any(k in wanted for k in header_keys(c))]
