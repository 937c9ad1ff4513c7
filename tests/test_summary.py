"""The summary workbook, manifest.csv and errors.csv (xl_kpi.outputs.summary).

The LibreOffice test recalculates the workbook headless and compares every formula cell with the
cached value we wrote. Everything else reads the file as pandas and openpyxl do, without Excel.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import openpyxl
import pandas as pd
import pytest

import xl_kpi
from tests import _summary_fixture as fx
from xl_kpi.outputs.manifest import write_errors, write_manifest
from xl_kpi.outputs.summary import (
    DEFAULT_TRAFFIC_LIGHT,
    TrafficLight,
    money_format,
    summary_bytes,
    weighted_scores,
    write_summary,
)

EN = {"employees": "Employees", "departments": "Departments", "bands": "Score bands"}
RU = {"employees": "Сотрудники", "departments": "Отделы", "bands": "Распределение"}
POSITIONS = ["Account manager", "Sales lead", "Support specialist"]
"""The fixture's positions, which have different KPIs: one sheet each, after the Employees sheet."""
EN_SHEETS = [EN["employees"], *POSITIONS, EN["departments"], EN["bands"]]
RU_SHEETS = [RU["employees"], *POSITIONS, RU["departments"], RU["bands"]]
KOPECK = 0.005


# ------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def results():
    return fx.build_results("en", tricky=True, with_error=True)


@pytest.fixture(scope="module")
def results_ru():
    return fx.build_results("ru", tricky=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory, results, results_ru):
    folder = tmp_path_factory.mktemp("summary")
    return SimpleNamespace(
        en=write_summary(results, folder / "en" / "summary.xlsx"),
        ru=write_summary(results_ru, folder / "ru" / "summary.xlsx"),
    )


def _rows(ws) -> dict:
    """Employee id → {header: value} of the Employees sheet, plus "__total__" for the total row (the legend
    under it is not read)."""
    header = [c.value for c in ws[1]]
    out = {}
    for row in ws.iter_rows(min_row=2, values_only=True):
        key = row[0]
        out["__total__" if key in ("Total", "Итого") else key] = dict(zip(header, row, strict=True))
        if key in ("Total", "Итого"):
            break
    return out


def _table(ws) -> dict:
    header = [c.value for c in ws[1]]
    return {row[0]: dict(zip(header, row, strict=True)) for row in ws.iter_rows(min_row=2, values_only=True)}


def _formula_cells(path: Path):
    """(sheet, coordinate, formula, number format) of every formula cell."""
    wb = openpyxl.load_workbook(path)
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    yield ws.title, cell.coordinate, cell.value, cell.number_format


# ------------------------------------------------------------------------------------------
# what readers see without recalculation


def test_employee_rows_carry_the_engine_numbers(files, results):
    ws = openpyxl.load_workbook(files.en, data_only=True)[EN["employees"]]
    rows = _rows(ws)
    emp = results.employees
    assert [k for k in rows if k != "__total__"] == list(emp["employee_id"])
    wb = openpyxl.load_workbook(files.en, data_only=True)
    position_rows = {p: _rows(wb[p]) for p in POSITIONS}
    position_of = dict(zip(emp["employee_id"], emp["position"], strict=True))
    kpi_names = dict(zip(results.lines["kpi_id"], results.lines["kpi_name"], strict=True))
    for line in results.lines.itertuples():  # each score on its position's sheet
        cell = position_rows[position_of[line.employee_id]][line.employee_id][kpi_names[line.kpi_id]]
        if math.isnan(line.score):
            assert cell is None
        else:
            assert cell == pytest.approx(line.score, rel=1e-15, abs=1e-15)
    # a position's sheet has its KPIs only; the Employees sheet only those every position has (none here)
    assert "Response time" not in position_rows["Account manager"]["E001"]
    assert "Closed deals" not in position_rows["Support specialist"]["E004"]
    assert not {"Response time", "Closed deals"} & set(rows["E001"])
    for e in emp.itertuples():
        row = rows[e.employee_id]
        mine = results.lines[results.lines["employee_id"] == e.employee_id]
        by_hand = sum(w * s for w, s in zip(mine["weight"], mine["score"], strict=True))
        if e.status == "ok":
            assert row["Weighted score"] == pytest.approx(by_hand, abs=1e-12)
            assert row["Bonus"] == e.bonus and row["Total pay"] == e.total_pay
        else:
            assert row["Weighted score"] is None and row["Bonus"] is None and row["Rank"] is None
            assert row["Note"] == e.reason
        assert row["Employee"] == e.name and row["Department"] == e.department
        assert row["Position"] == e.position and row["Manager"] == e.manager


def test_totals_equal_the_sum_of_the_cards_to_the_kopeck(files, results):
    wb = openpyxl.load_workbook(files.en, data_only=True)
    cards = [b for b in results.employees["bonus"] if not math.isnan(b)]
    pay = [p for p in results.employees["total_pay"] if not math.isnan(p)]
    expected_bonus = xl_kpi.round_money(sum(cards))
    expected_pay = xl_kpi.round_money(sum(pay))
    total = _rows(wb[EN["employees"]])["__total__"]
    assert abs(total["Bonus"] - expected_bonus) < KOPECK
    assert abs(total["Total pay"] - expected_pay) < KOPECK
    dept = _table(wb[EN["departments"]])
    assert abs(dept["Total"]["Bonus"] - expected_bonus) < KOPECK
    assert abs(dept["Total"]["Total pay"] - expected_pay) < KOPECK
    assert abs(sum(r["Bonus"] for k, r in dept.items() if k != "Total") - expected_bonus) < KOPECK
    assert dept["Total"]["Headcount"] == len(results.employees)


def test_total_row_uses_subtotal_so_filters_are_respected(files):
    formulas = {(s, c): f for s, c, f, _ in _formula_cells(files.en)}
    total_row = len(fx.build_results("en", with_error=True).employees) + 2
    bonus = [f for (s, c), f in formulas.items() if s == EN["employees"] and c.endswith(str(total_row))]
    assert any(f.startswith("=SUBTOTAL(109,") for f in bonus)
    assert any(f.startswith("=SUBTOTAL(101,") for f in bonus)


def test_department_totals_by_hand(files, results):
    # COUNTIF/SUMIF compare text ignoring case, so "SALES" and "Sales" are one department,
    # while "Sales*" (a literal star, not a wildcard) is another
    by_hand: dict[str, dict] = {}
    for e in results.employees.itertuples():
        d = by_hand.setdefault(e.department.casefold(), {"name": e.department, "n": 0, "bonus": 0.0,
                                                          "pay": 0.0, "scores": []})
        d["n"] += 1
        if e.status == "ok":
            d["bonus"] += e.bonus
            d["pay"] += e.total_pay
            mine = results.lines[results.lines["employee_id"] == e.employee_id]
            d["scores"].append(sum(w * s for w, s in zip(mine["weight"], mine["score"], strict=True)))
    sheet = _table(openpyxl.load_workbook(files.en, data_only=True)[EN["departments"]])
    assert set(sheet) - {"Total"} == {d["name"] for d in by_hand.values()}
    for d in by_hand.values():
        row = sheet[d["name"]]
        assert row["Headcount"] == d["n"]
        assert abs(row["Bonus"] - d["bonus"]) < KOPECK
        assert abs(row["Total pay"] - d["pay"]) < KOPECK
        assert row["Average weighted score"] == pytest.approx(sum(d["scores"]) / len(d["scores"]), abs=1e-11)
    assert sheet["SALES"]["Headcount"] == 2 and sheet["Sales*"]["Headcount"] == 2
    assert list(sheet)[:-1] == sorted(list(sheet)[:-1], key=str.casefold)


def test_department_criteria_escape_wildcards_and_operators(files):
    formulas = [f for s, _, f, _ in _formula_cells(files.en) if s == EN["departments"]]
    assert any('"=Sales~*"' in f for f in formulas)
    assert any('"==Key accounts"' in f for f in formulas)
    assert any(re.search(r"COUNTIF\('Employees'!\$C\$2:\$C\$\d+,\$A\d+\)", f) for f in formulas)


def test_ranking_matches_excel_rank_with_ties(files, results):
    rows = _rows(openpyxl.load_workbook(files.en, data_only=True)[EN["employees"]])
    del rows["__total__"]
    scores = {k: r["Weighted score"] for k, r in rows.items() if r["Weighted score"] is not None}
    for k, s in scores.items():  # RANK.EQ: 1 + how many are strictly greater
        assert rows[k]["Rank"] == 1 + sum(1 for other in scores.values() if other > s)
    assert rows["E001"]["Weighted score"] == rows["E002"]["Weighted score"]  # the tie in the fixture
    assert rows["E001"]["Rank"] == rows["E002"]["Rank"] == 3
    assert 4 not in {r["Rank"] for r in rows.values()}  # the rank after a tie is skipped
    formulas = {c: f for s, c, f, _ in _formula_cells(files.en) if s == EN["employees"]}
    assert formulas["G2"] == "=RANK(F2,$F$2:$F$12)"  # F: the weighted score (no KPI is common to all)


def test_weighted_scores_function():
    lines = pd.DataFrame({
        "employee_id": ["b", "b", "a", "a", "c"],
        "weight": [0.4, 0.6, 0.5, 0.5, 1.0],
        "score": [1.2, 1.0, np.nan, 1.0, 0.1 + 0.2],
    })
    out = weighted_scores(lines)
    assert list(out.index) == ["b", "a", "c"]
    assert out["b"] == 1.08 and math.isnan(out["a"]) and out["c"] == 0.3  # rounded to 12 decimals
    assert weighted_scores(lines.iloc[:0]).empty


def test_score_bands_count_every_scored_employee(files, results):
    wb = openpyxl.load_workbook(files.en, data_only=True)
    bands = _table(wb[EN["bands"]])
    scored = [s for s in _rows(wb[EN["employees"]]).values() if s["ID"] != "Total"]
    weighted = [r["Weighted score"] for r in scored if r["Weighted score"] is not None]
    assert bands["Total"]["Employees"] == len(weighted) == (results.employees["status"] == "ok").sum()
    for label, row in bands.items():
        if label == "Total":
            continue
        lo = -math.inf if row["From"] is None else row["From"]
        hi = math.inf if row["Below"] is None else row["Below"]
        assert row["Employees"] == sum(1 for w in weighted if lo <= w < hi), label


def test_pandas_reads_the_numbers_without_recalculation(files, results):
    emp = results.employees
    for engine in ("openpyxl", "calamine"):
        sheets = pd.read_excel(files.en, sheet_name=None, engine=engine)
        assert list(sheets) == EN_SHEETS
        people = sheets[EN["employees"]].iloc[:-1]
        assert list(people["ID"]) == list(emp["employee_id"])
        np.testing.assert_allclose(people["Bonus"].to_numpy(float), emp["bonus"].to_numpy(float), atol=1e-9)
        np.testing.assert_array_equal(people["Rank"].isna().to_numpy(), emp["bonus"].isna().to_numpy())
        total = sheets[EN["employees"]].iloc[-1]
        assert abs(total["Bonus"] - emp["bonus"].sum()) < KOPECK
        dept = sheets[EN["departments"]]
        assert dept["Headcount"].iloc[-1] == len(emp)


def test_every_formula_cell_has_a_cached_value(files):
    for path in (files.en, files.ru):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.startswith("xl/worksheets/sheet"):
                    xml = z.read(name).decode()
                    assert "<f>" in xml
                    assert not re.search(r"</f>(<v\s*/>|<v></v>)", xml), name
                    assert xml.count("<f>") == len(re.findall(r"</f><v>[^<]+</v>", xml))


def test_formatting_traffic_light_filter_and_freeze(files):
    wb = openpyxl.load_workbook(files.en)
    ws = wb[EN["employees"]]
    assert ws.freeze_panes == "C2"
    assert ws.auto_filter.ref == "A1:L12"
    # the summary's language rides on every number format (the same separators on every machine)
    assert ws["J2"].number_format == '[$-409]#,##0.00 "₽"' and ws["F2"].number_format == "[$-409]0.0%"
    (area, rules), = ((str(cf.sqref), cf.rules) for cf in ws.conditional_formatting)
    assert area == "F2:F12"  # the KPI score columns every position has (none) and the weighted score
    (area_am, _), = ((str(cf.sqref), cf.rules) for cf in wb["Account manager"].conditional_formatting)
    assert area_am == "E2:H7"  # its three KPIs and the weighted score, its five employees
    formulas = [r.formula[0] for r in rules]
    assert formulas == [
        "AND(ISNUMBER(F2),ROUND(F2,12)<0.7)",
        "AND(ISNUMBER(F2),ROUND(F2,12)>=0.7,ROUND(F2,12)<1.0)",
        "AND(ISNUMBER(F2),ROUND(F2,12)>=1.0)",
    ]
    # a conditional format's solid fill is its bgColor (Excel draws dxf fills with it)
    assert [r.dxf.fill.bgColor.rgb[-6:] for r in rules] == list(DEFAULT_TRAFFIC_LIGHT.fills)
    assert [r.dxf.font.color.rgb[-6:] for r in rules] == list(DEFAULT_TRAFFIC_LIGHT.fonts)
    assert len(wb[EN["departments"]]._charts) == 1 and len(wb[EN["bands"]]._charts) == 1


def test_traffic_light_is_a_parameter(results, tmp_path):
    light = TrafficLight(thresholds=(0.5, 0.8, 1.2), fills=("FF0000", "FFA500", "FFFF00", "00FF00"),
                         fonts=("000000",) * 4, bars=("FF0000", "FFA500", "FFFF00", "00FF00"))
    path = write_summary(results, tmp_path / "s.xlsx", traffic_light=light)
    ws = openpyxl.load_workbook(path)[EN["employees"]]
    (rules,) = (cf.rules for cf in ws.conditional_formatting)
    assert [r.formula[0] for r in rules][1] == "AND(ISNUMBER(F2),ROUND(F2,12)>=0.5,ROUND(F2,12)<0.8)"
    assert [r.dxf.fill.bgColor.rgb[-6:] for r in rules] == list(light.fills)
    with pytest.raises(ValueError, match="need 3 fills"):
        TrafficLight(thresholds=(0.7, 1.0), fills=("FF0000",))
    with pytest.raises(ValueError, match="ascending"):
        TrafficLight(thresholds=(1.0, 0.7))
    assert DEFAULT_TRAFFIC_LIGHT.band(0.6999) == 0 and DEFAULT_TRAFFIC_LIGHT.band(0.7) == 1
    assert DEFAULT_TRAFFIC_LIGHT.band(0.9999999999999999) == 2  # 100% on paper is green


def test_money_formats():
    assert money_format("RUB") == '#,##0.00 "₽"'
    assert money_format("usd") == '"$"#,##0.00'
    assert money_format("CHF") == '#,##0.00 "CHF"'
    assert money_format(None) == "#,##0.00"


def test_russian_headers_and_cyrillic_text(files, results_ru):
    wb = openpyxl.load_workbook(files.ru, data_only=True)
    assert wb.sheetnames == RU_SHEETS
    ws = wb[RU["employees"]]
    header = [c.value for c in ws[1]]
    assert header[:5] == ["Таб. №", "Сотрудник", "Отдел", "Должность", "Руководитель"]
    assert header[-7:] == ["Взвешенный результат", "Место", "Место в должности", "Место в отделе", "Премия",
                           "К выплате", "Примечание"]
    rows = _rows(ws)
    assert rows["E001"]["Сотрудник"] == "Иванова Мария Петровна"
    assert rows["E005"]["Сотрудник"] == "Кузнецов Пётр"
    assert rows["__total__"]["Таб. №"] == "Итого"
    dept = _table(wb[RU["departments"]])
    assert dept["Отдел продаж"]["Численность"] == 2
    assert [c.value for c in wb[RU["departments"]][1]][:3] == ["Отдел", "Численность", "Премии"]
    formulas = [f for _, _, f, _ in _formula_cells(files.ru)]
    assert any("'Сотрудники'!" in f for f in formulas)


def test_text_that_looks_like_a_formula_stays_text(files):
    wb = openpyxl.load_workbook(files.en)
    ws = wb[EN["employees"]]
    cells = {c.value: c for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    for text in (fx.FORMULA_NAME, "@manager", "+7 Kuznetsov", "-Kuznetsov"):
        assert cells[text].data_type == "s", text
    assert cells[fx.FORMULA_NAME].quotePrefix
    with zipfile.ZipFile(files.en) as z:
        xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert not re.search(r"<f>[^<]*HYPERLINK", xml)  # no formula anywhere mentions it
    # the raw cell: an inline string cell (constant-memory mode) holding the text, with no <f> element
    ref = cells[fx.FORMULA_NAME].coordinate
    cell = re.search(rf'<c r="{ref}" s="\d+" t="inlineStr"><is><t[^>]*>([^<]*)</t></is></c>', xml)
    assert cell and html.unescape(cell.group(1)) == fx.FORMULA_NAME, ref


def test_same_input_gives_byte_identical_output(results, tmp_path):
    first = summary_bytes(results)
    assert summary_bytes(fx.build_results("en", tricky=True, with_error=True)) == first
    path = write_summary(results, tmp_path / "summary.xlsx")
    assert path.read_bytes() == first
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        # XlsxWriter's fixed part time (constant-memory mode: 31 Jan 1980), whatever the clock says
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 31, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in z.infolist()} == {0o100600}  # mkstemp's mode, not the umask
        core = z.read("docProps/core.xml").decode()
    assert core.count("2026-10-01T00:00:00Z") == 2  # created and modified: the period, not the clock


@pytest.mark.slow
def test_output_does_not_depend_on_hash_seed_or_process(results):
    code = (
        "import hashlib, sys\n"
        f"sys.path.insert(0, {str(Path(fx.__file__).resolve().parents[1])!r})\n"
        "from tests import _summary_fixture as m\n"
        "from xl_kpi.outputs.summary import summary_bytes\n"
        "print(hashlib.sha256(summary_bytes(m.build_results('en', tricky=True, with_error=True))).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == hashlib.sha256(summary_bytes(results)).hexdigest()


def test_write_summary_replaces_atomically(results, tmp_path):
    target = tmp_path / "out" / "summary.xlsx"
    target.parent.mkdir()
    target.write_bytes(b"old")
    assert write_summary(results, target) == target
    assert target.read_bytes()[:2] == b"PK"
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.xlsx"]  # no temp files left


def test_no_employees_gives_a_valid_empty_summary(tmp_path):
    empty = fx.build_results("en")
    empty.lines = empty.lines.iloc[:0]
    empty.employees = empty.employees.iloc[:0]
    path = write_summary(empty, tmp_path / "empty.xlsx")
    wb = openpyxl.load_workbook(path, data_only=True)
    total = _rows(wb[EN["employees"]])["__total__"]
    assert total["Bonus"] == 0 and total["Total pay"] == 0
    assert _table(wb[EN["bands"]])["Total"]["Employees"] == 0


@pytest.mark.slow
def test_a_large_company_is_quick(tmp_path):
    import time

    big = fx.build_large(3000)
    start = time.perf_counter()
    path = write_summary(big, tmp_path / "big.xlsx")
    assert time.perf_counter() - start < 30
    df = pd.read_excel(path, engine="calamine")
    assert len(df) == 3001
    assert abs(df["Bonus"].iloc[-1] - big.employees["bonus"].sum()) < KOPECK
    # rows are written in blocks of 2048: none lost or repeated at a block's edge
    assert [str(x) for x in df["ID"].iloc[:-1]] == [str(x) for x in big.employees["employee_id"]]
    assert np.allclose(df["Bonus"].iloc[:-1].to_numpy(float), big.employees["bonus"].to_numpy(float), equal_nan=True)


# ------------------------------------------------------------------------------------------
# manifest.csv and errors.csv


def _read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens Cyrillic correctly
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_manifest_content(tmp_path):
    out = tmp_path / "OUT"
    card = out / "cards" / "Отдел продаж" / "E10 Иванова.xlsx"
    records = [
        {"employee_id": "E10", "path": str(card), "sha256": "ab" * 32, "total_bonus": 18061.72, "status": "ok"},
        SimpleNamespace(employee_id="E2", path=out / "cards" / "Sales" / "E2 Petrov.xlsx", sha256="cd" * 32,
                        total_bonus=np.float64(15400.0), status="ok"),
        {"employee_id": "E3", "path": "", "sha256": "", "total_bonus": float("nan"), "status": "error"},
    ]
    path = write_manifest(records, out)
    assert path == out / "manifest.csv"
    rows = _read_csv(path)
    assert rows[0] == ["employee_id", "file", "sha256", "total_bonus", "status"]
    assert rows[1:] == [
        ["E2", "cards/Sales/E2 Petrov.xlsx", "cd" * 32, "15400.00", "ok"],
        ["E3", "", "", "", "error"],
        ["E10", "cards/Отдел продаж/E10 Иванова.xlsx", "ab" * 32, "18061.72", "ok"],
    ]
    assert b"\r\n" in path.read_bytes()


def test_manifest_neutralises_formula_like_cells(tmp_path):
    records = [{"employee_id": "=cmd|' /C calc'!A0", "path": str(tmp_path / "-x.xlsx"), "sha256": "0" * 64,
                "total_bonus": -5.0, "status": "@status"}]
    rows = _read_csv(write_manifest(records, tmp_path))
    assert rows[1] == ["'=cmd|' /C calc'!A0", "'-x.xlsx", "0" * 64, "-5.00", "'@status"]


def test_errors_csv_written_only_when_there_are_errors(tmp_path):
    errors = [
        {"employee_id": "E011", "name": "Иванов Иван", "reason": "no fact for KPI deals"},
        SimpleNamespace(employee_id="+E012", name='=HYPERLINK("http://x","click")', reason="-weights sum to 90%"),
    ]
    path = write_errors(errors, tmp_path)
    assert path == tmp_path / "errors.csv"
    rows = _read_csv(path)
    assert rows == [
        ["employee_id", "name", "reason"],
        ["E011", "Иванов Иван", "no fact for KPI deals"],
        ["'+E012", "'=HYPERLINK(\"http://x\",\"click\")", "'-weights sum to 90%"],
    ]
    assert write_errors([], tmp_path) is None  # a clean rerun removes the stale file
    assert not path.exists()
    assert write_errors(iter(()), tmp_path) is None


# ------------------------------------------------------------------------------------------
# LibreOffice: recalculate and compare every formula cell with the cached value


_XCU = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse">
<value>0</value></prop></item>
</oor:items>
"""


def _soffice() -> str:
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("LibreOffice (soffice) is required on CI")
        pytest.skip("LibreOffice (soffice) is not installed")
    return exe


def _recalculate(files: list[Path], workdir: Path) -> list[Path]:
    """Open each file in a fresh LibreOffice profile that always recalculates, save as xlsx (one soffice call)."""
    exe = _soffice()
    profile = workdir / "profile"
    (profile / "user").mkdir(parents=True)
    (profile / "user" / "registrymodifications.xcu").write_text(_XCU, encoding="utf-8")
    outdir = workdir / "recalculated"
    outdir.mkdir()
    cmd = [exe, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore", "--nolockcheck",
           "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(outdir), *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out = [outdir / f.name for f in files]
    missing = [p.name for p in out if not p.exists()]  # soffice exits 0 even when it failed
    assert not missing, f"LibreOffice did not convert {missing}: {proc.stdout} {proc.stderr}"
    return out


@pytest.fixture(scope="module")
def recalculated(tmp_path_factory, results, results_ru):
    work = tmp_path_factory.mktemp("lo")
    inputs = work / "in"
    inputs.mkdir()
    en = write_summary(results, inputs / "en.xlsx")
    ru = write_summary(results_ru, inputs / "ru.xlsx")
    # a copy whose cached values are all wrong: proves LibreOffice recalculated instead of keeping them
    stale = inputs / "stale.xlsx"
    with zipfile.ZipFile(en) as zin, zipfile.ZipFile(stale, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name.startswith("xl/worksheets/sheet"):
                data = re.sub(rb"(</f><v>)[^<]*(</v>)", rb"\g<1>999\g<2>", data)
            zout.writestr(name, data)
    en_lo, ru_lo, stale_lo = _recalculate([en, ru, stale], work)
    return SimpleNamespace(pairs=[(en, en_lo), (ru, ru_lo)], stale=(en, stale_lo))


def _compare(ours: Path, theirs: Path) -> tuple[int, list[str]]:
    cached = openpyxl.load_workbook(ours, data_only=True)
    lo = openpyxl.load_workbook(theirs, data_only=True)
    count, bad = 0, []
    for sheet, ref, formula, fmt in _formula_cells(ours):
        a, b = cached[sheet][ref].value, lo[sheet][ref].value
        count += 1
        a = None if a == "" else a
        b = None if b == "" else b
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            tolerance = KOPECK if "0.00" in fmt else 1e-9
            ok = abs(a - b) <= tolerance
        else:
            ok = a == b
        if not ok:
            bad.append(f"{ours.name} {sheet}!{ref} {formula}: cached {a!r}, LibreOffice {b!r}")
    return count, bad


@pytest.mark.libreoffice
def test_libreoffice_recalculation_matches_cached_values(recalculated):
    total = 0
    for ours, theirs in recalculated.pairs:
        count, bad = _compare(ours, theirs)
        assert not bad, "\n".join(bad)
        total += count
    assert total >= 100


@pytest.mark.libreoffice
def test_libreoffice_really_recalculated(recalculated):
    ours, stale = recalculated.stale
    count, bad = _compare(ours, stale)
    assert count and not bad, "\n".join(bad)


def test_missing_department_numeric_ids_and_blank_fields(tmp_path):
    res = fx.build_results("en", tricky=False)
    res.employees = res.employees.copy()
    res.employees.loc[res.employees["employee_id"] == "E009", "department"] = None
    res.employees.loc[res.employees["employee_id"] == "E010", "manager"] = np.nan
    ids = {f"E{i:03d}": 1000 + i for i in range(1, 11)}
    res.employees["employee_id"] = res.employees["employee_id"].map(ids)
    res.lines = res.lines.assign(employee_id=res.lines["employee_id"].map(ids))
    wb = openpyxl.load_workbook(write_summary(res, tmp_path / "s.xlsx"), data_only=True)
    rows = _rows(wb[EN["employees"]])
    assert rows[1009]["Department"] == "(no department)" and rows[1010]["Manager"] is None
    assert rows[1001]["Weighted score"] == pytest.approx(1.02)
    dept = _table(wb[EN["departments"]])
    assert dept["(no department)"]["Headcount"] == 1
    assert dept["Total"]["Headcount"] == 10


def test_bands_are_a_parameter(results, tmp_path):
    path = write_summary(results, tmp_path / "s.xlsx", bands=(0.7, 1.0))
    bands = _table(openpyxl.load_workbook(path, data_only=True)[EN["bands"]])
    assert list(bands) == ["<70%", "70% – <100%", "≥100%", "Total"]
    with pytest.raises(ValueError, match="ascending"):
        summary_bytes(results, bands=(1.0, 0.7))


# ------------------------------------------------------------------------------------------
# XlsxWriter: determinism, hostile text, print setup, team summaries, formula preparation


def test_two_runs_give_byte_identical_files_with_fixed_times(results, tmp_path):
    # two runs a second apart (the clock moves) in fresh objects: same bytes, no clock time in the file
    import time

    first = write_summary(fx.build_results("en", tricky=True, with_error=True), tmp_path / "a.xlsx").read_bytes()
    time.sleep(1.1)
    second = write_summary(fx.build_results("en", tricky=True, with_error=True), tmp_path / "b.xlsx").read_bytes()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        core = z.read("docProps/core.xml").decode()
    stamps = re.findall(r"<dcterms:(?:created|modified)[^>]*>([^<]*)<", core)
    assert stamps == ["2026-10-01T00:00:00Z"] * 2  # the period's first day, not the clock


HOSTILE = {
    "name": "=1+1",
    "department": "=cmd|' /C calc'!A0",
    "position": "+SUM(A1:A9)",
    "manager": "@HYPERLINK(\"http://x\")",
}


def test_hostile_texts_are_text_cells_everywhere(tmp_path):
    res = fx.build_results("en", tricky=False, with_error=True)
    res.employees = res.employees.copy()
    for column, text in HOSTILE.items():
        res.employees.loc[res.employees["employee_id"] == "E003", column] = text
    res.employees.loc[res.employees["employee_id"] == "E011", "reason"] = "-1 fact missing"
    res.lines = res.lines.assign(kpi_name=res.lines["kpi_name"].replace({"NPS": "=NPS()*2"}))
    path = write_summary(res, tmp_path / "s.xlsx")
    wb = openpyxl.load_workbook(path)
    seen = {}
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":  # only our own formulas, never a text from the data
                    assert re.match(r"=(RANK|SUBTOTAL|COUNTIFS?|SUM(IF|PRODUCT)?|AVERAGE(IF)?)\(", cell.value), \
                        cell.value
                elif isinstance(cell.value, str):
                    seen.setdefault(cell.value, cell)
    for text in [*HOSTILE.values(), "-1 fact missing", "=NPS()*2"]:
        assert seen[text].data_type == "s" and seen[text].quotePrefix, text
    # and in the XML: outside string literals (a COUNTIF criterion "==cmd|…" matches the department
    # name literally) no formula holds any of them
    with zipfile.ZipFile(path) as z:
        formulas = " ".join(re.findall(r"<f>([^<]*)</f>", " ".join(
            z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))))
    assert '"==cmd|' in formulas
    code = re.sub(r'"(?:[^"]|"")*"', '""', formulas.replace("&quot;", '"'))
    assert "calc" not in code and "1+1" not in code and "HYPERLINK" not in code and "NPS" not in code


def test_print_setup_freeze_widths_and_page_header(files, results, tmp_path):
    wb = openpyxl.load_workbook(files.en)
    assert wb.sheetnames == EN_SHEETS
    for ws in wb:  # every sheet prints on A4, landscape, one page wide, the header row repeated on every page
        assert ws.page_setup.orientation == "landscape" and str(ws.page_setup.paperSize) == "9"
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0
        assert ws.page_setup.fitToWidth in (None, 1)  # 1 is the default openpyxl reads back as None
        assert ws.print_title_rows.replace("$", "") == "1:1", ws.title
        centre = "KPI summary October 2026" if ws.title not in POSITIONS else f"KPI summary: {ws.title} October 2026"
        assert ws.oddHeader.left.text == "Romashka LLC" and ws.oddHeader.center.text == centre
        assert ws.oddFooter.right.text == "&P / &N"
    # the gated employee (Sales lead E006) is explained in the footer of the sheets that rank them
    for title in (EN["employees"], "Sales lead"):
        footer = wb[title].oddFooter.left
        assert footer.text.startswith("* gate failed: ranked by the weighted score") and footer.size == 8, title
    assert wb["Account manager"].oddFooter.left.text is None
    emp = wb[EN["employees"]]
    assert wb[EN["departments"]].freeze_panes == "A2" and wb[EN["bands"]].freeze_panes == "A2"
    assert emp.column_dimensions["B"].width > emp.column_dimensions["A"].width  # names are wider than ids
    assert emp.row_dimensions[1].height >= 21  # the header row fits its wrapped labels
    # an "&" in the company is doubled (a single & starts a header code), a long name is shortened
    res = fx.build_results("en", tricky=False)
    res.company = "Roga & Kopyta " + "x" * 300
    ws = openpyxl.load_workbook(write_summary(res, tmp_path / "s.xlsx"))[EN["employees"]]
    header = ws.oddHeader.left.text
    assert header.startswith("Roga && Kopyta x") and header.endswith("…")
    assert len(f"&L{header}&C{ws.oddHeader.center.text}") <= 255


def test_team_summary_holds_only_its_members(results):
    team = ["E001", "E002", "E005"]
    data = summary_bytes(results, members=team)
    assert data == summary_bytes(results, members=list(reversed(team)))  # deterministic, order-free
    wb = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    rows = _rows(wb[EN["employees"]])
    assert [k for k in rows if k != "__total__"] == team  # in results order
    emp = results.employees[results.employees["employee_id"].isin(team)]
    assert abs(rows["__total__"]["Bonus"] - emp["bonus"].sum()) < KOPECK
    dept = _table(wb[EN["departments"]])
    assert set(dept) - {"Total"} == set(emp["department"]) and dept["Total"]["Headcount"] == 3
    strings = " ".join(str(c.value) for ws in wb for row in ws.iter_rows() for c in row)
    others = results.employees[~results.employees["employee_id"].isin(team)]
    assert not any(name in strings for name in others["name"])


def test_quick_formula_preparation_equals_xlsxwriters(files):
    from xlsxwriter.worksheet import Worksheet

    from xl_kpi.outputs.summary import _Worksheet

    quick, plain = _Worksheet(), Worksheet()
    formulas = [f for path in (files.en, files.ru) for _, _, f, _ in _formula_cells(path)]
    formulas += ['COUNTIF(A1:A3,"=FILTER(x")', "SORT(A1:A3)", "{=SUM(A1:A3)}", "=XLOOKUP(1,A:A,B:B)"]
    assert len(formulas) > 100
    for f in formulas:
        assert quick._prepare_formula(f) == plain._prepare_formula(f), f
        assert quick._prepare_formula(f, True) == plain._prepare_formula(f, True), f


FAST_ROW_TEXTS = ["plain", " leading", "trailing ", "a & <b> \"q\"", "_x0041_ stays", "ctl\x01char", "Ёлка «ёж»",
                  "<r><t>rich?</t></r>", "<r>a & b</r>", "=1+1", "я" * 40_000, None, True, False, 7, 2.5,
                  "tab\tin", "line\nbreak", "+7 900", "@x", "-x", "", "x" * 16_383, "ж" * 16_384, "nbsp\u00a0",
                  "\u2003em", "bad\ufffe", "cr\r", "a>b", "quote's \"ok\"", "😀" * 9_000]


def _sheet_xml(data: bytes, n: int = 1) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.read(f"xl/worksheets/sheet{n}.xml")


def test_rows_written_at_once_equal_xlsxwriters_cell_by_cell():
    # _Worksheet.write_rows skips XlsxWriter's per-cell work: the same cells written one by one through
    # XlsxWriter give the same bytes (texts of every kind, numbers, blanks, booleans, formulas)
    from datetime import datetime

    from xl_kpi.outputs.summary.book import _Book, blank_body, formula_body, number_bodies

    texts = FAST_ROW_TEXTS
    numbers = np.array([1.5, 0.1 + 0.2, 1e20, -0.0, 3.0, np.nan, 1 / 3, 123456789.123456789, 5e-324, np.inf,
                        -7.25, 0.0, 42.0, 1e-7, 2.0 ** 60, 9.99])
    numbers = np.resize(numbers, len(texts))
    rank = [(f"RANK(C{r},$C$2:$C${len(texts) + 1})", r - 1) for r in range(2, len(texts) + 2)]

    def book(at_once: bool) -> bytes:
        b = _Book()
        sheet = b.sheet("S")
        pct, count = b.styles.get("number", "0.0%"), b.styles.get("number", "0")
        sheet.ws.write_string(0, 0, "head", b.styles.get("header"))
        for v in texts:  # the formats are numbered as made: make them in the same order in both books
            sheet.cell(xl_kpi.outputs.values.cell_value(v))
        if at_once:
            sheet.ws.write_rows(1, 0, [sheet.bodies(texts), sheet.bodies(list(reversed(texts))),
                                       number_bodies(numbers, pct),
                                       [formula_body(f, v, count) if i % 3 else blank_body(count)
                                        for i, (f, v) in enumerate(rank)]])
        else:
            for i in range(len(texts)):
                for col, v in enumerate((texts[i], texts[-1 - i])):
                    write, value, style = sheet.cell(xl_kpi.outputs.values.cell_value(v))
                    write(i + 1, col, value, style)
                x = float(numbers[i])
                if math.isfinite(x):
                    sheet.ws.write_number(i + 1, 2, x, pct)
                else:
                    sheet.ws.write_blank(i + 1, 2, None, pct)
                if i % 3:
                    sheet.ws.write_formula(i + 1, 3, rank[i][0], count, rank[i][1])
                else:
                    sheet.ws.write_blank(i + 1, 3, None, count)
        sheet.put(len(texts) + 2, 1, "total", total=True)  # the row after the block is written as usual
        return b.close(datetime(2026, 10, 1), "t", "t")

    fast, slow = book(True), book(False)
    assert _sheet_xml(fast) == _sheet_xml(slow)
    assert fast == slow
    wb = openpyxl.load_workbook(io.BytesIO(fast))
    col_a = [c.value for c in wb["S"]["A"]][1:len(texts) + 1]
    assert col_a[7] == "<r><t>rich?</t></r>" and col_a[8] == "<r>a & b</r>"  # text, never raw XML
    assert len(col_a[10]) == 32_767  # Excel's longest text


def test_a_text_column_written_whole_equals_xlsxwriters_cell_by_cell():
    # _Sheet.bodies writes a column of plain texts in one go (one check of them all): a column of plain names
    # with one odd value of each kind among them (a formula start, white space at either end, an escape, an
    # empty or a too long text, a number...) still gives XlsxWriter's bytes
    from datetime import datetime

    from xl_kpi.outputs.summary.book import _Book

    plain = ["Anna", "Boris Ёлкин", "quote's \"ok\"", "Vera / Sales", "x" * 16_383]
    columns = [[*plain, "Zoya"]] + [[*plain[:2], odd, *plain[2:]] for odd in FAST_ROW_TEXTS]

    def book(at_once: bool) -> bytes:
        b = _Book()
        sheet = b.sheet("S")
        for v in FAST_ROW_TEXTS:  # the formats are numbered as made: make them in the same order in both books
            sheet.cell(xl_kpi.outputs.values.cell_value(v))
        if at_once:
            sheet.ws.write_rows(0, 0, [sheet.bodies(c) for c in columns])
        else:
            for row in range(len(columns[0])):  # constant-memory mode: row by row
                for col, values in enumerate(columns):
                    write, value, style = sheet.cell(xl_kpi.outputs.values.cell_value(values[row]))
                    write(row, col, value, style)
        return b.close(datetime(2026, 10, 1), "t", "t")

    assert _sheet_xml(book(True)) == _sheet_xml(book(False))


def test_a_name_that_looks_like_rich_text_markup_stays_text(tmp_path):
    # XlsxWriter takes a text "<r>…</r>" for rich-text XML and writes it unescaped: such a name made the
    # summary unreadable ("a & b") or turned into formatted text
    res = fx.build_results("en", tricky=False)
    res.employees = res.employees.copy()
    res.employees.loc[res.employees["employee_id"] == "E001", "name"] = "<r>Roga & Kopyta</r>"
    res.employees.loc[res.employees["employee_id"] == "E002", "department"] = "<r><t>Sales</t></r>"
    wb = openpyxl.load_workbook(write_summary(res, tmp_path / "s.xlsx"))
    texts = {c.value for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    assert {"<r>Roga & Kopyta</r>", "<r><t>Sales</t></r>"} <= texts


def test_group_ranks_share_ties_and_ignore_case():
    from xl_kpi.engine.formulas import group_key, group_rank_formula
    from xl_kpi.outputs.summary.employees import group_ranks

    weighted = np.array([0.9, 0.8, 0.9, np.nan, 0.5, 0.7, -0.2])
    groups = ["Продажи", "продажи", "ПРОДАЖИ", "Продажи", "Склад", "", "Склад"]
    cached = group_ranks(weighted, [group_key(g) for g in groups])
    assert cached == [1, 3, 1, 0, 1, 0, 2]  # ties share; "Продажи" and "продажи" are one group; 0: no rank
    assert group_ranks(weighted, ["Ёж", "Еж", "ёж", "", "", "", ""])[:3] == [1, 1, 1]  # ё and е stay apart
    assert group_rank_formula("$C$2:$C$7", "C2", "$K$2:$K$7", "K2") == \
        "SUMPRODUCT(($C$2:$C$7=C2)*ISNUMBER($K$2:$K$7)*($K$2:$K$7>K2))+1"


def test_rank_columns_equal_pandas_group_ranks(files):
    cases = ((files.en, "Weighted score", "Position", "Rank in position"),
             (files.en, "Weighted score", "Department", "Rank in department"),
             (files.ru, "Взвешенный результат", "Должность", "Место в должности"),
             (files.ru, "Взвешенный результат", "Отдел", "Место в отделе"))
    for path, weighted, group, rank in cases:
        ws = openpyxl.load_workbook(path, data_only=True).worksheets[0]
        header = [c.value for c in ws[1]]
        frame = pd.DataFrame(list(ws.iter_rows(min_row=2, values_only=True))[:-1], columns=header)  # no total row
        w = pd.to_numeric(frame[weighted])
        expected = w.groupby(frame[group].astype(str).str.lower()).rank(method="min", ascending=False)
        ok = w.notna() & frame[group].notna()
        assert ok.sum() >= 3
        assert frame.loc[ok, rank].astype(float).tolist() == expected[ok].tolist(), (path.name, rank)


def test_rows_held_in_memory_or_spilled_to_a_file_give_the_same_bytes(monkeypatch, tmp_path):
    # the rows of a book are held in memory up to a budget, then a sheet's rows go to a temporary file: the
    # file is the same whichever way (all held, spilled from the first row, spilled half-way through a
    # sheet), and a spilled file is gone once the book is closed
    import tempfile as tf

    from tests._results_fixture import synthetic_results
    from xl_kpi.outputs.summary import book as book_mod

    res = synthetic_results(300)
    monkeypatch.setattr(tf, "tempdir", str(tmp_path))
    files = []
    for budget in (0, 150_000, 10**9):
        monkeypatch.setattr(book_mod, "ROWS_IN_MEMORY", budget)
        files.append(summary_bytes(res))
        assert not list(tmp_path.iterdir())
    assert files[0] == files[1] == files[2]
    sheets = zipfile.ZipFile(io.BytesIO(files[0])).namelist()
    assert sum(n.startswith("xl/worksheets/sheet") for n in sheets) > 3  # position sheets: several spilled
