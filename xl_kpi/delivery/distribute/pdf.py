"""The ``--pdf`` step: PDFs of the cards and team summaries, reused from the previous run or made by
LibreOffice in one batch (:mod:`xl_kpi.delivery.office`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from xl_kpi.delivery.distribute.existing import _Previous
from xl_kpi.delivery.distribute.model import DistributionReport, Progress


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
