"""Drill-down (issue 13 §1): the rows behind a derived fact add up to the fact, per employee."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.test_sources import TABLES, table
from xl_kpi.engine.period import period_of
from xl_kpi.inputs.rates import Rates
from xl_kpi.inputs.sources import Evaluator, parse
from xl_kpi.inputs.sources.drill import explain, total
from xl_kpi.inputs.team import build_teams


def _check(text: str, period: str | None = "2026-10", tables=TABLES, **kw) -> pd.DataFrame:
    ev = Evaluator(tables, **kw)
    facts = ev.evaluate(text, period=period_of(period))
    src = parse(text)
    rows = explain(ev, src.numerator, period)
    func = src.numerator.func
    assert len(facts)
    for emp, fact in zip(facts["employee_id"], facts["fact"], strict=True):
        mine = rows.loc[rows["employee_id"] == emp, "contribution"]
        if fact == fact:
            assert total(func, mine) == pytest.approx(fact), (emp, text)
    return rows


def test_sum_rows_are_the_won_deals_of_october_with_their_row_numbers():
    rows = _check('sum deals.amount where status = won by manager_id dated closed_at')
    m1 = rows[rows["employee_id"] == "M1"]
    assert list(m1["row"]) == [2, 3]  # deal 4 is September, deal 3 lost
    assert list(m1["contribution"]) == [1000.5, 2000.0]
    assert list(m1["amount"]) == ["1 000,50", "2000"]  # the raw cells as the file has them
    assert {"status", "closed_at", "manager_id"} <= set(rows.columns)


def test_count_rows_count_one_each():
    rows = _check('count deals where status = won by manager_id dated closed_at')
    assert set(rows["contribution"]) == {1.0}
    assert sorted(rows["row"]) == [2, 3, 6]


def test_nps_rows_carry_the_answer_class():
    rows = _check('nps surveys.score by manager_id dated answered_at')
    m1 = rows[rows["employee_id"] == "M1"]
    assert list(m1["contribution"]) == [1.0, 1.0, 0.0, -1.0]


def test_mean_hours_rows_give_the_hours():
    rows = _check('mean hours requests.created to answered by handler dated created')
    s1 = rows[rows["employee_id"] == "S1"]
    assert list(s1["contribution"]) == [2.0, 0.5, 0.25, 0.75]


def test_cyrillic_columns():
    t = table("bitrix", [
        ["Ответственный", "Сумма", "Стадия сделки", "Дата закрытия"],
        ["Анна", "150 000,00", "Сделка успешна", "03.10.2026"],
        ["Анна", "10", "Сделка провалена", "04.10.2026"],
        ["Олег", "20 000", "Сделка успешна", "05.10.2026"],
    ])
    rows = _check('sum bitrix.Сумма where "Стадия сделки" = "Сделка успешна" by Ответственный '
                  'dated "Дата закрытия"', tables={"bitrix": t})
    assert list(rows["row"]) == [2, 4]
    assert list(rows["Сумма"]) == ["150 000,00", "20 000"]


def test_distinct_counts_the_first_row_of_each_value_once():
    rows = _check('distinct deals.client_id by manager_id dated closed_at')
    m1 = rows[rows["employee_id"] == "M1"]
    assert list(m1["row"]) == [2, 3, 4]  # c1, c1 again, c2
    assert list(m1["contribution"]) == [1.0, 0.0, 1.0]


def test_team_rows_name_the_member_whose_row_it_is():
    teams = build_teams(pd.DataFrame({"employee_id": ["M1", "M2", "M3"], "name": ["Head", "Two", "Three"],
                                      "manager": [None, "M1", "M1"]}))
    rows = _check('sum deals.amount where status = won by manager_id dated closed_at for team', teams=teams)
    head = rows[rows["employee_id"] == "M1"]
    assert list(head["row"]) == [2, 3, 6]
    assert list(head["member"]) == ["M1", "M1", "M2"]  # M2's won deal counts for the head too
    two = rows[rows["employee_id"] == "M2"]
    assert list(two["member"]) == ["M2"]


def test_converted_amounts_and_the_currency_column():
    t = table("sales", [
        ["manager_id", "amount", "Валюта", "closed_at"],
        ["M1", "100", "$", "03.10.2026"],
        ["M1", "1 000", "руб", "04.10.2026"],
    ])
    rates = Rates("RUB", {"USD": pd.DataFrame({"date": pd.Series([pd.NaT], dtype="datetime64[ns]"), "rate": [90.0]})})
    rows = _check("sum sales.amount by manager_id dated closed_at", tables={"sales": t}, rates=rates)
    assert list(rows["contribution"]) == [9000.0, 1000.0]
    assert list(rows["Валюта"]) == ["$", "руб"]  # the converted amount is shown next to its currency
    assert list(rows["amount"]) == ["100", "1 000"]


def test_a_raw_column_named_like_a_leading_column_is_kept_apart():
    t = table("calls", [["employee_id", "row"], ["E1", "x"], ["E2", "y"], ["E1", "z"]])
    rows = _check("count calls", period=None, tables={"calls": t})
    assert list(rows["employee_id"]) == ["E1", "E1", "E2"] and list(rows["row"]) == [2, 4, 3]
    assert list(rows["employee_id (file)"]) == ["E1", "E1", "E2"]


def test_a_csv_export_kept_in_arrow_is_not_turned_into_a_frame(tmp_path):
    from xl_kpi.inputs.tables import ArrowTable, read_tables

    path = tmp_path / "bitrix.csv"
    path.write_text("Ответственный;Сумма;Дата закрытия\nАнна;150 000,00;03.10.2026\nОлег;10;04.10.2026\n"
                    "Анна;5;05.10.2026\n", encoding="utf-8")
    (t,) = read_tables(path)
    assert isinstance(t, ArrowTable) and t.data is not None
    rows = _check('sum bitrix.Сумма by Ответственный dated "Дата закрытия"', tables={"bitrix": t})
    assert list(rows["row"]) == [2, 4, 3] and list(rows["Сумма"]) == ["150 000,00", "5", "10"]
    assert t._frame is None  # only the used cells of the listed rows were taken from Arrow


def test_raw_cells_of_a_csv_export_are_the_cells_of_those_rows():
    """The drill rows of a CSV export (kept in Arrow) carry the raw cells of exactly their rows."""
    from xl_kpi.inputs.facts import load_facts
    from xl_kpi.inputs.plan import read_plan, sample_inputs
    from xl_kpi.inputs.tables import read_tables

    plan, data = sample_inputs()
    facts = load_facts(read_plan(plan), data)
    deals = next(p for p in data if p.stem == "deals")
    frame = read_tables(deals)[0].frame
    rows = facts.rows["revenue"].terms[0].frame
    assert len(rows) > 20
    for header in ("amount", "closed_at", "manager_id"):
        key = next(c for c in rows.columns if c.endswith(header) and c != "employee_id")
        assert list(rows[key]) == list(frame.loc[rows["row"], header]), header
