"""Messages in Russian and English: every marked message has a Russian translation with the same
placeholders, the shipped .mo is the compiled .po, problems render in the reader's language."""

from __future__ import annotations

import ast
import gettext
import importlib.util
import pickle
import string
from pathlib import Path

import pytest

from xl_kpi import i18n
from xl_kpi.i18n import Msg, Plural, resolve, system_language, tr, using
from xl_kpi.inputs.problems import InputError, Problem, Problems

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "xl_kpi"
MARKERS = {"tr": 1, "Msg": 1, "KpiText": 1, "N_": 1, "ntr": 2, "Plural": 2}


def _tool():
    pytest.importorskip("babel")
    spec = importlib.util.spec_from_file_location("i18n_tool", ROOT / "scripts" / "i18n.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def marked_messages() -> list[tuple[str, int, tuple[str, ...]]]:
    """(file, line, msgid[, plural]) of every tr/ntr/Msg/Plural call in the package, found in the syntax tree
    (so a call inside an f-string, which an extractor may miss, counts too). A msgid that is not a literal
    string cannot be translated: it is reported as ('<not a literal>',)."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in MARKERS:
                continue
            args = node.args[:MARKERS[name]]
            if path in (PACKAGE / "i18n.py", PACKAGE / "engine" / "errors.py") and not all(
                    isinstance(a, ast.Constant) for a in args):
                continue  # the mechanism itself passes its msgid on
            ids = tuple(a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else "<not a literal>"
                        for a in args)
            out.append((str(path.relative_to(ROOT)), node.lineno, ids))
    return out


def _fields(text: str) -> set[tuple[str, str]]:
    return {(name, spec or "") for _, name, spec, _ in string.Formatter().parse(text) if name is not None}


def _sample(spec: str) -> object:
    """A value the English message's format spec accepts (a date for %d.%m.%Y, a number for .2f)."""
    import datetime as dt

    for value in ("x", 1, 1.5, dt.date(2026, 10, 1)):
        try:
            format(value, spec)
            return value
        except (ValueError, TypeError):
            continue
    raise AssertionError(f"no value formats with {spec!r}")


def test_every_message_has_a_russian_translation_with_the_same_placeholders():
    catalog = _tool().read()
    found = marked_messages()
    assert len(found) > 20
    problems = []
    for file, line, ids in found:
        if "<not a literal>" in ids:
            problems.append(f"{file}:{line}: the message is not a literal string, it cannot be translated")
            continue
        entry = catalog.get(ids[0])
        strings = () if entry is None else (entry.string if isinstance(entry.string, tuple) else (entry.string,))
        if entry is None or not all(strings) or entry.fuzzy:
            problems.append(f"{file}:{line}: no Russian translation of {ids[0]!r} (run scripts/i18n.py, "
                            "then translate it in xl_kpi/locale/ru/LC_MESSAGES/xl_kpi.po)")
            continue
        want = set().union(*(_fields(i) for i in ids))
        for s in strings:
            if _fields(s) - want or (len(ids) == 1 and _fields(s) != want):
                problems.append(f"{file}:{line}: the translation {s!r} has other placeholders than {ids[0]!r}")
            try:
                s.format(**{name: _sample(spec) for name, spec in _fields(s)})
            except (ValueError, KeyError, IndexError) as e:
                problems.append(f"{file}:{line}: {s!r} does not format: {e}")
    assert not problems, "\n".join(problems)


def test_the_catalog_has_no_stale_or_missing_entries():
    """The .po holds exactly what scripts/i18n.py extracts (run it after changing a message)."""
    tool = _tool()
    want = {m.id if isinstance(m.id, str) else m.id[0] for m in tool.extract() if m.id}
    have = {m.id if isinstance(m.id, str) else m.id[0] for m in tool.read() if m.id}
    assert want - have == set(), "not in the .po: run scripts/i18n.py"
    assert have - want == set(), "no longer in the code: run scripts/i18n.py"
    ast_ids = {ids[0] for _, _, ids in marked_messages()}
    assert ast_ids <= want, f"marked but not extracted (inside an f-string?): {sorted(ast_ids - want)}"


def test_the_shipped_mo_is_the_compiled_po():
    tool = _tool()
    assert tool.MO.read_bytes() == tool.mo_bytes(tool.read()), "run scripts/i18n.py to compile the .mo"
    ru = gettext.GNUTranslations(tool.MO.open("rb"))
    assert ru.gettext("error") == "ошибка"


@pytest.mark.parametrize(("n", "text"), [(1, "1 ошибка"), (2, "2 ошибки"), (4, "4 ошибки"), (5, "5 ошибок"),
                                         (11, "11 ошибок"), (21, "21 ошибка"), (22, "22 ошибки"), (0, "0 ошибок")])
def test_russian_plural_forms(n, text):
    assert Plural("{n} error", "{n} errors", n).render("ru") == text
    assert Plural("{n} error", "{n} errors", n).render("en") == f"{n} error{'' if n == 1 else 's'}"


def test_a_problem_is_rendered_in_the_language_of_its_reader():
    p = Problem("error", Msg("employee {id}", id="E7"), Msg("infinite"), file="plan.xlsx", sheet="Plan", row=7,
                column="E", header="weight")
    assert p.message == "employee E7" and p.fix == "infinite"  # the English text stays the attribute
    assert str(p) == "error: plan.xlsx, sheet Plan, row 7, column E (weight): employee E7. Fix: infinite"
    assert p.render("ru") == ("ошибка: plan.xlsx, лист Plan, строка 7, столбец E (weight): сотрудник E7. "
                              "Как исправить: бесконечно")
    with using("ru"):
        assert str(p) == p.render("ru")
    assert str(p).startswith("error:")  # restored after the block
    assert pickle.loads(pickle.dumps(p)).render("ru") == p.render("ru")  # worker processes
    assert p == Problem("error", "employee E7", "infinite", file="plan.xlsx", sheet="Plan", row=7, column="E",
                        header="weight")


def test_nested_messages_and_exceptions_render_in_the_same_language():
    inner = ValueError(Msg("infinite"))
    assert Msg("missing fact: {who}, KPI {kpi}", who=Msg("employee {id}", id="E1"), kpi=inner).render("ru") == (
        "нет факта: сотрудник E1, KPI бесконечно")
    assert Msg("fact {fact:.6g} for {who}, KPI {kpi} is far outside base..norm ({base:.6g}..{norm:.6g}): "
               "score {score}", fact=1234567.0, who="x", kpi="K", base=1, norm=2, score="5%").render("en") == (
        "fact 1.23457e+06 for x, KPI K is far outside base..norm (1..2): score 5%")


def test_problems_summary_and_input_error_in_both_languages():
    problems = Problems()
    for i in range(5):
        problems.error(Msg("employee {id}", id=f"E{i}"))
    problems.warning("plain text stays as it is")
    assert problems.summary() == "5 errors, 1 warning"
    assert problems.summary("ru") == "5 ошибок, 1 предупреждение"
    e = InputError(problems)
    assert str(e).startswith("5 input errors: error: employee E0")
    assert e.render("ru").startswith("5 ошибок во входных данных: ошибка: сотрудник E0")
    with using("ru"):
        assert str(e) == e.render("ru")


def test_cells_summary_line_is_a_plural():
    class T:
        file, sheet, letters = "f.csv", "S", {"x": "B"}

        def at(self, row, column=None):
            return {"file": self.file, "sheet": self.sheet, "row": row, "column": "B", "header": column}

    problems = Problems()
    problems.cells("error", T(), list(range(2, 9)), "x", Msg("infinite"), limit=5)
    last = list(problems)[-1]
    assert last.message == "2 more rows with the same problem (rows 7–8)"
    assert last.message_in("ru") == "ещё 2 строки с той же проблемой (строки 7–8)"


@pytest.mark.parametrize(("env", "lang"), [
    ({"LANG": "ru_RU.UTF-8"}, "ru"), ({"LANG": "en_US.UTF-8"}, "en"), ({}, "en"), ({"LANG": "C.UTF-8"}, "en"),
    ({"LC_ALL": "ru_RU.UTF-8", "LANG": "en_US.UTF-8"}, "ru"), ({"LC_ALL": "C", "LANG": "ru_RU.UTF-8"}, "en"),
    ({"LC_MESSAGES": "ru_RU", "LANG": "en_GB"}, "ru"),
])
def test_system_language(env, lang):
    assert system_language(env) == lang


def test_resolution_order_flag_plan_locale():
    ru, en = {"LANG": "ru_RU.UTF-8"}, {"LANG": "en_US.UTF-8"}
    assert resolve("en", "ru", ru) == "en"
    assert resolve(None, "en", ru) == "en"
    assert resolve(None, None, ru) == "ru"
    assert resolve(None, None, en) == "en"
    assert resolve("ru", None, en) == "ru"


def test_tr_uses_the_current_language_and_unknown_languages_fall_back_to_english():
    assert tr("row {row}", row=3) == "row 3"
    with using("ru"):
        assert tr("row {row}", row=3) == "строка 3"
        i18n.set_language("de")
        assert tr("row {row}", row=3) == "row 3"
    assert i18n.current() == "en"


# ------------------------------------------------------------------------------------------- CLI


def _broken_plan(tmp_path: Path, language: str | None = None) -> tuple[Path, Path]:
    """A plan with an unknown setting and a missing fact, and a facts file with a far-off fact."""
    from tests import _plan_helpers as ph

    sheets = ph.plan_sheets()
    sheets["Settings"].append(["colour", "red"])
    if language:
        sheets["Settings"].append(["language", language])
    plan = ph.make_plan(tmp_path, sheets)
    facts = ph.make_facts(tmp_path, {("E1", "deals"): ..., ("E2", "deals"): 1600})
    return plan, facts


def _validate(plan: Path, facts: Path, *args: str, env: dict[str, str] | None = None):
    from typer.testing import CliRunner

    from xl_kpi.cli import app

    env = {"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8", **(env or {})}
    return CliRunner().invoke(app, ["validate", "--plan", str(plan), "--data", str(facts), *args], env=env)


RUSSIAN = ("неизвестная настройка «colour»", "нет факта: сотрудник E1 (Иванов Иван), KPI deals",
           "лист Employees, строка 2, столбец A (employee_id)", "как исправить:", "1 ошибка, 2 предупреждения")
ENGLISH = ('unknown setting "colour"', "missing fact: employee E1 (Иванов Иван), KPI deals",
           "sheet Employees, row 2, column A (employee_id)", "fix:", "1 error, 2 warnings")


@pytest.mark.parametrize(("args", "env", "plan_lang", "want"), [
    (("--lang", "ru"), {}, None, RUSSIAN),
    ((), {"LANG": "ru_RU.UTF-8"}, None, RUSSIAN),
    ((), {}, "ru", RUSSIAN),
    ((), {}, None, ENGLISH),
    (("--lang", "en"), {"LANG": "ru_RU.UTF-8"}, "ru", ENGLISH),
    ((), {"LANG": "ru_RU.UTF-8"}, "en", ENGLISH),
])
def test_validate_speaks_the_language_of_flag_then_plan_then_locale(tmp_path, args, env, plan_lang, want):
    plan, facts = _broken_plan(tmp_path, plan_lang)
    res = _validate(plan, facts, *args, env=env)
    assert res.exit_code == 1, res.output
    out = " ".join(res.output.split())
    for part in want:
        assert part in out, (part, res.output)
    other = ENGLISH if want is RUSSIAN else RUSSIAN
    assert not any(part in out for part in other[:3]), res.output
    assert i18n.current() == "en"  # nothing leaks into the next command


def test_every_command_takes_lang():
    from typer.testing import CliRunner

    from xl_kpi.cli import app

    for command in ("validate", "generate", "verify", "distribute", "demo"):
        res = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert "--lang" in res.output, command
    bad = CliRunner().invoke(app, ["demo", "--lang", "de"])
    assert bad.exit_code == 2 and "use en or ru" in bad.output


@pytest.mark.parametrize(("args", "env", "russian"), [
    (("--lang", "ru"), {}, True), ((), {"LANG": "ru_RU.UTF-8"}, True), ((), {}, False),
])
def test_generate_writes_errors_csv_and_its_report_in_the_language_of_the_run(tmp_path, args, env, russian):
    """errors.csv says why in the run's language; verify (on an English machine) recomputes it the same."""
    import csv

    from typer.testing import CliRunner

    from tests import _plan_helpers as ph
    from xl_kpi.cli import app

    plan = ph.make_plan(tmp_path)
    facts = ph.make_facts(tmp_path, {("E1", "deals"): ...})
    out = tmp_path / "out"
    base = {"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8"}
    res = CliRunner().invoke(app, ["generate", "--plan", str(plan), "--data", str(facts), "--out", str(out),
                                   "--skip-invalid", *args], env={**base, **env})
    assert res.exit_code == 0, res.output
    with (out / "errors.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [r["employee_id"] for r in rows] == ["E1"]
    want = "нет факта по KPI deals" if russian else "no fact for KPI deals"
    assert want in rows[0]["reason"], rows
    text = " ".join(res.output.split())
    assert ("сформировано 2 карточки, 1 сотрудник без карточки (см. errors.csv)" in text) == russian, res.output
    assert ("2 cards written, 1 employee not carded (see errors.csv)" in text) != russian, res.output
    check = CliRunner().invoke(app, ["verify", str(out)], env=base)
    assert check.exit_code == 0, check.output


def test_validate_shows_unreadable_cells_in_russian(tmp_path):
    """A bad number in the facts file and a bad date in the plan: the cell messages, made deep in
    inputs/cells.py, speak the run's language; English stays as it was."""
    from tests import _plan_helpers as ph

    sheets = ph.plan_sheets()
    sheets["Employees"][0] = [*sheets["Employees"][0], "hired"]
    for row, hired in zip(sheets["Employees"][1:], ("31/10/2026", "5/3/2026", None), strict=True):
        row.append(hired)
    plan = ph.make_plan(tmp_path, sheets)
    facts = ph.make_facts(tmp_path, {("E1", "deals"): "много", ("E2", "deals"): "1,234"})
    ru = " ".join(_validate(plan, facts, "--lang", "ru").output.split())
    en = " ".join(_validate(plan, facts).output.split())
    for part in ("факт не число: «много» — не число; запишите его как 1234.5, 1234,5 или 1 234,5",
                 "«1,234» читается двояко: 1234 (запятая разделяет тысячи) или 1.234",
                 "«31/10/2026»: даты через косую черту не принимаются",
                 "«5/3/2026» читается двояко: 5 марта или 3 мая?"):
        assert part in ru, (part, ru)
    for part in ('the fact is not a number: "много" is not a number; write it as 1234.5, 1234,5 or 1 234,5',
                 '"1,234" is ambiguous: 1234 (a thousands comma) or 1.234',
                 '"31/10/2026": dates with slashes are not accepted',
                 '"5/3/2026" is ambiguous: 5 March or 3 May?'):
        assert part in en, (part, en)
    assert "is not a number" not in ru and "not accepted" not in ru, ru


def test_a_cell_message_is_english_text_that_remembers_its_msg():
    """to_numbers/to_dates give str messages (tests and pandas see English), rendered later in Russian,
    also after a trip to a worker process."""
    import pandas as pd

    from xl_kpi.i18n import English, render
    from xl_kpi.inputs.cells import to_dates, to_numbers

    errs = to_numbers(pd.Series(["abc", "1"], dtype=object))[1]
    assert errs[0] == '"abc" is not a number; write it as 1234.5, 1234,5 or 1 234,5' and pd.isna(errs[1])
    back = pickle.loads(pickle.dumps(errs[0]))
    assert isinstance(back, English) and back == errs[0]
    assert render(back, "ru") == "«abc» — не число; запишите его как 1234.5, 1234,5 или 1 234,5"
    date = to_dates(pd.Series(["31.02.2026"], dtype=object))[1][0]
    assert Problem("error", date).render("ru").endswith("«31.02.2026» — не дата; записывайте даты как 31.10.2026 "
                                                        "или 2026-10-31 (можно со временем: 31.10.2026 14:05)")


def test_manager_matching_notes_in_both_languages():
    from xl_kpi.i18n import render
    from xl_kpi.inputs.identity import resolve_managers

    res = resolve_managers(["E1", "E2", "E3"], ["Анна", "Анна", "Пётр"], ["Анна", "e9", "e1 "])
    assert res["Анна"].why == "manager 'Анна' matches several employees (E1, E2): write the manager's employee_id " \
                              "in the manager column"
    assert render(res["Анна"].why, "ru") == ("руководителю 'Анна' соответствуют несколько сотрудников (E1, E2): "
                                             "укажите в столбце manager employee_id руководителя")
    assert render(res["e1"].what, "ru") == ("руководителя 'e1' нет среди сотрудников плана (employee_id \"E1\" "
                                            "отличается только регистром или пробелами: id сравниваются точно)")


def test_engine_period_errors_reach_the_reader_in_russian(tmp_path):
    """The engine raises KpiText (English, no i18n import); the facts file's period cell shows it in Russian."""
    from xl_kpi.engine.errors import KpiText
    from xl_kpi.engine.period import Period, PeriodError

    with pytest.raises(PeriodError) as e:
        Period.parse("2026-13")
    assert isinstance(e.value.args[0], KpiText) and str(e.value).startswith('"2026-13" is not a period: there is no '
                                                                             "month 13; write a month (2026-10")
    assert pickle.loads(pickle.dumps(e.value.args[0])).params == e.value.args[0].params
    from tests import _plan_helpers as ph

    plan = ph.make_plan(tmp_path)
    facts = ph.write_csv(tmp_path / "facts.csv", [["employee_id", "kpi_id", "fact", "period"],
                                                  ["E1", "deals", 160, "2026-13"]])
    ru = " ".join(_validate(plan, facts, "--lang", "ru").output.split())
    assert "«2026-13» — не период: месяца 13 не бывает; укажите месяц (2026-10 или 10.2026)" in ru, ru
    en = " ".join(_validate(plan, facts).output.split())
    assert '"2026-13" is not a period: there is no month 13; write a month (2026-10 or 10.2026)' in en, en

