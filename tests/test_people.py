"""People by the names the CRM uses (Employees aliases), tables bound by name (Sources, --data NAME=PATH),
``for team`` and money in several currencies (``currency``, Rates): issue 11 §1–§4."""

from __future__ import annotations

import pytest

from tests import _plan_helpers as ph
from xl_kpi.inputs.datafiles import DataFile, parse_data_arg
from xl_kpi.inputs.facts import load_facts
from xl_kpi.inputs.plan import load_plan, read_plan
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.rates import currency_code
from xl_kpi.inputs.sources import parse


def fact_map(facts) -> dict[tuple[str, str], float]:
    v = facts.values
    return dict(zip(zip(v["employee_id"], v["kpi_id"], strict=True), v["fact"], strict=True))


def with_aliases(sheets, aliases: dict[str, str]):
    """Employees get an aliases column (ru header Псевдонимы)."""
    sheets["Employees"][0].append("Псевдонимы")
    for row in sheets["Employees"][1:]:
        row.append(aliases.get(row[0]))
    return sheets


def deals_plan(tmp_path, source: str, aliases: dict[str, str] | None = None, **extra):
    sheets = with_aliases(ph.plan_sheets(), aliases or {})
    ph.set_cell(sheets, "KPIs", 2, "source", source)
    sheets.update(extra)
    return ph.make_plan(tmp_path, sheets)


def run(plan_path, files, **kw):
    problems = Problems()
    plan = read_plan(plan_path, problems=problems) if kw.pop("lenient", False) else load_plan(plan_path)
    facts = load_facts(plan, files, problems=problems, **kw)
    return facts, problems


# ------------------------------------------------------------------------------------------- aliases


def test_by_matches_employee_ids_and_aliases_ignoring_case_spacing_and_yo(tmp_path):
    plan = deals_plan(tmp_path, "count deals by Ответственный",
                      {"E1": "Иван Иванов; i.ivanov", "E2": "Пётр Петров; 7001"})
    rows = [["Ответственный"], ["  иван   ИВАНОВ "], ["I.Ivanov"], ["Петр Петров"], ["7001"], ["E1"], ["E3"]]
    facts, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows)])
    got = fact_map(facts)
    assert (got[("E1", "deals")], got[("E2", "deals")]) == (3, 2)
    assert not problems.has_errors and not ph.matching(problems.warnings, "not in Employees")


def test_ids_keep_the_exact_rule_an_id_in_another_case_is_unmatched(tmp_path):
    plan = deals_plan(tmp_path, "count deals by who", {"E1": "ivanov"})
    facts, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", [["who"], ["e1"], ["IVANOV"]])])
    assert fact_map(facts)[("E1", "deals")] == 1
    w = ph.only(problems.warnings, "not in Employees")
    assert '"e1" (1 row)' in w.message and 'the Employees sheet has "E1"' in w.message


def test_an_alias_of_two_employees_is_an_error_naming_both_rows_and_the_value(tmp_path):
    plan = deals_plan(tmp_path, "count deals by who", {"E1": "Анна; a.p", "E2": "b.q; АННА"})
    problems = Problems()
    read_plan(plan, problems=problems)
    e = ph.only(problems.errors, "alias")
    assert '"АННА"' in e.message and "E2 (row 3)" in e.message and "E1 (row 2)" in e.message
    assert (e.sheet, e.row, e.header) == ("Employees", 3, "Псевдонимы")


def test_an_alias_equal_to_another_employees_id_is_an_error(tmp_path):
    plan = deals_plan(tmp_path, "count deals by who", {"E1": "e2"})
    problems = Problems()
    read_plan(plan, problems=problems)
    e = ph.only(problems.errors, "alias")
    assert "is the employee_id of employee E2" in e.message and (e.row, e.header) == (2, "Псевдонимы")


def test_an_ambiguous_alias_never_counts_for_either(tmp_path):
    plan = deals_plan(tmp_path, "count deals by who", {"E1": "Анна", "E2": "анна"})
    facts, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", [["who"], ["Анна"]])], lenient=True)
    got = fact_map(facts)
    assert got[("E1", "deals")] == 0 and got[("E2", "deals")] == 0
    assert problems.has_errors


def test_unmatched_people_are_one_warning_per_table_with_row_counts(tmp_path):
    sheets = with_aliases(ph.plan_sheets(), {"E1": "Иван"})
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals by who")
    ph.set_cell(sheets, "KPIs", 3, "source", "count deals where kind = complaint by who")
    plan = ph.make_plan(tmp_path, sheets)
    rows = [["who", "kind"], ["Иван", "deal"], ["admin", "deal"], ["admin", "complaint"], ["уволен", "deal"]]
    _, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows)])
    w = ph.only(problems.warnings, "not in Employees")
    assert '"admin" (2 rows), "уволен" (1 row)' in w.message and "3 rows name people" in w.message
    assert (w.sheet, w.row) == ("KPIs", 2)


def test_values_that_look_like_names_say_so_and_show_the_fix(tmp_path):
    plan = deals_plan(tmp_path, "count deals by Ответственный")
    rows = [["Ответственный"], ["Иванов Иван"], ["Полина Б."], ["Полина Б."], ["admin"]]
    _, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows)])
    w = ph.only(problems.warnings, "not in Employees")
    assert "look like people's names, and no alias in Employees matches them" in w.message
    assert '"Иванов Иван" is the name of E1' in w.message
    assert "aliases (Псевдонимы)" in w.fix
    ru = w.render("ru")  # the same warning in Russian (issue 13 §4)
    assert "deals.csv, столбец Ответственный: в 4 строках указаны люди, которых нет в Employees" in ru, ru
    assert "«Полина Б.» (2 строки)" in ru and "«admin» (1 строка)" in ru and "«Иванов Иван» — имя сотрудника E1" in ru
    assert "похожи на имена людей" in ru and "в столбец aliases (Псевдонимы)" in w.fix_in("ru")


# ------------------------------------------------------------------------------- tables bound by name


def sources_sheet(*rows):
    return {"Sources": [["table", "path", "sheet", "encoding", "separator"], *rows]}


def test_sources_sheet_binds_a_table_name_to_a_glob_relative_to_the_plan(tmp_path):
    (tmp_path / "exports").mkdir()
    ph.write_csv(tmp_path / "exports" / "DEAL_20261202_9f3c1a.csv", [["who"], ["i.ivanov"], ["i.ivanov"]],
                 sep="|", encoding="cp1251")
    plan = deals_plan(tmp_path, "count bitrix by who", {"E1": "i.ivanov"},
                      **sources_sheet(["bitrix", "exports/DEAL_*.csv", None, "cp1251", "|"]))
    facts, problems = run(plan, [])
    assert fact_map(facts)[("E1", "deals")] == 2 and not problems.has_errors
    assert facts.files["bitrix"].name == "DEAL_20261202_9f3c1a.csv"


def test_a_glob_matching_several_files_is_an_error_listing_them(tmp_path):
    for name in ("DEAL_1.csv", "DEAL_2.csv"):
        ph.write_csv(tmp_path / name, [["who"], ["E1"]])
    plan = deals_plan(tmp_path, "count bitrix by who", **sources_sheet(["bitrix", "DEAL_*.csv"]))
    _, problems = run(plan, [])
    e = ph.only(problems.errors, "match the path")
    assert "DEAL_1.csv, DEAL_2.csv" in e.message and (e.sheet, e.row, e.header) == ("Sources", 2, "path")


def test_a_binding_to_no_file_is_an_error_at_its_row(tmp_path):
    plan = deals_plan(tmp_path, "count bitrix by who", **sources_sheet(["bitrix", "missing/*.csv"]))
    _, problems = run(plan, [])
    e = ph.only(problems.errors, "no file matches")
    assert (e.sheet, e.row) == ("Sources", 2)


def test_data_name_equals_path_binds_and_wins_over_the_sources_sheet(tmp_path):
    ph.write_csv(tmp_path / "old.csv", [["who"], ["E1"]])
    new = ph.write_csv(tmp_path / "DEAL_new.csv", [["who"], ["E1"], ["E1"], ["E1"]])
    plan = deals_plan(tmp_path, "count bitrix by who", **sources_sheet(["bitrix", "old.csv"]))
    item = parse_data_arg(f"bitrix={new}")
    assert isinstance(item, DataFile) and item.table == "bitrix"
    facts, problems = run(plan, [item])
    assert fact_map(facts)[("E1", "deals")] == 3 and not problems.has_errors


def test_a_plain_path_keeps_the_file_name_rule_even_with_an_equals_sign(tmp_path):
    odd = ph.write_csv(tmp_path / "a=b.csv", [["who"], ["E1"]])
    assert parse_data_arg(str(odd)) == odd
    plan = deals_plan(tmp_path, 'count "a=b" by who')
    facts, _ = run(plan, [str(odd)])
    assert fact_map(facts)[("E1", "deals")] == 1


def test_a_sheet_of_a_workbook_is_bound_by_the_sources_sheet(tmp_path):
    ph.write_workbook(tmp_path / "amo.xlsx", {"Другое": [["who"], ["E2"]], "Сделки": [["who"], ["E1"], ["E1"]]})
    plan = deals_plan(tmp_path, "count amo by who", **sources_sheet(["amo", "amo.xlsx", "Сделки"]))
    facts, problems = run(plan, [])
    assert fact_map(facts)[("E1", "deals")] == 2 and fact_map(facts)[("E2", "deals")] == 0
    assert not problems.has_errors


# ------------------------------------------------------------------------------------------ for team


TEAM = ["employee_id", "name", "position", "department", "manager", "email", "salary", "bonus_pool"]


def team_plan(tmp_path, source: str, managers: dict[str, str | None]):
    sheets = ph.plan_sheets()
    sheets["Employees"] = [TEAM] + [[e, f"Сотрудник {e}", "Account manager", "Sales", m, f"{e}@x.ru", 1, 20_000]
                                    for e, m in managers.items()]
    ph.set_cell(sheets, "KPIs", 2, "source", source)
    return ph.make_plan(tmp_path, sheets)


def test_for_team_sums_the_rows_of_the_whole_reporting_subtree(tmp_path):
    plan = team_plan(tmp_path, "sum deals.amount by who for team",
                     {"H": None, "M1": "H", "M2": "H", "A": "M1", "B": "M1", "C": "M2"})
    rows = [["who", "amount"], ["H", "1"], ["M1", "10"], ["A", "100"], ["B", "1000"], ["C", "10000"],
            ["M2", "100000"], ["nobody", "5"]]
    facts, _ = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows)])
    got = {e: f for (e, k), f in fact_map(facts).items() if k == "deals"}
    assert got == {"H": 111111, "M1": 1110, "M2": 110000, "A": 100, "B": 1000, "C": 10000}


def test_for_team_mean_is_over_the_team_rows_not_a_mean_of_means(tmp_path):
    plan = team_plan(tmp_path, "mean deals.amount by who for team", {"H": None, "A": "H"})
    rows = [["who", "amount"], ["H", "10"], ["A", "1"], ["A", "1"], ["A", "1"]]
    facts, _ = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows)])
    assert fact_map(facts)[("H", "deals")] == pytest.approx(13 / 4)


def test_a_cycle_in_the_manager_chain_is_a_located_error(tmp_path):
    plan = team_plan(tmp_path, "count deals by who for team", {"A": "B", "B": "C", "C": "A", "D": None})
    _, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", [["who"], ["A"]])])
    e = ph.only(problems.errors, "circle")
    assert "A → B → C → A" in e.message and (e.sheet, e.row, e.header) == ("Employees", 2, "manager")


def test_team_and_currency_clauses_print_back_and_parse_the_same():
    for text in ['sum bitrix.Сумма where "Стадия сделки" = "Сделка успешна" by Ответственный dated '
                 '"Дата закрытия" for team', "sum d.amount currency Валюта", "sum d.amount currency none",
                 'sum d.amount currency "none"', "(sum d.a for team) / (count d) * 100"]:
        s = parse(text)
        assert parse(str(s)) == s
    assert parse("sum d.amount for team").numerator.team
    assert parse("sum d.amount currency none").numerator.currency == ""
    assert parse('sum d.amount currency "none"').numerator.currency == "none"


# ----------------------------------------------------------------------------------------- currencies


def rates_sheet(*rows):
    return {"Rates": [["Валюта", "Курс", "Дата"], *rows]}


def test_currency_codes_are_normalised():
    assert [currency_code(v) for v in ("руб.", "₽", "RUR", "$", "€", " usd ", None)] == [
        "RUB", "RUB", "RUB", "USD", "EUR", "USD", None]


def test_amounts_in_other_currencies_are_converted_at_the_rate_of_the_rows_date(tmp_path):
    plan = deals_plan(tmp_path, "sum deals.amount by who dated day",
                      **rates_sheet(["USD", "90", None], ["$", "100", "15.10.2026"], ["EUR", "110,5", None]))
    rows = [["who", "amount", "Валюта", "day"], ["E1", "1 000,50", "руб.", "01.10.2026"],
            ["E1", "10", "USD", "14.10.2026"], ["E1", "10", "$", "15.10.2026"], ["E1", "2", "€", "20.10.2026"],
            ["E1", "5", "", "20.10.2026"]]
    facts, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows, sep=";")])
    assert not problems.has_errors
    assert fact_map(facts)[("E1", "deals")] == pytest.approx(1000.50 + 900 + 1000 + 221 + 5)


def test_a_currency_without_a_rate_is_a_located_error(tmp_path):
    plan = deals_plan(tmp_path, "sum deals.amount by who")
    rows = [["who", "amount", "Currency"], ["E1", "100", "RUB"], ["E1", "7", "USD"], ["E2", "8", "USD"]]
    _, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows)])
    e = ph.only(problems.errors, "no rate from USD to RUB")
    assert "2 rows of deals.csv are in USD" in e.message and (e.row, e.header) == (3, "Currency")
    assert "Rates sheet" in e.fix


def test_currency_none_switches_the_automatic_column_off(tmp_path):
    plan = deals_plan(tmp_path, "sum deals.amount by who currency none")
    rows = [["who", "amount", "Currency"], ["E1", "100", "RUB"], ["E1", "7", "USD"]]
    facts, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows)])
    assert fact_map(facts)[("E1", "deals")] == 107 and not problems.has_errors


def test_a_named_currency_column_is_used(tmp_path):
    plan = deals_plan(tmp_path, "sum deals.amount by who currency cur", **rates_sheet(["EUR", "100", None]))
    rows = [["who", "amount", "cur"], ["E1", "1,5", "EUR"], ["E1", "1", "RUB"]]
    facts, _ = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows, sep=";")])
    assert fact_map(facts)[("E1", "deals")] == pytest.approx(151)


def test_a_row_dated_before_the_first_rate_is_an_error(tmp_path):
    rows = [["who", "amount", "cur", "day"], ["E1", "1", "USD", "01.10.2026"]]
    plan = deals_plan(tmp_path, "sum deals.amount by who dated day currency cur",
                      **rates_sheet(["USD", "100", "15.10.2026"]))
    _, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows)])
    e = ph.only(problems.errors, "dated before the first USD rate")
    assert (e.row, e.header) == (2, "day")


def test_a_bad_rate_is_an_error_at_its_cell(tmp_path):
    plan = deals_plan(tmp_path, "count deals", **rates_sheet(["USD", "0", None], ["EUR", "abc", None]))
    problems = Problems()
    read_plan(plan, problems=problems)
    assert ph.only(problems.errors, "above 0").row == 2
    assert ph.only(problems.errors, "not a number").row == 3


def test_counts_are_never_converted(tmp_path):
    plan = deals_plan(tmp_path, "count deals by who")
    rows = [["who", "Currency"], ["E1", "USD"], ["E1", "XYZ"]]
    facts, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows)])
    assert fact_map(facts)[("E1", "deals")] == 2 and not problems.has_errors


def test_an_unreadable_amount_in_another_currency_is_still_reported_at_its_cell(tmp_path):
    plan = deals_plan(tmp_path, "sum deals.amount by who", **rates_sheet(["USD", "90", None]))
    rows = [["who", "amount", "Валюта"], ["E1", "10", "USD"], ["E1", "десять", "USD"], ["E1", "", "USD"]]
    facts, problems = run(plan, [ph.write_csv(tmp_path / "deals.csv", rows)])
    e = ph.only(problems.errors, "десять")
    assert (e.row, e.header) == (3, "amount")
    assert fact_map(facts)[("E1", "deals")] == 900
