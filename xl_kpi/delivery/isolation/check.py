"""The check itself: which files are meant for whom (manifest, index, outbox), their integrity, the report."""

from __future__ import annotations

import email
import email.policy
import io
import os
import zipfile
from collections.abc import Callable
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from xl_kpi.delivery.isolation.audience import _Company
from xl_kpi.delivery.isolation.earlier import add_history
from xl_kpi.delivery.isolation.model import IsolationReport, Leak
from xl_kpi.delivery.isolation.opener import _Opener
from xl_kpi.delivery.isolation.scan import _Scanner
from xl_kpi.delivery.isolation.text import _sha
from xl_kpi.i18n import English, Msg, Plural
from xl_kpi.inputs.identity import canonical_address
from xl_kpi.outputs.csvsafe import read_rows

# -------------------------------------------------------------------------------- the check



def check(out_dir: str | os.PathLike[str]) -> list[Leak]:
    """Every leak (and integrity finding) in the files produced for people under ``out_dir``; [] = isolated."""
    return check_report(out_dir).leaks


def check_report(
    out_dir: str | os.PathLike[str], *, cards: bool = True, distribution: bool = True, outbox: bool = True,
    full: bool = False, jobs: int = 1, on_progress: Callable[[int, int], None] | None = None,
    results: Any = None,
) -> IsolationReport:
    """Run the isolation check (see the module doc); the parts to look at can be switched off.

    Encrypted workbooks listed in ``distribution/binding.csv`` are checked through the plain workbook
    they were proved to decrypt to when they were encrypted (a card of ``cards/``, or a team
    summary made again from the results), which must hash to the bound sha256: no key is derived
    from a password. ``full``: ignore ``binding.csv`` and decrypt every encrypted workbook with its
    password from ``passwords.csv``, independently of how it was made (for auditors; 100,000
    SHA-512 rounds per file).

    ``jobs``: worker processes sharing the files (each file's findings do not depend on the others'; a
    card and its employee's bundle go to the same worker, which then reads the card once).
    ``on_progress(done, total)``: called as files are checked (a progress bar: at 10,000 employees the check
    takes tens of seconds).
    ``results``: the :class:`~xl_kpi.results.Results` of ``out_dir`` when the caller holds them already (``distribute``
    before it mails: the results its bundles were made from), so that they are not read and held twice;
    by default they are read from ``out_dir/results/``.
    """
    from xl_kpi.outputs.layout import BINDING, FOLDER, INDEX, OUTBOX, PASSWORDS
    from xl_kpi.outputs.results_files import load_results

    out = Path(out_dir)
    if results is None:
        results = load_results(out)
    company = _Company(results)
    report = IsolationReport()
    add_history(out, results, company, report)
    scanner = _Scanner(company, report)
    dist = out / FOLDER
    bound: dict[str, str] = {}
    if not full and (dist / BINDING).exists():
        for r in read_rows(dist / BINDING):
            if r.get("sha256") and r.get("source_sha256"):
                bound[r["sha256"]] = r["source_sha256"]
    opener = _Opener(scanner, bound, _sources(out, results, dist / INDEX) if bound else {})
    units: list[tuple[str, _Unit]] = []

    def defer(affinity: str, unit: _Unit) -> None:
        units.append((affinity, unit))

    if cards:
        _check_cards(out, company, scanner, defer)

    index_rows = read_rows(dist / INDEX) if (dist / INDEX).exists() else []
    pw_rows = read_rows(dist / PASSWORDS) if (dist / PASSWORDS).exists() else []
    passwords: dict[str, str] = {}
    for r in pw_rows:
        if r.get("bundle") and r.get("password"):
            passwords[_bundle_key(r["bundle"])] = r["password"]
    bundles: dict[str, dict[str, Any]] = {}
    for r in index_rows:
        b = bundles.setdefault(r["bundle"], {"members": set(), "files": {}, "recipient": r.get("recipient", ""),
                                             "email": r.get("recipient_email", "")})
        if r.get("employee_id"):
            b["members"].add(r["employee_id"].strip())
        b["files"][r["file"]] = r.get("sha256", "")
        b.setdefault("source", r.get("source_sha256", ""))
    del index_rows, pw_rows  # not held while the files are checked (10,000 rows: some 10 MB)

    if distribution and dist.is_dir():
        _check_distribution(dist, bundles, passwords, company, scanner, defer, FOLDER)

    box = out / OUTBOX
    if outbox and box.is_dir():
        by_address: dict[str, dict[str, Any]] = {}
        for name, b in bundles.items():
            a = canonical_address(b["email"])
            if a:
                entry = by_address.setdefault(a, {"members": set(), "passwords": [], "names": set()})
                entry["members"] |= b["members"]
                entry["names"].add(b["recipient"])
                if _bundle_key(name) in passwords:
                    entry["passwords"].append(passwords[_bundle_key(name)])
        for path in sorted(box.rglob("*.eml")):
            defer(path.name, lambda sc, op, path=path: _check_eml(out, path, by_address, company, sc, op))
    _run(units, scanner, opener, jobs, on_progress)
    report.leaks.sort()
    return report


_Unit = Callable[[_Scanner, _Opener], None]
"""The check of one file or bundle, reporting to the scanner and opener it is given."""
_UNITS: list[tuple[str, _Unit]] = []
_PARTS: list[Any] = []  # the parent's opener and the progress counter


def _run(units: list[tuple[str, _Unit]], scanner: _Scanner, opener: _Opener, jobs: int,
         on_progress: Callable[[int, int], None] | None = None) -> None:
    """Run ``units`` here (``jobs`` 1, or few units) or in ``jobs`` forked workers, merging their findings.

    Units of the same affinity (a card and its employee's bundle) run one after the other in one worker, so
    the small caches of its opener serve the second from the first (the findings do not depend on the order).
    The workers count the units they have checked in one shared counter, which ``on_progress`` reports."""
    import multiprocessing as mp

    units = sorted(units, key=lambda u: u[0])
    total = len(units)
    if jobs <= 1 or total < 2 * MIN_UNITS or "fork" not in mp.get_all_start_methods():
        for done, (_, unit) in enumerate(units, 1):
            unit(scanner, opener)
            if on_progress and (done % PROGRESS_EVERY == 0 or done == total):
                on_progress(done, total)
        return
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    parts: list[list[int]] = [[] for _ in range(jobs)]
    for i, (affinity, _) in enumerate(units):
        parts[int(_sha(affinity.encode("utf-8"))[:8], 16) % jobs].append(i)
    fork = mp.get_context("fork")
    counter = fork.Value("q", 0)
    _UNITS[:], _PARTS[:] = units, [opener, counter]  # inherited by the forked workers, never pickled
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=fork) as pool:
            futures = [pool.submit(_work, part) for part in parts]
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
                if on_progress:
                    on_progress(min(counter.value, total), total)
            for future in futures:  # in the order of the parts: the same report every run
                leaks, files, decrypted, bound, skipped = future.result()
                rep = scanner.report
                rep.leaks += leaks
                rep.files += files
                rep.decrypted += decrypted
                rep.bound += bound
                rep.skipped_ambiguous += skipped
    finally:
        _UNITS.clear()
        _PARTS.clear()


MIN_UNITS = 16
"""Fewer files than this per worker are checked in the process itself (starting workers costs more)."""
PROGRESS_EVERY = 50
"""Files a worker (or the process itself) checks between two updates of the shared progress count."""


def _work(indices: list[int]) -> tuple[list[Leak], int, int, int, int]:
    """In a worker: run the units ``indices`` with a scanner of its own, counting them in the shared progress
    counter; return what it found."""
    parent, counter = _PARTS
    report = IsolationReport()
    scanner = _Scanner(parent.scanner.company, report)
    opener = _Opener(scanner, parent.bound, parent.sources)
    for n, i in enumerate(indices, 1):
        _UNITS[i][1](scanner, opener)
        if n % PROGRESS_EVERY == 0 or n == len(indices):
            with counter.get_lock():
                counter.value += PROGRESS_EVERY if n % PROGRESS_EVERY == 0 else n % PROGRESS_EVERY
    return report.leaks, report.files, report.decrypted, report.bound, report.skipped_ambiguous


def _sources(out: Path, results: Any, index: Path) -> dict[str, Callable[[], bytes | None]]:
    """Plain sha256 → how to get those bytes again: the cards of manifest.csv, the team summaries of index.csv."""
    from xl_kpi.outputs.summary import summary_bytes

    sources: dict[str, Callable[[], bytes | None]] = {}
    if (out / "manifest.csv").exists():
        for r in read_rows(out / "manifest.csv"):
            if r.get("file") and r.get("sha256"):
                path = out / r["file"]
                sources[r["sha256"]] = lambda path=path: path.read_bytes() if path.is_file() else None
    teams: dict[str, set[str]] = {}
    summary_src: dict[str, str] = {}
    for r in read_rows(index) if index.exists() else []:
        if r.get("employee_id"):
            teams.setdefault(r["bundle"], set()).add(r["employee_id"].strip())
        if r.get("kind") == "summary" and r.get("source_sha256"):
            summary_src[r["bundle"]] = r["source_sha256"]
    for bundle, src in summary_src.items():
        members = sorted(teams.get(bundle, set()))
        sources.setdefault(src, lambda members=members: summary_bytes(results, members=members))
    return sources


def _bundle_key(bundle: str) -> str:
    return bundle[:-4] if bundle.lower().endswith(".zip") else bundle


def _check_cards(out: Path, company: _Company, scanner: _Scanner, defer: Callable[[str, _Unit], None]) -> None:
    cards = out / "cards"
    if not cards.is_dir():
        return
    manifest = {}
    if (out / "manifest.csv").exists():
        for r in read_rows(out / "manifest.csv"):
            if r.get("file"):
                manifest[r["file"]] = (r.get("employee_id", "").strip(), r.get("sha256", ""))
    for path in sorted(p for p in cards.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        eid, sha = manifest.get(rel, ("", ""))

        def unit(scanner: _Scanner, opener: _Opener, path: Path = path, rel: str = rel, eid: str = eid,
                 sha: str = sha) -> None:
            data = path.read_bytes()
            audience = frozenset({eid}) if eid else frozenset()
            label = f"{eid} {company.people[eid].name}" if eid in company.people else ""
            if not eid:
                scanner.leak(rel, "unlisted", "", English(Msg("not in manifest.csv")), label)
            elif sha and _sha(data) != sha:
                scanner.leak(rel, "modified", eid, English(Msg("differs from the sha256 in manifest.csv")), label)
            opener.scan(rel, data, company.allowed(audience), label, [])

        defer(sha or rel, unit)


def _check_distribution(dist: Path, bundles: dict[str, dict[str, Any]], passwords: dict[str, str],
                        company: _Company, scanner: _Scanner, defer: Callable[[str, _Unit], None], folder: str
                        ) -> None:
    from xl_kpi.outputs.layout import HR_FILES

    seen: set[str] = set()
    for top in sorted(dist.iterdir()):
        if top.name in HR_FILES and top.is_file():
            continue
        if top.is_file():
            scanner.leak(f"{folder}/{top.name}", "unlisted", "", English(Msg("a file nobody is meant to get")), "")
            defer(top.name, lambda sc, op, top=top: op.scan(f"{folder}/{top.name}", top.read_bytes(),
                                                            company.allowed(frozenset()), "", []))
            continue
        for entry in sorted(top.iterdir()):
            bundle = f"{top.name}/{entry.name}"
            seen.add(bundle)
            info = bundles.get(bundle)
            if info is None:
                scanner.leak(f"{folder}/{bundle}", "unlisted", "", English(Msg("a bundle index.csv does not list")), "")
            defer((info or {}).get("source") or bundle,
                  lambda sc, op, entry=entry, bundle=bundle, info=info: _check_bundle(
                      entry, bundle, info, passwords, company, sc, op, folder))
    for bundle in sorted(set(bundles) - seen):
        scanner.leak(f"{folder}/{bundle}", "missing", "", English(Msg("listed in index.csv but not there")), "")


def _check_bundle(entry: Path, bundle: str, info: dict[str, Any] | None, passwords: dict[str, str],
                  company: _Company, scanner: _Scanner, opener: _Opener, folder: str) -> None:
    """One bundle (folder or zip): each file's integrity against index.csv, then its content."""
    members = frozenset(info["members"]) if info else frozenset()
    aud = (f"{info['recipient']} <{info['email']}>" if info["email"] else info["recipient"]) if info else ""
    allowed = company.allowed(members, [info["recipient"]] if info else [])
    pw = [passwords[_bundle_key(bundle)]] if _bundle_key(bundle) in passwords else []
    label = f"{folder}/{bundle}"
    if entry.is_dir():
        files = {p.relative_to(entry).as_posix(): p for p in sorted(entry.rglob("*")) if p.is_file()}
        for rel, p in files.items():
            data = p.read_bytes()
            _integrity(scanner, f"{label}/{rel}", data, info, rel, aud)
            opener.scan(f"{label}/{rel}", data, allowed, aud, pw)
        listed = set(info["files"]) if info else set()
    else:
        data = entry.read_bytes()
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                files = {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
        except (zipfile.BadZipFile, OSError):
            files = {}
        for rel, member in files.items():
            _integrity(scanner, f"{label}!/{rel}", member, info, rel, aud)
        opener.scan(label, data, allowed, aud, pw)
        listed = set(info["files"]) if info else set()
    for missing in sorted(listed - set(files)):
        scanner.leak(f"{label}/{missing}", "missing", "", English(Msg("listed in index.csv but not there")), aud)


def _integrity(scanner: _Scanner, label: str, data: bytes, info: dict[str, Any] | None, rel: str, aud: str) -> None:
    if info is None:
        return
    if rel not in info["files"]:
        scanner.leak(label, "unlisted", "", English(Msg("a file index.csv does not list for this bundle")), aud)
    elif info["files"][rel] and info["files"][rel] != _sha(data):
        scanner.leak(label, "modified", "", English(Msg("differs from the sha256 in index.csv")), aud)


def _check_eml(out: Path, path: Path, by_address: dict[str, dict[str, Any]], company: _Company,
               scanner: _Scanner, opener: _Opener) -> None:
    rel = path.relative_to(out).as_posix()
    data = path.read_bytes()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    addrs = [a for _, a in getaddresses([str(v) for h in ("To", "Cc", "Bcc") for v in msg.get_all(h, [])]) if a]
    if len(addrs) != 1:
        scanner.leak(rel, "recipients", "", English(Plural(
            "{n} recipient ({addresses}); exactly one expected", "{n} recipients ({addresses}); exactly one expected",
            len(addrs), addresses=", ".join(addrs[:5]))), "")
    address = canonical_address(addrs[0]) if addrs else ""
    entry = by_address.get(address, {"members": set(), "passwords": [], "names": set()})
    owners = company.audience_of_address(address)
    if len(owners) > 1:
        scanner.leak(rel, "recipients", "", English(Msg("{address} is the address of {n} employees ({ids})",
                                                        address=address, n=len(owners), ids=", ".join(sorted(owners)))),
                     address)
    members = frozenset(entry["members"] | owners)
    allowed = company.allowed(members, sorted(entry["names"]))
    opener.scan(rel, data, allowed, address, entry["passwords"])
