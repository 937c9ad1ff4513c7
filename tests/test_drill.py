"""Drill-down (issue 13 §1): the rows behind a derived fact add up to the fact, per employee."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.test_sources import TABLES, table
from xl_kpi.inputs.sources import Evaluator, parse
from xl_kpi.inputs.sources.drill import explain


def _check(text: str, period: str | None = "2026-10", tables=TABLES) -> pd.DataFrame:
    ev = Evaluator(tables)
    facts = ev.evaluate(text, period=__import__("xl_kpi.engine.period", fromlist=["period_of"]).period_of(period))
    src = parse(text)
    rows = explain(ev, src.numerator, period)
    func = src.numerator.func
    for emp, fact in zip(facts["employee_id"], facts["fact"], strict=True):
        mine = rows.loc[rows["employee_id"] == emp, "contribution"]
        if func in ("sum", "count"):
            total = mine.sum()
        elif func == "mean":
            total = mine.mean()
        elif func == "nps":
            total = 100.0 * mine.sum() / len(mine)
        else:
            continue
        assert total == pytest.approx(fact), (emp, text)
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
