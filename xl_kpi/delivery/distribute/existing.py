"""What is already in OUT: the cards ``xl-kpi generate`` wrote (each checked against manifest.csv) and the
previous distribution, whose unchanged files and passwords a rerun takes over byte for byte."""

from __future__ import annotations

import csv
import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import Msg
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.csvsafe import read_rows
from xl_kpi.outputs.layout import BINDING, INDEX, PASSWORDS
from xl_kpi.results import Results


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_cards(out: Path, results: Results, problems: Problems) -> dict[str, tuple[Path, str]]:
    """employee_id → (card path, sha256) from manifest.csv, every card checked against its sha256."""
    manifest = out / "manifest.csv"
    if not manifest.exists():
        raise KpiError(f"{manifest}: not found; is {out} the output folder of 'xl-kpi generate'?")
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
        if _sha(path.read_bytes()) != sha:
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

    files: dict[tuple[str, str], tuple[str, str, Path | bytes]] = field(default_factory=dict)
    """(bundle key, file) → (source sha256, sha256, where: the file of a folder bundle, or a zip member's bytes)."""
    pdfs: dict[str, Path | bytes] = field(default_factory=dict)
    """source sha256 → plain PDF (its file, or its bytes)."""
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
    archives: dict[str, dict[str, bytes]] = {}
    for r in rows:
        bundle, name, sha, src = r.get("bundle", ""), r.get("file", ""), r.get("sha256", ""), r.get("source_sha256", "")
        if not (bundle and name and sha and src):
            continue
        try:
            if bundle.endswith(".zip"):
                if bundle not in archives:
                    with zipfile.ZipFile(dist / bundle) as zf:
                        archives[bundle] = {i.filename: zf.read(i) for i in zf.infolist()}
                data = archives[bundle].get(name)
            else:
                data = (dist / bundle / name).read_bytes()
        except (OSError, zipfile.BadZipFile):
            continue
        if data is None or _sha(data) != sha:
            continue
        key = bundle[:-4] if bundle.endswith(".zip") else bundle
        where: Path | bytes = data if bundle.endswith(".zip") else dist / bundle / name  # folders: not held
        prev.files[(key, name)] = (src, sha, where)
        if name.lower().endswith(".pdf") and data[:5] == b"%PDF-":
            prev.pdfs[src] = where
        del data
    return prev
