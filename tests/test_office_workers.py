"""LibreOffice workers fed from a queue (:class:`xl_kpi.delivery.office_workers.OfficeWorkers`, the engine of
``distribute --pdf``): the processes share the files, the PDFs are the ones ``soffice --convert-to`` makes (one
page, the same text), a file LibreOffice cannot open is reported and the others are made, a process that dies is
replaced, a run past its timeout is killed with nothing half-written kept."""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import xlsxwriter

from tests import lo
from xl_kpi.delivery.distribute.pdf import _stage_input
from xl_kpi.delivery.office import _kill, convert, pdf_page_count
from xl_kpi.delivery.office_workers import OfficeWorkers

pytestmark = pytest.mark.libreoffice


def _books(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        paths.append(folder / f"book{i}.xlsx")
        book = xlsxwriter.Workbook(str(paths[-1]))
        sheet = book.add_worksheet("Card")
        sheet.write("A1", f"Card number {i}")
        sheet.write_number("B2", 1234.5 + i)
        book.close()
    return paths


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(autouse=True)
def _soffice() -> None:
    lo.require_soffice()


def test_two_processes_share_the_queue_and_make_the_pdfs_convert_makes(tmp_path: Path) -> None:
    books = _books(tmp_path / "in", 8)
    with OfficeWorkers(2) as w:
        assert w.processes == 2
        for i, b in enumerate(books):
            w.put(f"{i:05d}", functools.partial(_stage_input, b))
        w.put("00100", functools.partial(_stage_input, b"PK\x03\x04 not a workbook"))
        w.close()
        seen: list[int] = []
        outputs, failed = w.wait(seen.append)
        taken = [len(list((w.root / f"worker{k}").iterdir())) for k in range(2)]
        assert all(p.poll() is not None for p in w.procs)  # they exit when the queue is closed and empty
        assert sorted(outputs) == [f"{i:05d}" for i in range(8)]
        assert failed == {"00100": "LibreOffice could not open it"}
        assert seen[-1] == 8 and seen == sorted(seen)
        assert sum(taken) == 9 and all(taken), taken  # every file taken once, by both processes
        assert not list(w.out.glob("*.part"))
        made = {name: path.read_bytes() for name, path in outputs.items()}
    assert not w.root.exists()  # queue, profiles, PDFs left: removed
    ref = convert(books, tmp_path / "ref", "pdf")
    assert ref.ok
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    for i, b in enumerate(books):
        pdf = tmp_path / f"{i}.pdf"
        pdf.write_bytes(made[f"{i:05d}"])
        assert pdf_page_count(made[f"{i:05d}"]) == 1
        assert _text(pdf) == _text(ref.outputs[b.resolve()])


def test_processes_not_needed_are_stopped_before_anything_is_queued(tmp_path: Path) -> None:
    books = _books(tmp_path / "in", 2)
    with OfficeWorkers(3) as w:
        extra = w.procs[1:]
        w.keep(1)
        assert w.processes == 1 and all(p.poll() is not None for p in extra)
        for i, b in enumerate(books):
            w.put(f"{i:05d}", functools.partial(_stage_input, b))
        w.close()
        outputs, failed = w.wait()
        assert len(outputs) == 2 and not failed


def test_a_process_that_dies_is_replaced_and_the_rest_is_made(tmp_path: Path) -> None:
    books = _books(tmp_path / "in", 3)
    with OfficeWorkers(1) as w:
        _kill(w.procs[0])  # its whole process group: as if LibreOffice crashed
        for i, b in enumerate(books):
            w.put(f"{i:05d}", functools.partial(_stage_input, b))
        w.close()
        outputs, failed = w.wait()
        assert w.restarts == 1 and w.processes == 1 and len(outputs) == 3 and not failed


def test_a_run_past_its_timeout_is_killed_and_reported(tmp_path: Path) -> None:
    books = _books(tmp_path / "in", 2)
    with OfficeWorkers(1, timeout=0.0) as w:
        for i, b in enumerate(books):
            w.put(f"{i:05d}", functools.partial(_stage_input, b))
        w.close()
        t0 = time.perf_counter()
        outputs, failed = w.wait()
        assert time.perf_counter() - t0 < 30
        assert all(p.poll() is not None for p in w.procs)
        assert sorted(failed) == ["00000", "00001"] and not outputs
        assert all("did not finish within 0 s" in why for why in failed.values())
        assert not list(w.out.glob("*.pdf"))
