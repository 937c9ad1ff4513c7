"""Distribution at scale: prefix-tree patterns, how many LibreOffice processes for the PDFs, the parallel isolation
check and the streamed, batched mail dry run give the same answers as the one-at-a-time ways."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xl_kpi.delivery.distribute import FOLDER, Options, distribute, send
from xl_kpi.delivery.distribute.pdf import MIN_BATCH, _largest_first, _processes
from xl_kpi.delivery.isolation import check_report
from xl_kpi.delivery.isolation.audience import _alternation, _trie

WORDS = st.lists(st.text(alphabet="абвa b.1", min_size=1, max_size=6), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(WORDS, st.text(alphabet="абвa b.1,\n", max_size=60))
def test_the_prefix_tree_matches_what_the_plain_alternation_matches(words: list[str], text: str) -> None:
    words = [w for w in words if w]
    plain = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
                       + r")(?!\w)")
    tree = _alternation(sorted(set(words), key=len, reverse=True))
    assert tree is not None
    assert [m.group(1) for m in tree.finditer(text)] == [m.group(1) for m in plain.finditer(text)]


def test_the_prefix_tree_is_exact_and_prefers_the_longer_word() -> None:
    p = re.compile(f"^(?:{_trie(['иван', 'иван петров', 'ива'])})$")
    assert all(p.match(w) for w in ("иван", "иван петров", "ива"))
    assert not any(p.match(w) for w in ("ив", "иван п", "иванов"))
    names = _alternation(["иван", "иван петров"])
    assert names is not None and names.search("это иван петров.").group(1) == "иван петров"


def test_pdf_processes_never_have_fewer_files_than_a_start_is_worth() -> None:
    """The same counts the fixed batches had: 60 files → 2 processes on 2 cores, 23 → 1, 5 on 4 cores → 1."""
    assert _processes(60, 2) == 2
    assert _processes(MIN_BATCH * 2 - 1, 2) == 1
    assert _processes(5, 4) == 1
    assert _processes(50, 3) == 3
    assert _processes(0, 2) == 1


def test_pdf_queue_takes_the_large_files_first(tmp_path: Path) -> None:
    """Team summaries (larger, slower to convert) are queued first: taken last, one would end the run alone."""
    cards = []
    for i in range(4):
        cards.append(tmp_path / f"{i}.xlsx")
        cards[-1].write_bytes(b"c" * 10)
    plain: dict[str, Path | bytes] = {f"card{i}": p for i, p in enumerate(cards)}
    plain |= {"big": b"s" * 100, "bigger": b"s" * 200}
    assert _largest_first(list(plain), plain) == ["bigger", "big", "card0", "card1", "card2", "card3"]


def test_the_parallel_check_finds_exactly_what_the_serial_one_finds(generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(generated, out)
    distribute(out, Options(by=("employee", "manager")))
    a = out / FOLDER / "employee" / "1001 Козлов Денис Иванович" / "1001 Козлов Денис Иванович.xlsx"
    shutil.copyfile(a, out / FOLDER / "employee" / "1002 Кузнецов Денис Владимирович" / a.name)  # a leak
    serial, parallel = check_report(out, jobs=1), check_report(out, jobs=2)
    assert serial.leaks and serial.leaks == parallel.leaks
    assert (serial.files, serial.skipped_ambiguous) == (parallel.files, parallel.skipped_ambiguous)


def test_dry_run_in_workers_writes_the_same_messages_and_nothing_half_written(generated: Path,
                                                                               tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from xl_kpi.delivery.mail import send_all

    outs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        shutil.copytree(generated, out)
        report = distribute(out, Options(by=("employee", "manager"), jobs=jobs))
        from xl_kpi.delivery.distribute import deliveries

        todo, _ = deliveries(report)
        box = out / "box"
        box.mkdir()
        seen = []
        result = send_all(todo, None, out / "log", dry_run_dir=box, jobs=jobs,
                          date=datetime(2026, 12, 1, tzinfo=UTC), on_progress=seen.append)
        assert seen == list(range(1, len(todo) + 1))  # every message counted, in order
        assert len(result.written) == len(todo) > 40
        assert not list(box.glob(".*"))  # no temporary file left
        outs[jobs] = {p.name: p.read_bytes().split(b"boundary=")[0] for p in box.iterdir()}
    assert outs[1] == outs[2]


def test_send_dry_run_through_distribute(generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(generated, out)
    report = distribute(out, Options(by=("employee",), jobs=2))
    outcome = send(report, None, dry_run=True)
    assert len(outcome.report.written) == len(list((out / "outbox").glob("*.eml"))) > 40
    assert check_report(out, jobs=2).ok


def test_a_card_goes_to_soffice_as_a_link_and_a_copy_across_file_systems(tmp_path: Path, monkeypatch) -> None:
    from xl_kpi.delivery.distribute import pdf

    card = tmp_path / "card.xlsx"
    card.write_bytes(b"PK\x03\x04 card")
    assert pdf._stage_input(card, tmp_path / "00001.xlsx") == len(b"PK\x03\x04 card")
    assert (tmp_path / "00001.xlsx").stat().st_ino == card.stat().st_ino  # a link: no bytes copied
    assert pdf._stage_input(b"summary", tmp_path / "00002.xlsx") == 7
    assert (tmp_path / "00002.xlsx").read_bytes() == b"summary"

    def no_link(*_a, **_k) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(pdf.os, "link", no_link)
    pdf._stage_input(card, tmp_path / "00003.xlsx")
    assert (tmp_path / "00003.xlsx").read_bytes() == card.read_bytes()
    assert (tmp_path / "00003.xlsx").stat().st_ino != card.stat().st_ino


def test_a_batch_stages_a_file_of_its_own_by_a_link_and_commits_it(tmp_path: Path, monkeypatch) -> None:
    from xl_kpi.outputs import atomic

    made = tmp_path / "made.pdf"
    made.write_bytes(b"%PDF-1.7 card")
    with atomic.AtomicBatch() as batch:
        batch.link(tmp_path / "out" / "a.pdf", made)
        (tmp, _), = batch.staged()
        assert tmp.stat().st_ino == made.stat().st_ino and not (tmp_path / "out" / "a.pdf").exists()
    assert (tmp_path / "out" / "a.pdf").read_bytes() == b"%PDF-1.7 card"
    with pytest.raises(RuntimeError), atomic.AtomicBatch() as batch:  # a failure leaves nothing half-written
        batch.link(tmp_path / "out" / "b.pdf", made)
        raise RuntimeError
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.pdf"]
    def no_link(*_a, **_k) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(atomic.os, "link", no_link)
    with atomic.AtomicBatch() as batch:
        batch.link(tmp_path / "out" / "c.pdf", made)
    assert (tmp_path / "out" / "c.pdf").read_bytes() == b"%PDF-1.7 card"
    assert (tmp_path / "out" / "c.pdf").stat().st_ino != made.stat().st_ino
