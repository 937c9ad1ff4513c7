"""Hostile input: formula-like text stays text, names never escape --out or fail the run."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest

from tests import _plan_helpers as ph
from xl_kpi import batch

HOSTILE = [
    # employee_id, name, department
    ("=1+1", '=HYPERLINK("http://x","click")', "../../escape"),
    ("E2", "+SUM(A1:A9)", "..\\..\\win"),
    ("E3", "-2+3", "CON"),
    ("E4", "@cmd", "NUL."),
    ("E5", "Имя/с\\разделителями", "/abs/path"),
    ("E6", "Д" * 300, "COM1"),
]


def hostile_plan(folder: Path) -> tuple[Path, Path]:
    sheets = ph.plan_sheets()
    sheets["Employees"][1:] = [[e, n, "Account manager", d, "=cmd|' /C calc'!A0", f"e{i}@x.ru", 50_000, 20_000]
                               for i, (e, n, d) in enumerate(HOSTILE)]
    facts = [["employee_id", "kpi_id", "fact"]]
    for e, _, _ in HOSTILE:
        facts += [[e, "deals", 160], [e, "complaints", 4]]
    folder.mkdir(parents=True, exist_ok=True)
    path = ph.write_workbook(folder / "plan.xlsx", sheets)
    wb = openpyxl.load_workbook(path)  # typed as text (as after a leading apostrophe), not as formulas
    for row in wb["Employees"].iter_rows():
        for c in row:
            if isinstance(c.value, str) and c.value[:1] in "=+-@":
                c.data_type = "s"
    wb.save(path)
    return path, ph.write_csv(folder / "facts.csv", facts)


@pytest.mark.slow
def test_hostile_names_stay_inside_out_and_are_text(tmp_path):
    plan, facts = hostile_plan(tmp_path / "in")
    out = tmp_path / "out"
    report = batch.generate(plan, [facts], out)
    assert len(report.cards) == len(HOSTILE)
    root = out.resolve()
    everything = [p.resolve() for p in tmp_path.rglob("*") if "in" not in p.relative_to(tmp_path).parts[:1]]
    assert all(p.is_relative_to(root) for p in everything), [p for p in everything if not p.is_relative_to(root)]
    for r in report.cards:
        p = Path(r.path)
        assert p.resolve().is_relative_to(root / "cards")
        assert len(p.name.encode("utf-8")) <= 255
        assert p.parent.name.split(".")[0].upper() not in {"CON", "NUL", "COM1"}
    # every hostile text is a text cell (never a formula) in the cards and the summary
    texts = {n for _, n, _ in HOSTILE} | {"=cmd|' /C calc'!A0"}
    for p in [Path(r.path) for r in report.cards] + [out / "summary.xlsx"]:
        wb = openpyxl.load_workbook(p)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for c in row:
                    if isinstance(c.value, str) and c.value in texts:
                        assert c.data_type == "s", (p.name, c.coordinate, c.value)
    summary = openpyxl.load_workbook(out / "summary.xlsx", data_only=True).worksheets[0]
    shown = {c.value for row in summary.iter_rows() for c in row}
    assert texts - {"=cmd|' /C calc'!A0"} <= shown  # names appear exactly as typed


def test_csv_outputs_neutralise_formula_text(tmp_path):
    plan, facts = hostile_plan(tmp_path / "in")
    out = tmp_path / "out"
    batch.generate(plan, [facts], out)
    with open(out / "manifest.csv", encoding="utf-8-sig", newline="") as f:
        cells = [c for row in csv.reader(f) for c in row]
    assert all(not c.startswith(("=", "+", "-", "@")) for c in cells), [c for c in cells if c[:1] in "=+-@"]
    assert "'=1+1" in cells


@pytest.mark.slow
def test_verify_and_distribution_read_back_neutralised_ids(tmp_path):
    plan, facts = hostile_plan(tmp_path / "in")
    out = tmp_path / "out"
    batch.generate(plan, [facts], out)
    assert batch.verify(out) == []  # the id "=1+1" is stored as "'=1+1" and read back as "=1+1"
