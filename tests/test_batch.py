"""The batch run end to end: xl-kpi generate / demo on the sample company and on broken inputs."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from tests import _plan_helpers as ph
from tests import lo
from xl_kpi import batch
from xl_kpi.cli import app
from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.money import round_money
from xl_kpi.inputs.plan import sample_inputs
from xl_kpi.inputs.problems import InputError

runner = CliRunner()


def manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    res = runner.invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_demo_writes_a_card_per_employee_summary_and_manifest(demo_out):
    plan, _ = sample_inputs()
    employees = openpyxl.load_workbook(plan, read_only=True).worksheets[0].max_row - 1
    rows = manifest(demo_out)
    cards = sorted(demo_out.glob("cards/*/*.xlsx"))
    assert len(rows) == len(cards) == employees >= 40
    assert not (demo_out / "errors.csv").exists()
    for r in rows:  # every listed file exists, has the recorded hash, and opens
        p = demo_out / r["file"]
        assert hashlib.sha256(p.read_bytes()).hexdigest() == r["sha256"]
        assert r["status"] == "ok"
    assert not list(demo_out.glob(batch.STAGING_PREFIX + "*"))


def test_summary_total_equals_sum_of_cards_to_the_kopeck(demo_out):
    total_cards = round_money(sum(float(r["total_bonus"]) for r in manifest(demo_out)))
    ws = openpyxl.load_workbook(demo_out / "summary.xlsx", data_only=True).worksheets[0]
    header = [c.value for c in ws[1]]
    bonus_col = header.index("Премия") + 1  # the sample plan is in Russian
    last = [c.value for c in ws[ws.max_row]]
    assert last[0] == "Итого"
    assert round_money(last[bonus_col - 1]) == total_cards


def test_demo_output_is_reproducible_and_jobs_do_not_change_bytes(demo_out, tmp_path):
    out = tmp_path / "again"
    res = runner.invoke(app, ["demo", "--out", str(out), "--jobs", "2"])
    assert res.exit_code == 0, res.output
    first = {r["file"]: r["sha256"] for r in manifest(demo_out)}
    second = {r["file"]: r["sha256"] for r in manifest(out)}
    assert first == second
    assert (out / "summary.xlsx").read_bytes() == (demo_out / "summary.xlsx").read_bytes()


def test_report_names_counts_total_and_folder(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "o"), "--lang", "en"])
    assert res.exit_code == 0, res.output
    assert "44 cards written" in res.output and "total bonus" in res.output and "₽" in res.output
    assert "(period October 2026, 2026-10)" in res.output
    assert str((tmp_path / "o").resolve()) in res.output.replace("\n", "")


@pytest.mark.libreoffice
def test_libreoffice_recalculates_every_card_and_the_summary_to_our_values(demo_out, tmp_path):
    lo.require_soffice()
    files = sorted(demo_out.glob("cards/*/*.xlsx"))
    flat = tmp_path / "in"
    flat.mkdir()
    inputs = []
    for i, f in enumerate(files):  # unique names in one folder for one soffice call
        inputs.append(shutil.copy(f, flat / f"card{i:03d}.xlsx"))
    inputs.append(shutil.copy(demo_out / "summary.xlsx", flat / "summary.xlsx"))
    recalculated = lo.recalc(inputs, tmp_path / "lo")
    compared = 0
    for src, rec in zip(inputs, recalculated, strict=True):
        bad = lo.formula_cells_vs_cached(src, rec)
        assert not bad, f"{src}: {bad[:5]}"
        compared += bad.compared
    assert compared > 40 * 15  # every card has a dozen or more formula cells


def _broken_plan(tmp_path: Path) -> tuple[Path, Path]:
    plan = ph.make_plan(tmp_path)
    facts = ph.make_facts(tmp_path, {("E1", "deals"): "x"}, name="bad.csv")
    return plan, facts


def test_input_errors_stop_before_anything_is_written(tmp_path):
    plan, facts = _broken_plan(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(app, ["generate", "--plan", str(plan), "--data", str(facts), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "bad.csv" in res.output and "is not a number" in res.output and "Nothing was written" in res.output
    assert not out.exists() or not any(out.iterdir())


def test_skip_invalid_cards_the_others_and_lists_the_rest(tmp_path):
    plan, facts = _broken_plan(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(app, ["generate", "--plan", str(plan), "--data", str(facts), "--out", str(out),
                              "--skip-invalid"])
    assert res.exit_code == 0, res.output
    with open(out / "errors.csv", encoding="utf-8-sig", newline="") as f:
        errors = list(csv.DictReader(f))
    assert [e["employee_id"] for e in errors] == ["E1"] and "deals" in errors[0]["reason"]
    carded = {r["employee_id"] for r in manifest(out)}
    assert "E1" not in carded and len(carded) + len(errors) == 3  # nobody silently dropped


def test_rerun_replaces_previous_output_cleanly(tmp_path):
    plan, facts = _broken_plan(tmp_path)
    out = tmp_path / "out"
    assert runner.invoke(app, ["generate", "--plan", str(plan), "--data", str(facts), "--out", str(out),
                               "--skip-invalid"]).exit_code == 0
    (out / "notes.txt").write_text("mine")  # not ours: must survive
    stale = out / "cards" / "Old dept" / "X1 Gone.xlsx"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    good = ph.make_facts(tmp_path, name="good.csv")
    res = runner.invoke(app, ["generate", "--plan", str(plan), "--data", str(good), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert not (out / "errors.csv").exists()  # the first run's, not produced by the second: removed
    assert (out / "notes.txt").read_text() == "mine"
    assert stale.read_bytes() == b"old"  # put there by hand, not recorded by a run: left alone
    assert len(manifest(out)) == 3 == len(list(out.glob("cards/*/*.xlsx"))) - 1


@pytest.mark.slow
def test_failure_mid_run_keeps_the_previous_output(tmp_path, monkeypatch):
    plan, data = sample_inputs()
    out = tmp_path / "out"
    batch.generate(plan, data, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "summary.xlsx"))

    monkeypatch.setattr(batch, "write_summary", boom)
    with pytest.raises(KpiError, match=r"summary\.xlsx: the disk is full"):
        batch.generate(plan, data, out)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing half-replaced, no staging left behind


@pytest.mark.slow
def test_stale_staging_folder_from_a_killed_run_is_removed(tmp_path):
    plan, data = sample_inputs()
    out = tmp_path / "out"
    leftover = out / f"{batch.STAGING_PREFIX}dead" / "cards"
    leftover.mkdir(parents=True)
    (leftover / "half.xlsx").write_bytes(b"PK")
    batch.generate(plan, data, out)
    assert not list(out.glob(batch.STAGING_PREFIX + "*"))


def test_library_raises_input_error_with_every_problem(tmp_path):
    plan, facts = _broken_plan(tmp_path)
    with pytest.raises(InputError) as e:
        batch.generate(plan, [facts], tmp_path / "out")
    assert e.value.problems.has_errors
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_python_dash_m_is_the_same_program(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "xl_kpi", "--help"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "120"}, check=False)
    assert res.returncode == 0 and "generate" in res.stdout and "validate" in res.stdout


@pytest.mark.slow
def test_saved_results_reload_to_the_same_numbers_and_summary(demo_out):
    from xl_kpi.outputs.results_files import load_results, same_results
    from xl_kpi.outputs.summary import summary_bytes

    plan, data = sample_inputs()
    from xl_kpi.results import compute
    from xl_kpi.validate import inspect

    the_plan, facts, _ = inspect(plan, data)
    fresh = compute(the_plan, facts)
    saved = load_results(demo_out)
    assert same_results(fresh, saved)
    assert summary_bytes(saved) == (demo_out / "summary.xlsx").read_bytes()


def test_load_results_names_the_missing_file(tmp_path):
    from xl_kpi import KpiError
    from xl_kpi.outputs.results_files import load_results

    with pytest.raises(KpiError, match=r"run\.json: not found"):
        load_results(tmp_path)


@pytest.mark.slow
def test_regenerate_removes_bundles_of_the_previous_cards_but_keeps_the_send_log(tmp_path):
    plan, data = sample_inputs()
    out = tmp_path / "out"
    batch.generate(plan, data, out)
    (out / "distribution" / "employee").mkdir(parents=True)
    (out / "distribution" / "employee" / "old.xlsx").write_bytes(b"old card")
    (out / "outbox").mkdir()
    (out / "outbox" / "employee_1001.eml").write_text("old")
    (out / "send-log.jsonl").write_text("{}\n")
    batch.generate(plan, data, out)
    assert not (out / "distribution").exists() and not (out / "outbox").exists()
    assert (out / "send-log.jsonl").read_text() == "{}\n"


@pytest.mark.slow
def test_relative_out_folder_gives_paths_relative_to_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["demo", "--out", "rel-out"])
    assert res.exit_code == 0, res.output
    rows = manifest(tmp_path / "rel-out")
    assert all(r["file"].startswith("cards/") for r in rows), rows[0]["file"]
    assert batch.verify(tmp_path / "rel-out") == []


def test_manifest_names_and_orders_cards_as_pathlib_and_the_id_split_would():
    # manifest.csv cuts card paths as text and sorts plain numeric ids without the regex: the same file either way
    import re

    from xl_kpi.outputs import manifest as m

    out = Path("/o/run")
    odd = ["/o/run/cards/a/b.xlsx", "/o/run/cards/../x.xlsx", "/o/run/./a", "/o/run//a", "/o/run/a/", "/o/other/a",
           "/o/run", "/o/run/cards/a b/.x", "/o/runner/a", "cards/rel.xlsx"]
    for p in odd:
        assert m._relative(p, out, out, "/o/run/") == m._relative(Path(p), out, out), p

    def by_regex(v):
        return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
                     for part in re.split(r"(\d+)", str(v)))

    ids = ["123", "0", "007", "E5", "12a", "", "\u0663", "10", "2", "E10", "e2"]
    assert [m._natural(v) for v in ids] == [by_regex(v) for v in ids]
    assert sorted(ids, key=m._natural) == sorted(ids, key=by_regex)


# ---- second wave: audit (issue 9 §5): verify cannot be fooled

def _run_small(tmp_path: Path, *, skip_invalid: bool = False) -> Path:
    plan, facts = _broken_plan(tmp_path) if skip_invalid else (ph.make_plan(tmp_path), ph.make_facts(tmp_path))
    out = tmp_path / "out"
    batch.generate(plan, [facts], out, skip_invalid=skip_invalid)
    assert batch.verify(out) == []
    return out


def _edit_and_rehash(out: Path, name: str, old: str, new: str) -> None:
    """Edit a recorded output and record the new hash in manifest.json, as a careful forger would."""
    import json

    p = out / name
    text = p.read_bytes().decode("utf-8-sig")
    assert old in text
    p.write_bytes(text.replace(old, new, 1).encode("utf-8-sig"))
    audit = json.loads((out / batch.AUDIT).read_text(encoding="utf-8"))
    audit["outputs"][name] = hashlib.sha256(p.read_bytes()).hexdigest()
    (out / batch.AUDIT).write_text(json.dumps(audit, ensure_ascii=False, indent=1), encoding="utf-8")


@pytest.mark.slow
def test_verify_catches_manifest_total_bonus_edited_and_rehashed(tmp_path):
    out = _run_small(tmp_path)
    total = manifest(out)[0]["total_bonus"]
    _edit_and_rehash(out, "manifest.csv", f",{total},", ",999999.00,")
    found = batch.verify(out)
    assert [f.file for f in found] == ["manifest.csv"], found
    assert "row 2, column total_bonus" in found[0].message and "999999.00" in found[0].message


@pytest.mark.slow
def test_verify_catches_errors_csv_edited_and_rehashed(tmp_path):
    out = _run_small(tmp_path, skip_invalid=True)
    _edit_and_rehash(out, "errors.csv", "E1,", "E7,")
    found = batch.verify(out)
    assert [f.file for f in found] == ["errors.csv"], found
    assert "row 2, column employee_id" in found[0].message


def test_verify_reports_files_no_run_recorded_anywhere_in_out(tmp_path):
    out = _run_small(tmp_path)
    (out / "notes.txt").write_text("x", encoding="utf-8")
    (out / "results" / "extra.csv").write_text("x", encoding="utf-8")
    (out / "cards" / "stray").mkdir()
    (out / "cards" / "stray" / "old.xlsx").write_bytes(b"x")
    found = {f.file for f in batch.verify(out)}
    assert found == {"notes.txt", "results/extra.csv", "cards/stray/old.xlsx"}, found


@pytest.mark.slow
def test_verify_reports_symlinks_in_out(tmp_path):
    out = _run_small(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("x", encoding="utf-8")
    os.symlink(outside, out / "cards" / "linked-dir")
    os.symlink(outside / "secret.txt", out / "results" / "linked.csv")
    found = batch.verify(out)
    files = {f.file for f in found}
    assert files == {"cards/linked-dir", "results/linked.csv"}, found
    assert all("symbolic link" in f.message for f in found)


def _manifest_json(out: Path) -> dict:
    import json

    return json.loads((out / batch.AUDIT).read_text(encoding="utf-8"))


@pytest.mark.slow
def test_input_hash_is_of_the_bytes_parsed_even_if_a_data_file_changes_during_the_run(tmp_path, monkeypatch):
    from xl_kpi.inputs.readers import csvarrow
    from xl_kpi.inputs.readers import csvfile as readers  # read_csv_grid and read_csv_arrow call detect_encoding

    plan, facts = ph.make_plan(tmp_path), ph.make_facts(tmp_path)
    parsed = facts.read_bytes()
    real = readers.detect_encoding

    def save_again_while_parsing(data: bytes) -> str:
        if data == parsed:
            facts.write_bytes(parsed + b"E1,deals,1\r\n")  # someone saves the file again mid-run
        return real(data)

    monkeypatch.setattr(readers, "detect_encoding", save_again_while_parsing)
    monkeypatch.setattr(csvarrow, "detect_encoding", save_again_while_parsing)
    out = tmp_path / "out"
    batch.generate(plan, [facts], out)
    assert facts.read_bytes() != parsed
    (rec,) = _manifest_json(out)["data"]
    assert rec["sha256"] == hashlib.sha256(parsed).hexdigest()


@pytest.mark.slow
def test_input_hash_is_of_the_bytes_parsed_even_if_the_plan_changes_during_the_run(tmp_path, monkeypatch):
    from xl_kpi.inputs.readers import workbook as readers  # read_workbook calls its scan_xlsx

    plan, facts = ph.make_plan(tmp_path), ph.make_facts(tmp_path)
    parsed = plan.read_bytes()
    real = readers.scan_xlsx

    def save_again_while_parsing(path, lim=None, **kw):
        if Path(path).name == plan.name:
            plan.write_bytes(parsed + b"\0")
        return real(path, lim, **kw)

    monkeypatch.setattr(readers, "scan_xlsx", save_again_while_parsing)
    out = tmp_path / "out"
    batch.generate(plan, [facts], out)
    assert plan.read_bytes() != parsed
    assert _manifest_json(out)["plan"]["sha256"] == hashlib.sha256(parsed).hexdigest()


def test_an_input_read_twice_with_other_bytes_in_one_run_is_refused(tmp_path):
    from xl_kpi.inputs import readers
    from xl_kpi.inputs.inputbytes import recording

    facts = ph.make_facts(tmp_path)
    with recording() as read:
        readers.read_csv_grid(facts)
        facts.write_bytes(facts.read_bytes() + b"E1,deals,1\r\n")
        with pytest.raises(readers.FileReadError, match="changed while xl-kpi was reading it"):
            readers.read_csv_grid(facts)
    assert list(read) == [str(facts.resolve())]


@pytest.mark.slow
def test_verify_recomputes_from_the_recorded_bytes_not_a_file_saved_meanwhile(tmp_path, monkeypatch):
    plan, facts = ph.make_plan(tmp_path), ph.make_facts(tmp_path)
    out = tmp_path / "out"
    batch.generate(plan, [facts], out)
    recorded = hashlib.sha256(facts.read_bytes()).hexdigest()
    real = batch._sha256
    # verify's hash check sees the recorded bytes; the file is saved again before it is parsed
    monkeypatch.setattr(batch, "_sha256", lambda p: recorded if Path(p).resolve() == facts.resolve() else real(p))
    with open(facts, "a", encoding="utf-8") as f:
        f.write("E00000,deals,1\r\n")
    found = batch.verify(out)
    assert len(found) == 1 and "cannot recompute" in found[0].message and facts.name in found[0].message, found


# ---- the output folder belongs to the user (issue 9 §3)


def _demo_args(out: Path) -> list[str]:
    plan, data = sample_inputs()
    return ["generate", "--plan", str(plan), "--data", *map(str, data), "--out", str(out)]


def test_out_nonempty_without_manifest_is_refused_and_untouched(tmp_path):
    out = tmp_path / "out"
    (out / "results").mkdir(parents=True)
    (out / "results" / "thesis.docx").write_bytes(b"my thesis")
    (out / "summary.xlsx").write_bytes(b"my summary")
    res = runner.invoke(app, _demo_args(out))
    assert res.exit_code == 1
    assert "has no manifest.json" in str(res.exception) and "fix:" in str(res.exception)
    assert sorted(p.name for p in out.rglob("*")) == ["results", "summary.xlsx", "thesis.docx"]
    assert (out / "summary.xlsx").read_bytes() == b"my summary"


@pytest.mark.slow
def test_rerun_keeps_user_files_inside_results_and_cards(tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, _demo_args(out)).exit_code == 0
    (out / "results" / "thesis.docx").write_bytes(b"my thesis")
    assert runner.invoke(app, _demo_args(out)).exit_code == 0
    assert (out / "results" / "thesis.docx").read_bytes() == b"my thesis"
    # kept, and the audit points it out as the one file no run recorded (issue 9 §5)
    assert [f.file for f in batch.verify(out, recompute=False)] == ["results/thesis.docx"]


@pytest.mark.slow
def test_rerun_refuses_to_overwrite_a_file_it_did_not_record(tmp_path):
    out = tmp_path / "out"
    plan, data = sample_inputs()
    batch.generate(plan, data, out)
    audit = json.loads((out / "manifest.json").read_text())
    audit["files"].remove("summary.xlsx")  # as if the user had put summary.xlsx there
    (out / "manifest.json").write_text(json.dumps(audit))
    (out / "summary.xlsx").write_bytes(b"my summary")
    with pytest.raises(KpiError, match=r"summary\.xlsx exists and was not written by xl-kpi"):
        batch.generate(plan, data, out)
    assert (out / "summary.xlsx").read_bytes() == b"my summary"


def test_out_inside_a_data_folder_is_a_usage_error(tmp_path):
    plan, data = sample_inputs()
    folder = tmp_path / "data"
    folder.mkdir()
    for d in data:
        shutil.copy(d, folder / Path(d).name)
    for out in (folder, folder / "kpi-out"):
        res = runner.invoke(app, ["generate", "--plan", str(plan), "--data", str(folder), "--out", str(out)])
        assert res.exit_code == 2, res.output
        assert "inside the --data folder" in res.output
    assert not (folder / "kpi-out").exists()


@pytest.mark.slow
def test_damaged_manifest_json_stops_with_its_path(tmp_path):
    out = tmp_path / "out"
    plan, data = sample_inputs()
    batch.generate(plan, data, out)
    (out / "manifest.json").write_text("{broken")
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(KpiError, match=r"manifest\.json is damaged"):
        batch.generate(plan, data, out)
    assert sorted(p.name for p in out.rglob("*")) == before


@pytest.mark.slow
def test_out_under_a_file_is_exit_1_with_the_cause(tmp_path):
    (tmp_path / "afile").write_text("x")
    res = runner.invoke(app, _demo_args(tmp_path / "afile" / "out"))
    assert res.exit_code == 1
    assert "afile" in str(res.exception) and "not a folder" in str(res.exception)


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root writes anywhere")
def test_read_only_out_is_exit_1_with_the_cause(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o500)
    try:
        res = runner.invoke(app, _demo_args(out))
    finally:
        out.chmod(0o700)
    assert res.exit_code == 1 and "permission denied" in str(res.exception)


@pytest.mark.slow
def test_second_generate_into_a_locked_out_is_refused(tmp_path):
    from xl_kpi.outputs import outdir

    out = tmp_path / "out"
    plan, data = sample_inputs()
    batch.generate(plan, data, out)
    staging = out / f"{batch.STAGING_PREFIX}running"
    staging.mkdir()
    with outdir.lock(out):
        res = runner.invoke(app, _demo_args(out))
    assert res.exit_code == 1
    assert "another xl-kpi run" in str(res.exception)
    assert staging.is_dir()  # the running one's staging is not deleted


def test_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / ".xl-kpi.lock").symlink_to(victim)
    with pytest.raises(KpiError, match="symbolic link"):
        batch.generate(*sample_inputs(), out)
    assert victim.read_text() == "precious"


@pytest.mark.slow
def test_symlinked_results_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    plan, data = sample_inputs()
    batch.generate(plan, data, out)
    elsewhere = tmp_path / "elsewhere"
    (out / "results").rename(elsewhere)
    (out / "results").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(KpiError, match="symbolic link"):
        batch.generate(plan, data, out)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["employees.csv", "lines.csv", "run.json"]


def _interrupt_after(monkeypatch, chunks: int) -> dict[str, int]:
    """Cards two at a time; Ctrl+C after ``chunks`` chunks; counts the cards rendered."""
    import functools

    from xl_kpi.outputs import cards
    from xl_kpi.outputs.cards import write as card_writer

    real_chunk, real_render = card_writer._write_chunk, card_writer._render
    seen = {"chunks": 0, "rendered": 0, "stop": chunks}

    def chunk(*a, **k):
        if seen["chunks"] == seen["stop"]:
            raise KeyboardInterrupt
        seen["chunks"] += 1
        return real_chunk(*a, **k)

    def render(*a, **k):
        seen["rendered"] += 1
        return real_render(*a, **k)

    monkeypatch.setattr(card_writer, "_write_chunk", chunk)
    monkeypatch.setattr(card_writer, "_render", render)
    monkeypatch.setattr(batch, "write_cards", functools.partial(cards.write_cards, chunk_size=2))
    return seen


@pytest.mark.slow
def test_ctrl_c_keeps_finished_cards_and_resume_reuses_them(tmp_path, monkeypatch):
    plan, data = sample_inputs()
    out = tmp_path / "out"
    seen = _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        batch.generate(plan, data, out)
    staged = list(out.glob(f"{batch.STAGING_PREFIX}*/cards/*/*.xlsx"))
    assert len(staged) == 4
    seen.update(rendered=0, stop=-1)
    report = batch.generate(plan, data, out, resume=True)
    assert report.reused == 4 and seen["rendered"] == len(report.cards) - 4
    assert batch.verify(out, recompute=False) == []


@pytest.mark.slow
def test_resume_rebuilds_a_staged_card_it_did_not_record(tmp_path, monkeypatch):
    plan, data = sample_inputs()
    fresh_out = tmp_path / "fresh"
    batch.generate(plan, data, fresh_out)
    out = tmp_path / "out"
    seen = _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        batch.generate(plan, data, out)
    a, b = sorted(out.glob(f"{batch.STAGING_PREFIX}*/cards/*/*.xlsx"))[:2]
    a.write_bytes(b.read_bytes())  # another employee's pay in a's place
    seen.update(rendered=0, stop=-1)
    report = batch.generate(plan, data, out, resume=True)
    assert report.reused == 3 and seen["rendered"] == len(report.cards) - 3
    for r in manifest(out):
        assert (out / r["file"]).read_bytes() == (fresh_out / r["file"]).read_bytes(), r["file"]


def test_rerun_moves_the_new_cards_folder_in_whole_when_it_holds_only_earlier_cards(tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, _demo_args(out)).exit_code == 0
    first = os.stat(out / "cards").st_ino
    res = runner.invoke(app, _demo_args(out))
    assert res.exit_code == 0, res.output
    assert os.stat(out / "cards").st_ino != first  # one rename of the staged folder, not card by card
    cards = sorted(p.relative_to(out).as_posix() for p in (out / "cards").rglob("*") if p.is_file())
    assert sorted(r["file"] for r in manifest(out)) == cards
    assert not list(out.glob(".xl-kpi-staging-*"))


def test_a_symlinked_cards_folder_is_refused_and_its_target_untouched(tmp_path):
    out = tmp_path / "out"
    plan, data = sample_inputs()
    batch.generate(plan, data, out)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    shutil.rmtree(out / "cards")
    (out / "cards").symlink_to(outside, target_is_directory=True)
    with pytest.raises(KpiError, match="cards is a symbolic link"):
        batch.generate(plan, data, out)
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
