"""Facts: CSV as Russian Excel saves it, facts workbooks, facts from raw data, periods."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from tests import _plan_helpers as ph
from xl_kpi.engine.errors import KpiError
from xl_kpi.inputs.facts import Facts, FactsError, load_facts, load_tables
from xl_kpi.inputs.plan import load_plan, sample_inputs
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.readers import detect_encoding, detect_separator, read_csv_grid
from xl_kpi.inputs.tables import expand_paths, read_tables


def fact_map(facts: Facts) -> dict[tuple[str, str], float]:
    v = facts.values
    return dict(zip(zip(v["employee_id"], v["kpi_id"], strict=True), v["fact"], strict=True))


EXPECTED = {("E1", "deals"): 160.0, ("E1", "complaints"): 4.0, ("E2", "deals"): 130.0, ("E2", "complaints"): 8.0,
            ("E3", "complaints"): 5.0, ("E3", "nps"): 35.0}


# ------------------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("sep", [",", ";", "\t"])
@pytest.mark.parametrize("encoding, bom", [("utf-8", False), ("utf-8", True), ("cp1251", False),
                                           ("utf-16", False)])
def test_csv_separators_and_encodings(tmp_path, sep, encoding, bom):
    rows = [["Табельный номер", "Показатель", "Факт"], ["E1", "deals", "160"], ["Ё2", "nps", "35,5"]]
    path = ph.write_csv(tmp_path / "f.csv", rows, sep=sep, encoding=encoding, bom=bom)
    grid = read_csv_grid(path)
    assert grid.iloc[0].tolist() == rows[0]
    assert grid.iloc[2].tolist() == rows[2]


def test_detection_helpers():
    assert detect_encoding("факт".encode("cp1251")) == "cp1251"
    assert detect_encoding(b"\xef\xbb\xbfabc") == "utf-8-sig"
    assert detect_encoding("факт".encode()) == "utf-8"
    assert detect_separator('"a;b",c,d\n1,2,3') == ","
    assert detect_separator("\n\na;b;c") == ";"
    assert detect_separator("a\tb") == "\t"


def test_cp1251_semicolon_facts_with_decimal_commas(tmp_path):
    plan = load_plan(ph.make_plan(tmp_path))
    rows = [["Табельный номер", "Код показателя", "Факт", "Период"]] + [
        [e, k, f"{v:g}".replace(".", ","), "10.2026"] for (e, k), v in EXPECTED.items()]
    rows[1][2] = "160,0"
    rows[6][2] = "35,0"
    path = ph.write_csv(tmp_path / "факты.csv", rows, sep=";", encoding="cp1251")
    facts = load_facts(plan, [path])
    assert fact_map(facts) == EXPECTED
    assert facts.period.key == "2026-10"
    assert set(facts.values["origin"]) == {"file"}
    first = facts.values.iloc[0]
    assert (first["file"], first["row"]) == ("факты.csv", 2)


def test_facts_workbook_with_title_row_and_numbers_as_text(tmp_path):
    plan = load_plan(ph.make_plan(tmp_path))
    rows = [["Факты за октябрь 2026"], [], ["Сотрудник ID", "KPI", "Значение"]]
    rows += [[e, k, f"{v:g}"] for (e, k), v in EXPECTED.items()]
    rows[3][2] = "1 60"  # not a number
    path = ph.write_workbook(tmp_path / "facts.xlsx", {"Лист1": rows})
    problems = Problems()
    facts = load_facts(plan, [path], problems=problems)
    p = ph.only(problems.errors, "1 60")
    assert (p.file, p.sheet, p.row, p.column) == ("facts.xlsx", "Лист1", 4, "C")
    assert ("E1", "deals") not in fact_map(facts)


def test_load_facts_raises_with_every_problem_when_not_collecting(tmp_path):
    plan = load_plan(ph.make_plan(tmp_path))
    path = ph.make_facts(tmp_path, {("E9", "deals"): 1, ("E1", "x"): 2})
    with pytest.raises(FactsError) as e:
        load_facts(plan, [path])
    assert len(e.value.problems.errors) == 2


# ---------------------------------------------------------------------------------- raw data


def test_facts_from_raw_data_and_a_facts_file_together(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals where status = won by manager dated closed")
    ph.set_cell(sheets, "KPIs", 3, "source", "count requests where complaint = да by manager")
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    deals = [["manager", "status", "closed"]] + [["E1", "won", "05.10.2026"]] * 3 + [["E1", "lost", "05.10.2026"]] \
        + [["E1", "won", "05.09.2026"]] + [["E2", "won", "31.10.2026"]]
    requests = [["manager", "complaint"], ["E1", "да"], ["E2", "нет"], ["E3", "да"], ["E3", "да"], ["X", "да"]]
    files = [ph.write_csv(tmp_path / "deals.csv", deals, sep=";", encoding="cp1251"),
             ph.write_workbook(tmp_path / "requests.xlsx", {"Sheet1": requests}),
             ph.write_csv(tmp_path / "facts.csv", [["employee_id", "kpi_id", "fact"], ["E3", "nps", "35"]])]
    problems = Problems()
    facts = load_facts(plan, files, problems=problems)
    assert fact_map(facts) == {("E1", "deals"): 3, ("E2", "deals"): 1, ("E1", "complaints"): 1,
                               ("E2", "complaints"): 0, ("E3", "complaints"): 2, ("E3", "nps"): 35}
    w = ph.only(problems.warnings, "not in Employees")
    assert "X" in w.message and (w.sheet, w.row, w.column) == ("KPIs", 3, "D")
    assert not problems.has_errors
    origin = facts.values.set_index(["employee_id", "kpi_id"])["origin"]
    assert origin[("E1", "deals")] == "source" and origin[("E3", "nps")] == "file"


def test_a_facts_file_row_overrides_the_derived_fact(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals")
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    deals = ph.write_csv(tmp_path / "deals.csv", [["employee_id"], ["E1"], ["E1"], ["E2"]])
    problems = Problems()
    facts = load_facts(plan, [deals, ph.make_facts(tmp_path)], problems=problems)
    got = fact_map(facts)
    assert got[("E1", "deals")] == 160 and got[("E2", "deals")] == 130
    assert len(ph.matching(problems.warnings, "also derived from raw data")) == 2


def test_the_period_is_inferred_from_the_data_when_the_plan_has_none(tmp_path):
    sheets = ph.plan_sheets()
    del sheets["Settings"]
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals dated day")
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    deals = ph.write_csv(tmp_path / "deals.csv", [["employee_id", "day"], ["E1", "2026-10-01"], ["E2", "2026-10-31"]])
    facts = load_facts(plan, [deals, ph.make_facts(tmp_path, {("E1", "deals"): ..., ("E2", "deals"): ...})])
    assert facts.period.key == "2026-10" and fact_map(facts)[("E2", "deals")] == 1
    deals = ph.write_csv(tmp_path / "deals.csv", [["employee_id", "day"], ["E1", "2026-10-01"], ["E2", "2026-11-01"]])
    problems = Problems()
    facts = load_facts(plan, [deals, tmp_path / "facts.csv"], problems=problems)
    assert "several periods (2026-10, 2026-11)" in ph.only(problems.errors, "several periods").message
    assert load_facts(plan, [deals, tmp_path / "facts.csv"], period="11.2026").period.key == "2026-11"


@pytest.mark.slow
def test_sample_facts_cover_every_line():
    plan_path, data = sample_inputs()
    plan = load_plan(plan_path)
    facts = load_facts(plan, data)
    merged = facts.attach(plan.lines)
    assert merged["fact"].notna().all()
    assert facts.period.key == "2026-10"
    origins = facts.values.groupby("kpi_id")["origin"].first()
    assert origins["quality"] == "file" and origins["nps"] == "source"


@pytest.mark.slow
def test_sample_facts_against_pandas_by_hand():
    """Recompute three sample KPIs straight from the files with plain pandas."""
    plan_path, data = sample_inputs()
    facts = fact_map(load_facts(load_plan(plan_path), data))
    folder = plan_path.parent
    deals = pd.read_csv(folder / "deals.csv", sep=";", encoding="cp1251", dtype=str)
    deals["amount"] = deals["amount"].str.replace("\u00a0", "").str.replace(",", ".").astype(float)
    deals["closed"] = pd.to_datetime(deals["closed_at"], format="%d.%m.%Y")
    won = deals[(deals["status"] == "won") & (deals["closed"].dt.strftime("%Y-%m") == "2026-10")]
    for eid, amount in won.groupby("manager_id")["amount"].sum().items():
        assert facts[(eid, "revenue")] == pytest.approx(amount)
    for eid, n in won.groupby("manager_id").size().items():
        if (eid, "deals_won") in facts:
            assert facts[(eid, "deals_won")] == n
    req = pd.read_excel(folder / "requests.xlsx", engine="openpyxl")  # an independent reader
    req = req[req["Создано"].dt.strftime("%Y-%m") == "2026-10"]
    hours = (req["Ответ"] - req["Создано"]).dt.total_seconds() / 3600
    for eid, h in hours.groupby(req["Исполнитель"].astype(str)).mean().items():
        assert facts[(eid, "response_time")] == pytest.approx(h)
    surveys = pd.read_csv(folder / "surveys.csv", encoding="utf-8-sig", dtype={"manager_id": str})
    surveys = surveys[surveys["answered_at"].str.startswith("2026-10")]
    for eid, s in surveys.groupby("manager_id")["score"]:
        expected = ((s >= 9).sum() - (s <= 6).sum()) * 100 / len(s)
        assert facts[(eid, "nps")] == pytest.approx(expected)


# ------------------------------------------------------------------------------------ files


def test_tables_by_stem_and_sheet_and_clashing_names(tmp_path):
    a = ph.write_csv(tmp_path / "deals.csv", [["x"], [1]])
    b = ph.write_workbook(tmp_path / "deals.xlsx", {"S": [["x"], [2]]})
    c = ph.write_workbook(tmp_path / "crm.xlsx", {"One": [["x"], [1]], "Two": [["y"], [2]]})
    problems = Problems()
    tables = load_tables([a, b, c], problems)
    assert set(tables) == {"deals", "deals:s", "crm", "crm:one", "crm:two"}
    assert tables["crm"].frame.columns.tolist() == ["x"]
    assert "both called" in ph.only(problems.errors, "both called").message


def test_unknown_file_type_empty_files_and_folders(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    ph.write_csv(tmp_path / "sub" / "b.csv", [["x"], [1]])
    (tmp_path / "sub" / "~$lock.xlsx").write_bytes(b"")
    problems = Problems()
    load_tables([tmp_path / "a.json", tmp_path / "notes.txt"], problems)
    assert "unknown file type .json" in ph.only(problems.errors, "unknown file type").message
    assert ph.only(problems.warnings, "empty").file == "notes.txt"
    assert [p.name for p in expand_paths([tmp_path / "sub"])] == ["b.csv"]


def test_a_corrupt_workbook_is_a_problem_not_a_crash(tmp_path):
    bad = tmp_path / "deals.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    problems = Problems()
    load_tables([bad], problems)
    assert ph.only(problems.errors, "cannot read it as a workbook").file == "deals.xlsx"


def test_blank_lines_keep_row_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("employee_id,amount\n\nE1,5\n,\nE2,x\n", encoding="utf-8")
    (t,) = read_tables(path)
    assert t.frame.index.tolist() == [3, 5]
    assert t.at(5, "amount") == {"file": "t.csv", "sheet": None, "row": 5, "column": "B", "header": "amount"}


def test_facts_from_frame_and_attach():
    facts = Facts.from_frame(pd.DataFrame({"employee_id": [1001, "1002"], "kpi_id": ["a", "a"],
                                           "fact": ["1 234,5", 7]}))
    lines = pd.DataFrame({"employee_id": ["1001", "1002", "1003"], "kpi_id": ["a", "a", "a"]})
    got = facts.attach(lines)["fact"].tolist()
    assert got[:2] == [1234.5, 7.0] and math.isnan(got[2])


# ------------------------------------------------------------- never one of two facts (issue 9 §1)


def test_two_facts_for_one_employee_and_kpi_neither_is_used(tmp_path):
    """Even when the run goes on (--skip-invalid), no fact is picked by its order, nor the raw data's instead."""
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals")
    plan = load_plan(ph.make_plan(tmp_path, sheets))
    deals = ph.write_csv(tmp_path / "deals.csv", [["employee_id"], ["E1"], ["E1"], ["E2"]])
    rows = [*ph.facts_rows(), ["E1", "deals", 999]]
    problems = Problems()
    facts = load_facts(plan, [deals, ph.write_csv(tmp_path / "facts.csv", rows)], problems=problems)
    got = fact_map(facts)
    assert ("E1", "deals") not in got and got[("E2", "deals")] == 130
    assert ("E1", "deals") in facts.reported
    assert len(ph.matching(problems.errors, "a second fact for employee E1, KPI deals")) == 1


def test_facts_from_frame_refuse_two_facts_for_one_pair():
    with pytest.raises(KpiError, match="2 rows for employee 1001, KPI a"):
        Facts.from_frame(pd.DataFrame({"employee_id": [1001, "1001"], "kpi_id": ["a", "a"], "fact": [1, 2]}))


def test_ids_of_a_text_column_share_one_string_per_value() -> None:
    """Memory (issue 10 §6): a KPI id repeated down 100,000 facts is one Python string, not 100,000."""
    from xl_kpi.inputs.cells import to_ids

    col = pd.Series([" K1", "K1 ", None, "", "K2", "K1", "  "], dtype="str")
    ids = to_ids(col)
    assert ids.dtype == object
    assert ids.isna().tolist() == [False, False, True, True, False, False, True]
    assert ids.dropna().tolist() == ["K1", "K1", "K2", "K1"]
    assert ids[0] is ids[1] is ids[5]


def test_locations_of_many_facts_are_where_each_fact_comes_from() -> None:
    plan, data = sample_inputs()
    facts = load_facts(load_plan(plan), data)
    pairs = list(zip(facts.values["employee_id"], facts.values["kpi_id"], strict=True))
    assert {r["origin"] for _, r in facts.values.iterrows()} == {"file", "source"}  # both kinds of origin
    found = facts.locations([*pairs, ("nobody", "no kpi")])
    assert set(found) == set(pairs)  # a pair without a fact has no location
    assert all(found[p] == facts.location(*p) for p in pairs)
    twice = pd.concat([facts.values.iloc[:1].assign(file="second.csv"), facts.values])
    assert Facts(twice).locations(pairs[:1])[pairs[0]]["file"] == "second.csv"  # the first row, as location() takes
