"""The summary's ranks within a position and a department, its per-position sheets and their print setup
(issue 13 §3): the cached ranks equal pandas' ``rank(method="min")`` per group, LibreOffice recalculates
every formula to them, a position sheet exists exactly when positions have different KPI sets, and sheet
names stay safe and unique (Cyrillic, case, ё)."""

from __future__ import annotations

import dataclasses
import re
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from tests import _summary_fixture as fx
from tests import lo
from xl_kpi.engine.formulas import group_key
from xl_kpi.outputs.summary import write_summary
from xl_kpi.outputs.summary.texts import sheet_names


def _grouped() -> fx.FakeResults:
    """The Russian fixture, regrouped: positions that differ only by case (one group) or by ё/е (two groups, two
    sheets whose names must not collide), and a blank weighted score (E011, in error) in the department of a
    negative one (E009), which a plain comparison would rank above it."""
    res = fx.build_results("ru", tricky=True, with_error=True)
    emp = res.employees.copy()
    where = emp["employee_id"].to_numpy()
    emp.loc[where == "E002", "position"] = "ACCOUNT manager"
    emp.loc[where == "E008", "position"] = "Ёлочник"
    emp.loc[where == "E003", "position"] = "Елочник"
    emp.loc[where == "E011", "department"] = "Support"
    return dataclasses.replace(res, employees=emp)


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_summary(_grouped(), tmp_path_factory.mktemp("grouped") / "grouped.xlsx")


def _frame(ws) -> pd.DataFrame:
    """The data rows of a people sheet (no total row)."""
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    end = next(i for i, r in enumerate(rows) if r[0] in ("Total", "Итого"))
    return pd.DataFrame(rows[:end], columns=[c.value for c in ws[1]])


def _pandas_rank(w: pd.Series, groups: pd.Series) -> pd.Series:
    keys = groups.map(lambda g: group_key(g) if isinstance(g, str) else "")
    return w.groupby(keys).rank(method="min", ascending=False).where(keys != "")


def _check_ranks(book: openpyxl.Workbook) -> None:
    emp = _frame(book["Сотрудники"])
    w = pd.to_numeric(emp["Взвешенный результат"])
    for group, rank in (("Должность", "Место в должности"), ("Отдел", "Место в отделе")):
        expected = _pandas_rank(w, emp[group])
        got = pd.to_numeric(emp[rank])
        assert got.isna().equals(expected.isna() | w.isna()), rank
        assert got.dropna().tolist() == expected[got.notna()].tolist(), rank
    for title in book.sheetnames[1:-2]:  # each position's sheet: RANK over its own rows
        df = _frame(book[title])
        ws_ = pd.to_numeric(df["Взвешенный результат"])
        expected = ws_.rank(method="min", ascending=False)
        got = pd.to_numeric(df["Место в должности"])
        assert got.dropna().tolist() == expected[got.notna()].tolist(), title
        ids = set(df["Таб. №"])
        mine = emp[emp["Таб. №"].isin(ids)]
        assert mine["Место в должности"].fillna(0).tolist() == df["Место в должности"].fillna(0).tolist(), title


def test_cached_ranks_equal_pandas_per_group(grouped: Path) -> None:
    book = openpyxl.load_workbook(grouped, data_only=True)
    _check_ranks(book)
    emp = _frame(book["Сотрудники"]).set_index("Таб. №")
    assert emp.loc["E001", "Место в должности"] == 1 and emp.loc["E002", "Место в должности"] == 1  # tie, case
    assert emp.loc["E009", "Место в отделе"] == 1 and pd.isna(emp.loc["E011", "Место в отделе"])


def test_libreoffice_recalculates_every_formula_to_the_cached_value(grouped: Path, recalc, tmp_path: Path) -> None:
    (got,) = recalc([grouped], tmp_path / "lo")
    bad = lo.formula_cells_vs_cached(grouped, got)
    assert bad.compared > 100 and not list(bad), list(bad)[:10]
    _check_ranks(openpyxl.load_workbook(got, data_only=True))  # LibreOffice's own numbers rank as pandas does


def test_one_sheet_per_position_when_kpi_sets_differ(grouped: Path, tmp_path: Path) -> None:
    book = openpyxl.load_workbook(grouped)
    assert book.sheetnames == ["Сотрудники", "Account manager", "Sales lead", "Support specialist", "Елочник",
                               "Ёлочник (2)", "Отделы", "Распределение"]
    heads = {ws.title: [c.value for c in ws[1]] for ws in book}
    assert heads["Support specialist"][4:7] == ["Response time", "Resolution rate", "NPS"]
    assert heads["Sales lead"][4:6] == ["Closed deals", "Renewal revenue"]  # its KPIs only, no blank column
    assert "NPS" not in heads["Сотрудники"] and "Closed deals" not in heads["Сотрудники"]  # none is common
    for title in book.sheetnames[1:-2]:
        df = _frame(book[title])
        for col in df.columns:
            assert df[col].notna().any() or col == "Примечание", (title, col)
    # the same KPIs for every position: no position sheets, the Employees sheet has every KPI
    res = fx.build_results("en", tricky=False)
    support = res.employees["position"] == "Support specialist"
    emp = res.employees[support].copy()
    emp.loc[emp.index[0], "position"] = "Support lead"
    same = dataclasses.replace(res, employees=emp.reset_index(drop=True),
                               lines=res.lines[res.lines["employee_id"].isin(emp["employee_id"])])
    wb = openpyxl.load_workbook(write_summary(same, tmp_path / "same.xlsx"))
    assert wb.sheetnames == ["Employees", "Departments", "Score bands"]
    assert [c.value for c in wb["Employees"][1]][5:8] == ["Response time", "Resolution rate", "NPS"]


def _untagged(fmt: str) -> str:
    """A number format without the language tag numlang puts in front (``[$-419]0"*"`` → ``0"*"``)."""
    return re.sub(r"^\[\$-[0-9A-Fa-f]+\]", "", fmt)


def test_gated_employees_are_ranked_but_marked(grouped: Path) -> None:
    book = openpyxl.load_workbook(grouped)
    for title in ("Сотрудники", "Sales lead"):
        ws = book[title]
        head = [c.value for c in ws[1]]
        ids = [r[0].value for r in ws.iter_rows(min_row=2)]
        row = ids.index("E006") + 2  # the gated Sales lead: ranked by its score, the rank marked with *
        ranks = [i + 1 for i, h in enumerate(head) if h.startswith("Место")]
        assert ranks
        for col in ranks:
            assert ws.cell(row, col).data_type == "f" and _untagged(ws.cell(row, col).number_format) == '0"*"', (
                title, col)
            assert _untagged(ws.cell(ids.index("E007") + 2, col).number_format) == "0"
        assert ws.oddFooter.left.text.startswith("* не выполнен стоп-показатель")
    assert book["Account manager"].oddFooter.left.text is None  # nobody gated there: no legend
    with zipfile.ZipFile(grouped) as z:  # on screen: a text box under the table (no cell: pandas reads the table)
        boxes = [n for n in z.namelist() if n.startswith("xl/drawings/drawing")
                 and "не выполнен стоп-показатель" in z.read(n).decode()]
    assert len(boxes) == 2


def test_print_setup_of_every_sheet(grouped: Path) -> None:
    for ws in openpyxl.load_workbook(grouped):
        assert str(ws.page_setup.paperSize) == "9" and ws.page_setup.orientation == "landscape", ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToHeight == 0
        assert ws.page_setup.fitToWidth in (None, 1)
        assert ws.print_title_rows.replace("$", "") == "1:1", ws.title


def test_sheet_names_are_safe_and_unique() -> None:
    names = sheet_names(["Менеджер [юг]: продажи/опт?", "менеджер [юг]: продажи/опт?", "Ёж", "Еж", "ЁЖ",
                         "'Кавычка'", "Сотрудники", "x" * 40, "", "History", "😀" * 20],
                        ["Сотрудники", "Отделы"])
    assert names[0] == "Менеджер _юг__ продажи_опт_"
    assert names[1] == "менеджер _юг__ продажи_опт_ (2)"  # equal but for case: never silently one sheet
    assert names[2:5] == ["Ёж", "Еж (2)", "ЁЖ (3)"]
    assert names[5] == "Кавычка" and names[6] == "Сотрудники (2)"
    assert names[7] == "x" * 31 and names[8] == "_" and names[9] == "History (2)"
    assert len(names[10].encode("utf-16-le")) // 2 <= 31
    assert len({n.casefold() for n in names}) == len(names)
    for n in names:
        assert not set(n) & set("[]:*?/\\") and len(n.encode("utf-16-le")) // 2 <= 31


def test_no_position_sheet_for_a_blank_name_collision(tmp_path: Path) -> None:
    """Employees without a position get the "(без должности)" sheet; nothing ranks them within a position."""
    res = _grouped()
    emp = res.employees.copy()
    emp.loc[emp["employee_id"] == "E005", "position"] = ""
    book = openpyxl.load_workbook(write_summary(dataclasses.replace(res, employees=emp), tmp_path / "s.xlsx"),
                                  data_only=True)
    assert "(без должности)" in book.sheetnames
    df = _frame(book["(без должности)"])
    assert df["Таб. №"].tolist() == ["E005"] and df["Место в должности"].isna().all()
    assert np.isnan(float(_frame(book["Сотрудники"]).set_index("Таб. №").loc["E005", "Место в должности"] or "nan"))
