"""What is already in OUT: the cards ``xl-kpi generate`` wrote (each checked against manifest.csv) and the
previous distribution, whose unchanged files and passwords a rerun takes over byte for byte."""

from __future__ import annotations

import csv
import hashlib
import os
import stat
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import Msg
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.csvsafe import read_rows
from xl_kpi.outputs.layout import BINDING, INDEX, PASSWORDS
from xl_kpi.results import Results

CHUNK = 1 << 20
"""Files and zip members are hashed and compared in blocks of 1 MiB, never read whole."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha_stream(fh: BinaryIO) -> str:
    """sha256 of what is left in a binary file object, read in 1 MiB blocks."""
    h = hashlib.sha256()
    while block := fh.read(CHUNK):
        h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ZipMember:
    """A file inside a previous run's zip bundle, by reference: its bytes are read only when it is shipped
    again (one member at a time), and must still hash to the sha256 index.csv gave it."""

    zip: Path
    name: str
    sha256: str

    def read_bytes(self) -> bytes:
        with _LOCK:
            data = _open_zip(self.zip).read(self.name)
        if _sha(data) != self.sha256:
            raise KpiError(Msg("{zip}: {name} changed while xl-kpi distribute was running; run it again",
                               zip=str(self.zip), name=self.name))
        return data

    def head(self, n: int) -> bytes:
        with _LOCK, _open_zip(self.zip).open(self.name) as fh:
            return fh.read(n)


_LOCK = threading.Lock()
_OPEN: list[tuple[Path, tuple[int, int, int], zipfile.ZipFile]] = []
"""The previous zip being read, kept open (a bundle's members are read in a row: opening the zip for each
member would read its central directory once per member); :func:`close_zips` closes it."""


def _open_zip(path: Path) -> zipfile.ZipFile:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise KpiError(Msg("{path} became a symbolic link while xl-kpi distribute was running; run it again",
                           path=str(path)))
    sig = (st.st_ino, st.st_mtime_ns, st.st_size)
    if _OPEN and _OPEN[0][:2] == (path, sig):
        return _OPEN[0][2]
    close_zips()
    zf = zipfile.ZipFile(path)
    _OPEN.append((path, sig, zf))
    return zf


def close_zips() -> None:
    """Close the previous zip kept open by :class:`ZipMember` (before the previous distribution is removed)."""
    while _OPEN:
        _OPEN.pop()[2].close()


def _load_cards(out: Path, results: Results, problems: Problems) -> dict[str, tuple[Path, str]]:
    """employee_id → (card path, sha256) from manifest.csv, every card checked against its sha256."""
    manifest = out / "manifest.csv"
    if not manifest.exists():
        raise KpiError(Msg("{manifest}: not found; is {out} the output folder of 'xl-kpi generate'?",
                           manifest=str(manifest), out=str(out)))
    known = {str(e).strip() for e in results.employees["employee_id"]}
    cards: dict[str, tuple[Path, str]] = {}
    seen: dict[str, int] = {}
    twice: set[str] = set()
    for n, row in enumerate(read_rows(manifest), start=2):
        eid, rel, sha = row.get("employee_id", "").strip(), row.get("file", ""), row.get("sha256", "")
        where = {"file": "manifest.csv", "row": n}
        if eid in seen:  # which of the two cards is theirs? neither is sent
            problems.error(Msg("two cards for employee {eid} (manifest.csv rows {seen} and {n_})", eid=eid,
                               seen=seen[eid], n_=n),
                           Msg("run xl-kpi generate again"), **where)
            twice.add(eid)
            continue
        seen[eid] = n
        path = (out / rel).resolve()
        if not rel or not path.is_relative_to((out / "cards").resolve()):
            problems.error(Msg("card of {eid}: {rel!r} is not a file under cards/", eid=eid, rel=rel),
                           Msg("run xl-kpi generate again"), **where)
            continue
        if eid not in known:
            problems.error(Msg("card {rel} is for employee {eid!r}, who is not in the results", rel=rel,
                               eid=eid),
                           Msg("run xl-kpi generate again"), **where)
            continue
        if not path.is_file():
            problems.error(Msg("card of {eid} is missing: {rel}", eid=eid, rel=rel),
                           Msg("run xl-kpi generate again"), **where)
            continue
        with path.open("rb") as fh:
            same = sha_stream(fh) == sha
        if not same:
            problems.error(Msg("card of {eid} was changed after xl-kpi generate wrote it: {rel}", eid=eid,
                               rel=rel),
                           Msg("run xl-kpi generate again (a card edited by hand is not sent)"), **where)
            continue
        cards[eid] = (path, sha)
    for eid in twice:
        cards.pop(eid, None)
    return cards


@dataclass
class _Previous:
    """The previous distribution: files that can be taken over unchanged, and its passwords."""

    files: dict[tuple[str, str], tuple[str, str, Path | ZipMember]] = field(default_factory=dict)
    """(bundle key, file) → (source sha256, sha256, where: the file of a folder bundle, or a zip member)."""
    pdfs: dict[str, Path | ZipMember] = field(default_factory=dict)
    """source sha256 → plain PDF (its file, or its zip member)."""
    passwords: dict[str, str] = field(default_factory=dict)
    """bundle key → password."""
    by_id: dict[str, str] = field(default_factory=dict)
    by_bundle: dict[str, str] = field(default_factory=dict)
    bound: dict[str, str] = field(default_factory=dict)
    """sha256 of an encrypted file → the plain sha256 it was proved to open to (the previous binding.csv)."""


def _previous(dist: Path, *, read_passwords: bool, problems: Problems) -> _Previous:
    prev = _Previous()
    index = dist / INDEX
    if not index.exists():
        return prev
    try:
        rows = read_rows(index)
        if read_passwords and (dist / PASSWORDS).exists():
            from xl_kpi.delivery.crypto import read_passwords as read_pw

            quiet = Problems()
            prev.by_id, prev.by_bundle = read_pw(dist / PASSWORDS, quiet, ours=True)
            if quiet.has_errors:
                problems.warning(Msg("the previous passwords.csv could not be read; new passwords are generated"),
                                 file=str(dist / PASSWORDS))
                prev.by_id, prev.by_bundle = {}, {}
            for r in read_rows(dist / PASSWORDS):
                if r.get("bundle"):
                    prev.passwords[r["bundle"]] = r.get("password", "")
        if (dist / BINDING).exists():
            prev.bound = {r["sha256"]: r["source_sha256"] for r in read_rows(dist / BINDING)
                          if r.get("sha256") and r.get("source_sha256")}
    except (OSError, UnicodeDecodeError, csv.Error, KeyError):
        return _Previous()
    current: tuple[str, zipfile.ZipFile | None] = ("", None)  # one previous zip open at a time (rows are sorted)
    try:
        for r in rows:
            bundle, name, sha, src = (r.get("bundle", ""), r.get("file", ""), r.get("sha256", ""),
                                      r.get("source_sha256", ""))
            if not (bundle and name and sha and src):
                continue
            where: Path | ZipMember
            try:
                if bundle.endswith(".zip"):
                    if current[0] != bundle:
                        if current[1] is not None:
                            current[1].close()
                        current = (bundle, None)
                        if not (dist / bundle).is_symlink():
                            current = (bundle, zipfile.ZipFile(dist / bundle))
                    zf = current[1]
                    if zf is None:
                        continue
                    with zf.open(name) as fh:  # streamed: a member is hashed in blocks, never held
                        ok, head = sha_stream(fh) == sha, b""
                    if ok:
                        with zf.open(name) as fh:
                            head = fh.read(5)
                    where = ZipMember(dist / bundle, name, sha)
                else:
                    path = dist / bundle / name
                    with path.open("rb") as fh:
                        head = fh.read(5)
                        fh.seek(0)
                        ok = sha_stream(fh) == sha
                    where = path
            except (OSError, KeyError, zipfile.BadZipFile):
                continue
            if not ok:
                continue
            key = bundle[:-4] if bundle.endswith(".zip") else bundle
            prev.files[(key, name)] = (src, sha, where)
            if name.lower().endswith(".pdf") and head == b"%PDF-":
                prev.pdfs[src] = where
    finally:
        if current[1] is not None:
            current[1].close()
    return prev
