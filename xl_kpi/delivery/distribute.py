"""Get each KPI card to the right person, and only to that person (``xl-kpi distribute``).

After ``xl-kpi generate`` has written ``OUT``, :func:`distribute` builds bundles from it:

* ``--by employee``: one bundle per carded employee with only their card;
* ``--by manager``: one bundle per manager with the cards of their direct reports and a team
  summary workbook holding only those rows and totals;
* ``--by department``: the same per department.

Layout (everything replaced as a whole on a rerun: built in a staging folder, then swapped in)::

    OUT/distribution/index.csv            bundle, recipient, recipient_email, employee_id, file, sha256, ...
    OUT/distribution/passwords.csv        with --encrypt only: for HR, never inside a bundle or a message
    OUT/distribution/<by>/<bundle>/...    or <bundle>.zip with --zip

``--encrypt`` encrypts every workbook of a bundle with the bundle recipient's password
(:mod:`xl_kpi.delivery.crypto`); ``--pdf`` adds (``--pdf-only``: ships instead) a PDF of each card and
team summary, made by LibreOffice in one batch (:mod:`xl_kpi.delivery.office`). :func:`send` mails the
bundles (:mod:`xl_kpi.delivery.mail`) after :mod:`xl_kpi.delivery.isolation` has proved that no bundle holds anybody
else's data. Nothing is guessed: a manager who cannot be matched to exactly one employee, a
missing, malformed or shared e-mail address are reported, and such bundles are not mailed.

Reruns are cheap and stable: a file whose source workbook and password have not changed is
taken over from the previous distribution byte for byte (no new encryption salt, no new PDF),
so the send log of :mod:`xl_kpi.delivery.mail` recognises what was already sent.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xl_kpi.engine.errors import KpiError
from xl_kpi.inputs.identity import Resolution, canonical_address, id_key
from xl_kpi.inputs.identity import resolve_managers as _resolve
from xl_kpi.inputs.problems import InputError, Problems
from xl_kpi.outputs import outdir
from xl_kpi.outputs.atomic import AtomicBatch
from xl_kpi.outputs.csvsafe import csv_bytes, read_rows
from xl_kpi.outputs.layout import FOLDER, INDEX, MAIL_LOG, OUTBOX, PASSWORDS
from xl_kpi.outputs.names import safe_component, safe_file_name
from xl_kpi.outputs.ooxml import write_zip
from xl_kpi.results import Results

__all__ = [
    "BY_MODES",
    "Bundle",
    "DistributionReport",
    "MailOutcome",
    "Options",
    "ShippedFile",
    "UsageError",
    "deliveries",
    "distribute",
    "plan_bundles",
    "resolve_managers",
    "send",
    "zip_bytes",
]

BY_MODES = ("employee", "manager", "department")
INDEX_COLUMNS = ("bundle", "recipient", "recipient_email", "employee_id", "file", "sha256", "kind", "recipient_id",
                 "source_sha256")
PASSWORD_COLUMNS = ("bundle", "recipient", "employee_id", "password")
STAGING_PREFIX = ".xl-kpi-distribute-"

_LABELS = {
    "en": {"manager": "KPI summary", "department": "KPI summary", "no_department": "(no department)"},
    "ru": {"manager": "Сводка KPI", "department": "Сводка KPI", "no_department": "(без отдела)"},
}

Progress = Callable[[str, int, int], None]
"""``on_progress(stage, done, total)``; stages: ``"pdf"``, ``"encrypt"``."""


class UsageError(KpiError):
    """Options that do not go together (the command line exits with 2)."""


@dataclass(frozen=True)
class Options:
    """What to build: bundle modes, zip, encryption, PDF."""

    by: tuple[str, ...] = ("employee",)
    zip: bool = False
    encrypt: bool = False
    passwords: Path | None = None
    """HR's passwords CSV (employee_id,password[,bundle]); the rest are reused or generated."""
    new_passwords: bool = False
    """Do not reuse the previous run's passwords.csv: generate fresh passwords."""
    pdf: bool = False
    pdf_only: bool = False
    allow_plain_pdf: bool = False
    """With --encrypt: ship the PDFs unencrypted (PDFs cannot be encrypted here); refused otherwise."""
    jobs: int = 1
    pdf_timeout: float = 900.0

    def __post_init__(self) -> None:
        if not self.by:
            raise UsageError("choose at least one of --by employee, manager, department")
        bad = [b for b in self.by if b not in BY_MODES]
        if bad:
            raise UsageError(f"--by {bad[0]}: use one of {', '.join(BY_MODES)}")
        if len(set(self.by)) != len(self.by):
            raise UsageError("each --by mode once")
        if self.passwords is not None and not self.encrypt:
            raise UsageError("--passwords only makes sense with --encrypt")
        if self.new_passwords and not self.encrypt:
            raise UsageError("--new-passwords only makes sense with --encrypt")
        if self.encrypt and self.with_pdf and not self.allow_plain_pdf:
            raise UsageError(
                "--encrypt with --pdf/--pdf-only: PDFs cannot be encrypted by xl-kpi, and shipping them in "
                "plain text would defeat --encrypt. Drop --pdf, or add --allow-plain-pdf to ship the PDFs "
                "unencrypted knowingly")
        if self.allow_plain_pdf and not (self.encrypt and self.with_pdf):
            raise UsageError("--allow-plain-pdf only makes sense with --encrypt and --pdf or --pdf-only")
        if self.jobs < 1:
            raise UsageError("--jobs must be at least 1")

    @property
    def with_pdf(self) -> bool:
        return self.pdf or self.pdf_only

    @property
    def with_xlsx(self) -> bool:
        return not self.pdf_only


@dataclass
class ShippedFile:
    """One file of a bundle, as shipped."""

    name: str
    kind: str
    """``card`` or ``summary``."""
    employee_id: str
    """Whose card ('' for a team summary)."""
    source_sha256: str
    """sha256 of the plain workbook the file was made from."""
    data: bytes = b""
    sha256: str = ""
    encrypted: bool = False


@dataclass
class Bundle:
    """What one recipient gets: the cards of ``members`` (and a team summary for teams)."""

    by: str
    name: str
    """Folder (or zip stem) name, safe for every file system."""
    team: str
    """Employee name, manager name or department, as in the plan."""
    recipient: str
    recipient_id: str = ""
    """The recipient's employee id ('' when the recipient is not an employee)."""
    recipient_email: str = ""
    """A checked address, or '' (then ``note`` says why)."""
    members: list[str] = field(default_factory=list)
    note: str = ""
    """Why this bundle cannot be mailed ('' when it can)."""
    password: str | None = None
    files: list[ShippedFile] = field(default_factory=list)
    path: Path | None = None
    """Where it was written (folder or .zip), after :func:`distribute`."""
    failed: str = ""
    """Why it was not written (a PDF failed), '' when it was."""

    @property
    def key(self) -> str:
        """``<by>/<name>``: the bundle's id in index.csv (without .zip) and passwords.csv."""
        return f"{self.by}/{self.name}"

    @property
    def delivery_key(self) -> str:
        """The send log's key: ``employee:1001``, ``manager:1031``, ``department:<name>``."""
        return f"{self.by}:{self.recipient_id or self.name}"

    @property
    def mailable(self) -> bool:
        return bool(self.recipient_email) and not self.note and not self.failed and self.path is not None


@dataclass
class DistributionReport:
    """What :func:`distribute` built."""

    out_dir: Path
    folder: Path
    options: Options
    bundles: list[Bundle]
    problems: Problems
    results: Results
    index_file: Path | None = None
    passwords_file: Path | None = None
    passwords: dict[str, int] = field(default_factory=dict)
    """How many bundle passwords were ``given`` (--passwords), ``reused`` (previous run), ``generated``."""
    pdf_converted: int = 0
    pdf_reused: int = 0
    pdf_seconds: float = 0.0
    encrypted: int = 0
    reused: int = 0
    elapsed: float = 0.0

    @property
    def files(self) -> int:
        return sum(len(b.files) for b in self.bundles if not b.failed)


# ------------------------------------------------------------------------------- managers


def _key(text: Any) -> str:
    """Case- and space-insensitive form of a name (NFC): how unresolved managers' teams are grouped."""
    return id_key(text)


def resolve_managers(employees: Any) -> dict[str, Resolution]:
    """Match every distinct ``manager`` value to exactly one employee, by employee_id or by name.

    Keys are the values as written (stripped). See :func:`xl_kpi.inputs.identity.resolve_managers`: an
    exact id, or the name of exactly one employee (``by="name"``, reported as a warning); a value
    matching nobody, several employees, or one of the very employees who name this manager (a
    namesake) is not resolved and ``why`` says so: the bundle is then never mailed to a guessed address.
    """
    return _resolve(employees["employee_id"], employees["name"], employees["manager"])


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    return str(v).strip()


# ------------------------------------------------------------------------------- planning


def plan_bundles(results: Results, carded: Iterable[str], by: Sequence[str], problems: Problems) -> list[Bundle]:
    """Who gets which cards, per ``by`` mode; problems (no manager, no address, ...) go to ``problems``.

    Only carded employees are in bundles; the others are reported. No bundle is left out for a
    missing address: it is built (HR may hand it over) and its ``note`` says why it is not mailed.
    """
    from xl_kpi.delivery.mail import check_address

    emp = results.employees
    carded_ids = set(carded)
    rows = [r for r in emp.to_dict("records") if str(r["employee_id"]).strip() in carded_ids]
    for r in emp.to_dict("records"):
        eid = str(r["employee_id"]).strip()
        if eid not in carded_ids:
            why = _text(r.get("reason")) or "see errors.csv"
            problems.warning(f"employee {eid} ({_text(r['name'])}) has no card ({why}): nothing to distribute",
                             "fix the inputs and run xl-kpi generate again", file="manifest.csv")
    people = {str(r["employee_id"]).strip(): r for r in emp.to_dict("records")}
    labels = _LABELS.get(results.language, _LABELS["en"])
    bundles: list[Bundle] = []

    def address(eid: str) -> tuple[str, str]:
        raw = _text(people[eid].get("email"))
        why = check_address(raw) if raw else "no e-mail address in the plan"
        return ("", f"{eid} {_text(people[eid]['name'])}: {why}") if why else (raw, "")

    if "employee" in by:
        for r in rows:
            eid = str(r["employee_id"]).strip()
            mail, why = address(eid)
            bundles.append(Bundle("employee", "", _text(r["name"]), _text(r["name"]), eid, mail, [eid], why))
    if "manager" in by:
        res = resolve_managers(emp)
        teams: dict[str, Bundle] = {}
        orphans = []
        for r in rows:
            eid = str(r["employee_id"]).strip()
            m = _text(r.get("manager"))
            if not m:
                orphans.append(f"{eid} {_text(r['name'])}")
                continue
            rr = res[m]
            tkey = rr.employee_id if rr.employee_id else "?" + _key(m)
            if tkey not in teams:
                if rr.employee_id:
                    mid = rr.employee_id
                    mail, why = address(mid)
                    teams[tkey] = Bundle("manager", "", _text(people[mid]["name"]), _text(people[mid]["name"]), mid,
                                         mail, [], why)
                else:
                    teams[tkey] = Bundle("manager", "", m, m, "", "", [], rr.why)
            teams[tkey].members.append(eid)
        by_name = {m: r.employee_id for m, r in res.items() if r.by == "name" and r.employee_id}
        if by_name:
            pairs = [f"{m!r} → {eid}" for m, eid in sorted(by_name.items(), key=lambda x: _natural(x[1] or ""))]
            n = len(pairs)
            problems.warning(f"{n} manager{'s are' if n > 1 else ' is'} given by name, not by employee_id, and "
                             f"matched to the one employee of that name: {', '.join(pairs[:10])}"
                             + (", …" if n > 10 else "") + "; their team bundles go to that employee",
                             "check each match, or write the manager's employee_id in the manager column "
                             "(a name can also belong to a namesake who is not the manager)", sheet="Employees")
        if orphans:
            problems.warning(f"{len(orphans)} employee{'s have' if len(orphans) > 1 else ' has'} no manager and "
                             f"{'are' if len(orphans) > 1 else 'is'} in no team bundle: {', '.join(orphans[:10])}"
                             + (", …" if len(orphans) > 10 else ""),
                             "fill in the manager column of the Employees sheet", sheet="Employees")
        bundles.extend(teams.values())
    if "department" in by:
        deps: dict[str, Bundle] = {}
        for r in rows:
            d = _text(r.get("department"))
            if d not in deps:
                deps[d] = Bundle("department", "", d or labels["no_department"], d or labels["no_department"], "", "",
                                 [], "department bundles are not mailed: the plan names no department head")
            deps[d].members.append(str(r["employee_id"]).strip())
        bundles.extend(deps.values())
    _name_bundles(bundles, {eid: _card_stem(people[eid]) for eid in carded_ids if eid in people})
    _shared_addresses(bundles)
    return bundles


def _card_stem(row: dict[str, Any]) -> str:
    return f"{_text(row['employee_id'])} {_text(row['name'])}".strip()


def _name_bundles(bundles: list[Bundle], stems: dict[str, str]) -> None:
    """Safe, unique (case-insensitively, per mode) folder names."""
    used: dict[str, set[str]] = {}
    for b in bundles:
        base = stems.get(b.members[0], b.members[0]) if b.by == "employee" and b.members else b.team
        name = safe_component(base, max_len=90, fallback="_unnamed")
        seen = used.setdefault(b.by, set())
        n, candidate = 2, name
        while candidate.casefold() in seen:
            candidate, n = f"{name[:80]} ({n})", n + 1
        seen.add(candidate.casefold())
        b.name = candidate


def _shared_addresses(bundles: list[Bundle]) -> None:
    """An address that several different people would receive at: no bundle goes there."""
    owners: dict[str, set[str]] = {}
    spellings: dict[str, set[str]] = {}
    for b in bundles:
        if b.recipient_email:
            mailbox = canonical_address(b.recipient_email)
            owners.setdefault(mailbox, set()).add(b.recipient_id or b.key)
            spellings.setdefault(mailbox, set()).add(b.recipient_email)
    for b in bundles:
        mailbox = canonical_address(b.recipient_email) if b.recipient_email else ""
        who = owners.get(mailbox, set())
        if len(who) > 1:
            also = sorted(spellings[mailbox] - {b.recipient_email})
            written = f" (also written {', '.join(also)})" if also else ""
            b.note = (f"{b.recipient_email}{written} is the address of {len(who)} employees "
                      f"({', '.join(sorted(who, key=_natural))}): each would see the others' cards; give everyone "
                      "their own address")


# ------------------------------------------------------------------------------------ inputs



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
            problems.error(f"two cards for employee {eid} (manifest.csv rows {seen[eid]} and {n})",
                           "run xl-kpi generate again", **where)
            twice.add(eid)
            continue
        seen[eid] = n
        path = (out / rel).resolve()
        if not rel or not path.is_relative_to((out / "cards").resolve()):
            problems.error(f"card of {eid}: {rel!r} is not a file under cards/", "run xl-kpi generate again", **where)
            continue
        if eid not in known:
            problems.error(f"card {rel} is for employee {eid!r}, who is not in the results",
                           "run xl-kpi generate again", **where)
            continue
        if not path.is_file():
            problems.error(f"card of {eid} is missing: {rel}", "run xl-kpi generate again", **where)
            continue
        if _sha(path.read_bytes()) != sha:
            problems.error(f"card of {eid} was changed after xl-kpi generate wrote it: {rel}",
                           "run xl-kpi generate again (a card edited by hand is not sent)", **where)
            continue
        cards[eid] = (path, sha)
    for eid in twice:
        cards.pop(eid, None)
    return cards


@dataclass
class _Previous:
    """The previous distribution: files that can be taken over unchanged, and its passwords."""

    files: dict[tuple[str, str], tuple[str, str, bytes]] = field(default_factory=dict)
    """(bundle key, file) → (source sha256, sha256, bytes)."""
    pdfs: dict[str, bytes] = field(default_factory=dict)
    """source sha256 → plain PDF bytes."""
    passwords: dict[str, str] = field(default_factory=dict)
    """bundle key → password."""
    by_id: dict[str, str] = field(default_factory=dict)
    by_bundle: dict[str, str] = field(default_factory=dict)


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
                problems.warning("the previous passwords.csv could not be read; new passwords are generated",
                                 file=str(dist / PASSWORDS))
                prev.by_id, prev.by_bundle = {}, {}
            for r in read_rows(dist / PASSWORDS):
                if r.get("bundle"):
                    prev.passwords[r["bundle"]] = r.get("password", "")
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
        prev.files[(key, name)] = (src, sha, data)
        if name.lower().endswith(".pdf") and data[:5] == b"%PDF-":
            prev.pdfs[src] = data
    return prev


# ------------------------------------------------------------------------------------ build


def distribute(
    out_dir: str | os.PathLike[str],
    options: Options | None = None,
    *,
    on_progress: Progress | None = None,
) -> DistributionReport:
    """Build ``OUT/distribution`` from the output of ``xl-kpi generate`` (see the module doc).

    Raises :class:`InputError` (nothing written) when the output folder is inconsistent (a card
    missing or edited since it was generated) or the passwords file is bad; :class:`UsageError`
    for options that do not go together; :class:`~xl_kpi.delivery.office.OfficeError` when a PDF is asked
    for and LibreOffice is missing. Bundles whose PDF could not be made are not written (their
    ``failed`` says why, and the problems list them).
    """
    out = Path(out_dir)
    if not out.is_dir():
        return _distribute(out, options, on_progress=on_progress)  # names the missing folder
    with outdir.lock(out):  # never rebuilt under a running generate or sender
        return _distribute(out, options, on_progress=on_progress)


def _distribute(out_dir: Path, options: Options | None, *, on_progress: Progress | None) -> DistributionReport:
    """:func:`distribute`, with OUT locked."""
    from xl_kpi.delivery.crypto import is_encrypted
    from xl_kpi.outputs.results_files import load_results

    started = time.perf_counter()
    opts = options or Options()
    out = Path(out_dir)
    results = load_results(out)
    problems = Problems()
    cards = _load_cards(out, results, problems)
    given_id: dict[str, str] = {}
    given_bundle: dict[str, str] = {}
    if opts.passwords is not None:
        from xl_kpi.delivery.crypto import read_passwords

        given_id, given_bundle = read_passwords(opts.passwords, problems)
    if problems.has_errors:
        raise InputError(problems)
    if opts.with_pdf:
        from xl_kpi.delivery.office import require_soffice

        require_soffice()

    bundles = plan_bundles(results, cards, opts.by, problems)
    dist = out / FOLDER
    prev = _previous(dist, read_passwords=opts.encrypt and not opts.new_passwords, problems=problems)
    report = DistributionReport(out, dist, opts, bundles, problems, results)
    if opts.encrypt:
        _assign_passwords(bundles, given_id, given_bundle, prev, report)

    # the plain workbooks: cards (from OUT/cards) and team summaries
    plain: dict[str, bytes] = {}  # source sha → bytes
    card_src = {eid: sha for eid, (_, sha) in cards.items()}
    for eid, (path, sha) in cards.items():
        if any(eid in b.members for b in bundles):
            plain[sha] = path.read_bytes()
    summaries: dict[str, tuple[str, str]] = {}  # bundle key → (file name, source sha)
    for b in bundles:
        if b.by in ("manager", "department"):
            data = _team_summary(results, b.members)
            sha = _sha(data)
            plain[sha] = data
            label = _LABELS.get(results.language, _LABELS["en"])[b.by]
            summaries[b.key] = (safe_file_name(f"{label} {b.name}", ".xlsx"), sha)

    pdfs: dict[str, bytes] = {}
    failed_pdf: dict[str, str] = {}
    if opts.with_pdf:
        wanted = list(dict.fromkeys([card_src[m] for b in bundles for m in b.members]
                                    + [s for _, s in summaries.values()]))
        pdfs, failed_pdf = _make_pdfs(wanted, plain, prev, report, on_progress)
        names = {card_src[e]: f"card of {e}" for e in card_src} | {s: f"team summary {k}" for k, (_, s) in
                                                                   summaries.items()}
        for src, why in failed_pdf.items():
            problems.error(f"no PDF of the {names.get(src, src[:12])}: {why}",
                           "see the LibreOffice message; the bundles holding it were not written")
        for src, data in pdfs.items():
            if src in card_src.values():
                from xl_kpi.delivery.office import pdf_page_count

                n = pdf_page_count(data)
                if n != 1:
                    problems.warning(f"the PDF of the {names.get(src, 'card')} has {n} pages, not 1",
                                     "check the card template's print area and page setup")

    # the files of each bundle
    todo: list[tuple[ShippedFile, str]] = []  # (file, password) still to encrypt
    for b in bundles:
        parts: list[tuple[str, str, str, str]] = []  # (name, kind, employee_id, source sha)
        for m in b.members:
            stem = Path(cards[m][0]).stem
            parts.append((f"{stem}.xlsx", "card", m, card_src[m]))
        if b.key in summaries:
            name, sha = summaries[b.key]
            parts.append((name, "summary", "", sha))
        for name, kind, eid, src in parts:
            if opts.with_pdf and src in failed_pdf:
                b.failed = f"no PDF of {name}"
                break
            if opts.with_xlsx:
                f = ShippedFile(name, kind, eid, src)
                if opts.encrypt:
                    assert b.password is not None
                    old = prev.files.get((b.key, name))
                    if old and old[0] == src and prev.passwords.get(b.key) == b.password and is_encrypted(old[2]):
                        f.data, f.encrypted = old[2], True
                        report.reused += 1
                    else:
                        todo.append((f, b.password))
                else:
                    f.data = plain[src]
                b.files.append(f)
            if opts.with_pdf:
                b.files.append(ShippedFile(str(Path(name).with_suffix(".pdf")), kind, eid, src, pdfs[src]))
        if b.failed:
            b.files = []
    if todo:
        _encrypt_all(todo, plain, opts.jobs, on_progress)
        report.encrypted = len(todo)
    for b in bundles:
        for f in b.files:
            f.sha256 = _sha(f.data)
        b.files.sort(key=lambda f: (f.kind != "summary", _natural(f.name)))
    _write(out, report)
    for b in bundles:
        for f in b.files:
            f.data = b""  # written; do not keep everyone's cards in memory
    report.elapsed = time.perf_counter() - started
    return report


def _natural(text: str) -> tuple[Any, ...]:
    import re

    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.casefold()) for p in re.split(r"(\d+)", text))


def _team_summary(results: Results, members: Sequence[str]) -> bytes:
    """The summary workbook of ``members`` only: their rows, their totals, nobody else's.

    The same writer as ``OUT/summary.xlsx`` (XlsxWriter, cached values, deterministic bytes), on a subset of rows.
    """
    from xl_kpi.outputs.summary import summary_bytes

    return summary_bytes(results, members=members)


def _assign_passwords(bundles: list[Bundle], given_id: dict[str, str], given_bundle: dict[str, str],
                      prev: _Previous, report: DistributionReport) -> None:
    """One password per bundle: the recipient's own (given, else the previous run's, else generated)."""
    from xl_kpi.delivery.crypto import generate_password

    counts = {"given": 0, "reused": 0, "generated": 0}
    made: dict[str, str] = {}
    for b in bundles:
        if b.recipient_id:
            options = [("given", given_id.get(b.recipient_id)), ("reused", prev.by_id.get(b.recipient_id))]
            key = "id:" + b.recipient_id
        else:
            options = [("given", given_bundle.get(b.key)), ("reused", prev.by_bundle.get(b.key))]
            key = "bundle:" + b.key
        for how, pw in options:
            if pw:
                b.password = pw
                counts[how] += 1
                break
        else:
            if key not in made:
                made[key] = generate_password()
            b.password = made[key]
            counts["generated"] += 1
    report.passwords = counts


def _make_pdfs(wanted: list[str], plain: dict[str, bytes], prev: _Previous, report: DistributionReport,
               on_progress: Progress | None) -> tuple[dict[str, bytes], dict[str, str]]:
    """PDFs of the workbooks ``wanted`` (by source sha): reused ones, the rest in ONE soffice call."""
    from xl_kpi.delivery.office import convert

    pdfs = {s: prev.pdfs[s] for s in wanted if s in prev.pdfs}
    report.pdf_reused = len(pdfs)
    rest = [s for s in wanted if s not in pdfs]
    failed: dict[str, str] = {}
    if not rest:
        return pdfs, failed
    with tempfile.TemporaryDirectory(prefix="xl-kpi-pdf-") as tmp:
        src_dir, dst_dir = Path(tmp) / "in", Path(tmp) / "out"
        src_dir.mkdir()
        paths = []
        for i, s in enumerate(rest, start=1):
            p = src_dir / f"{i:05d}.xlsx"  # plain, unique names: nothing odd on soffice's command line
            p.write_bytes(plain[s])
            paths.append(p)
        total = len(paths)
        result = convert(paths, dst_dir, "pdf", timeout=report.options.pdf_timeout,
                         on_progress=(lambda n: on_progress("pdf", n, total)) if on_progress else None)
        for s, p in zip(rest, paths, strict=True):
            out = result.outputs.get(p.resolve())
            if out is None:
                failed[s] = result.failed.get(p.resolve(), "no output")
            else:
                pdfs[s] = out.read_bytes()
        report.pdf_converted = len(result.outputs)
        report.pdf_seconds = result.elapsed
    return pdfs, failed


def _encrypt_one(args: tuple[bytes, str]) -> bytes:
    from xl_kpi.delivery.crypto import encrypt_xlsx

    return encrypt_xlsx(*args)


def _encrypt_all(todo: list[tuple[ShippedFile, str]], plain: dict[str, bytes], jobs: int,
                 on_progress: Progress | None) -> None:
    total = len(todo)
    work = [(plain[f.source_sha256], pw) for f, pw in todo]
    if jobs > 1 and total > 8:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context(method)) as pool:
            for i, data in enumerate(pool.map(_encrypt_one, work, chunksize=4), start=1):
                todo[i - 1][0].data, todo[i - 1][0].encrypted = data, True
                if on_progress:
                    on_progress("encrypt", i, total)
        return
    for i, ((f, _), args) in enumerate(zip(todo, work, strict=True), start=1):
        f.data, f.encrypted = _encrypt_one(args), True
        if on_progress:
            on_progress("encrypt", i, total)


def zip_bytes(files: Iterable[tuple[str, bytes]]) -> bytes:
    """A deterministic zip: entries sorted by name, fixed timestamps and permissions, deflated."""
    return write_zip(files)


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
                    batch.write(target / b.by / f"{b.name}.zip", zip_bytes((f.name, f.data) for f in b.files))
                else:
                    for f in b.files:
                        batch.write(target / b.by / b.name / f.name, f.data)
            batch.write(target / INDEX, csv_bytes(INDEX_COLUMNS, _index_rows(report.bundles, opts.zip)))
            if opts.encrypt:
                rows = [[b.key, b.recipient, b.recipient_id, b.password or ""] for b in report.bundles if not b.failed]
                rows.sort(key=lambda r: _natural(r[0]))
                batch.write(target / PASSWORDS, csv_bytes(PASSWORD_COLUMNS, rows))
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


# -------------------------------------------------------------------------------------- mail


@dataclass
class MailOutcome:
    """What :func:`send` did: the mail report, the bundles not mailed and why, the dry-run folder."""

    report: Any
    not_mailed: list[tuple[Bundle, str]]
    outbox: Path | None = None


class LeakError(KpiError):
    """The isolation check found leaks: nothing is sent."""

    def __init__(self, leaks: list[Any]) -> None:
        self.leaks = leaks
        head = "; ".join(str(x) for x in leaks[:3])
        super().__init__(f"the isolation check found {len(leaks)} problem{'s' if len(leaks) != 1 else ''}, "
                         f"nothing was sent: {head}")


def deliveries(report: DistributionReport) -> tuple[list[Any], list[tuple[Bundle, str]]]:
    """The messages to send (one per mailable bundle) and the bundles that cannot be mailed, with why."""
    from xl_kpi.delivery.mail import Delivery

    out, skipped = [], []
    lang = report.results.language if report.results.language in ("en", "ru") else "en"
    for b in report.bundles:
        if b.failed:
            skipped.append((b, b.failed))
            continue
        if b.note or not b.recipient_email:
            skipped.append((b, b.note or "no e-mail address"))
            continue
        assert b.path is not None
        attachments = (b.path,) if b.path.suffix == ".zip" and b.path.is_file() else \
            tuple(b.path / f.name for f in b.files)
        out.append(Delivery(key=b.delivery_key, to_address=b.recipient_email, to_name=b.recipient, kind=b.by,
                            attachments=attachments, period=report.results.period, language=lang,
                            team="" if b.by == "employee" else b.team))
    return out, skipped


def send(
    report: DistributionReport,
    config: Any,
    *,
    dry_run: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> MailOutcome:
    """Mail every mailable bundle (``config``: :class:`xl_kpi.delivery.mail.SmtpConfig`; None with ``dry_run``).

    First the isolation check runs over the distribution: any leak raises :class:`LeakError`
    and nothing is sent. A dry run writes the messages as ``.eml`` into ``OUT/outbox/`` (emptied
    first) and sends nothing; a real run appends to the send log ``OUT/send-log.jsonl``, which
    makes a rerun send only what was not sent (:func:`xl_kpi.delivery.mail.send_all`).
    """
    from xl_kpi.delivery.isolation import check_report
    from xl_kpi.delivery.mail import send_all

    with outdir.lock(report.out_dir):  # distribute cannot rebuild the bundles while they are sent
        iso = check_report(report.out_dir, cards=False, outbox=False)
        if iso.leaks:
            raise LeakError(iso.leaks)
        todo, skipped = deliveries(report)
        total = len(todo)
        progress = (lambda n: on_progress(n, total)) if on_progress else None
        outbox = None
        if dry_run:
            outbox = report.out_dir / OUTBOX
            outdir.refuse_symlink(outbox)
            if outbox.exists():
                shutil.rmtree(outbox)
            outbox.mkdir(mode=0o700)
        result = send_all(todo, config, report.out_dir / MAIL_LOG, dry_run_dir=outbox, on_progress=progress)
    return MailOutcome(result, skipped, outbox)
