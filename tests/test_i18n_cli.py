"""The command line's own texts in Russian: --help, click's usage errors, verify's findings; English unchanged."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from xl_kpi import i18n
from xl_kpi.cli import app

EN_MACHINE = {"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8", "COLUMNS": "200"}
RU_MACHINE = {**EN_MACHINE, "LANG": "ru_RU.UTF-8"}


def _run(*args: str, env: dict[str, str] = EN_MACHINE):
    return CliRunner().invoke(app, list(args), env=env)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("args", "env"), [
    (("generate", "--lang", "ru", "--help"), EN_MACHINE),
    (("generate", "--help", "--lang", "ru"), EN_MACHINE),
    (("generate", "--help"), RU_MACHINE),
])
def test_generate_help_in_russian(args, env):
    """--lang anywhere in the command line, else the system locale, chooses the language of --help."""
    res = _run(*args, env=env)
    assert res.exit_code == 0, res.output
    text = _flat(res.output)
    for part in ("Запуск: xl-kpi generate", "Записать в OUT карточку KPI для каждого сотрудника, книгу сводки и "
                 "манифест.", "Аргументы", "Параметры", "Книга плана (.xlsx). [обязательно]",
                 "Папка результатов. [по умолчанию: kpi-out]", "Показать эту справку и выйти."):
        assert part in text, (part, res.output)
    assert "The plan workbook" not in text and "Options" not in text and "[required]" not in text, res.output
    assert i18n.current() == "en"


def test_help_of_every_command_and_of_the_group_in_russian():
    top = _flat(_run("--help", env=RU_MACHINE).output)  # the group has no --lang: the system locale
    assert "Команды" in top and "Собрать карточки в пакеты по сотрудникам" in top, top
    for command, part in (("validate", "Проверить план и файлы данных"), ("verify", "Проверить папку результатов"),
                          ("demo", "демонстрационной компании"), ("distribute", "Один .zip на пакет вместо папки.")):
        res = _run(command, "--help", "--lang", "ru")
        assert res.exit_code == 0 and part in _flat(res.output), (command, res.output)


def test_help_in_english_is_unchanged_on_a_russian_machine():
    res = _run("generate", "--help", "--lang", "en", env=RU_MACHINE)
    text = _flat(res.output)
    for part in ("Usage: xl-kpi generate", "Write a KPI card per employee, the summary workbook and the manifest "
                 "into OUT.", "Arguments", "Options", "The plan workbook (.xlsx). [required]",
                 "Output folder. [default: kpi-out]", "Show this message and exit."):
        assert part in text, (part, res.output)
    assert "Параметры" not in text, res.output


@pytest.mark.parametrize(("args", "ru", "en"), [
    (("generate", "--bogus"), "Нет такого параметра: --bogus (возможные параметры: --jobs, --out)",
     "No such option: --bogus (Possible options: --jobs, --out)"),
    (("generate",), "Не указан параметр '--plan'.", "Missing option '--plan'."),
    (("verify",), "Не указан аргумент 'ПАПКА'.", "Missing argument 'OUT'."),
    (("demo", "--jobs", "0"), "Недопустимое значение '--jobs': значение должно быть не меньше 1",
     "Invalid value for '--jobs': Input should be greater than or equal to 1"),
    (("demo", "--jobs", "x"), "Недопустимое значение '--jobs': нужно целое число",
     "Invalid value for '--jobs': Input should be a valid integer"),
    (("demo", "--out"), "Для параметра '--out' нужно значение.", "Option '--out' requires an argument."),
    (("generate", "--plan", "."), "Недопустимое значение '--plan': «.» — папка, а нужен файл.",
     "Invalid value for '--plan': file '.' is a directory."),
    (("generate", "--plan", "nowhere.xlsx"), "Недопустимое значение '--plan': файла «nowhere.xlsx» не существует.",
     "Invalid value for '--plan': file 'nowhere.xlsx' does not exist."),
    (("demo", "--lang", "de"), "Недопустимое значение '--lang': укажите en или ru",
     "Invalid value for '--lang': use en or ru"),
    (("distrbute",), "Нет такой команды 'distrbute'. Возможно, имелось в виду 'distribute'?",
     "No such command 'distrbute'. Did you mean 'distribute'?"),
    (("verify", ".", "extra"), "Лишние аргументы (extra)", "Got unexpected extra argument(s) (extra)"),
], ids=["no-such-option", "missing-option", "missing-argument", "below-range", "not-a-number", "needs-a-value",
        "a-folder", "missing-file", "bad-lang", "no-such-command", "extra-argument"])
def test_click_usage_errors_in_russian_and_english_unchanged(args, ru, en):
    res = _run(*args, env=RU_MACHINE)
    assert res.exit_code == 2, res.output
    ru_text = _flat(res.output)
    assert ru in ru_text and "Ошибка" in ru_text, res.output
    res = _run(args[0], "--lang", "en", *args[1:], env=RU_MACHINE) if args != ("demo", "--lang", "de") else _run(*args)
    assert res.exit_code == 2, res.output
    text = _flat(res.output)
    assert en in text and "Error" in text, res.output
    assert ("Usage: xl-kpi" in text) == ("Запуск: xl-kpi" in ru_text), (text, ru_text)  # no usage line without
    assert ("Try 'xl-kpi" in text) == ("Справка: 'xl-kpi" in ru_text), (text, ru_text)  # a context (--out)


def test_typer_texts_are_restored_after_a_russian_run():
    from typer import rich_utils

    before = rich_utils.OPTIONS_PANEL_TITLE, rich_utils.ERRORS_PANEL_TITLE
    _run("generate", "--bogus", "--lang", "ru")
    assert (rich_utils.OPTIONS_PANEL_TITLE, rich_utils.ERRORS_PANEL_TITLE) == before == ("Options", "Error")


def test_verify_findings_in_russian(generated_copy):
    """A card changed after the run and a file added to cards/: verify names both in Russian."""
    card = next((generated_copy / "cards").rglob("*.xlsx"))
    card.write_bytes(card.read_bytes() + b"x")
    (generated_copy / "cards" / "extra.txt").write_text("x", encoding="utf-8")
    res = _run("verify", str(generated_copy), "--no-recompute", "--lang", "ru")
    assert res.exit_code == 1, res.output
    text = _flat(res.output)
    assert "изменён после запуска (сотрудник" in text, res.output
    assert "cards/extra.txt: нет в manifest.csv (добавлен после запуска)" in text, res.output
    en = _flat(_run("verify", str(generated_copy), "--no-recompute").output)
    assert "changed since the run (employee" in en and "cards/extra.txt: not listed in manifest.csv (added after " \
        "the run)" in en, en


@pytest.mark.parametrize(("lang", "want"), [
    ("ru", "не пуста и в ней нет manifest.json, значит, это не результат прежнего запуска xl-kpi generate; ничего не "
           "записано — как исправить: выберите пустую или новую папку --out"),
    ("en", "is not empty and has no manifest.json, so it is not the output of an earlier xl-kpi generate; nothing "
           "was written — fix: choose an empty or new --out folder"),
])
def test_an_output_folder_refusal_speaks_the_language_of_the_run(tmp_path, sample_company, lang, want):
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.docx").write_bytes(b"mine")
    res = subprocess.run([sys.executable, "-m", "xl_kpi", "generate", *sample_company.args(), "--out", str(out),
                          "--lang", lang], capture_output=True, text=True, env={**__import__("os").environ,
                                                                                 **EN_MACHINE})
    assert res.returncode == 1, res.stderr
    assert want in _flat(res.stderr), res.stderr
    assert (out / "thesis.docx").read_bytes() == b"mine"


def test_an_os_error_on_the_output_folder_in_russian():
    import errno

    from xl_kpi.outputs.outdir import os_error

    e = os_error(OSError(errno.ENOSPC, "No space left on device", "/x/summary.xlsx"))
    assert i18n.render(e, "ru") == ("не удаётся записать /x/summary.xlsx: диск заполнен — как исправить: освободите "
                                   "место на диске или выберите другую папку --out")
    assert str(e) == ("cannot write /x/summary.xlsx: the disk is full — fix: free some disk space or choose "
                      "another --out")
    odd = os_error(OSError(errno.EIO, "Input/output error", "/x/a"), doing=i18n.Msg("cannot read"))
    assert i18n.render(odd, "ru") == ("не удаётся прочитать /x/a: Input/output error — как исправить: проверьте "
                                      "папку и попробуйте снова")


def test_type_names_in_help_are_words_in_russian_and_english():
    ru = _run("generate", "--help", "--lang", "ru").output
    assert "<файл>" in ru and "<папка>" in ru and "<file>" not in ru and "<list[str]>" not in ru
    en = _run("generate", "--help").output
    assert "<file>" in en and "<folder>" in en and "<values>" in en
    assert "<dir>" not in en and "<list[str]>" not in en and "<файл>" not in en


@pytest.mark.parametrize(("args", "ru", "en"), [
    (("distribute", "--help"), "Запуск: xl-kpi distribute [ПАРАМЕТРЫ] {ПАПКА}",
     "Usage: xl-kpi distribute [OPTIONS] {OUT}"),
    (("validate", "--help"), "Запуск: xl-kpi validate [ПАРАМЕТРЫ] [ФАЙЛ]...",
     "Usage: xl-kpi validate [OPTIONS] [FILE]..."),
    (("distribute",), "Не указан аргумент 'ПАПКА'", "Missing argument 'OUT'"),
])
def test_the_usage_line_and_the_arguments_names_in_the_language(args, ru, en):
    """click's [OPTIONS] and the arguments' names (the metavars cli.py gives) read in the run's language; the
    Arguments panel names the argument as the usage line does."""
    ru_out, en_out = _flat(_run(*args, "--lang", "ru").output), _flat(_run(*args).output)
    assert ru in ru_out and "OPTIONS" not in ru_out and "'OUT'" not in ru_out and "{OUT}" not in ru_out
    assert en in en_out
    if "--help" in args:
        assert ru.split()[-1].strip("{}[].") in ru_out.split("Аргументы", 1)[1]


def test_lang_before_the_command_name_is_the_runs_language(tmp_path, sample_company):
    """``xl-kpi --lang ru COMMAND`` speaks Russian like ``xl-kpi COMMAND --lang ru``: the group's help, a command's
    messages and (generate) its cards; a command's own --lang still wins."""
    assert "Запуск: xl-kpi [ПАРАМЕТРЫ] КОМАНДА" in _flat(_run("--help", "--lang", "ru").output)
    assert "Запуск: xl-kpi [ПАРАМЕТРЫ] КОМАНДА" in _flat(_run("--lang", "ru", "--help").output)
    res = _run("--lang", "ru", "demo", "--lang", "de")
    assert res.exit_code == 2 and "укажите en или ru" in _flat(res.output), res.output
    res = _run("--lang", "xx", "demo")
    assert res.exit_code == 2 and "use en or ru" in _flat(res.output), res.output
    bad = tmp_path / "facts.csv"
    bad.write_text("employee_id,kpi_id,fact\n1001,sales,много\n", encoding="utf-8")
    ru = _flat(_run("--lang", "ru", "validate", "--plan", str(sample_company.plan), str(bad)).output)
    assert "как исправить:" in ru and "fix:" not in ru
    en = _flat(_run("--lang", "ru", "validate", "--lang", "en", "--plan", str(sample_company.plan), str(bad)).output)
    assert "fix:" in en and "как исправить" not in en
