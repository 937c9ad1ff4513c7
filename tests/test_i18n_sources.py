"""The source language's errors, the rarer reader refusals and the engine's errors in Russian: ``validate
--lang ru`` speaks Russian and still names file, sheet, row and column; English stays word for word; a
library caller renders an engine error in Russian with ``i18n.render``."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest

from tests import _plan_helpers as ph
from xl_kpi.i18n import render


def _run(tmp_path: Path, source: str, rows: list[list[object]], *, managers: dict[str, str | None] | None = None,
         lang: str = "ru", env: dict[str, str] | None = None) -> str:
    """``validate`` on the small plan whose KPI deals is ``source`` over deals.csv holding ``rows``."""
    from typer.testing import CliRunner

    from xl_kpi.cli import app

    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", source)
    if managers:
        header = sheets["Employees"][0]
        sheets["Employees"] = [header] + [[e, f"Сотрудник {e}", "Account manager", "Sales", m, f"{e}@x.ru",
                                           50_000, 20_000] for e, m in managers.items()]
    tmp_path.mkdir(parents=True, exist_ok=True)
    plan = ph.make_plan(tmp_path, sheets)
    facts = ph.make_facts(tmp_path, {("E1", "deals"): ..., ("E2", "deals"): ...})
    deals = ph.write_csv(tmp_path / "deals.csv", rows)
    env = {"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8", **(env or {})}
    res = CliRunner().invoke(app, ["validate", "--plan", str(plan), "--data", str(facts), "--data", str(deals),
                                   "--lang", lang], env=env)
    assert res.exit_code in (0, 1), res.output  # 0 when only warnings are found
    return " ".join(res.output.split())


DEALS = [["who", "amount", "Валюта", "won"], ["E1", "10", "USD", "да"], ["E2", "5", "RUB", "может"]]

CASES = {
    "unknown column": (
        "count deals by manager_id", DEALS,
        ("лист KPIs, строка 2, столбец D (source): в таблице deals (deals.csv) нет столбца «manager_id»; "
         "её столбцы: who, amount, Валюта, won", "как исправить: исправьте имя столбца в источнике"),
        ('sheet KPIs, row 2, column D (source): table deals (deals.csv) has no column "manager_id"; its columns '
         "are: who, amount, Валюта, won", "fix: correct the column name in the source")),
    "bad syntax, the place named": (
        "count deals where won = ", DEALS,
        ("лист KPIs, строка 2, столбец D (source): KPI deals: не удаётся разобрать источник: после «count deals "
         "where won =» ожидается значение (число, дата вида 2026-10-31, слово или текст в кавычках), а текст "
         "закончился",),
        ('sheet KPIs, row 2, column D (source): KPI deals: the source cannot be read: expected a value (a number, '
         'a date like 2026-10-31, a word or a quoted text) after "count deals where won =", found the end of the '
         "text",)),
    "a keyword as a name": (
        "count deals by where", DEALS,
        ("после «count deals by» ожидается столбец с сотрудником после «by», а найдено «where» (чтобы "
         "использовать слово «where» как имя, заключите его в кавычки)",),
        ('expected the employee column after "by" after "count deals by", found "where" (to use the word "where" '
         "as a name, put it in quotes)",)),
    "unknown table": (
        "count leads", DEALS,
        ("лист KPIs, строка 2, столбец D (source): источник ссылается на таблицу «leads», но ни один файл данных "
         "или лист так не называется (таблицы: deals, facts)",
         "передайте в --data файл leads.csv или leads.xlsx или исправьте имя в источнике"),
        ('sheet KPIs, row 2, column D (source): the source names table "leads", but no data file or sheet is '
         "called that (tables: deals, facts)",)),
    "mixed currencies without rates": (
        "sum deals.amount by who", DEALS,
        ("deals.csv ✗ ошибка строка 2, столбец C (Валюта): 1 строка файла deals.csv — в USD (столбец Валюта), "
         "но на листе Rates плана нет курса USD к RUB",
         "как исправить: добавьте строку на лист Rates (Курсы): валюта USD"),
        ("deals.csv ✗ error row 2, column C (Валюта): 1 row of deals.csv is in USD (column Валюта), but the "
         "plan's Rates sheet has no rate from USD to RUB",)),
    "yes/no cell": (
        "count deals where won = yes by who", DEALS,
        ("строка 3, столбец D (won): да/нет: «может» — ни да, ни нет",
         "исправьте ячейку в исходных данных (или исключите строку условием «where»)"),
        ('row 3, column D (won): yes/no: "может" is neither yes nor no',)),
    "NPS answer out of range": (
        "nps deals.amount by who", [["who", "amount"], ["E1", "10"], ["E2", "12"]],
        ("строка 3, столбец B (amount): ответ: ответы NPS — целые числа от 0 до 10, а не 12",),
        ("row 3, column B (amount): answer: NPS answers are whole numbers 0–10, not 12",)),
    "rows without an employee": (
        "count deals by who", [["who", "amount"], ["E1", "1"], ["", "2"], ["", "3"]],
        ("в 2 строках файла deals.csv не заполнен столбец who, поэтому они не засчитываются никому "
         "(строки 3–4)",),
        ("2 rows of deals.csv have no who, so they count for nobody (rows 3–4)",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_source_errors_speak_russian_and_still_name_the_place(tmp_path, case):
    source, rows, russian, english = CASES[case]
    ru = _run(tmp_path / "ru", source, rows)
    for part in russian:
        assert part in ru, (part, ru)
    en = _run(tmp_path / "en", source, rows, lang="en")
    for part in english:
        assert part in en, (part, en)
    assert "error" not in ru and "fix:" not in ru, ru


def test_a_cycle_for_team_is_reported_in_russian_at_the_manager_cell(tmp_path):
    ru = _run(tmp_path, "count deals by who for team", [["who"], ["E1"]],
              managers={"E1": "E2", "E2": "E3", "E3": "E1"})
    assert "лист Employees, строка 2, столбец E (manager): цепочка руководителей" in ru, ru
    assert "E1 → E2 → E3 → E1" in ru, ru


def test_a_data_file_beyond_a_limit_is_refused_in_russian(tmp_path):
    ru = _run(tmp_path / "ru", "count deals by who", [["who"], ["E1"], ["E2"]],
              env={"XL_KPI_MAX_SOURCE_CELLS": "2"})
    assert ("ячеек в файле: 3 × 1 (строки × столбцы) = 3, а в одном файле данных их может быть не больше 2" in ru), ru
    assert "если файл правильный, увеличьте предел: задайте переменную окружения XL_KPI_MAX_SOURCE_CELLS=3" in ru, ru
    en = _run(tmp_path / "en", "count deals by who", [["who"], ["E1"], ["E2"]], lang="en",
              env={"XL_KPI_MAX_SOURCE_CELLS": "2"})
    assert "the file has 3 lines × 1 columns = 3 cells, more than the 2 one data file may have" in en, en
    assert "if the file is right, raise the limit: set the environment variable XL_KPI_MAX_SOURCE_CELLS=3" in en, en


def test_the_kind_of_a_zip_is_named_in_russian(tmp_path):
    """A Word document named .xlsx: the zip-kind label, a Msg inside a Msg, is rendered in Russian."""
    from xl_kpi.inputs.problems import Problem
    from xl_kpi.inputs.readers.limits import FileReadError
    from xl_kpi.inputs.readers.workbook import read_workbook

    path = tmp_path / "deals.xlsx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(FileReadError) as e:
        read_workbook(path)
    assert str(e.value) == "deals.xlsx: this is a Word document (.docx), not an .xlsx"
    p = Problem("error", e.value.reason, e.value.fix, file=e.value.file)
    assert p.render("ru") == ("ошибка: deals.xlsx: это документ Word (.docx), а не .xlsx. Как исправить: укажите "
                              "сам файл CSV или Excel (.xlsx)")


@pytest.mark.parametrize(("call", "english", "russian"), [
    (lambda k: k.score(160, 100, 100),
     "norm (100) equals base (100): the KPI has no range to score against",
     "норма (100) равна базе (100): у KPI нет диапазона для расчёта выполнения"),
    (lambda k: k.Scale.steps([(1.0, 1.0), (0.7, 0.9)], name="бонус"),
     "scale 'бонус': thresholds must be sorted ascending, but 70% comes after 100%",
     "шкала 'бонус': пороги должны идти по возрастанию, но 70% стоит после 100%"),
    (lambda k: k.score(True, 100, 150),
     "fact: TRUE/FALSE is not a number", "fact: TRUE/FALSE (ИСТИНА/ЛОЖЬ) — не число"),
    (lambda k: k.engine.metrics.nps([10, 11]),
     "NPS answers must be whole numbers from 0 to 10; got 11",
     "ответы NPS должны быть целыми числами от 0 до 10, а получено 11"),
])
def test_engine_errors_stay_english_and_render_in_russian_for_a_library_caller(call, english, russian):
    import xl_kpi
    import xl_kpi.engine.metrics

    with pytest.raises(xl_kpi.KpiError) as e:
        call(xl_kpi)
    assert str(e.value).startswith(english), str(e.value)
    assert render(e.value, "ru").startswith(russian), render(e.value, "ru")
    back = pickle.loads(pickle.dumps(e.value))
    assert render(back, "ru") == render(e.value, "ru")  # worker processes


def test_a_source_error_raised_to_a_library_caller_renders_in_russian():
    from xl_kpi.inputs.sources import SourceSyntaxError, parse

    with pytest.raises(SourceSyntaxError) as e:
        parse("count deals where amount > big")
    assert str(e.value) == '"amount > big": < and > compare numbers or dates; use = or != for text'
    assert render(e.value, "ru") == "«amount > big»: < и > сравнивают числа или даты; для текста используйте = или !="
    assert e.value.position == len("count deals where amount ")


def test_a_single_bad_cell_keeps_its_message_for_translation():
    """One bad cell among good ones (assigned through a boolean mask) is still English text that remembers its
    Msg: the yes/no, infinity and too-early-date messages reach a Russian reader in Russian."""
    import numpy as np
    import pandas as pd

    from xl_kpi.inputs.cells import to_dates, to_flags_checked, to_numbers

    flag = to_flags_checked(pd.Series(["да", "может"], dtype=object))[1][1]
    assert render(flag, "ru").startswith("«может» — ни да, ни нет"), render(flag, "ru")
    inf = to_numbers(pd.Series([1.0, np.inf]))[1][1]
    assert render(inf, "ru") == "inf (бесконечность) — не число, пригодное для KPI"
    early = to_dates(pd.Series(["01.10.2026", "01.01.0001"], dtype=object))[1][1]
    assert early.startswith('"01.01.0001" is before') and render(early, "ru").startswith("«01.01.0001»"), early


@pytest.mark.parametrize(("lang", "want"), [("ru", "в таблице deals нет строк по этому сотруднику"),
                                            ("en", "no rows in deals for this employee")])
def test_the_note_of_a_fact_without_rows_is_in_the_language_of_errors_csv(tmp_path, lang, want):
    """E2 has no rows for a mean: errors.csv says why in the run's language (the note was English in ru)."""
    from typer.testing import CliRunner

    from xl_kpi.cli import app
    from xl_kpi.outputs.csvsafe import read_rows

    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "mean deals.amount by who")
    plan = ph.make_plan(tmp_path, sheets)
    facts = ph.make_facts(tmp_path, {("E1", "deals"): ..., ("E2", "deals"): ...})
    deals = ph.write_csv(tmp_path / "deals.csv", [["who", "amount"], ["E1", "10"]])
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["generate", "--plan", str(plan), "--data", str(facts), "--data", str(deals),
                                   "--out", str(out), "--skip-invalid", "--lang", lang],
                             env={"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8"})
    assert res.exit_code == 0, res.output
    reasons = {r["employee_id"]: r["reason"] for r in read_rows(out / "errors.csv")}
    assert want in reasons["E2"], reasons
