"""The ``--pdf`` step: PDFs of the cards and team summaries, reused from the previous run or made by
LibreOffice: up to ``--jobs`` soffice processes (:class:`~xl_kpi.delivery.office_workers.OfficeWorkers`), started
before the results are read, each with its own private profile, taking the files one at a time from a shared
queue, the largest first (a large team summary never ends the run alone); fewer when there are few files (see
:data:`MIN_BATCH`).

What is not converting is kept off the disk's way: a card goes to soffice as a hard link (nothing copied; a copy
only across file systems), and each PDF is moved aside as soon as the processes are done."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

from xl_kpi.delivery.distribute.existing import ZipMember, _Previous
from xl_kpi.delivery.distribute.model import DistributionReport, Progress
from xl_kpi.delivery.office_workers import OfficeWorkers
from xl_kpi.i18n import English, Msg


def _make_pdfs(wanted: list[str], plain: dict[str, Path | bytes], prev: _Previous, report: DistributionReport,
               on_progress: Progress | None, keep: Path, workers: OfficeWorkers | None = None,
               ) -> tuple[dict[str, Path | ZipMember | bytes], dict[str, str]]:
    """PDFs of the workbooks ``wanted`` (by source sha): reused ones, the rest made by ``workers`` (started
    here when not given), moved into ``keep`` (a folder that lives until the distribution is written)."""
    pdfs: dict[str, Path | ZipMember | bytes] = {s: prev.pdfs[s] for s in wanted if s in prev.pdfs}
    report.pdf_reused = len(pdfs)
    rest = [s for s in wanted if s not in pdfs]
    failed: dict[str, str] = {}
    if not rest:
        if workers is not None:
            workers.stop()  # started early in case: not needed
        return pdfs, failed
    opts = report.options
    own = workers is None
    if workers is None:
        workers = OfficeWorkers(opts.jobs, timeout=opts.pdf_timeout)
    try:
        workers.keep(_processes(len(rest), opts.jobs))
        sha_of: dict[str, str] = {}
        for i, s in enumerate(_largest_first(rest, plain), start=1):
            name = f"{i:05d}"  # plain, unique names, taken in this order
            workers.put(name, functools.partial(_stage_input, plain[s]))
            sha_of[name] = s
        workers.close()
        total = len(sha_of)

        def progress(n: int) -> None:
            if on_progress:
                on_progress("pdf", n, total)

        outputs, why = workers.wait(progress)
        made: dict[str, Path] = {}
        for name, s in sha_of.items():
            out = outputs.get(name)
            if out is None:
                failed[s] = why.get(name, English(Msg("no output")))
            else:
                made[s] = keep / f"{s}.pdf"  # kept on disk until written, not in memory
                out.replace(made[s])
        for s in rest:
            if s in made:
                pdfs[s] = made[s]
        report.pdf_converted = len(made)
        report.pdf_seconds = time.perf_counter() - workers.started
        report.pdf_processes = workers.processes
    finally:
        if own:
            workers.stop()
    return pdfs, failed


def _largest_first(shas: list[str], plain: dict[str, Path | bytes]) -> list[str]:
    """``shas`` the largest workbook first (a team summary takes longer than a card: started last, it would end
    the run alone), equal sizes in the given order."""
    def size(s: str) -> int:
        src = plain[s]
        return len(src) if isinstance(src, bytes) else src.stat().st_size

    sizes = {s: size(s) for s in shas}
    return sorted(shas, key=lambda s: -sizes[s])


def _stage_input(src: Path | bytes, dst: Path) -> int:
    """Put one workbook at ``dst`` for soffice to read and return its size: a card as a hard link (no bytes
    copied, and removing it frees nothing the disk must discard), a copy where links are not possible (another
    file system), the bytes of a team summary as a file."""
    if isinstance(src, Path):
        try:
            os.link(src, dst)
            return dst.stat().st_size
        except OSError:
            src = src.read_bytes()
    dst.write_bytes(src)
    return len(src)


MIN_BATCH = 12
"""Fewest files worth a LibreOffice process of their own: its start costs about as much as converting a few
cards, so fewer files a process would spend more on starting than they save."""


def _processes(n_files: int, jobs: int) -> int:
    """How many LibreOffice processes for ``n_files``: at most ``jobs``, none with fewer than :data:`MIN_BATCH`
    files to do (one process when there are few)."""
    return max(1, min(jobs, n_files // MIN_BATCH))
