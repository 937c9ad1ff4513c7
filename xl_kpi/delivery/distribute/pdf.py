"""The ``--pdf`` step: PDFs of the cards and team summaries, reused from the previous run or made by
LibreOffice (:mod:`xl_kpi.delivery.office`): up to ``--jobs`` soffice processes at once, started together, each
with its own private profile and one batch of cards of near-equal total size (see :data:`MIN_BATCH`).

What is not converting is kept off the disk's way: a card goes to soffice as a hard link (nothing copied; a copy
only across file systems), and each process's inputs are removed and its PDFs moved aside as soon as it exits,
while the others still convert."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from xl_kpi.delivery.distribute.existing import ZipMember, _Previous
from xl_kpi.delivery.distribute.model import DistributionReport, Progress
from xl_kpi.i18n import English, Msg


def _make_pdfs(wanted: list[str], plain: dict[str, Path | bytes], prev: _Previous, report: DistributionReport,
               on_progress: Progress | None, keep: Path) -> tuple[dict[str, Path | ZipMember | bytes], dict[str, str]]:
    """PDFs of the workbooks ``wanted`` (by source sha): reused ones, the rest in batches, one soffice per batch,
    moved into ``keep`` (a folder that lives until the distribution is written)."""
    from xl_kpi.delivery.office import convert

    pdfs: dict[str, Path | ZipMember | bytes] = {s: prev.pdfs[s] for s in wanted if s in prev.pdfs}
    report.pdf_reused = len(pdfs)
    rest = [s for s in wanted if s not in pdfs]
    failed: dict[str, str] = {}
    if not rest:
        return pdfs, failed
    with tempfile.TemporaryDirectory(prefix="xl-kpi-pdf-") as tmp:
        src_dir = Path(tmp) / "in"
        src_dir.mkdir()
        sha_of: dict[Path, str] = {}
        sizes: list[int] = []
        for i, s in enumerate(rest, start=1):
            p = src_dir / f"{i:05d}.xlsx"  # plain, unique names: nothing odd on soffice's command line
            sizes.append(_stage_input(plain[s], p))
            sha_of[p] = s
        paths = list(sha_of)
        total = len(paths)
        batches = _batches(paths, report.options.jobs, sizes)
        counts = [0] * len(batches)
        lock = threading.Lock()
        made: dict[str, Path] = {}

        def progress(k: int) -> Callable[[int], None]:
            def update(n: int) -> None:
                with lock:
                    counts[k] = n
                    if on_progress:
                        on_progress("pdf", sum(counts), total)
            return update

        def run(k: int) -> None:
            result = convert(batches[k], Path(tmp) / f"out{k}", "pdf", timeout=report.options.pdf_timeout,
                             on_progress=progress(k))
            for p in batches[k]:  # done with: removed now, while the other processes still convert
                p.unlink(missing_ok=True)
                out = result.outputs.get(p.resolve())
                s = sha_of[p]
                with lock:
                    if out is None:
                        failed[s] = result.failed.get(p.resolve(), English(Msg("no output")))
                    else:
                        made[s] = keep / f"{s}.pdf"  # kept on disk until written, not in memory
                        out.replace(made[s])

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(batches)) as pool:  # each call: its own soffice and profile
            list(pool.map(run, range(len(batches))))
        for s in rest:
            if s in made:
                pdfs[s] = made[s]
        report.pdf_converted = len(made)
        report.pdf_seconds = time.perf_counter() - started
        report.pdf_processes = len(batches)
    return pdfs, failed


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
"""Fewest cards worth a LibreOffice process of their own: its start (a few seconds) costs about as much as
converting ten cards, so smaller batches would spend more on starting than they save."""


def _batches(paths: list[Path], jobs: int, sizes: list[int] | None = None) -> list[list[Path]]:
    """``paths`` in at most ``jobs`` batches, none smaller than :data:`MIN_BATCH` (one batch when there are few),
    of near-equal total ``sizes`` (bytes; a large team summary takes longer than a card): the largest file first
    into the lightest batch, each batch in the order of ``paths``. Without ``sizes``: near-equal counts."""
    n = max(1, min(jobs, len(paths) // MIN_BATCH))
    weight = sizes if sizes is not None else [1] * len(paths)
    load = [0] * n
    members: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(paths)), key=lambda i: -weight[i]):  # stable: equal sizes deal out in turn
        k = min(range(n), key=lambda k: (load[k], len(members[k]), k))
        load[k] += weight[i]
        members[k].append(i)
    return [[paths[i] for i in sorted(m)] for m in members]
