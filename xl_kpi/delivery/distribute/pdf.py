"""The ``--pdf`` step: PDFs of the cards and team summaries, reused from the previous run or made by
LibreOffice (:mod:`xl_kpi.delivery.office`): up to ``--jobs`` soffice processes at once, each with its own
private profile and one batch of cards (see :data:`MIN_BATCH`)."""

from __future__ import annotations

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
    from xl_kpi.delivery.office import ConversionResult, convert

    pdfs: dict[str, Path | ZipMember | bytes] = {s: prev.pdfs[s] for s in wanted if s in prev.pdfs}
    report.pdf_reused = len(pdfs)
    rest = [s for s in wanted if s not in pdfs]
    failed: dict[str, str] = {}
    if not rest:
        return pdfs, failed
    with tempfile.TemporaryDirectory(prefix="xl-kpi-pdf-") as tmp:
        src_dir = Path(tmp) / "in"
        src_dir.mkdir()
        paths = []
        for i, s in enumerate(rest, start=1):
            p = src_dir / f"{i:05d}.xlsx"  # plain, unique names: nothing odd on soffice's command line
            src = plain[s]
            p.write_bytes(src if isinstance(src, bytes) else src.read_bytes())
            paths.append(p)
        total = len(paths)
        batches = _batches(paths, report.options.jobs)
        counts = [0] * len(batches)
        lock = threading.Lock()

        def progress(k: int) -> Callable[[int], None]:
            def update(n: int) -> None:
                with lock:
                    counts[k] = n
                    if on_progress:
                        on_progress("pdf", sum(counts), total)
            return update

        def run(k: int) -> ConversionResult:
            return convert(batches[k], Path(tmp) / f"out{k}", "pdf", timeout=report.options.pdf_timeout,
                           on_progress=progress(k))

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(batches)) as pool:  # each call: its own soffice and profile
            results = list(pool.map(run, range(len(batches))))
        outputs = {k: v for r in results for k, v in r.outputs.items()}
        why = {k: v for r in results for k, v in r.failed.items()}
        for s, p in zip(rest, paths, strict=True):
            out = outputs.get(p.resolve())
            if out is None:
                failed[s] = why.get(p.resolve(), English(Msg("no output")))
            else:
                pdfs[s] = keep / f"{s}.pdf"  # kept on disk until written, not in memory
                out.replace(pdfs[s])
        report.pdf_converted = len(outputs)
        report.pdf_seconds = time.perf_counter() - started
        report.pdf_processes = len(batches)
    return pdfs, failed


MIN_BATCH = 12
"""Fewest cards worth a LibreOffice process of their own: its start (a few seconds) costs about as much as
converting ten cards, so smaller batches would spend more on starting than they save."""


def _batches(paths: list[Path], jobs: int) -> list[list[Path]]:
    """``paths`` in at most ``jobs`` contiguous batches of near-equal size, none smaller than :data:`MIN_BATCH`
    (one batch when there are few)."""
    n = max(1, min(jobs, len(paths) // MIN_BATCH))
    size, extra = divmod(len(paths), n)
    out, start = [], 0
    for k in range(n):
        end = start + size + (1 if k < extra else 0)
        out.append(paths[start:end])
        start = end
    return out
