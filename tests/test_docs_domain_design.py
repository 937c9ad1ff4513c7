"""docs/domain.md and docs/design.md: they exist, the code cites them (never the old DOMAIN.md / DESIGN.md,
which are not in the repository), their sections cited as §N exist, their worked examples compute, and
design.md's public surface names what the package really has."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import udfs
import xl_kpi
from xl_kpi import metrics
from xl_kpi.engine import payout

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = ROOT / "docs" / "domain.md"
DESIGN = ROOT / "docs" / "design.md"


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    if not names:  # not a git checkout (an unpacked sdist): every text file under the root
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]
    return [ROOT / n for n in names if n.endswith((".py", ".md", ".toml", ".txt", ".cfg", ".in"))]


def test_nothing_cites_the_documents_outside_the_repository():
    old = re.compile(r"(?<![\w/])(DOMAIN|DESIGN)\.md")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in _tracked_text_files() if p.is_file() and p != Path(__file__)
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if old.search(line)]
    assert not offenders


def test_every_cited_section_of_domain_md_exists():
    headings = set(re.findall(r"^##+ (§\d+)", DOMAIN.read_text(encoding="utf-8"), flags=re.MULTILINE))
    cited = set()
    for p in _tracked_text_files():
        if p.is_file():
            cited |= {f"§{n}" for n in re.findall(r"domain\.md §(\d+)", p.read_text(encoding="utf-8"))}
            cited |= {f"§{n}" for span in re.findall(r"domain\.md §(\d+)[–-](\d+)", p.read_text(encoding="utf-8"))
                      for n in range(int(span[0]), int(span[1]) + 1)}
    assert cited and cited <= headings


def test_domain_worked_examples():
    assert xl_kpi.score(160, 100, 150) == pytest.approx(1.2)
    assert xl_kpi.score(4, 10, 5) == pytest.approx(1.2)
    assert [xl_kpi.coefficient(s) for s in (0.995, 0.7, 1.0, 1.1, 0.69)] == [0.9, 0.9, 1.0, 1.1, 0.0]
    assert xl_kpi.bonus(20_000, 0.4, 1.2) == 8_800.0
    assert xl_kpi.total_bonus(20_000, [0.4, 0.2, 0.2, 0.2], [1.2, 1.2, 0.8, 1.0]) == 20_800.0
    assert xl_kpi.round_money(0.125) == 0.13
    bonus = xl_kpi.period_bonus(20_800, 1.2, xl_kpi.prorate(19, 31))
    assert bonus == 15_298.06 and xl_kpi.total_pay(80_000, bonus) == 95_298.06
    assert xl_kpi.period_bonus(20_800, 1.2, 0.5) == 12_480.0
    assert xl_kpi.gate_failed(xl_kpi.score(118, 100, 150), 0.5) is True
    assert metrics.nps([10, 9, 9, 8, 7, 10, 6, 3, 9, 10]) == 40.0
    assert metrics.clv(1500, 12, 3) == 54_000.0
    assert metrics.retention_rate(134, 20, 120) == pytest.approx(0.95)
    assert metrics.churn_rate(6, 120) == pytest.approx(0.05)
    text = DOMAIN.read_text(encoding="utf-8")
    for figure in ("120%", "8 800", "20 800", "15 298.06", "95 298.06", "12 480.00"):
        assert figure in text


def test_design_lists_the_excel_functions_there_are():
    listed = set(re.findall(r"`(KPI_[A-Z_]+)`", DESIGN.read_text(encoding="utf-8")))
    assert listed == {n for n in udfs.__all__ if n.startswith("KPI_")}


def test_design_python_names_exist():
    text = DESIGN.read_text(encoding="utf-8").split("## Python API", 1)[1].split("## Excel functions", 1)[0]
    words = {"xl_kpi", "metrics", "None", "engine", "payout"}
    names = {n for n in re.findall(r"`(\w+)(?:\(|`)", text) if n not in words}
    missing = [n for n in names if not any(hasattr(m, n) for m in (xl_kpi, metrics, payout))]
    assert names and not missing
