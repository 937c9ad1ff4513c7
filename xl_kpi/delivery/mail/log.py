"""The send log (JSON lines, fsync'ed after every message) and the OS lock that stops two runs at once."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from xl_kpi.delivery.mail.model import MailError
from xl_kpi.i18n import English, Msg
from xl_kpi.outputs import outdir
from xl_kpi.outputs.atomic import fsync_dir

# --------------------------------------------------------------------------------------------
# Send log and lock


def _fingerprint(key: str, to: str, digest: str) -> tuple[str, str, str]:
    """What the send log knows a message by: the same key, mailbox (canonical form) and attachments."""
    from xl_kpi.inputs.identity import canonical_address

    return key, canonical_address(to), digest


def _read_log(path: Path) -> tuple[set[tuple[str, str, str]], dict[tuple[str, str, str], dict[str, str]]]:
    """(fingerprints sent, last record of each fingerprint). A torn last line is ignored."""
    sent: set[tuple[str, str, str]] = set()
    last: dict[tuple[str, str, str], dict[str, str]] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return sent, last
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            fp = _fingerprint(str(rec["key"]), str(rec["to"]), str(rec["sha256"]))
        except (ValueError, KeyError, TypeError):
            continue
        if rec.get("status") == "sent":
            sent.add(fp)
        last[fp] = rec
    return sent, last


class _Log:
    """Append-only JSON-lines send log; every line is flushed to disk before the next message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not os.path.lexists(path)
        self.fd = outdir.open_nofollow(path, os.O_WRONLY | os.O_APPEND)  # a link would send addresses elsewhere
        if new:
            fsync_dir(path.parent)
        elif path.stat().st_size:
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a line torn by a crash: start ours on a fresh line
                    os.write(self.fd, b"\n")

    def write(self, **record: object) -> None:
        """Append one record and flush it to disk; a failure stops the run (better than sending blind)."""
        record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), **record}
        try:
            os.write(self.fd, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            os.fsync(self.fd)
        except OSError as e:
            raise MailError(Msg(
                "cannot write the send log {path}: {error}; stopped so that nothing is sent twice", path=str(self.path),
                error=str(e.strerror or e))) from None

    def close(self) -> None:
        os.close(self.fd)


class _Lock:
    """An exclusive lock file next to the send log, held with an OS lock (flock / msvcrt).

    The OS drops the lock when its process dies, so a lock file left by a killed run is simply
    taken over; a live holder makes :class:`MailError`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> _Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            fd = outdir.open_nofollow(self.path, os.O_RDWR)  # a link: refused, its target never truncated
            try:
                _os_lock(fd)
            except (BlockingIOError, PermissionError):
                holder = _read_holder(fd)
                os.close(fd)
                raise MailError(Msg(
                    "another run is sending from the same send log ({holder}); wait for it to finish "
                    "(lock file {path})", holder=holder, path=str(self.path))) from None
            except OSError as e:
                os.close(fd)
                raise MailError(Msg("cannot lock {path}: {error}", path=str(self.path),
                                    error=str(e.strerror or e))) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file while we waited: retry on the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            self.fd = fd
            return self
        raise MailError(Msg("cannot lock {path}: it keeps changing", path=str(self.path)))

    def __exit__(self, *exc: object) -> None:
        if self.fd is None:
            return
        if sys.platform == "win32":
            os.close(self.fd)
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # while still locked, so a waiter sees a new file
            os.close(self.fd)
        self.fd = None


def _os_lock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as e:
            raise BlockingIOError(str(e)) from None
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except (OSError, AttributeError):
        return English(Msg("holder unknown"))
    return English(Msg("process {pid} on {host}", pid=text[0], host=text[1]) if len(text) >= 2 else
                   Msg("holder unknown"))
