"""Period: one value type for a month, quarter, half-year, year or range — parsing, bounds, labels,
neighbours, proration days — and its use end to end (--period 2026-Q4, a facts file for «4 кв. 2026»,
cards, summary and mail naming the period in their language)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests import _plan_helpers as ph
from xl_kpi import batch
from xl_kpi.cli import app
from xl_kpi.delivery.mail import Delivery, build_message
from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.money import round_money
from xl_kpi.engine.period import ACCEPTED_FORMS, PERIOD_YEARS, Period, PeriodError
from xl_kpi.inputs.plan import proration
from xl_kpi.inputs.sources import evaluate
from xl_kpi.inputs.tables import Table

FAST = settings(max_examples=300, deadline=None)

years = st.integers(1901, 2199)
days_in_range = st.dates(dt.date(1900, 1, 1), dt.date(2200, 12, 31))


@st.composite
def periods(draw: st.DrawFn) -> Period:
    kind = draw(st.sampled_from(["month", "quarter", "half", "year", "range"]))
    y = draw(years)
    if kind == "month":
        return Period.month(y, draw(st.integers(1, 12)))
    if kind == "quarter":
        return Period.quarter(y, draw(st.integers(1, 4)))
    if kind == "half":
        return Period.half(y, draw(st.integers(1, 2)))
    if kind == "year":
        return Period.year(y)
    a = draw(st.dates(dt.date(1902, 1, 1), dt.date(2198, 6, 30)))  # its neighbours lie in 1900–2200 too
    return Period.range(a, a + dt.timedelta(days=draw(st.integers(0, 400))))


# ------------------------------------------------------------------------------------ the type


@pytest.mark.parametrize("text, key", [
    ("2026-10", "2026-10"), ("10.2026", "2026-10"), ("10/2026", "2026-10"), ("2026.10", "2026-10"),
    ("октябрь 2026", "2026-10"), ("October 2026", "2026-10"), ("Oct 2026", "2026-10"), ("2026-10-15", "2026-10"),
    ("15.10.2026", "2026-10"), (dt.date(2026, 10, 5), "2026-10"), (pd.Timestamp("2026-10-31 18:00"), "2026-10"),
    (10.2026, "2026-10"),  # an Excel number cell typed as 10.2026
    ("2026-Q4", "2026-Q4"), ("Q4 2026", "2026-Q4"), ("4 кв. 2026", "2026-Q4"), ("4 кв 2026", "2026-Q4"),
    ("IV квартал 2026", "2026-Q4"), ("4-й квартал 2026 г.", "2026-Q4"), ("2026 Q4", "2026-Q4"), ("q1 2027", "2027-Q1"),
    ("2026-H2", "2026-H2"), ("H2 2026", "2026-H2"), ("2 полугодие 2026", "2026-H2"), ("II полугодие 2026", "2026-H2"),
    ("1 полугодие 2026", "2026-H1"),
    ("2026", "2026"), (2026, "2026"), (2026.0, "2026"), ("2026 год", "2026"), ("2026 г.", "2026"),
    ("2026-10-01..2026-12-15", "2026-10-01..2026-12-15"), ("01.10.2026 – 15.12.2026", "2026-10-01..2026-12-15"),
    ("1 Oct 2026 – 15 Dec 2026", "2026-10-01..2026-12-15"), ("2026-10-01 .. 2026-12-15", "2026-10-01..2026-12-15"),
    # a range covering exactly a calendar period is that period
    ("2026-10-01..2026-12-31", "2026-Q4"), ("2026-10-01..2026-10-31", "2026-10"), ("2026-01-01..2026-12-31", "2026"),
])
def test_accepted_forms(text, key):
    assert Period.parse(text).key == key


def test_bounds_days_kind_and_labels_of_each_kind():
    table = [
        ("2026-10", "month", (2026, 10, 1), (2026, 10, 31), 31, "октябрь 2026", "October 2026", "октябре 2026"),
        ("2026-Q4", "quarter", (2026, 10, 1), (2026, 12, 31), 92, "IV квартал 2026", "Q4 2026", "IV квартале 2026"),
        ("2026-H2", "half", (2026, 7, 1), (2026, 12, 31), 184, "2 полугодие 2026", "H2 2026", "2 полугодии 2026"),
        ("2026", "year", (2026, 1, 1), (2026, 12, 31), 365, "2026 год", "2026", "2026 году"),
        ("2028-02", "month", (2028, 2, 1), (2028, 2, 29), 29, "февраль 2028", "February 2028", "феврале 2028"),
        ("2026-10-01..2027-01-15", "range", (2026, 10, 1), (2027, 1, 15), 107, "01.10.2026 – 15.01.2027",
         "1 Oct 2026 – 15 Jan 2027", "период 01.10.2026 – 15.01.2027"),
    ]
    for key, kind, start, end, days, ru, en, ru_in in table:
        p = Period.parse(key)
        assert (p.kind, p.start, p.end, p.days) == (kind, dt.date(*start), dt.date(*end), days)
        assert (p.label("ru"), p.label("en"), p.label("ru", case="prepositional")) == (ru, en, ru_in)
        assert p.label("en", case="prepositional") == en and p.label("fr") == en  # English has one form
        assert str(p) == p.key == key


@pytest.mark.parametrize("text, why", [
    ("2026-13", "there is no month 13"), ("2026-Q5", "there is no quarter 5"), ("3 полугодие 2026", "no half-year 3"),
    ("October", "is not a period"), ("x", "is not a period"), ("", "the period is empty"),
    ("2026-12-31..2026-10-01", "it ends before it starts"), ("2026-02-30..2026-03-31", "is not a date"),
    ("9999-12", "not a plausible period"), ("1899", "not a plausible period"), (True, "is not a period"),
    (pd.NaT, "the period is empty"), (None, "the period is empty"),
])
def test_bad_text_is_a_kpi_error_that_lists_the_accepted_forms(text, why):
    with pytest.raises(PeriodError, match=why) as e:
        Period.parse(text)
    assert isinstance(e.value, KpiError) and ACCEPTED_FORMS in str(e.value)


@FAST
@given(st.text(max_size=40) | st.from_regex(r"\A[0-9IVQHqh .\-/–кв]{1,24}\Z") | st.integers() | st.floats()
       | st.dates() | st.datetimes() | st.none())
def test_any_value_gives_a_period_or_a_period_error(value):
    try:
        p = Period.parse(value)
    except PeriodError as e:
        assert "write a month" in str(e)
    else:
        assert Period.parse(p.key) == p and PERIOD_YEARS[0] <= p.start.year <= p.end.year <= PERIOD_YEARS[1]


@FAST
@given(periods())
def test_key_and_labels_parse_back_to_the_same_period(p):
    assert Period.parse(p.key) == p and Period.parse(p.key).key == p.key
    for lang in ("ru", "en"):
        for case in ("nominative", "prepositional"):
            assert Period.parse(p.label(lang, case)) == p, (p, lang, case, p.label(lang, case))


@FAST
@given(periods())
def test_next_and_previous_are_inverse_and_adjacent(p):
    assert p.next().previous() == p and p.previous().next() == p
    assert p.next().kind == p.kind and p.previous().kind == p.kind
    assert p.next().start == p.end + dt.timedelta(days=1)
    assert p.previous().end == p.start - dt.timedelta(days=1)


@FAST
@given(years, st.integers(1, 4))
def test_a_quarter_is_its_three_months(y, q):
    quarter = Period.quarter(y, q)
    months = [Period.month(y, 3 * q - 2 + i) for i in range(3)]
    assert quarter.months() == months
    assert sum(m.days for m in months) == quarter.days
    assert Period.half(y, (q + 1) // 2).days == sum(Period.quarter(y, i).days for i in (2 * ((q + 1) // 2) - 1,
                                                                                         2 * ((q + 1) // 2)))
    assert sum(Period.month(y, m).days for m in range(1, 13)) == Period.year(y).days


@FAST
@given(periods(), st.none() | days_in_range, st.none() | days_in_range)
def test_overlap_days_count_the_days_one_by_one(p, hired, left):
    day, inside = p.start - dt.timedelta(days=3), 0
    while day <= p.end + dt.timedelta(days=3):
        if (hired is None or day >= hired) and (left is None or day <= left):
            inside += p.contains(day)
        day += dt.timedelta(days=1)
    assert p.overlap_days(hired, left) == inside
    got = p.overlap_days(pd.Series([pd.Timestamp(hired) if hired else pd.NaT]),
                         pd.Series([pd.Timestamp(left) if left else pd.NaT]))
    assert got.tolist() == [inside]


def test_contains_takes_dates_times_and_columns():
    q4 = Period.parse("2026-Q4")
    assert q4.contains(dt.date(2026, 10, 1)) and q4.contains(pd.Timestamp("2026-12-31 23:59"))
    assert not q4.contains(dt.date(2026, 9, 30)) and not q4.contains(None) and not q4.contains(pd.NaT)
    col = pd.Series(pd.to_datetime(["2026-09-30 23:59", "2026-10-01 00:00", None, "2027-01-01 00:00"]),
                    index=[5, 6, 7, 8])
    assert q4.contains(col).to_dict() == {5: False, 6: True, 7: False, 8: False}


def test_proration_counts_the_days_inside_a_quarter():
    emp = pd.DataFrame({"hired": pd.to_datetime(["2026-11-15", None, "2026-01-01"]),
                        "left": pd.to_datetime([None, "2026-10-31", "2026-12-31"])})
    assert proration(emp, "2026-Q4").tolist() == [47 / 92, 31 / 92, 1.0]
    assert proration(emp, Period.parse("2026-10")).tolist() == [0.0, 1.0, 1.0]


def test_dated_source_keeps_the_rows_inside_a_range():
    rows = [["E1", "2026-10-14", 1], ["E1", "2026-10-15 09:00", 2], ["E1", "2026-10-31", 4],
            ["E1", "2026-11-01", 8], ["E2", "2026-10-20", 16]]
    frame = pd.DataFrame(rows, columns=["employee_id", "closed_at", "amount"], dtype=object)
    frame.index = pd.RangeIndex(2, 2 + len(frame))
    t = Table("deals", "deals.csv", frame, {"employee_id": "A", "closed_at": "B", "amount": "C"})
    got = evaluate("sum deals.amount dated closed_at", {"deals": t}, period="2026-10-15..2026-10-31")
    assert dict(zip(got["employee_id"], got["fact"], strict=True)) == {"E1": 6.0, "E2": 16.0}
    assert set(got["period"]) == {"2026-10-15..2026-10-31"}


# ------------------------------------------------------------------------------ end to end


def _quarter_inputs(tmp_path: Path, language: str = "en") -> tuple[Path, Path, Path]:
    """A plan whose 'deals' KPI counts dated raw rows, E1 hired mid-quarter, and a facts file for the quarter."""
    sheets = ph.plan_sheets()
    sheets["Employees"][0].append("hired")
    sheets["Employees"][1].append(dt.date(2026, 11, 15))  # E1: 47 of Q4's 92 days
    sheets["KPIs"][1][3] = "count deals dated closed_at"
    sheets["Settings"] = [["setting", "value"], ["period", "2026-10"], ["language", language],
                          ["company", "Ромашка"]]
    plan = ph.make_plan(tmp_path, sheets)
    deals = ph.write_csv(tmp_path / "deals.csv", [
        ["employee_id", "closed_at"],
        ["E1", "30.09.2026"],        # before the quarter
        ["E1", "01.10.2026"],        # first day
        ["E1", "15.11.2026"],
        ["E1", "31.12.2026 18:30"],  # last day, in the evening
        ["E1", "01.01.2027"],        # after it
        *[["E2", "20.11.2026"]] * 140,
    ])
    facts = ph.write_csv(tmp_path / "facts.csv", [
        ["employee_id", "kpi_id", "fact", "period"],
        ["E1", "complaints", 4, "4 кв. 2026"],
        ["E2", "complaints", 8, "IV квартал 2026"],
        ["E3", "complaints", 5, "2026-Q4"],
        ["E3", "nps", 35, "Q4 2026"],
        ["E3", "nps", 99, "2026-10"],  # another period: a warning, not used
    ])
    return plan, deals, facts


def test_generate_for_a_quarter_counts_dated_rows_inside_it_and_prorates_by_its_days(tmp_path):
    plan, deals, facts = _quarter_inputs(tmp_path)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["generate", "--plan", str(plan), "--data", str(deals), "--data", str(facts),
                                   "--out", str(out), "--period", "4 кв. 2026"])
    assert res.exit_code == 0, res.output
    assert "period Q4 2026, 2026-Q4" in " ".join(res.output.split())
    audit = json.loads((out / batch.AUDIT).read_text(encoding="utf-8"))
    assert audit["period"] == "2026-Q4"
    assert batch.verify(out) == []

    report = batch.generate(plan, [deals, facts], tmp_path / "again", period="2026-Q4")
    r = report.results
    assert r.period == "2026-Q4"
    lines = r.lines.set_index(["employee_id", "kpi_id"])
    assert lines.loc[("E1", "deals"), "fact"] == 3  # 01.10, 15.11 and 31.12 18:30; not 30.09 or 01.01.2027
    assert lines.loc[("E2", "deals"), "fact"] == 140
    assert lines.loc[("E3", "nps"), "fact"] == 35  # the 2026-10 row is another period
    assert any("another period than 2026-Q4" in p.message for p in report.problems.warnings)
    emp = r.employees.set_index("employee_id")
    assert emp.loc["E1", "proration"] == 47 / 92 and emp.loc["E2", "proration"] == 1.0
    kpi_bonus = round_money(lines.loc["E1", "bonus"].sum(), 2)
    assert kpi_bonus > 0
    assert emp.loc["E1", "bonus"] == round_money(kpi_bonus * 47 / 92, 2)


def test_a_facts_file_period_in_russian_words_selects_the_run_period(tmp_path):
    facts = _quarter_inputs(tmp_path)[2]
    sheets = ph.plan_sheets()
    sheets["Settings"] = [["setting", "value"], ["period", "IV квартал 2026"]]
    plan = ph.make_plan(tmp_path, sheets, name="plain.xlsx")
    ph.write_csv(facts, [
        ["employee_id", "kpi_id", "fact", "период"],
        *[[e, k, v, "4 кв. 2026"] for e, k, v in ph.facts_rows()[1:]],
        ["E1", "deals", 1, "3 кв. 2026"],
    ])
    from xl_kpi.inputs.plan import load_plan
    from xl_kpi.inputs.problems import Problems
    from xl_kpi.validate import inspect

    assert load_plan(plan).settings.period == Period.quarter(2026, 4)
    problems = Problems()
    _, got, problems = inspect(plan, [facts])
    assert got.period.key == "2026-Q4" and not problems.has_errors
    warning = ph.only(problems.warnings, "another period")
    assert "than 2026-Q4 (2026-Q3)" in warning.message and warning.header == "период"
    assert dict(zip(zip(got.values["employee_id"], got.values["kpi_id"], strict=True), got.values["fact"],
                    strict=True))[("E1", "deals")] == 160


@pytest.mark.parametrize("lang, label", [("ru", "IV квартал 2026"), ("en", "Q4 2026")])
def test_cards_summary_and_mail_name_the_quarter_in_their_language(tmp_path, lang, label):
    plan, deals, facts = _quarter_inputs(tmp_path, language=lang)
    out = tmp_path / "out"
    report = batch.generate(plan, [deals, facts], out, period="2026-Q4")
    card = openpyxl.load_workbook(report.cards[0].path)
    assert card.active["G7"].value == label
    summary = openpyxl.load_workbook(out / "summary.xlsx")
    assert summary.properties.title.endswith(label)
    assert label in summary.worksheets[0].oddHeader.center.text
    delivery = Delivery("employee:E1", "e1@x.ru", "Иванов Иван", "employee", (report.cards[0].path,),
                        report.results.period, lang)
    msg = build_message(delivery, "hr@kpi.example.com")
    assert msg["Subject"] == {"ru": "Карта KPI за IV квартал 2026", "en": "KPI card for Q4 2026"}[lang]
    assert label in msg.get_body(("plain",)).get_content()


def test_bad_period_option_is_a_usage_error_listing_the_forms(tmp_path):
    plan, _, facts = _quarter_inputs(tmp_path)
    res = CliRunner().invoke(app, ["validate", "--plan", str(plan), "--data", str(facts), "--period", "2026-Q5"])
    assert res.exit_code == 2
    text = " ".join(res.output.replace("│", " ").split())
    assert "there is no quarter 5" in text and "a half-year (2026-H2" in text, text
