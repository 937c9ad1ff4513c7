"""The output folder (``--out``) belongs to the user: what xl_kpi may replace there, and how it writes.

One place for every rule about OUT, used by ``generate``, ``distribute`` and the mailer:

- **ownership**: a missing or empty OUT is fine; a non-empty OUT needs the ``manifest.json`` of an
  earlier run, and only the files it lists are replaced (:func:`claim`); a damaged one stops the run;
- **no links**: lock and log files are opened with ``O_NOFOLLOW`` (:func:`open_nofollow`), and a working
  folder (staging, distribution, outbox, results, cards) that is a symbolic link is refused
  (:func:`refuse_symlink`), so nothing is ever written outside OUT;
- **one run at a time**: :func:`lock` takes an exclusive OS lock on ``OUT/.xl-kpi.lock``;
- **errors in words**: :func:`os_error` turns an ``OSError`` (disk full, read-only, a file in the path…)
  into an :class:`OutDirError` naming the path and the cause (exit 1, never "internal error").
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import Msg

LOCK = ".xl-kpi.lock"
AUDIT = "manifest.json"
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

_CAUSES = {
    errno.ENOSPC: Msg("the disk is full"),
    errno.EROFS: Msg("the file system is read-only"),
    errno.EACCES: Msg("permission denied"),
    errno.EPERM: Msg("operation not permitted"),
    errno.ENOTDIR: Msg("a part of the path is a file, not a folder"),
    errno.EEXIST: Msg("a file of that name already exists"),
    errno.EISDIR: Msg("it is a folder, not a file"),
    errno.ELOOP: Msg("it is a symbolic link (xl-kpi does not follow links out of the output folder)"),
    errno.ENOENT: Msg("it does not exist"),
    getattr(errno, "EDQUOT", -1): Msg("the disk quota is exceeded"),
}
_FIXES = {
    errno.ENOSPC: Msg("free some disk space or choose another --out"),
    errno.EROFS: Msg("choose an output folder on a writable disk"),
    errno.EACCES: Msg("choose a folder you may write to, or fix its permissions"),
    errno.EPERM: Msg("choose a folder you may write to, or fix its permissions"),
    errno.ENOTDIR: Msg("choose an --out whose parent folders are folders"),
    errno.ELOOP: Msg("remove the link; xl-kpi creates the file itself"),
    getattr(errno, "EDQUOT", -1): Msg("free some space or choose another --out"),
}


class OutDirError(KpiError):
    """The output folder cannot be used as asked; ``usage`` marks a wrong option (exit 2), else exit 1."""

    def __init__(self, message: str | Msg, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def os_error(e: OSError, path: str | os.PathLike[str] | None = None, doing: Msg | None = None) -> OutDirError:
    """An :class:`OutDirError` naming the path and saying the cause of ``e`` in words, with a fix (``doing``:
    what failed, default "cannot write"; shown in the reader's language)."""
    where = e.filename if e.filename is not None else path
    cause: str | Msg = _CAUSES.get(e.errno or 0) or (e.strerror or str(e))
    fix = _FIXES.get(e.errno or 0) or Msg("check the folder and try again")
    return OutDirError(Msg("{doing} {where}: {cause} — fix: {fix}", doing=doing or Msg("cannot write"),
                           where=str(where), cause=cause, fix=fix))


def refuse_symlink(path: Path) -> None:
    """Raise :class:`OutDirError` when ``path`` is a symbolic link (a working folder or file in OUT)."""
    if path.is_symlink():
        raise OutDirError(Msg("{path} is a symbolic link; xl-kpi writes nothing outside the output folder and "
                              "does not follow links — fix: remove the link (xl-kpi creates it itself)",
                              path=str(path)))


def refuse_symlinks(out: Path, rel: str, checked: set[Path] | None = None) -> None:
    """Refuse a link anywhere on the way from ``out`` to ``out/rel`` (the file itself included).

    ``checked`` remembers the folders already found to be no links, so that many files in one folder
    cost one check of that folder (pass the same set for one pass over the files).
    """
    p = out
    parts = Path(rel).parts
    for i, part in enumerate(parts):
        p = p / part
        if checked is not None and i < len(parts) - 1:
            if p in checked:
                continue
            refuse_symlink(p)
            checked.add(p)
        else:
            refuse_symlink(p)


def open_nofollow(path: Path, flags: int, mode: int = 0o600) -> int:
    """``os.open`` with ``O_CREAT | O_NOFOLLOW``: a symbolic link in place of the file is refused, not followed."""
    refuse_symlink(path)
    try:
        return os.open(path, flags | os.O_CREAT | NOFOLLOW | getattr(os, "O_BINARY", 0), mode)
    except OSError as e:
        raise os_error(e, path, Msg("cannot open")) from None


@contextlib.contextmanager
def lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on OUT (``OUT/.xl-kpi.lock``) while a run writes there.

    A second ``generate`` or ``distribute`` into the same folder gets :class:`OutDirError` at once and
    changes nothing. The OS drops the lock when the process dies, so a killed run never blocks the next.
    """
    fd = open_nofollow(out / LOCK, os.O_RDWR)
    try:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise OutDirError(Msg("{out}: another xl-kpi run (generate or distribute) is using this output folder; "
                              "nothing was changed — fix: wait for it to finish, or choose another --out",
                              out=str(out))) from None
    try:
        yield
    finally:
        os.close(fd)


def recorded_files(out: Path) -> set[str] | None:
    """The files (relative, '/'-separated) an earlier run recorded in ``OUT/manifest.json``; None without one.

    A manifest of an older xl_kpi without a ``files`` list: its audited outputs, manifest.csv and the cards
    manifest.csv lists. A damaged manifest raises :class:`OutDirError` naming it.
    """
    p = out / AUDIT
    if not os.path.lexists(p):
        return None
    refuse_symlink(p)
    try:
        audit = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(audit, dict):
            raise ValueError(Msg("not a JSON object"))
        files = audit.get("files")
        if files is not None:
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                raise ValueError(Msg("'files' is not a list of paths"))
            return {f for f in files if _inside(f)} | {AUDIT}
        owned = {AUDIT, "manifest.csv", *(k for k in audit.get("outputs", {}) if isinstance(k, str))}
        with contextlib.suppress(OSError, ValueError, KeyError):
            from xl_kpi.outputs.csvsafe import read_rows

            owned |= {r["file"] for r in read_rows(out / "manifest.csv")}
        return {f for f in owned if _inside(f)}
    except OSError as e:
        raise os_error(e, p, Msg("cannot read")) from None
    except (ValueError, AttributeError) as e:
        why = e.args[0] if isinstance(e, ValueError) and len(e.args) == 1 and isinstance(e.args[0], Msg) else str(e)
        raise OutDirError(Msg("{path} is damaged ({why}); it records which files an earlier xl-kpi run wrote here, "
                              "so nothing was replaced — fix: restore it from a backup, or choose an empty --out",
                              path=str(p), why=why)) from None


def claim(out: Path, working: Iterable[str] = ()) -> set[str]:
    """Check that a run may write into ``out``; return the files it may replace there.

    Missing or empty (apart from xl_kpi's lock and ``working`` folder prefixes): nothing to replace.
    Non-empty without ``manifest.json``: refused, since those files are the user's.
    """
    if not out.exists():
        return set()
    if not out.is_dir():
        raise OutDirError(Msg("{out} is a file, not a folder — fix: choose another --out", out=str(out)))
    prefixes = tuple(working)
    try:
        entries = [e for e in os.listdir(out) if e != LOCK and not (prefixes and e.startswith(prefixes))]
    except OSError as e:
        raise os_error(e, out, Msg("cannot read")) from None
    if not entries:
        return set()
    owned = recorded_files(out)
    if owned is None:
        raise OutDirError(Msg("{out} is not empty and has no {audit}, so it is not the output of an earlier "
                              "xl-kpi generate; nothing was written — fix: choose an empty or new --out folder, "
                              "or remove the files yourself", out=str(out), audit=AUDIT))
    return owned


def refuse_out_in_data(out: Path, data: Iterable[str | os.PathLike[str]]) -> None:
    """``--out`` equal to or inside a ``--data`` folder would feed earlier outputs back in as data: refuse."""
    for d in data:
        folder = Path(d).resolve()
        if folder.is_dir() and (out == folder or folder in out.parents):
            raise OutDirError(Msg("--out {out} is inside the --data folder {folder}: the next run would read "
                                  "this run's cards and tables as data — fix: choose an --out outside the data "
                                  "folders", out=str(out), folder=str(folder)), usage=True)


def _inside(rel: str) -> bool:
    """A recorded path that stays inside OUT (relative, no '..')."""
    p = Path(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts
