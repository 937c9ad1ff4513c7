"""The CSV exports read ahead while the plan is read (xl_kpi/inputs/readers/ahead.py): the same problems, in the
same order, the same hashes, each file read once, and no thread left behind."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from tests import _plan_helpers as ph
from xl_kpi.inputs import datafiles, inputbytes
from xl_kpi.inputs.plan import sample_inputs
from xl_kpi.inputs.readers import ahead
from xl_kpi.validate import validate


def _problems(plan: Path, data: list[Path]) -> list[tuple]:
    return [(p.severity, p.file, p.sheet, p.row, p.column, str(p)) for p in validate(plan, data)]


def _bad_data(tmp_path: Path) -> list[Path]:
    """A facts file with an unreadable fact, a CSV that is really a zip, one with a quote never closed."""
    facts = ph.make_facts(tmp_path, {("E1", "deals"): "сто"})
    (tmp_path / "zipped.csv").write_bytes(b"PK\x03\x04" + b"\0" * 64)
    (tmp_path / "open_quote.csv").write_text('employee_id;value\nE1;"12\nE2;3\n', encoding="utf-8")
    return [facts, tmp_path / "zipped.csv", tmp_path / "open_quote.csv"]


def test_the_problems_are_those_of_reading_in_turn(tmp_path, monkeypatch):
    plan = ph.make_plan(tmp_path)
    data = _bad_data(tmp_path)
    ahead_problems = _problems(plan, data)
    monkeypatch.setattr(ahead, "take", lambda *a, **k: None)  # every file read where it is asked for
    in_turn = _problems(plan, data)
    assert ahead_problems == in_turn
    assert any("сто" in p[-1] for p in in_turn) and any(p[1] == "zipped.csv" for p in in_turn)


def test_each_file_is_read_once_hashed_and_no_thread_outlives_validate(tmp_path, monkeypatch):
    plan, data = sample_inputs()
    reads: list[str] = []
    real = inputbytes.read_input

    def counted(path):
        reads.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(inputbytes, "read_input", counted)
    monkeypatch.setattr(sys.modules["xl_kpi.inputs.readers.sniff"], "read_input", counted)  # the module, not
    # the function the package exports under the same name
    taken: list[str] = []
    real_take = ahead.take

    def take(path, *a, **k):
        got = real_take(path, *a, **k)
        if got is not None:
            taken.append(Path(path).name)
        return got

    from xl_kpi.inputs import tables

    monkeypatch.setattr(tables, "take", take)
    with inputbytes.recording() as seen:
        problems = validate(plan, data)
    assert not problems.has_errors
    csvs = sorted(p.name for p in data if p.suffix == ".csv")
    assert sorted(taken) == csvs  # every CSV was handed over from the read ahead
    assert sorted(r for r in reads if r.endswith(".csv")) == csvs  # and read once
    assert {Path(k).name for k in seen} >= set(csvs)  # hashed into the caller's recording
    assert [t for t in threading.enumerate() if t.name.startswith("xl_kpi-read-ahead")] == []


def test_a_file_asked_for_with_other_options_is_read_with_them(tmp_path):
    path = ph.write_csv(tmp_path / "deals.csv", [["employee_id", "amount"], ["E1", "5"]], sep=";")
    with ahead.reading_ahead([path, tmp_path / "missing.csv", tmp_path / "plan.xlsx"]):
        assert ahead.take(path, separator=",") is None  # read again by its reader, with the Sources row's options
        got = ahead.take(path)
        assert got is not None and got.result().num_rows == 2
        assert ahead.take(path) is None  # handed out once
        assert ahead.take(tmp_path / "missing.csv") is None
    assert ahead.take(path) is None  # nothing outside the block


def test_the_data_paths_of_a_validate_command_line(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("b.csv", "a.CSV", ".hidden.csv", "~$lock.csv", "facts.xlsx", "notes.txt"):
        (folder / name).write_text("x;y\n1;2\n", encoding="utf-8")
    one = ph.write_csv(tmp_path / "one.csv", [["employee_id", "amount"], ["E1", "5"]], sep=";")
    args = ["--plan", str(one), "--period", "2026-10", "--data", str(folder), f"--data={one}", "--lang", "ru",
            "deals=" + str(one), str(tmp_path / "missing.csv"), "--engine", "duckdb", str(one)]
    from xl_kpi.inputs.readers.sniff import CSV_SUFFIXES
    from xl_kpi.inputs.tables import expand_paths

    listed = [p for p in expand_paths([folder]) if p.suffix.casefold() in CSV_SUFFIXES]  # as the data reader lists
    assert listed == [folder / "a.CSV", folder / "b.csv", folder / "notes.txt"]
    assert datafiles.early_paths(args) == [*listed, one, one]  # the plan's path is no data
    # NAME=PATH bindings, missing files, workbooks, hidden and lock files are not read early


def test_reads_started_early_are_adopted_once_and_never_into_a_recording(tmp_path, monkeypatch):
    from xl_kpi.inputs.readers import csvarrow

    path = ph.write_csv(tmp_path / "deals.csv", [["employee_id", "amount"], ["E1", "5"]], sep=";")
    other = ph.write_csv(tmp_path / "other.csv", [["employee_id", "amount"], ["E2", "7"]], sep=";")
    reads: list[str] = []
    real = csvarrow.read_csv_arrow

    def counted(p, **kw):
        reads.append(Path(p).name)
        return real(p, **kw)

    monkeypatch.setattr(csvarrow, "read_csv_arrow", counted)
    datafiles.read_early(["--data", str(path), str(other)])
    with ahead.reading_ahead([path]):  # other.csv was read early for nothing: discarded
        got = ahead.take(path)
        assert got is not None and got.result().num_rows == 2
    assert sorted(reads) == ["deals.csv", "other.csv"]  # each read once, by the early reads
    assert ahead._EARLY == []
    assert [t for t in threading.enumerate() if t.name.startswith("xl_kpi-read-ahead")] == []

    reads.clear()
    datafiles.read_early(["--data", str(path)])
    with inputbytes.recording() as seen, ahead.reading_ahead([path]):
        assert ahead.take(path).result().num_rows == 2
    assert reads == ["deals.csv", "deals.csv"]  # read again in the recording's context
    assert {Path(k).name for k in seen} == {"deals.csv"}
    assert [t for t in threading.enumerate() if t.name.startswith("xl_kpi-read-ahead")] == []


def test_validate_through_python_m_reads_early_and_says_the_same(tmp_path):
    import subprocess

    plan, data = sample_inputs()
    folder = data[0].parent
    env = {k: v for k, v in __import__("os").environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    code = ("import sys, runpy; from xl_kpi.inputs.readers import ahead; real = ahead.read_early; started = []\n"
            "import pyarrow as pa; pool = []\n"
            "def spy(args):\n    real(args); started.extend(k for _, f in ahead._EARLY for k in f)\n"
            "    pool.append(pa.default_memory_pool().backend_name)\n"
            "ahead.read_early = spy\n"  # an atexit hook: a finished validate ends at once, after the hooks
            "__import__('atexit').register(lambda: print('STARTED', sorted(__import__('pathlib').Path(k).name "
            "for k in started), pool))\n"
            "runpy.run_module('xl_kpi', run_name='__main__')\n")
    args = ["validate", "--plan", str(plan), "--data", str(folder), "--period", "2026-10", "--lang", "en"]
    early = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    plain = subprocess.run([sys.executable, "-c", "import sys; from xl_kpi.cli import main; sys.argv[0] = 'xl-kpi'; "
                            "main()", *args], capture_output=True, text=True, env=env)
    csvs = sorted(p.name for p in data if p.suffix == ".csv")
    try:
        import pyarrow as pa

        pa.jemalloc_memory_pool()
        allocator = "jemalloc"  # chosen before the early reads allocate, as the CLI chooses it
    except NotImplementedError:  # pragma: no cover - a wheel without jemalloc
        allocator = pa.default_memory_pool().backend_name
    assert early.stdout.rstrip().splitlines()[-1] == f"STARTED {csvs} {[allocator]}"
    assert early.returncode == plain.returncode and early.stdout.rstrip().splitlines()[:-1] == \
        plain.stdout.rstrip().splitlines()
