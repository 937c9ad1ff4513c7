"""Atomic file writes: a reader never sees a half-written card, a crash never leaves one.

The data goes to a temporary file in the target folder (same file system, so the rename is
atomic), is flushed and fsync'ed, then ``os.replace`` puts it in place.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, ``os.replace``).

    Missing parent folders are created. The file gets the usual permissions (umask applies),
    unlike ``tempfile.mkstemp``'s private 0600. ``fsync=False`` skips the flush to disk (tests,
    throw-away output); the rename is atomic either way.
    """
    with open_atomic(path, fsync=fsync) as f:
        f.write(data)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through, atomically as :func:`write_atomic` (temp file, fsync,
    ``os.replace`` when the block ends; removed if it raises): for data streamed out, never held whole."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name[:80]}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (the renames into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _syncfs(path: Path) -> bool:
    """Flush the whole file system holding ``path`` (Linux ``syncfs``); False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
    except (OSError, AttributeError):
        return False
    try:
        return libc.syncfs(fd) == 0
    except AttributeError:
        return False
    finally:
        os.close(fd)


def flush_files(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Wait until the files ``paths`` (written, renamed into place, not yet flushed) and the folders holding them are
    on disk: one ``syncfs`` on Linux, else an fsync of each file and folder. Renamed files only become durable
    here, so whoever publishes them (a swap into OUT) calls this first."""
    files = [Path(p) for p in paths]
    if not files:
        return
    if not _syncfs(files[0].parent):
        for p in files:
            with open(p, "rb+") as f:
                os.fsync(f.fileno())
        for d in {p.parent for p in files}:
            fsync_dir(d)


class AtomicBatch:
    """Write many files atomically with one flush to disk for the whole batch.

    Each :meth:`write` puts the data in a temporary file next to its target; :meth:`commit`
    flushes them all to disk at once (``syncfs`` on Linux, else one fsync per file), then renames
    each into place and flushes the folders. A crash at any point leaves every target either
    absent, old, or complete, as with :func:`write_atomic`, for a fraction of the fsync calls.
    Leaving the ``with`` block by an exception removes the temporary files.
    """

    def __init__(self, *, fsync: bool = True, writeback: bool = False) -> None:
        self.fsync = fsync
        self.writeback = writeback and hasattr(os, "posix_fadvise")
        """Ask the kernel to start writing each file to disk as soon as it is written, without waiting for it (the
        disk then works while the CPU goes on); with ``fsync=False``, :func:`flush_files` later waits for it."""
        self._pending: list[tuple[Path, Path]] = []
        self._dirs: set[Path] = set()

    def write(self, path: str | os.PathLike[str], data: bytes) -> None:
        """Stage ``data`` for ``path`` (visible there only after :meth:`commit`)."""
        target = Path(path)
        parent = target.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)
        tmp = parent / f".{target.name[:80]}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        self._pending.append((tmp, target))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if self.writeback:
                f.flush()
                with contextlib.suppress(OSError):
                    os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # starts the write-out, returns

    def link(self, path: str | os.PathLike[str], src: str | os.PathLike[str]) -> None:
        """Stage the file ``src`` for ``path`` by a hard link (no bytes copied; ``src`` must not change after),
        or by a copy where a link is not possible (another file system)."""
        target = Path(path)
        parent = target.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)
        tmp = parent / f".{target.name[:80]}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            os.link(src, tmp, follow_symlinks=False)
        except OSError:
            self.write(target, Path(src).read_bytes())
            return
        self._pending.append((tmp, target))

    def staged(self) -> list[tuple[Path, Path]]:
        """The (temporary file, target) pairs written and not yet committed (to hand to another process's batch)."""
        return list(self._pending)

    def adopt(self, pairs: list[tuple[Path, Path]]) -> None:
        """Take over files another batch staged (in a worker process): this batch commits or discards them."""
        for tmp, target in pairs:
            self._pending.append((Path(tmp), Path(target)))
            self._dirs.add(Path(target).parent)

    def commit(self) -> None:
        """Flush the staged files to disk and move them into place."""
        if not self._pending:
            return
        synced = self.fsync and _syncfs(self._pending[0][0].parent)
        if self.fsync and not synced:
            for tmp, _ in self._pending:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
        for tmp, target in self._pending:
            os.replace(tmp, target)
        self._pending.clear()
        if self.fsync and not (synced and _syncfs(next(iter(self._dirs)))):  # one flush holds every rename
            for d in self._dirs:
                fsync_dir(d)

    def discard(self) -> None:
        """Remove staged files that were not committed."""
        for tmp, _ in self._pending:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self._pending.clear()

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
