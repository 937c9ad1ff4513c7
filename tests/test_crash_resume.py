"""Crashes and reruns: SIGKILL in the middle of a run, --resume, and the audit (xl-kpi verify)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import _plan_helpers as ph
from xl_kpi import batch
from xl_kpi.cli import app

runner = CliRunner()
N = 5000


def big_inputs(folder: Path, n: int = N, seed: int = 1) -> tuple[Path, Path]:
    """A plan of n account managers (2 KPIs each) and a facts file for them."""
    sheets = ph.plan_sheets()
    sheets["Employees"][1:] = [
        [f"E{i:05d}", f"Сотрудник {i}", "Account manager", f"Отдел {i % 7}", "Петрова", f"e{i}@x.ru", 50_000, 20_000]
        for i in range(n)
    ]
    rng = random.Random(seed)
    facts = [["employee_id", "kpi_id", "fact"]]
    for i in range(n):
        facts += [[f"E{i:05d}", "deals", rng.randint(60, 200)], [f"E{i:05d}", "complaints", rng.randint(2, 12)]]
    folder.mkdir(parents=True, exist_ok=True)
    return ph.write_workbook(folder / "plan.xlsx", sheets), ph.write_csv(folder / f"facts{seed}.csv", facts)


def run_and_kill(plan: Path, facts: Path, out: Path, after_cards: int = 300) -> None:
    """Start `python -m xl_kpi generate` and SIGKILL it once some cards are written."""
    proc = subprocess.Popen([sys.executable, "-m", "xl_kpi", "generate", "--plan", str(plan), "--data", str(facts),
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            staged = list(out.glob(f"{batch.STAGING_PREFIX}*/cards/*/*.xlsx")) if out.exists() else []
            if len(staged) >= after_cards:
                break
            assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()
            time.sleep(0.01)
        else:
            pytest.fail("no cards appeared in time")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def complete_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None and "xl/workbook.xml" in z.namelist()
    except zipfile.BadZipFile:
        return False


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_finishes_with_identical_output(tmp_path):
    plan, facts = big_inputs(tmp_path / "in")
    out = tmp_path / "out"
    run_and_kill(plan, facts, out)
    # nothing of the killed run is visible as output; what it staged is complete or absent
    assert {p.name for p in out.iterdir() if not p.name.startswith(batch.STAGING_PREFIX)} <= {".xl-kpi.lock"}
    staged = [p for p in out.rglob("*.xlsx")]
    assert staged and all(complete_zip(p) for p in staged)
    from xl_kpi.outputs.cards import read_journal

    (journal,) = out.glob(f"{batch.STAGING_PREFIX}*/{batch.JOURNAL}")
    kept = sum(1 for p in read_journal(journal) if Path(p).is_file())  # a card is reused only when journaled
    assert 0 < kept <= len(staged)

    res = runner.invoke(app, ["generate", "--plan", str(plan), "--data", str(facts), "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    assert f"resumed      {kept} cards kept" in res.output
    assert not list(out.glob(batch.STAGING_PREFIX + "*"))
    assert batch.verify(out) == []

    fresh = tmp_path / "fresh"
    batch.generate(plan, [facts], fresh)
    for name in ("manifest.csv", "summary.xlsx", "manifest.json"):
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name

    again = runner.invoke(app, ["generate", "--plan", str(plan), "--data", str(facts), "--out", str(out), "--resume"])
    assert again.exit_code == 0 and "already complete" in " ".join(again.output.split())


@pytest.mark.slow
def test_sigkill_during_a_rerun_keeps_the_previous_output_and_a_plain_rerun_finishes(tmp_path):
    plan, facts1 = big_inputs(tmp_path / "in", seed=1)
    _, facts2 = big_inputs(tmp_path / "in", seed=2)
    out = tmp_path / "out"
    batch.generate(plan, [facts1], out)
    before = (out / "manifest.json").read_bytes()
    run_and_kill(plan, facts2, out)
    assert (out / "manifest.json").read_bytes() == before
    assert batch.verify(out, recompute=False) == []  # the previous output is whole and unchanged
    res = runner.invoke(app, ["generate", "--plan", str(plan), "--data", str(facts2), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert not list(out.glob(batch.STAGING_PREFIX + "*"))
    assert batch.verify(out) == []
    assert (out / "manifest.json").read_bytes() != before


@pytest.mark.slow
def test_verify_reports_tampering(tmp_path):
    plan, facts = big_inputs(tmp_path / "in", n=6)
    out = tmp_path / "out"
    batch.generate(plan, [facts], out)
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0
    cards = sorted(out.glob("cards/*/*.xlsx"))
    # 1. a card replaced by another employee's card (valid file, wrong content)
    cards[0].write_bytes(cards[1].read_bytes())
    # 2. a card added after the run
    (cards[2].parent / "E99999 Intruder.xlsx").write_bytes(cards[2].read_bytes())
    # 3. the saved results edited
    lines = out / "results" / "employees.csv"
    lines.write_text(lines.read_text(encoding="utf-8").replace("20000", "90000"), encoding="utf-8")
    res = runner.invoke(app, ["verify", str(out)])
    assert res.exit_code == 1
    text = res.output.replace("\n", " ")
    assert cards[0].name in text and "Intruder" in text and "employees.csv" in text


@pytest.mark.slow
def test_verify_when_inputs_changed_says_it_cannot_recompute(tmp_path):
    plan, facts = big_inputs(tmp_path / "in", n=4)
    out = tmp_path / "out"
    batch.generate(plan, [facts], out)
    facts.write_bytes(facts.read_bytes())  # rewritten with the same bytes: fine
    assert batch.verify(out) == []
    with open(facts, "a", encoding="utf-8") as f:
        f.write("E00000,deals,1\r\n")
    found = batch.verify(out)
    assert len(found) == 1 and "cannot recompute" in found[0].message and facts.name in found[0].message


def test_audit_record_names_inputs_template_version_period(tmp_path):
    import json

    plan, facts = big_inputs(tmp_path / "in", n=3)
    out = tmp_path / "out"
    batch.generate(plan, [facts], out)
    audit = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    import hashlib

    assert audit["plan"]["sha256"] == hashlib.sha256(plan.read_bytes()).hexdigest()
    assert [d["sha256"] for d in audit["data"]] == [hashlib.sha256(facts.read_bytes()).hexdigest()]
    assert audit["period"] == "2026-10" and audit["xl_kpi_version"] and len(audit["template"]["sha256"]) == 64
    assert audit["cards"] == 3 and set(audit["outputs"]) >= {"summary.xlsx", "manifest.csv", "results/lines.csv"}
