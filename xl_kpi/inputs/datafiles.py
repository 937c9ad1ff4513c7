"""Tables bound by name, not by file name: a :class:`DataFile` says which file a table name of
``KPIs.source`` reads (from the plan's ``Sources`` sheet or ``--data NAME=PATH``), with its sheet,
encoding and separator when the guess would be wrong.

A path is relative to the plan's folder (Sources) or the working folder (``--data``) and may be a glob
(``exports/DEAL_*.csv``): exactly one file must match, several are an error listing them. Files given
plainly (``--data deals.csv``, or a folder) keep the file-name rule (``deals``).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xl_kpi.i18n import Msg

__all__ = ["DataFile", "bound_paths", "load_bound", "parse_data_arg", "plain_paths", "resolve_binding"]

_NAME = re.compile(r"^[^\W\d][\w\-]*(?::[^=]+)?$")


@dataclass(frozen=True)
class DataFile:
    """A table name bound to a file (path or glob), optionally one sheet, an encoding and a separator.

    ``where`` locates the binding for messages (the Sources sheet row, or ``--data``)."""

    table: str
    path: str
    sheet: str | None = None
    encoding: str | None = None
    separator: str | None = None
    where: tuple[tuple[str, Any], ...] = ()

    @property
    def at(self) -> dict[str, Any]:
        return dict(self.where) or {"file": "--data"}


def parse_data_arg(text: str | os.PathLike[str]) -> Path | DataFile:
    """A ``--data`` value: ``NAME=PATH`` (a table name bound to a file) or a plain path.

    A value that names an existing file or folder is a plain path even if it holds ``=``.

    >>> parse_data_arg("bitrix=DEAL_20261202.csv").table
    'bitrix'
    """
    if not isinstance(text, str) or os.path.exists(text) or "=" not in text:
        return Path(text)
    name, _, path = text.partition("=")
    name = name.strip()
    if not _NAME.match(name) or not path:
        return Path(text)
    stem, _, sheet = name.partition(":")
    return DataFile(stem, path, sheet or None, where=(("file", "--data"),))


def plain_paths(data: Iterable[Any]) -> list[Path]:
    """The plain paths among ``--data`` items (not the :class:`DataFile` bindings)."""
    return [Path(d) for d in data if not isinstance(d, DataFile)]


def resolve_binding(binding: DataFile, base: Path | None) -> tuple[Path | None, str | None, str]:
    """(the one file a binding names, None and the reason why not, and the fix)."""
    pattern = binding.path.strip()
    full = pattern if base is None or os.path.isabs(pattern) else str(base / pattern)
    if glob.has_magic(pattern):
        matches = sorted(Path(p) for p in glob.glob(full) if Path(p).is_file())
        if len(matches) > 1:
            listed = ", ".join(p.name for p in matches[:10]) + (" …" if len(matches) > 10 else "")
            return None, (f'{len(matches)} files match the path "{pattern}" of table {binding.table}: {listed}; '
                          "which one to read is not clear"), "make the path match one file (or remove the others)"
        if not matches:
            return None, f'no file matches the path "{pattern}" of table {binding.table}', (
                f"check the path (relative to {'the plan folder' if base else 'the working folder'})")
        return matches[0], None, ""
    path = Path(full)
    if not path.is_file():
        return None, f'table {binding.table}: the file "{pattern}" does not exist' + (
            " (it is a folder)" if path.is_dir() else ""), (
            f"check the path (relative to {'the plan folder' if base else 'the working folder'})")
    return path, None, ""


def load_bound(
    bindings: Iterable[DataFile],
    base: Path | None,
    tables: dict[str, Any],
    problems: Any,
    *,
    expected: Any = None,
    unreadable: list[str] | None = None,
) -> dict[str, Path]:
    """Read each bound file into ``tables`` under its table name (case-folded keys, as load_tables keeps them);
    returns table name → file. A binding whose ``where`` is ``--data`` resolves against the working folder,
    the others against ``base`` (the plan's folder). Problems go to ``problems`` at the binding."""
    from xl_kpi.inputs.readers import FileReadError
    from xl_kpi.inputs.tables import read_tables

    files: dict[str, Path] = {}
    for b in bindings:
        on_cli = dict(b.where).get("file") == "--data"
        path, why, fix = resolve_binding(b, None if on_cli else base)
        if path is None:
            problems.error(why, fix, **b.at)
            if unreadable is not None:
                unreadable.append(b.path)
            continue
        try:
            found = read_tables(path, expected=expected, problems=problems, name=b.table, encoding=b.encoding,
                                separator=b.separator)
        except FileReadError as e:
            problems.error(Msg("table {table}: {reason}", table=b.table, reason=e.reason),
                           e.fix or Msg("check the file"), **{**e.where, "file": path.name})
            if unreadable is not None:
                unreadable.append(path.name)
            continue
        except LookupError:
            problems.error(Msg("table {table}: unknown encoding \"{encoding}\"", table=b.table,
                               encoding=b.encoding), Msg("correct the encoding"), **b.at)
            continue
        if b.sheet is not None:
            wanted = f"{b.table}:{b.sheet}".casefold()
            hit = [t for t in found if t.name.casefold() == wanted]
            if not hit:
                sheets = ", ".join(t.sheet for t in found if t.sheet and ":" in t.name) or "none"
                problems.error(Msg("table {table}: {name} has no sheet \"{sheet}\" (its sheets: {sheets})",
                                   table=b.table, name=path.name, sheet=b.sheet, sheets=sheets),
                               Msg("correct the sheet name in the Sources sheet"), **b.at)
                continue
            t = hit[0]
            found = [t, type(t)(b.table, t.file, t.frame, t.letters, t.sheet, t.header_row, t.path, t.issues,
                                t.issues_reported)]
        for t in found:
            key = t.name.casefold()
            if key in tables and tables[key].file != t.file:
                problems.error(Msg("two data files are both table \"{name}\": {file} and {file2}", name=t.name,
                                   file=tables[key].file, file2=t.file),
                               Msg("bind the table to one file only (Sources sheet, --data NAME=PATH or the file "
                                   "name)"),
                               file=t.file)
                continue
            tables[key] = t
        files[b.table] = path
    return files


def bound_paths(bindings: Iterable[DataFile], base: Path | None) -> list[Path]:
    """The files the bindings name (those that resolve), e.g. to keep them out of the plain-file rule."""
    out = []
    for b in bindings:
        on_cli = dict(b.where).get("file") == "--data"
        path, _, _ = resolve_binding(b, None if on_cli else base)
        if path is not None:
            out.append(path)
    return out


def early_paths(args: Sequence[str]) -> list[Path]:
    """The plain data paths of a ``validate`` command line (its arguments after the command's name): the values
    of ``--data`` and the FILE arguments that name a file or folder, folders listed as the data reader lists them.
    A guess (typer parses the line later): a path it misses is only not read early, one it adds is never used."""
    from xl_kpi.inputs.readers.sniff import CSV_SUFFIXES

    takes_value = {"--plan", "--period", "--engine", "--lang"}
    found: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in takes_value:
            i += 2
            continue
        if a == "--data":
            found.extend(args[i + 1:i + 2])
            i += 2
            continue
        if a.startswith("--data="):
            found.append(a.partition("=")[2])
        elif not a.startswith("-"):
            found.append(a)
        i += 1
    out: list[Path] = []
    for p in plain_paths(parse_data_arg(f) for f in found):
        if p.is_dir():
            try:
                out.extend(sorted(q for q in p.iterdir() if q.suffix.casefold() in CSV_SUFFIXES
                                  and not q.name.startswith(("~$", "."))))
            except OSError:
                continue
        elif p.is_file():
            out.append(p)
    return out


def read_early(args: Sequence[str]) -> None:
    """Start reading the CSV files of a ``validate`` command line (its arguments after the command's name) in
    the background (:func:`xl_kpi.inputs.readers.ahead.read_early`); nothing when the line asks for the help."""
    from xl_kpi.inputs.readers import ahead

    if "--help" not in args:
        ahead.read_early(early_paths(args))
