""":func:`distribute`, the run: the cards and team summaries of every bundle, their PDFs and encryption,
each file taken over from the previous run where nothing changed, then written."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from xl_kpi.delivery.distribute.bundles import _LABELS, _natural, plan_bundles
from xl_kpi.delivery.distribute.encrypt import Journal, _assign_passwords, _encrypt_all
from xl_kpi.delivery.distribute.existing import ZipMember, _load_cards, _Previous, _previous, _sha, close_zips
from xl_kpi.delivery.distribute.model import Bundle, DistributionReport, Options, Progress, ShippedFile
from xl_kpi.delivery.distribute.pdf import _make_pdfs
from xl_kpi.delivery.distribute.write import _write
from xl_kpi.delivery.office_workers import OfficeWorkers
from xl_kpi.i18n import English, Msg
from xl_kpi.inputs.problems import InputError, Problems
from xl_kpi.outputs import outdir
from xl_kpi.outputs.layout import FOLDER
from xl_kpi.outputs.names import safe_file_name
from xl_kpi.results import Results


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
    """:func:`distribute`, with OUT locked. For ``--pdf`` the LibreOffice processes are started first: their start
    overlaps the reading of the results and the previous distribution (they are stopped when not needed)."""
    from xl_kpi.delivery.office import soffice_path

    started = time.perf_counter()
    opts = options or Options()
    with contextlib.ExitStack() as stack:
        workers = None
        if opts.with_pdf and soffice_path() is not None:  # without it: refused below, after the input checks
            workers = stack.enter_context(OfficeWorkers(opts.jobs, timeout=opts.pdf_timeout))
        return _read_and_build(Path(out_dir), opts, workers, started, on_progress)


def _read_and_build(out: Path, opts: Options, workers: OfficeWorkers | None, started: float,
                    on_progress: Progress | None) -> DistributionReport:
    """:func:`distribute`: the results and cards read and checked, the bundles planned and built."""
    from xl_kpi.outputs.results_files import load_results

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
    journal = Journal(out)
    if opts.encrypt:
        made = _assign_passwords(bundles, given_id, given_bundle, prev, report, journal.passwords())
        journal.open(made)  # before anything is encrypted: a resumed run uses the same passwords

    # the plain workbooks: cards (read from OUT/cards when needed, never all held) and team summaries
    plain: dict[str, Path | bytes] = {}  # source sha → path or bytes
    card_src = {eid: sha for eid, (_, sha) in cards.items()}
    wanted_ids = {m for b in bundles for m in b.members}
    for eid, (path, sha) in cards.items():
        if eid in wanted_ids:
            plain[sha] = path
    summaries: dict[str, tuple[str, str]] = {}  # bundle key → (file name, source sha)
    for b in bundles:
        if b.by in ("manager", "department"):
            data = _team_summary(results, b.members)
            sha = _sha(data)
            plain[sha] = data
            label = _LABELS.get(results.language, _LABELS["en"])[b.by]
            summaries[b.key] = (safe_file_name(f"{label} {b.name}", ".xlsx"), sha)

    try:
        with tempfile.TemporaryDirectory(prefix="xl-kpi-pdf-") as pdf_dir:  # the PDFs wait here, not in memory
            _build(out, opts, report, bundles, cards, card_src, plain, summaries, prev, journal, Path(pdf_dir),
                   on_progress, workers)
    finally:
        close_zips()
    for b in bundles:
        for f in b.files:
            f.data, f.path = b"", None  # written; do not keep everyone's cards in memory
    report.elapsed = time.perf_counter() - started
    return report


def _build(out: Path, opts: Options, report: DistributionReport, bundles: list[Bundle],
           cards: dict[str, tuple[Path, str]], card_src: dict[str, str], plain: dict[str, Path | bytes],
           summaries: dict[str, tuple[str, str]], prev: _Previous, journal: Journal, pdf_dir: Path,
           on_progress: Progress | None, workers: OfficeWorkers | None = None) -> None:
    """The files of every bundle (PDFs, encryption, taken over where unchanged), then written."""
    from xl_kpi.delivery.crypto import is_encrypted

    problems = report.problems
    pdfs: dict[str, Path | ZipMember | bytes] = {}
    failed_pdf: dict[str, str] = {}
    if opts.with_pdf:
        wanted = list(dict.fromkeys([card_src[m] for b in bundles for m in b.members]
                                    + [s for _, s in summaries.values()]))
        pdfs, failed_pdf = _make_pdfs(wanted, plain, prev, report, on_progress, pdf_dir, workers)
        names = {card_src[e]: Msg("card of {e}", e=e) for e in card_src} | {
            s: Msg("team summary {k}", k=k) for k, (_, s) in summaries.items()}
        for src, why in failed_pdf.items():
            problems.error(Msg("no PDF of the {get}: {why}", get=names.get(src, src[:12]), why=why),
                           Msg("see the LibreOffice message; the bundles holding it were not written"))
        card_shas = set(card_src.values())
        for src, where in pdfs.items():
            if src in card_shas:
                from xl_kpi.delivery.office import pdf_page_count

                n = pdf_page_count(where if isinstance(where, bytes) else where.read_bytes())
                if n != 1:
                    what = names.get(src) or Msg("card")
                    problems.warning(Msg("the PDF of the {get} has {n_} pages, not 1", get=what, n_=n),
                                     Msg("check the card template's print area and page setup"))

    # the files of each bundle
    todo: list[tuple[ShippedFile, str, str]] = []  # (file, bundle key, password) still to encrypt
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
                b.failed = English(Msg("no PDF of {name}", name=name))
                break
            if opts.with_xlsx:
                f = ShippedFile(name, kind, eid, src)
                if opts.encrypt:
                    assert b.password is not None
                    old = prev.files.get((b.key, name))
                    if old and old[0] == src and prev.passwords.get(b.key) == b.password and is_encrypted(
                            _head(old[2])):
                        _plain_into(f, old[2])
                        f.encrypted = True
                        f.bound = prev.bound.get(old[1]) == src  # proved when it was made
                        report.reused += 1
                    else:
                        todo.append((f, b.key, b.password))
                else:
                    _plain_into(f, plain[src])
                b.files.append(f)
            if opts.with_pdf:
                pdf = ShippedFile(str(Path(name).with_suffix(".pdf")), kind, eid, src)
                _plain_into(pdf, pdfs[src])
                pdf.own = isinstance(pdfs[src], Path) and pdfs[src].parent == pdf_dir  # made now, not reused
                b.files.append(pdf)
        if b.failed:
            b.files = []
    if todo:
        report.resumed = _encrypt_all(todo, plain.__getitem__, journal, opts.jobs, on_progress)
        report.encrypted = len(todo) - report.resumed
    for b in bundles:
        for f in b.files:
            f.sha256 = f.sha256 or _sha(f.content())
        b.files.sort(key=lambda f: (f.kind != "summary", _natural(f.name)))
    _write(out, report)
    journal.remove()  # the distribution is in place: nothing left to resume


def _head(where: Path | ZipMember | bytes) -> bytes:
    if isinstance(where, Path):
        with where.open("rb") as fh:
            return fh.read(8)
    if isinstance(where, ZipMember):
        return where.head(8)
    return where[:8]


def _plain_into(f: ShippedFile, src: Path | ZipMember | bytes) -> None:
    if isinstance(src, bytes):
        f.data = src
    else:
        f.path = src  # read when written, one file at a time


def _team_summary(results: Results, members: Sequence[str]) -> bytes:
    """The summary workbook of ``members`` only: their rows, their totals, nobody else's.

    The same writer as ``OUT/summary.xlsx`` (XlsxWriter, cached values, deterministic bytes), on a subset of rows.
    """
    from xl_kpi.outputs.summary import summary_bytes

    return summary_bytes(results, members=members)
