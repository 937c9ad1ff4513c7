"""The plan workbook: loading (English and Russian headers), numbers as typed, plans, scales, settings."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest

from tests import _plan_helpers as ph
from xl_kpi import DEFAULT_SCALE, KpiError
from xl_kpi.engine.period import Period
from xl_kpi.inputs.cells import NumberFormatError, parse_number, to_ids, to_numbers
from xl_kpi.inputs.plan import (
    SAMPLE_DIR,
    PlanError,
    Settings,
    load_plan,
    plan_from_frames,
    proration,
    read_plan,
    sample_inputs,
)
from xl_kpi.inputs.problems import Problems

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------- the sample


def test_sample_inputs_are_found_next_to_the_package():
    plan, data = sample_inputs()
    assert plan == SAMPLE_DIR / "plan.xlsx" and plan.exists()
    assert SAMPLE_DIR == ROOT / "workbooks" / "sample"
    assert sorted(p.name for p in data) == ["deals.csv", "facts.csv", "requests.xlsx", "surveys.csv"]


def test_sample_plan_loads():
    plan = load_plan(SAMPLE_DIR / "plan.xlsx")
    emp = plan.employees
    assert len(emp) >= 40 and emp["employee_id"].is_unique
    assert emp["department"].nunique() == 3
    assert set(emp["position"]) == {"Менеджер по работе с клиентами", "Менеджер по ключевым клиентам",
                                    "Руководитель группы поддержки", "Специалист поддержки"}
    assert emp["name"].str.count(" ").eq(2).all()  # ФИО: surname, name, patronymic
    assert (emp["manager"] != "").all()
    assert emp["hired"].notna().sum() == 1 and emp["left"].notna().sum() == 1
    assert (emp["multiplier"] != 1).sum() == 1
    assert plan.settings == Settings(period=Period.month(2026, 10), currency="RUB", language="ru", digits=2,
                                     company="ООО «Сервис Плюс»")
    assert plan.scales["kam_linear"].kind == "linear" and plan.scales["default"] == DEFAULT_SCALE.__class__.steps(
        DEFAULT_SCALE.points, name="default")
    assert plan.lines["personal"].sum() == 1
    assert plan.lines["gate"].notna().any()
    lower_is_better = plan.rows[plan.rows["base"] > plan.rows["norm"]]
    assert {"complaint_rate", "response_time"} <= set(lower_is_better["kpi_id"])
    assert "nps" in plan.sources and plan.sources["nps"].numerator.func == "nps"
    assert "quality" not in plan.sources  # its facts come from facts.csv
    # each employee's weights sum to 100%
    assert plan.lines.groupby("employee_id")["weight"].sum().sub(1).abs().max() < 1e-9


def test_sample_is_regenerated_byte_for_byte(tmp_path):
    from scripts import make_sample

    files = make_sample.main(tmp_path)
    for f in files:
        assert f.read_bytes() == (SAMPLE_DIR / f.name).read_bytes(), f"{f.name} differs: rerun scripts/make_sample.py"


# ------------------------------------------------------------------------------ small plans


def test_minimal_plan_and_line_order(tmp_path):
    plan = load_plan(ph.make_plan(tmp_path))
    lines = plan.lines
    assert list(zip(lines["employee_id"], lines["kpi_id"], strict=True)) == [
        ("E1", "deals"), ("E1", "complaints"), ("E2", "deals"), ("E2", "complaints"), ("E3", "complaints"),
        ("E3", "nps")]
    assert lines["scale"].tolist() == ["default"] * 4 + ["default", "lin"]
    assert plan.employees["row"].tolist() == [2, 3, 4]
    assert plan.employees["multiplier"].tolist() == [1.0, 1.0, 1.0]
    assert plan.settings.period.key == "2026-10" and plan.settings.company == "Ромашка"
    assert plan.scales["lin"].points == [(0.5, 0.0), (1.0, 1.0), (1.5, 1.5)]


def test_russian_headers_and_sheet_names(tmp_path):
    sheets = {
        "Сотрудники": [["Табельный номер", "ФИО", "Должность", "Отдел", "Руководитель", "Оклад",
                        "Премиальный фонд", "Множитель", "Дата приёма", "Дата увольнения"],
                       [1001, "Иванов Иван Иванович", "Менеджер", "Продажи", "Петрова", 50000, 20000, 1.2,
                        dt.datetime(2026, 10, 13), None]],
        "Показатели": [["Код показателя", "Наименование", "Ед. изм.", "Источник"],
                       ["deals", "Сделки", "шт.", "count deals by manager_id"]],
        "План": [["Должность", "Табельный номер", "KPI", "Вес, %", "База", "Норма", "Нижняя граница",
                  "Верхняя граница", "Шкала", "Барьер"],
                 ["Менеджер", None, "deals", "100%", 10, 15, "0%", "150%", None, "50%"]],
        "Шкалы": [["Шкала", "Порог", "Коэффициент", "Вид"], ["моя", "70%", "0,9", "ступени"], ["моя", 1, 1, None]],
        "Настройки": [["Параметр", "Значение"], ["Период", "10.2026"], ["Валюта", "руб"], ["Язык", "русский"],
                      ["Округление", 0], ["Компания", "ООО Ромашка"]],
    }
    plan = load_plan(ph.write_workbook(tmp_path / "план.xlsx", sheets))
    e = plan.employees.iloc[0]
    assert (e["employee_id"], e["name"], e["position"], e["department"], e["salary"], e["bonus_pool"],
            e["multiplier"]) == ("1001", "Иванов Иван Иванович", "Менеджер", "Продажи", 50000, 20000, 1.2)
    assert e["hired"] == pd.Timestamp("2026-10-13")
    line = plan.lines.iloc[0]
    assert (line["weight"], line["base"], line["norm"], line["floor"], line["cap"], line["gate"]) == (
        1.0, 10, 15, 0.0, 1.5, 0.5)
    assert plan.kpis.iloc[0]["unit"] == "шт." and plan.sources["deals"].numerator.by == "manager_id"
    assert plan.scales["моя"].points == [(0.7, 0.9), (1.0, 1.0)]
    assert plan.settings == Settings(Period.month(2026, 10), "РУБ", "ru", 0, "ООО Ромашка")


def test_headers_ignore_case_spaces_and_a_title_row(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Employees"][0] = ["EMPLOYEE_ID", "Name", "Position", "Dept", "Manager", "E-mail", "Salary", "Bonus Pool"]
    sheets["Employees"].insert(0, ["Staff list, October 2026"])
    sheets["Employees"].insert(1, [])
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    assert plan.employees["row"].tolist() == [4, 5, 6]
    assert plan.tables["Employees"].header_row == 3
    assert plan.employees["email"].tolist() == ["e1@x.ru", "e2@x.ru", "e3@x.ru"]


def test_numbers_typed_as_text(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 2, "weight", "40%")
    ph.set_cell(sheets, "Plan", 3, "weight", "0,6")
    ph.set_cell(sheets, "Plan", 2, "base", "1 000")
    ph.set_cell(sheets, "Plan", 2, "norm", "1.500,5")
    ph.set_cell(sheets, "Employees", 2, "bonus_pool", "20\u00a0000,00")
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    first = plan.lines.iloc[0]
    assert (first["weight"], first["base"], first["norm"]) == (0.4, 1000.0, 1500.5)
    assert plan.lines.iloc[1]["weight"] == 0.6
    assert plan.employees.iloc[0]["bonus_pool"] == 20000.0


def test_ambiguous_number_is_rejected_with_its_cell(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 3, "norm", "1,234")
    problems = Problems()
    read_plan(ph.make_plan(tmp_path, sheets), problems)
    p = ph.only(problems.errors, "ambiguous")
    assert (p.file, p.sheet, p.row, p.column, p.header) == ("plan.xlsx", "Plan", 3, "F", "norm")
    with pytest.raises(PlanError) as e:
        load_plan(tmp_path / "plan.xlsx")
    assert "ambiguous" in str(e.value) and e.value.problems.has_errors


@pytest.mark.parametrize("text, value", [
    ("1 234,5", 1234.5), ("1\u00a0234,5", 1234.5), ("1\u202f234,50", 1234.5), ("1.234,5", 1234.5),
    ("1,234.5", 1234.5), ("1234,5", 1234.5), ("0,125", 0.125), ("40%", 0.4), ("12,5 %", 0.125), ("0.4", 0.4),
    ("(1 200)", -1200.0), ("−5", -5.0), ("1 000 ₽", 1000.0), ("1.234.567", 1234567.0), ("1 234,567", 1234.567),
    ("57%", 0.57), (" ", None), (7, 7.0), (0.4, 0.4),
])
def test_accountant_numbers(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text, why", [
    ("1,234", "ambiguous"), ("12 34", "three digits"), ("1.2.3", "three digits"), ("abc", "not a number"),
    ("1,2,3", "three digits"), (True, "yes/no"), (dt.date(2026, 1, 1), "date"),
])
def test_numbers_that_are_refused(text, why):
    with pytest.raises(NumberFormatError, match=why):
        parse_number(text)


def test_column_parsing_keeps_true_and_one_apart():
    nums, errors = to_numbers(pd.Series([1, True, "1,5", None, 1.0, "1 000"], dtype=object))
    assert nums.tolist()[:3] == [1.0, pytest.approx(float("nan"), nan_ok=True), 1.5]
    assert nums.tolist()[4:] == [1.0, 1000.0] and math.isnan(nums[3])
    assert isinstance(errors[1], str) and errors.drop(1).isna().all()
    assert to_ids(pd.Series([1001.0, "1001 ", True, None], dtype=object)).tolist()[:3] == ["1001", "1001", "True"]


def test_period_forms():
    assert Period.parse("2026-10") == Period.parse("10.2026") == Period.parse(dt.date(2026, 10, 5))
    assert Period.parse("10.2026").key == "2026-10"
    with pytest.raises(KpiError):
        Period.parse("2026-13")


# ------------------------------------------------------------------------------ personal plans


def test_personal_row_replaces_the_position_row_in_place_and_can_add_or_remove(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Plan"] += [
        [None, "E2", "deals", 0.4, 120, 160, None, None, None, None],  # replaces E2's deals, same slot
        ["Account manager", "E1", "complaints", 0, 10, 5, None, None, None, None],  # weight 0: removed...
        [None, "E1", "nps", 0.6, 20, 50, None, None, None, None],  # ...and replaced by a personal KPI
    ]
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    lines = plan.lines.set_index(["employee_id", "kpi_id"])
    assert list(plan.lines.loc[plan.lines.employee_id == "E2", "kpi_id"]) == ["deals", "complaints"]
    assert (lines.loc[("E2", "deals"), "base"], lines.loc[("E2", "deals"), "norm"]) == (120, 160)
    assert bool(lines.loc[("E2", "deals"), "personal"]) and not bool(lines.loc[("E2", "complaints"), "personal"])
    assert list(plan.lines.loc[plan.lines.employee_id == "E1", "kpi_id"]) == ["deals", "nps"]
    assert lines.loc[("E1", "deals"), "base"] == 100  # E1 keeps the position's deals row


def test_gate_kpi_with_weight_zero_stays_in_the_matrix(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Plan"].append(["Account manager", None, "nps", 0, 20, 50, None, None, None, 0.5])
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    assert ("E1", "nps") in set(zip(plan.lines.employee_id, plan.lines.kpi_id, strict=True))


# ------------------------------------------------------------------------------ scales, settings


def test_scales_with_below_cap_and_default_override(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Scales"] = [["scale", "threshold", "coefficient", "kind", "below", "cap"],
                        ["default", 0.8, 1.0, "steps", 0.5, None], ["default", 1.2, 1.5, "steps", None, 1.4],
                        ["lin", 0.5, 0, "linear", None, None], ["lin", 1.5, 2, "linear", None, 1.8]]
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    d, lin = plan.scales["default"], plan.scales["lin"]
    assert (d.below, d.cap, d(0.5), d(0.8), d(1.3)) == (0.5, 1.4, 0.5, 1.0, 1.4)
    assert (lin.kind, lin(1.0), lin(2.0)) == ("linear", 1.0, 1.8)


def test_settings_without_header_and_unknown_keys(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Settings"] = [["period", dt.datetime(2026, 10, 1)], ["digits", "0"], ["language", "EN"],
                          ["colour", "red"]]
    problems = Problems()
    plan = read_plan(ph.make_plan(tmp_path, sheets), problems)
    assert (plan.settings.period.key, plan.settings.digits, plan.settings.language) == ("2026-10", 0, "en")
    w = ph.only(problems.warnings, 'unknown setting "colour"')
    assert (w.sheet, w.row, w.column) == ("Settings", 4, "A")


def test_bad_settings_are_errors(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Settings"] = [["setting", "value"], ["period", "October"], ["digits", 2.5], ["language", "fr"]]
    problems = Problems()
    read_plan(ph.make_plan(tmp_path, sheets), problems)
    assert {p.row for p in problems.errors} == {2, 3, 4}
    assert all(p.column == "B" for p in problems.errors)


def test_missing_optional_sheets_use_defaults(tmp_path):
    sheets = ph.plan_sheets()
    del sheets["Settings"]
    sheets["Plan"][4][8] = None  # no plan row names 'lin' any more
    del sheets["Scales"]
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    assert plan.settings == Settings()
    assert set(plan.scales) == {"default"}


# ------------------------------------------------------------------------------------ proration


@pytest.mark.parametrize("hired, left, expected", [
    (None, None, 1.0),
    ("2026-10-13", None, 19 / 31),  # 13..31 October
    (None, "2026-10-20", 20 / 31),  # 1..20 October
    ("2026-10-05", "2026-10-24", 20 / 31),
    ("2026-10-31", None, 1 / 31),
    ("2025-01-10", "2027-01-01", 1.0),
    ("2026-11-02", None, 0.0),  # hired after the period
    (None, "2026-09-30", 0.0),  # left before it
])
def test_proration(hired, left, expected):
    emp = pd.DataFrame({"hired": [pd.Timestamp(hired) if hired else pd.NaT],
                        "left": [pd.Timestamp(left) if left else pd.NaT]})
    assert proration(emp, "2026-10").iloc[0] == pytest.approx(expected, abs=1e-15)


def test_proration_of_february_and_without_a_period():
    emp = pd.DataFrame({"hired": [pd.Timestamp("2028-02-15"), pd.NaT], "left": [pd.NaT, pd.NaT]})
    assert proration(emp, "2028-02").tolist() == [15 / 29, 1.0]  # leap year
    got = proration(emp, None)
    assert math.isnan(got.iloc[0]) and got.iloc[1] == 1.0


def test_docs_list_every_accepted_alias():
    from xl_kpi.inputs.facts import FACT, FACTS_KPI_ID, PERIOD
    from xl_kpi.inputs.plan import SETTINGS_KEYS, SHEETS
    from xl_kpi.inputs.tables import EMPLOYEE_ID, header_key

    docs = header_key((ROOT / "docs" / "plan.md").read_text(encoding="utf-8"))
    aliases = [a for s in SHEETS.values() for a in s.aliases] + [a for s in SHEETS.values() for c in s.columns
                                                                for a in c.aliases]
    aliases += [a for v in SETTINGS_KEYS.values() for a in v] + [*EMPLOYEE_ID, *FACTS_KPI_ID, *FACT, *PERIOD]
    missing = sorted({a for a in aliases if header_key(a) not in docs})
    assert not missing, f"docs/plan.md does not list: {missing}"


def test_plan_from_frames():
    s = ph.plan_sheets()
    frames = {k: pd.DataFrame(v[1:], columns=v[0]) for k, v in s.items() if k != "Settings"}
    plan = plan_from_frames(frames["Employees"], frames["KPIs"], frames["Plan"], frames["Scales"],
                            {"period": "2026-10"})
    assert not plan.problems.has_errors
    assert len(plan.lines) == 6 and plan.settings.period.key == "2026-10"
