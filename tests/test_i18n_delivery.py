"""xl-kpi distribute, mail and the isolation check in Russian (``--lang ru``), English unchanged with ``--lang en``."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from xl_kpi.cli import app
from xl_kpi.i18n import English, Msg, render, using

EN_MACHINE = {"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8", "COLUMNS": "200"}


def _distribute(out: Path, *args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["distribute", str(out), *args], env={**EN_MACHINE, **(env or {})})


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("args", "ru", "en"), [
    (["--encrypt", "--pdf"],
     "Ошибка в команде: --encrypt вместе с --pdf/--pdf-only: xl-kpi не умеет шифровать PDF, а отправка их в открытом "
     "виде сводит --encrypt на нет. Уберите --pdf или добавьте --allow-plain-pdf",
     "Usage error: --encrypt with --pdf/--pdf-only: PDFs cannot be encrypted by xl-kpi, and shipping them in plain "
     "text would defeat --encrypt. Drop --pdf, or add --allow-plain-pdf to ship the PDFs unencrypted knowingly"),
    (["--new-passwords"], "--new-passwords имеет смысл только вместе с --encrypt",
     "--new-passwords only makes sense with --encrypt"),
    (["--by", "team"], "--by team: укажите один из вариантов employee, manager, department",
     "--by team: use one of employee, manager, department"),
    (["--by", "employee", "--by", "employee"], "каждый вариант --by указывается один раз", "each --by mode once"),
    (["--mail", "--smtp", "mail.example.com:99999", "--from", "hr@example.com"],
     "--smtp «mail.example.com:99999»: порт должен быть числом от 1 до 65535",
     "--smtp 'mail.example.com:99999': the port must be a number from 1 to 65535"),
    (["--mail", "--smtp", "mail.example.com:25", "--from", "hr@example"],
     "--from «hr@example» — непригодный адрес: в домене после «@» нет точки (нужно как example.com)",
     "--from 'hr@example' is not a usable address: the domain after '@' has no dot (like example.com)"),
    (["--dry-run", "--from", "hr example.com"], "--from «hr example.com»: содержит пробел",
     "--from 'hr example.com': contains a space"),
], ids=["encrypt-pdf", "new-passwords", "by-team", "by-twice", "smtp-port", "from-no-dot", "from-space"])
def test_distribute_refusals_speak_the_language_of_the_run(generated, args, ru, en):
    """Options that do not go together are refused (exit 2, nothing written) in the language of --lang."""
    res = _distribute(generated, *args, "--lang", "ru")
    assert res.exit_code == 2, res.output
    assert ru in _flat(res.output), res.output
    res = _distribute(generated, *args, "--lang", "en", env={"LANG": "ru_RU.UTF-8"})
    assert res.exit_code == 2, res.output
    assert en in _flat(res.output), res.output


def test_distribute_report_and_mail_dry_run_in_russian(generated_copy):
    """The bundles' warnings, the distribution report, the unmailable bundles and the dry-run line in Russian."""
    res = _distribute(generated_copy, "--by", "manager", "--dry-run", "--from", "hr@servis-plus.ru", "--lang", "ru")
    assert res.exit_code == 1, res.output  # three team bundles have no address
    text = _flat(res.output)
    for part in ("4 руководителя указаны по имени, а не по employee_id, и сопоставлены единственным сотрудникам",
                 "рассылка подготовлена:", "7 пакетов руководителей (папки)", "51: 44 карточки xlsx, 7 сводок xlsx",
                 "4 адреса эл. почты; 3 пакета без пригодного адреса",
                 "пробный запуск: 4 письма записаны в",
                 "не отправлено: manager/Соколова Анна Викторовна: руководителя 'Соколова Анна Викторовна' нет "
                 "среди сотрудников плана"):
        assert part in text, (part, res.output)
    for english in ("managers are given by name", "card xlsx", "not mailed", "is not an employee"):
        assert english not in text, (english, res.output)


def test_distribute_report_in_english_is_unchanged(generated_copy):
    res = _distribute(generated_copy, "--by", "manager", "--dry-run", "--from", "hr@servis-plus.ru", "--lang", "en",
                      env={"LANG": "ru_RU.UTF-8"})
    assert res.exit_code == 1, res.output
    text = _flat(res.output)
    for part in ("4 managers are given by name, not by employee_id, and matched to the one employee of that name: "
                 "'Степанов Кирилл Викторович' → 1031",
                 "their team bundles go to that employee", "distribution written:", "7 manager bundles (folders)",
                 "51: 44 card xlsx, 7 summary xlsx", "4 e-mail addresses; 3 bundles without a usable one",
                 "dry run: 4 messages written to",
                 "not mailed: manager/Соколова Анна Викторовна: manager 'Соколова Анна Викторовна' is not an employee "
                 "in the plan"):
        assert part in text, (part, res.output)
    assert "пакет" not in text and "письма" not in text, res.output


def test_the_send_report_summary_in_both_languages():
    from xl_kpi.delivery.mail import SendReport

    rep = SendReport(sent=["a", "b"], failed=[("c", "x")], invalid=[("d", "y")], remaining=["e", "f", "g"])
    assert rep.summary() == "sent 2, failed 1, invalid address 1, not attempted 3"
    assert render(rep.summary(), "ru") == "отправлено 2, не удалось 1, неверный адрес 1, не отправлялось 3"
    assert SendReport().summary() == "nothing to send"
    assert render(SendReport().summary(), "ru") == "нечего отправлять"


@pytest.mark.parametrize(("address", "en", "ru"), [
    ("anna@example", "the domain after '@' has no dot (like example.com)",
     "в домене после «@» нет точки (нужно как example.com)"),
    ("Анна@example.com", "non-Latin letters before '@' (most mail servers refuse them)",
     "нелатинские буквы перед «@» (большинство почтовых серверов их не принимают)"),
    ("", "no e-mail address", "нет адреса эл. почты"),
    (" anna@example.com", "contains a space (at the start or end)", "содержит пробел (в начале или в конце)"),
], ids=["no-dot", "cyrillic", "empty", "space"])
def test_address_reasons_are_english_text_shown_in_russian(address, en, ru):
    from xl_kpi.delivery.mail import check_address

    why = check_address(address)
    assert why == en and isinstance(why, English)
    assert render(why, "ru") == ru


def test_isolation_findings_and_the_leak_refusal_in_russian():
    from xl_kpi.delivery.distribute import LeakError
    from xl_kpi.delivery.isolation import Leak

    leak = Leak("distribution/employee/1001", "unlisted", "", "", English(Msg("a file nobody is meant to get")), "")
    assert str(leak) == "distribution/employee/1001: unlisted: a file nobody is meant to get (meant for nobody)"
    assert render(leak.message(), "ru") == ("distribution/employee/1001: нет в списке: файл, который не предназначен "
                                            "никому (адресат: нет)")
    named = Leak("a.xlsx", "amount", "1002", "Петров Пётр", "123 456,78 (bonus of 1002)", "1001 Иванов")
    assert render(named.message(), "ru") == ("a.xlsx: сумма (1002 Петров Пётр): 123 456,78 (bonus of 1002) "
                                             "(адресат: 1001 Иванов)")
    e = LeakError([leak, named])
    assert str(e).startswith("the isolation check found 2 problems, nothing was sent: distribution/employee/1001: "
                             "unlisted")
    with using("ru"):
        assert str(e).startswith("проверка конфиденциальности нашла 2 нарушения, ничего не отправлено: "
                                 "distribution/employee/1001: нет в списке")


def test_isolation_check_of_a_tampered_distribution_in_russian(generated_copy):
    """A stray file in the distribution: the finding is listed in Russian."""
    assert _distribute(generated_copy, "--lang", "en").exit_code == 0
    (generated_copy / "distribution" / "stray.txt").write_text("hello", encoding="utf-8")
    res = _distribute(generated_copy, "--check", "--lang", "ru")
    assert res.exit_code == 1, res.output
    text = _flat(res.output)
    assert "проверка конфиденциальности: 1 нарушение" in text, res.output
    assert "distribution/stray.txt: нет в списке: файл, который не предназначен никому (адресат: нет)" in text, text
    en = _flat(_distribute(generated_copy, "--check", "--lang", "en").output)
    assert "distribution/stray.txt: unlisted: a file nobody is meant to get (meant for nobody)" in en, en
