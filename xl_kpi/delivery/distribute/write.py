"""Writing ``OUT/distribution``: the bundles (folders or deterministic zips), ``index.csv`` and
``passwords.csv``, all staged in a folder of their own and then swapped in for the previous ones."""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from xl_kpi.delivery.distribute.bundles import _natural
from xl_kpi.delivery.distribute.existing import CHUNK, close_zips
from xl_kpi.delivery.distribute.model import Bundle, DistributionReport, ShippedFile
from xl_kpi.outputs import outdir
from xl_kpi.outputs.atomic import AtomicBatch
from xl_kpi.outputs.csvsafe import csv_bytes
from xl_kpi.outputs.layout import BINDING, FOLDER, INDEX, PASSWORDS
from xl_kpi.outputs.ooxml import stream_zip, write_zip

INDEX_COLUMNS = ("bundle", "recipient", "recipient_email", "employee_id", "file", "sha256", "kind", "recipient_id",
                 "source_sha256")
PASSWORD_COLUMNS = ("bundle", "recipient", "employee_id", "password")
BINDING_COLUMNS = ("bundle", "file", "sha256", "source_sha256")
STAGING_PREFIX = ".xl-kpi-distribute-"


def zip_bytes(files: Iterable[tuple[str, bytes]]) -> bytes:
    """A deterministic zip: entries sorted by name, fixed timestamps and permissions, deflated."""
    return write_zip(files)


class _SameAs:
    """Compares bytes written, block by block, with a previous file (opened without following a link, regular
    files only): whether the new file is byte for byte the old one, without holding either whole."""

    def __init__(self, old: Path) -> None:
        self.fh = None
        self.ino: tuple[int, int] | None = None
        try:
            fd = os.open(old, os.O_RDONLY | outdir.NOFOLLOW | getattr(os, "O_BINARY", 0))
        except OSError:
            return
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return
        self.fh, self.ino = os.fdopen(fd, "rb"), (st.st_dev, st.st_ino)

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        for i in range(0, len(view), CHUNK):
            if self.fh is None:
                return
            piece = view[i:i + CHUNK]
            if self.fh.read(len(piece)) != piece:
                self.close()

    def same(self) -> bool:
        ok = self.fh is not None and self.fh.read(1) == b""
        self.close()
        return ok

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
        self.fh = None


def _stage_zip(batch: AtomicBatch, target: Path, files: Sequence[ShippedFile], old: Path) -> bool:
    """Stage the zip of ``files`` for ``target``, streamed to disk (one member in memory at a time).

    When the previous run's zip ``old`` is byte for byte what was written, it is kept instead (a hard link:
    same inode, same mtime) and True is returned; a zip that differs is replaced.
    """
    fd, name = batch.open(target)  # committed with the rest, or removed
    tmp = Path(name)
    previous = _SameAs(old)
    with os.fdopen(fd, "wb") as fh:
        def write(data: bytes) -> None:
            fh.write(data)
            previous.feed(data)

        stream_zip(((f.name, f.content) for f in files), write)
    if not previous.same():
        return False
    kept = tmp.with_name(tmp.name + ".kept")
    try:
        os.link(old, kept, follow_symlinks=False)
        st = os.lstat(kept)
        if (st.st_dev, st.st_ino) != previous.ino:  # replaced meanwhile: keep what was written
            os.unlink(kept)
            return False
    except OSError:  # no hard links here: the bytes written are the same anyway
        return False
    os.replace(kept, tmp)
    return True


def _index_rows(bundles: Sequence[Bundle], zipped: bool) -> list[list[str]]:
    rows = []
    for b in bundles:
        if b.failed:
            continue
        bundle = f"{b.key}.zip" if zipped else b.key
        for f in b.files:
            rows.append([bundle, b.recipient, b.recipient_email, f.employee_id, f.name, f.sha256, f.kind,
                         b.recipient_id, f.source_sha256])
    rows.sort(key=lambda r: (_natural(r[0]), r[6] != "summary", _natural(r[4])))
    return rows


def _bound_files(bundles: Sequence[Bundle], zipped: bool) -> set[tuple[str, str]]:
    return {(f"{b.key}.zip" if zipped else b.key, f.name) for b in bundles if not b.failed for f in b.files if f.bound}


def _write(out: Path, report: DistributionReport) -> None:
    """Stage the whole distribution, then swap it in for the previous one."""
    opts = report.options
    for p in out.glob(f"{STAGING_PREFIX}*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    outdir.refuse_symlink(out / FOLDER)
    staging = out / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging.mkdir(mode=0o700)
    target = staging / FOLDER
    try:
        with AtomicBatch() as batch:
            for b in report.bundles:
                if b.failed:
                    continue
                if opts.zip:
                    name = f"{b.name}.zip"
                    report.zips_kept += _stage_zip(batch, target / b.by / name, b.files, out / FOLDER / b.by / name)
                else:
                    for f in b.files:
                        if f.own and isinstance(f.path, Path):
                            batch.link(target / b.by / b.name / f.name, f.path)
                        else:
                            batch.write(target / b.by / b.name / f.name, f.content())
            batch.write(target / INDEX, csv_bytes(INDEX_COLUMNS, _index_rows(report.bundles, opts.zip)))
            if opts.encrypt:
                rows = [[b.key, b.recipient, b.recipient_id, b.password or ""] for b in report.bundles if not b.failed]
                rows.sort(key=lambda r: _natural(r[0]))
                batch.write(target / PASSWORDS, csv_bytes(PASSWORD_COLUMNS, rows))
                proved = _bound_files(report.bundles, opts.zip)
                bound = [[r[0], r[4], r[5], r[8]] for r in _index_rows(report.bundles, opts.zip)
                         if (r[0], r[4]) in proved]
                batch.write(target / BINDING, csv_bytes(BINDING_COLUMNS, bound))
        close_zips()  # every member taken over is written: nothing holds the previous zips open
        if opts.encrypt:
            os.chmod(target / PASSWORDS, 0o600)
        target.mkdir(exist_ok=True)
        old = staging / ".previous"
        final = out / FOLDER
        if final.exists():
            os.replace(final, old)
        os.replace(target, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.index_file = final / INDEX
    report.passwords_file = final / PASSWORDS if opts.encrypt else None
    for b in report.bundles:
        if not b.failed:
            b.path = final / b.by / (f"{b.name}.zip" if opts.zip else b.name)
