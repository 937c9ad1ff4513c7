"""Issue 13 §2: earlier runs on the card (``generate --history``), each checked against its manifest.json.

Three months are generated in tmp (2026-08, 2026-09 as history, 2026-10 with it); the card's history sheet must
hold exactly the numbers those runs recorded, the year-to-date total their sum, and a tampered or doubled run must
stop the run with a located error.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from tests import _plan_helpers as ph
from tests import lo
from xl_kpi.batch import generate, verify
from xl_kpi.cli import app
from xl_kpi.delivery.isolation import check
from xl_kpi.engine.period import Period
from xl_kpi.inputs.problems import InputError
from xl_kpi.outputs.cards import CardTemplate, render_card
from xl_kpi.outputs.history import History
from xl_kpi.outputs.results_files import load_results

FACTS = {  # month → facts that differ from ph.facts_rows()'s
    "2026-08": {("E1", "deals"): 120, ("E2", "complaints"): 6},
    "2026-09": {("E1", "deals"): 140, ("E2", "deals"): 145, ("E2", "complaints"): 7},
    "2026-10": {},
}


@dataclass(frozen=True)
class Runs:
    root: Path
    plan: Path
    history: Path
    out: Path

    def facts(self, month: str) -> Path:
        return self.root / month / "facts.csv"


def make_runs(root: Path, months: tuple[str, ...] = ("2026-08", "2026-09")) -> Runs:
    """The small plan generated for each earlier month into root/history/<month>, and the facts of 2026-10."""
    root.mkdir(parents=True, exist_ok=True)
    plan = ph.make_plan(root)
    for m in (*months, "2026-10"):
        (root / m).mkdir(exist_ok=True)
        ph.make_facts(root / m, FACTS.get(m, {}))
    for m in months:
        generate(plan, [root / m / "facts.csv"], root / "history" / m, period=m)
    return Runs(root, plan, root / "history", root / "out")


def run_october(r: Runs, out: Path | None = None, history: list[Path] | None = None, **kw: object) -> Path:
    out = out or r.out
    generate(r.plan, [r.facts("2026-10")], out, period="2026-10",
             history=[r.history] if history is None else history, **kw)  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    r = make_runs(tmp_path_factory.mktemp("history"))
    run_october(r)
    return r


def card_of(out: Path, eid: str) -> Path:
    return next((out / "cards").rglob(f"{eid} *.xlsx"))


def history_rows(path: Path, sheet: str = "History") -> list[tuple[object, ...]]:
    ws = openpyxl.load_workbook(path, data_only=True)[sheet]
    return [tuple(c.value for c in row[:4]) for row in ws.iter_rows(min_row=5) if row[0].value is not None]


def recorded(run: Path, eid: str) -> tuple[float, float]:
    """(weighted score, bonus) of ``eid`` as the run's results files hold them, computed here by hand."""
    emp = pd.read_csv(run / "results" / "employees.csv", dtype={"employee_id": str})
    lines = pd.read_csv(run / "results" / "lines.csv", dtype={"employee_id": str})
    mine = lines[lines["employee_id"] == eid]
    return float((mine["weight"] * mine["score"]).sum()), float(emp.loc[emp["employee_id"] == eid, "bonus"].iloc[0])


def cents(x: float) -> Decimal:
    return Decimal(repr(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# ------------------------------------------------------------------------------------------- the card


@pytest.mark.parametrize("eid", ["E1", "E2", "E3"])
def test_card_shows_the_earlier_runs_numbers_and_this_period_last(runs: Runs, eid: str) -> None:
    rows = history_rows(card_of(runs.out, eid))
    periods = ["August 2026", "September 2026", "October 2026"]
    assert [r[0] for r in rows[:3]] == periods
    for row, month in zip(rows[:2], ("2026-08", "2026-09"), strict=True):
        score, bonus = recorded(runs.history / month, eid)
        assert row[1] == pytest.approx(score, abs=1e-12)
        assert row[2] == bonus
        assert row[3] is None
    score, bonus = recorded(runs.out, eid)
    assert rows[2][1] == pytest.approx(score, abs=1e-12)
    assert rows[2][2] == bonus
    assert rows[2][3] == "◀ this period"
    # the three bonuses differ from month to month: a row taken from the wrong run would show
    assert len({r[2] for r in rows[:3]}) == 3 or eid == "E3"


@pytest.mark.parametrize("eid", ["E1", "E2", "E3"])
def test_year_to_date_is_the_sum_of_the_three_months(runs: Runs, eid: str) -> None:
    rows = history_rows(card_of(runs.out, eid))
    ytd = rows[3]
    assert ytd[0] == "Year to date 2026"
    assert ytd[3] == "3 periods"
    want = sum(cents(recorded(run, eid)[1]) for run in (runs.history / "2026-08", runs.history / "2026-09", runs.out))
    assert Decimal(repr(ytd[2])) == want
    ws = openpyxl.load_workbook(card_of(runs.out, eid))["History"]
    assert ws["C8"].value == "=ROUND(SUM(C5:C7),2)"


def test_this_periods_cells_refer_to_the_card_sheet(runs: Runs) -> None:
    """The what-if on the card moves this period's row: the bonus and weighted score are live references."""
    wb = openpyxl.load_workbook(card_of(runs.out, "E1"))
    card, hist = wb.worksheets[0], wb["History"]
    assert re.fullmatch(r"=Card!\$[A-Z]+\$\d+", hist["C7"].value)
    assert card[hist["C7"].value.split("!")[1].replace("$", "")].value.startswith("=")
    assert hist["B7"].value.startswith("=ROUND(SUMPRODUCT(Card!$")


def test_a_year_to_date_counts_only_periods_of_its_year(tmp_path: Path) -> None:
    r = make_runs(tmp_path, ("2025-12", "2026-Q3"))  # a month of the year before and a quarter of this one
    out = run_october(r)
    rows = history_rows(card_of(out, "E1"))
    assert [x[0] for x in rows[:3]] == ["December 2025", "Q3 2026", "October 2026"]
    assert rows[3][3] == "2 periods"
    want = cents(recorded(r.history / "2026-Q3", "E1")[1]) + cents(recorded(out, "E1")[1])
    assert Decimal(repr(rows[3][2])) == want
    assert openpyxl.load_workbook(card_of(out, "E1"))["History"]["C8"].value == "=ROUND(SUM(C6:C7),2)"


def test_year_to_date_rule_for_quarters_and_ranges() -> None:
    q4 = Period.parse("2026-Q4")
    assert q4.counts_toward_year_to_date(Period.parse("2026-Q1"))
    assert q4.counts_toward_year_to_date(Period.parse("2026-H1"))
    assert not q4.counts_toward_year_to_date(Period.parse("2025-Q4"))
    assert not q4.counts_toward_year_to_date(Period.parse("2025-12-15..2026-01-14"))  # crosses in from 2025
    assert not q4.counts_toward_year_to_date(Period.parse("2026-11"))  # not before this period
    spanning = Period.parse("2026-12-16..2027-01-15")  # a range's year is the year it ends in
    assert spanning.counts_toward_year_to_date(Period.parse("2027-01-01..2027-01-10")) is False
    assert not spanning.counts_toward_year_to_date(Period.parse("2026-11"))


def test_russian_card_names_the_periods_in_russian(tmp_path: Path, runs: Runs) -> None:
    out = run_october(runs, tmp_path / "ru", lang="ru")
    rows = history_rows(card_of(out, "E1"), "Динамика")
    assert [x[0] for x in rows[:4]] == ["август 2026", "сентябрь 2026", "октябрь 2026", "С начала 2026 года"]
    assert rows[2][3] == "◀ текущий период"
    assert rows[4][0].startswith("Прошлые периоды")  # the note under the table, in Russian too


def test_without_history_the_card_is_the_card_of_today(tmp_path: Path, runs: Runs) -> None:
    plain = run_october(runs, tmp_path / "plain", history=[])
    with_history = card_of(runs.out, "E1").read_bytes()
    today = card_of(plain, "E1").read_bytes()
    tpl = CardTemplate.load(None, "en")
    results = load_results(plain)
    assert render_card(tpl, results, "E1") == today
    assert render_card(tpl, results, "E1", history=History()) == today
    assert "history" not in json.loads((plain / "manifest.json").read_text(encoding="utf-8"))
    a, b = zipfile.ZipFile(io.BytesIO(today)), zipfile.ZipFile(io.BytesIO(with_history))
    assert not [n for n in a.namelist() if "history" in n]
    added = sorted(set(b.namelist()) - set(a.namelist()))
    assert added == ["xl/charts/xl_kpi_history.xml", "xl/drawings/_rels/xl_kpi_history.xml.rels",
                     "xl/drawings/xl_kpi_history.xml", "xl/worksheets/_rels/xl_kpi_history.xml.rels",
                     "xl/worksheets/xl_kpi_history.xml"]
    assert a.read("xl/worksheets/sheet1.xml") == b.read("xl/worksheets/sheet1.xml")  # the card sheet is as today's


# ------------------------------------------------------------------------------------------- trust


def test_a_tampered_earlier_run_is_refused_naming_the_file(tmp_path: Path) -> None:
    r = make_runs(tmp_path)
    run_october(r, tmp_path / "ok")  # untouched: trusted
    emp = r.history / "2026-09" / "results" / "employees.csv"
    bonus = f",False,{recorded(r.history / '2026-09', 'E1')[1]!r},".encode()  # gated, then the bonus column
    assert emp.read_bytes().count(bonus) == 1
    emp.write_bytes(emp.read_bytes().replace(bonus, b",False,99999.0,"))  # a bigger bonus last month
    with pytest.raises(InputError) as e:
        run_october(r, tmp_path / "bad")
    p = ph.only(e.value.problems, "changed since its run")
    assert p.file == str(emp) and p.fix
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())


def test_an_edited_manifest_is_refused(tmp_path: Path) -> None:
    r = make_runs(tmp_path, ("2026-09",))
    m = r.history / "2026-09" / "manifest.json"
    audit = json.loads(m.read_text(encoding="utf-8"))
    audit["period"] = "2026-07"
    m.write_text(json.dumps(audit), encoding="utf-8")
    with pytest.raises(InputError) as e:
        run_october(r)
    assert ph.only(e.value.problems, "edited after its run").file == str(m)


def test_two_runs_for_one_period_are_reported_not_picked(tmp_path: Path) -> None:
    r = make_runs(tmp_path)
    shutil.copytree(r.history / "2026-09", r.history / "2026-09 again")
    with pytest.raises(InputError) as e:
        run_october(r)
    p = ph.only(e.value.problems, "overlapping periods")
    assert "2026-09 again" in p.message and str(r.history / "2026-09") in p.message


def test_a_later_period_is_left_out_with_a_warning(tmp_path: Path) -> None:
    r = make_runs(tmp_path, ("2026-09", "2026-11"))
    out = run_october(r)
    assert [x[0] for x in history_rows(card_of(out, "E1"))][:2] == ["September 2026", "October 2026"]
    assert [h["period"] for h in json.loads((out / "manifest.json").read_text(encoding="utf-8"))["history"]] == [
        "2026-09"]


def test_a_folder_without_runs_is_an_error(tmp_path: Path) -> None:
    r = make_runs(tmp_path, ())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as e:
        run_october(r, history=[tmp_path / "empty"])
    assert ph.only(e.value.problems, "no output of 'xl-kpi generate' here").file == str(tmp_path / "empty")


def test_verify_recomputes_the_history_and_notices_a_changed_run(tmp_path: Path) -> None:
    r = make_runs(tmp_path, ("2026-09",))
    out = run_october(r)
    assert verify(out) == []
    m = r.history / "2026-09" / "manifest.json"
    m.write_bytes(m.read_bytes() + b"\n")
    found = verify(out)
    assert len(found) == 1 and "history" in found[0].message and "changed" in found[0].message


def test_cli_history_option(tmp_path: Path, runner: object) -> None:
    r = make_runs(tmp_path, ("2026-09",))
    args = ["generate", "--plan", str(r.plan), "--data", str(r.facts("2026-10")), "--period", "2026-10",
            "--history", str(r.history)]
    ok = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])  # type: ignore[attr-defined]
    assert ok.exit_code == 0, ok.output
    assert history_rows(card_of(tmp_path / "a", "E1"))[0][0] == "September 2026"
    lines = r.history / "2026-09" / "results" / "lines.csv"
    lines.write_bytes(lines.read_bytes().replace(b"\r\n", b"\n"))
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])  # type: ignore[attr-defined]
    assert bad.exit_code == 1
    assert "lines.csv" in bad.output and "changed since its run" in bad.output


# ------------------------------------------------------------------------------------------- isolation


def test_isolation_proof_passes_with_history(runs: Runs) -> None:
    assert check(runs.out) == []


def test_isolation_proof_catches_an_earlier_bonus_of_someone_else(tmp_path: Path, runs: Runs) -> None:
    out = tmp_path / "out"
    shutil.copytree(runs.out, out)
    card = card_of(out, "E1")
    mine, theirs = recorded(runs.history / "2026-09", "E1")[1], recorded(runs.history / "2026-09", "E2")[1]
    assert mine != theirs and theirs >= 1000
    parts = {i.filename: zipfile.ZipFile(card).read(i) for i in zipfile.ZipFile(card).infolist()}
    sheet = "xl/worksheets/xl_kpi_history.xml"
    needle = f"<v>{mine!r}</v>".replace(".0<", "<").encode()
    assert needle in parts[sheet]
    parts[sheet] = parts[sheet].replace(needle, f"<v>{theirs!r}</v>".replace(".0<", "<").encode())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, d in parts.items():
            z.writestr(n, d)
    card.write_bytes(buf.getvalue())
    leaks = check(out)
    assert [(x.kind, x.employee_id) for x in leaks if x.kind == "amount"] == [("amount", "E2")]
    assert "bonus of 2026-09" in next(x.evidence for x in leaks if x.kind == "amount")


# ------------------------------------------------------------------------------------------- LibreOffice


def test_libreoffice_recalculates_the_history_sheet_to_our_numbers_and_reads_the_chart(
        runs: Runs, tmp_path: Path, recalc: object) -> None:
    ru = run_october(runs, tmp_path / "ru", lang="ru")
    (tmp_path / "ru_copy").mkdir()
    ru_card = shutil.copy(card_of(ru, "E1"), tmp_path / "ru_copy" / "E1 ru.xlsx")  # LibreOffice names outputs by stem
    cards = [card_of(runs.out, "E1"), card_of(runs.out, "E2"), Path(ru_card)]
    got = recalc(cards, tmp_path / "lo")  # type: ignore[operator]
    for card, again in zip(cards, got, strict=True):
        sheet = "Динамика" if card.stem.endswith(" ru") else "History"
        bad = lo.formula_cells_vs_cached(card, again, sheets=[sheet])
        assert not bad and bad.compared == 3, bad
        charts = [n for n in zipfile.ZipFile(again).namelist() if n.startswith("xl/charts/chart")]
        refs = "".join(zipfile.ZipFile(again).read(n).decode("utf-8") for n in charts)
        assert f"{sheet}!$C$5:$C$7" in refs.replace("'", "") and f"{sheet}!$B$5:$B$7" in refs.replace("'", "")
    pdf = lo.to_pdf([cards[0]], tmp_path / "pdf")[0]
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Bonus and weighted score by period" in text and "Year to date 2026" in text
    assert "September 2026" in text and "◀ this period" in text


def test_sha_of_recorded_history_is_its_manifest(runs: Runs) -> None:
    record = json.loads((runs.out / "manifest.json").read_text(encoding="utf-8"))["history"]
    assert [h["period"] for h in record] == ["2026-08", "2026-09"]
    for h in record:
        assert h["manifest_sha256"] == hashlib.sha256((Path(h["folder"]) / "manifest.json").read_bytes()).hexdigest()
    assert not math.isnan(recorded(runs.out, "E1")[0])
