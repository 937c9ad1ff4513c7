"""xl-kpi distribute: bundles per employee / manager / department, zip, index, PDF, e-mail (dry run and SMTP)."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import os
import shutil
import socket
import subprocess
import zipfile
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from xl_kpi.cli import app
from xl_kpi.delivery.distribute import (
    FOLDER,
    INDEX,
    INDEX_COLUMNS,
    Options,
    UsageError,
    distribute,
    plan_bundles,
    resolve_managers,
    send,
    zip_bytes,
)
from xl_kpi.delivery.isolation import check_report
from xl_kpi.delivery.mail import SmtpConfig
from xl_kpi.delivery.office import pdf_page_count, soffice_path
from xl_kpi.engine.errors import KpiError
from xl_kpi.inputs.problems import InputError, Problems
from xl_kpi.outputs.cards.rows import TEXTS as ROWS_TEXTS
from xl_kpi.outputs.csvsafe import csv_bytes
from xl_kpi.outputs.results_files import load_results

runner = CliRunner()

TEAM_1031 = {"1035", "1036", "1037"}  # Степанов Кирилл Викторович's direct reports in the sample
UNRESOLVED = {"Соколова Анна Викторовна", "Орлов Дмитрий Сергеевич", "Белова Екатерина Андреевна"}


def fresh(generated: Path, where: Path) -> Path:
    out = where / "out"
    shutil.copytree(generated, out)
    return out


def index(out: Path) -> list[dict[str, str]]:
    raw = (out / FOLDER / INDEX).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def manifest(out: Path) -> dict[str, dict[str, str]]:
    text = (out / "manifest.csv").read_bytes().decode("utf-8-sig")
    return {r["employee_id"]: r for r in csv.DictReader(io.StringIO(text))}


def sheet_rows(data: bytes) -> list[tuple]:
    wb = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    return list(wb.worksheets[0].iter_rows(values_only=True))


def team_rows(data: bytes) -> tuple[list[tuple], tuple, list[str]]:
    """(employee rows, total row, header) of a summary's first sheet."""
    rows = sheet_rows(data)
    header = [str(x) for x in rows[0]]
    body = [r for r in rows[1:] if r[0] not in (None, "Итого", "Total")]
    total = next(r for r in rows[1:] if r[0] in ("Итого", "Total"))
    return body, total, header


@pytest.fixture(scope="module")
def three_modes(generated: Path, tmp_path_factory: pytest.TempPathFactory):
    out = fresh(generated, tmp_path_factory.mktemp("modes"))
    report = distribute(out, Options(by=("employee", "manager", "department")))
    return out, report


# ------------------------------------------------------------------------------------ bundles


def test_by_employee_each_bundle_holds_exactly_the_own_card(three_modes) -> None:
    out, report = three_modes
    cards = manifest(out)
    bundles = sorted((out / FOLDER / "employee").iterdir())
    assert len(bundles) == len(cards) == 44
    for b in bundles:
        files = list(b.iterdir())
        assert len(files) == 1
        eid = b.name.split(" ", 1)[0]
        assert files[0].name == Path(cards[eid]["file"]).name  # "<id> <name>.xlsx"
        assert files[0].read_bytes() == (out / cards[eid]["file"]).read_bytes()
    emp = {b.recipient_id: b for b in report.bundles if b.by == "employee"}
    assert emp["1001"].recipient_email == "d.kozlov@servis-plus.ru" and emp["1001"].mailable


def test_by_manager_team_bundles_and_reported_unresolved_managers(three_modes) -> None:
    out, report = three_modes
    teams = {b.name: b for b in report.bundles if b.by == "manager"}
    assert set(teams) == UNRESOLVED | {"Степанов Кирилл Викторович", "Алексеева Елена Сергеевна",
                                       "Смирнова Екатерина Алексеевна", "Сергеев Михаил Викторович"}
    stepanov = teams["Степанов Кирилл Викторович"]
    assert set(stepanov.members) == TEAM_1031
    assert (stepanov.recipient_id, stepanov.recipient_email) == ("1031", "k.stepanov@servis-plus.ru")
    folder = out / FOLDER / "manager" / "Степанов Кирилл Викторович"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["1035 Медведев Илья Андреевич.xlsx", "1036 Сорокин Никита Евгеньевич.xlsx",
                     "1037 Ковалёв Андрей Николаевич.xlsx", "Сводка KPI Степанов Кирилл Викторович.xlsx"]
    for name in UNRESOLVED:  # built (HR can hand it over), but never mailed to a guessed address
        b = teams[name]
        assert not b.recipient_email and not b.mailable and "not an employee" in b.note
    # every carded employee with a manager is in exactly one team
    members = [m for b in teams.values() for m in b.members]
    assert len(members) == len(set(members)) == 44


@pytest.mark.parametrize("mode", ["manager", "department"])
def test_team_summaries_hold_only_the_team_and_its_totals(three_modes, mode: str) -> None:
    out, report = three_modes
    cards = manifest(out)
    results = load_results(out)
    others_names = set(results.employees["name"])
    for b in (b for b in report.bundles if b.by == mode):
        summary = next(f for f in b.files if f.kind == "summary")
        data = (out / FOLDER / mode / b.name / summary.name).read_bytes()
        body, total, header = team_rows(data)
        assert sorted(str(r[0]) for r in body) == sorted(b.members)
        bonus = header.index("Премия")
        # the total equals the sum of the team's cards, to the kopeck
        expected = sum(Decimal(cards[m]["total_bonus"]) for m in b.members)
        assert Decimal(str(total[bonus])).quantize(Decimal("0.01")) == expected
        # nobody outside the team is named anywhere in the workbook
        text = "".join(zipfile.ZipFile(io.BytesIO(data)).read(n).decode("utf-8", "replace")
                       for n in zipfile.ZipFile(io.BytesIO(data)).namelist())
        team_names = set(results.employees.loc[results.employees["employee_id"].isin(b.members), "name"])
        managers = set(results.employees.loc[results.employees["employee_id"].isin(b.members), "manager"])
        for name in others_names - team_names - managers:
            assert name not in text, (b.name, name)


def test_by_department_groups_by_department(three_modes) -> None:
    _, report = three_modes
    deps = {b.name: set(b.members) for b in report.bundles if b.by == "department"}
    results = report.results.employees
    assert deps == {d: set(g["employee_id"]) for d, g in results.groupby("department")}
    assert all("not mailed" in b.note for b in report.bundles if b.by == "department")


def test_index_lists_what_went_where(three_modes) -> None:
    out, report = three_modes
    rows = index(out)
    assert tuple(rows[0]) == INDEX_COLUMNS
    assert len(rows) == report.files == 44 * 3 + 7 + 3
    for r in rows:
        data = (out / FOLDER / r["bundle"] / r["file"]).read_bytes()
        assert hashlib_sha(data) == r["sha256"]
        assert r["kind"] in ("card", "summary")
        assert (r["kind"] == "card") == bool(r["employee_id"])
    stepanov = [r for r in rows if r["bundle"] == "manager/Степанов Кирилл Викторович"]
    assert {r["recipient_email"] for r in stepanov} == {"k.stepanov@servis-plus.ru"}
    assert {r["employee_id"] for r in stepanov} == TEAM_1031 | {""}


def hashlib_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_csv_cells_that_excel_would_run_are_neutralised() -> None:
    data = csv_bytes(("a", "b"), [["=HYPERLINK(\"x\")", "+1"], ["-2", "@SUM(A1)"], ["ok", "Иванов"]])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[1] == ["'=HYPERLINK(\"x\")", "'+1"] and rows[2] == ["'-2", "'@SUM(A1)"]
    assert rows[3] == ["ok", "Иванов"]


@pytest.mark.slow
def test_zips_are_deterministic_and_sorted(generated: Path, tmp_path: Path) -> None:
    a = fresh(generated, tmp_path / "a")
    b = fresh(generated, tmp_path / "b")
    for out in (a, b):
        distribute(out, Options(by=("manager",), zip=True))
    za = sorted((a / FOLDER / "manager").iterdir())
    zb = sorted((b / FOLDER / "manager").iterdir())
    assert [p.name for p in za] == [p.name for p in zb] and all(p.suffix == ".zip" for p in za)
    for x, y in zip(za, zb, strict=True):
        assert x.read_bytes() == y.read_bytes()
    with zipfile.ZipFile(za[0]) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert zip_bytes([("b", b"2"), ("a", b"1")]) == zip_bytes([("a", b"1"), ("b", b"2")])
    rows = index(a)
    assert all(r["bundle"].endswith(".zip") for r in rows)


@pytest.mark.slow
def test_rerun_replaces_the_previous_distribution(generated: Path, tmp_path: Path) -> None:
    out = fresh(generated, tmp_path)
    distribute(out, Options(by=("manager",)))
    assert (out / FOLDER / "manager").is_dir()
    distribute(out, Options(by=("employee",), zip=True))
    assert sorted(p.name for p in (out / FOLDER).iterdir()) == ["employee", "index.csv"]
    assert not list(out.glob(".xl-kpi-*"))  # no staging left behind
    assert not (out / FOLDER / "passwords.csv").exists()


def test_a_card_changed_after_generate_is_refused_and_nothing_written(generated: Path, tmp_path: Path) -> None:
    out = fresh(generated, tmp_path)
    card = next((out / "cards").rglob("1001 *.xlsx"))
    card.write_bytes(card.read_bytes() + b"\0")
    with pytest.raises(InputError) as e:
        distribute(out)
    assert "changed after xl-kpi generate" in str(e.value)
    assert not (out / FOLDER).exists()


def test_two_cards_for_one_employee_in_the_manifest_neither_is_sent(generated: Path, tmp_path: Path) -> None:
    """manifest.csv naming two cards for 1001 (the second another's, hashes valid): no card is picked by order."""
    out = fresh(generated, tmp_path)
    path = out / "manifest.csv"
    text = path.read_bytes().decode("utf-8-sig")
    rows = text.splitlines()
    other = next(r for r in rows if r.startswith("1002,")).replace("1002,", "1001,", 1)
    path.write_bytes(("\r\n".join([*rows, other]) + "\r\n").encode("utf-8-sig"))
    with pytest.raises(InputError) as e:
        distribute(out)
    assert "two cards for employee 1001 (manifest.csv rows 2 and 46)" in str(e.value)
    assert not (out / FOLDER).exists()


# ------------------------------------------------------------------------- managers, addresses


def test_managers_resolve_by_id_or_exact_name_never_by_guess() -> None:
    emp = pd.DataFrame({
        "employee_id": ["1", "2", "3", "4", "5", "6", "7"],
        "name": ["Anna  Petrova", "Boris Ivanov", "Boris Ivanov", "Carl", "Dora", "Eve", "Ivan Petrov"],
        "manager": ["", "anna petrova", "ANNA PETROVA ", "1", "Boris Ivanov", "Nobody Known", "Ivan Petrova"],
    })
    res = resolve_managers(emp)
    assert res["anna petrova"].employee_id == "1" and res["ANNA PETROVA"].employee_id == "1"
    assert res["1"].employee_id == "1"
    assert res["Boris Ivanov"].employee_id is None and "several employees (2, 3)" in res["Boris Ivanov"].why
    assert res["Nobody Known"].employee_id is None and "not an employee" in res["Nobody Known"].why
    assert res["Ivan Petrova"].employee_id is None  # one letter off is another person: no fuzzy matching


def test_missing_invalid_and_shared_addresses_are_reported_not_guessed(generated: Path) -> None:
    results = load_results(generated)
    emp = results.employees.copy()
    emp.loc[emp["employee_id"] == "1001", "email"] = ""
    emp.loc[emp["employee_id"] == "1002", "email"] = "d.kuznetsov at servis-plus.ru"
    emp.loc[emp["employee_id"] == "1004", "email"] = "shared@servis-plus.ru"
    emp.loc[emp["employee_id"] == "1005", "email"] = "Shared@servis-plus.ru"
    results = replace(results, employees=emp)
    problems = Problems()
    bundles = {b.recipient_id: b for b in plan_bundles(results, set(emp["employee_id"]), ("employee",), problems)}
    assert not bundles["1001"].recipient_email and "no e-mail address" in bundles["1001"].note
    assert not bundles["1002"].recipient_email and "contains a space" in bundles["1002"].note
    for eid in ("1004", "1005"):
        assert "address of 2 employees" in bundles[eid].note and not bundles[eid].mailable
    assert bundles["1003"].note == ""


def _team_results(generated: Path, changes: dict[str, dict[str, str]]):
    """The sample's results with some employees' columns changed (employee_id → {column: value})."""
    results = load_results(generated)
    emp = results.employees.copy()
    lines = results.lines.copy()
    for eid, cols in changes.items():
        row = emp["employee_id"] == eid
        for col, value in cols.items():
            emp.loc[row, col] = value
        if "employee_id" in cols:
            lines.loc[lines["employee_id"] == eid, "employee_id"] = cols["employee_id"]
    return replace(results, employees=emp, lines=lines)


def test_ids_differing_only_by_case_never_get_each_others_team(generated: Path) -> None:
    """M1 and m1 (only in a results table the plan check would have refused): each team goes to its own manager."""
    results = _team_results(generated, {
        "1001": {"employee_id": "M1", "email": "big.m@servis-plus.ru", "manager": ""},
        "1002": {"employee_id": "m1", "email": "small.m@servis-plus.ru", "manager": ""},
        "1003": {"manager": "M1"}, "1004": {"manager": "M1"}, "1005": {"manager": "m1"},
    })
    ids = set(results.employees["employee_id"])
    bundles = plan_bundles(results, ids, ("manager",), Problems())
    team = {b.recipient_id: (set(b.members), b.recipient_email) for b in bundles if b.recipient_id}
    assert team["M1"] == ({"1003", "1004"}, "big.m@servis-plus.ru")
    assert team["m1"] == ({"1005"}, "small.m@servis-plus.ru")
    res = resolve_managers(results.employees)
    assert (res["M1"].employee_id, res["M1"].by) == ("M1", "id") and res["m1"].employee_id == "m1"


def test_manager_id_in_the_wrong_case_is_nobody_and_says_so(generated: Path) -> None:
    results = _team_results(generated, {"1003": {"manager": "1001"}, "1004": {"manager": " 1001 "},
                                        "1001": {"employee_id": "E1001"}, "1005": {"manager": "e1001"}})
    res = resolve_managers(results.employees)
    assert res["e1001"].employee_id is None and 'the employee_id "E1001" differs only in case' in res["e1001"].why
    bundles = {b.team: b for b in plan_bundles(results, set(results.employees["employee_id"]), ("manager",),
                                               Problems())}
    assert not bundles["e1001"].mailable and bundles["e1001"].members == ["1005"]


def test_manager_by_the_name_of_one_employee_resolves_with_a_warning(generated: Path) -> None:
    results = load_results(generated)
    problems = Problems()
    bundles = plan_bundles(results, set(results.employees["employee_id"]), ("manager",), problems)
    stepanov = next(b for b in bundles if b.recipient_id == "1031")
    assert stepanov.recipient_email == "k.stepanov@servis-plus.ru" and not stepanov.note
    warning = next(p for p in problems.warnings if "given by name" in p.message)
    assert "'Степанов Кирилл Викторович' → 1031" in warning.message and "employee_id" in warning.fix


def test_manager_name_of_a_namesake_in_the_team_is_nobody(generated: Path) -> None:
    """The manager 'Соколова Анна Викторовна' is not an employee; 1002 of her team is her namesake: the team
    bundle is built (HR can hand it over) and never mailed to the namesake."""
    results = load_results(generated)
    emp = results.employees
    boss = "Соколова Анна Викторовна"
    member = emp.loc[emp["manager"] == boss, "employee_id"].iloc[0]
    results = _team_results(generated, {member: {"name": boss}})
    bundles = plan_bundles(results, set(results.employees["employee_id"]), ("manager",), Problems())
    team = next(b for b in bundles if b.team == boss)
    assert member in team.members and team.recipient_id == "" and not team.recipient_email
    assert "who is in that very team" in team.note


def test_manager_name_of_a_namesake_outside_the_team_is_named_in_the_warning(generated: Path) -> None:
    """A namesake elsewhere cannot be told from the manager: the team goes to them only with a warning naming both."""
    boss = "Соколова Анна Викторовна"
    results = _team_results(generated, {"1040": {"name": boss}})  # a support agent, in another department
    problems = Problems()
    bundles = plan_bundles(results, set(results.employees["employee_id"]), ("manager",), problems)
    team = next(b for b in bundles if b.recipient_id == "1040" and b.by == "manager")
    assert len(team.members) == 20
    assert any(f"'{boss}' → 1040" in p.message and "namesake" in p.fix for p in problems.warnings)


def test_one_idn_mailbox_in_two_spellings_is_shared_and_not_mailed(generated: Path) -> None:
    results = _team_results(generated, {"1001": {"email": "ivan@почта.рф"},
                                        "1002": {"email": "ivan@xn--80a1acny.xn--p1ai"}})
    bundles = {b.recipient_id: b for b in plan_bundles(results, set(results.employees["employee_id"]),
                                                       ("employee",), Problems())}
    for eid in ("1001", "1002"):
        assert not bundles[eid].mailable
        assert "is the address of 2 employees (1001, 1002)" in bundles[eid].note
    assert "also written ivan@xn--80a1acny.xn--p1ai" in bundles["1001"].note
    assert bundles["1003"].note == ""


def test_options_that_do_not_go_together(generated: Path) -> None:
    with pytest.raises(UsageError, match="PDFs cannot be encrypted"):
        Options(encrypt=True, pdf=True)
    with pytest.raises(UsageError, match="--passwords only"):
        Options(passwords=Path("x.csv"))
    with pytest.raises(UsageError):
        Options(by=("team",))
    for args in (["--encrypt", "--pdf"], ["--by", "team"], ["--smtp", "localhost:25"], ["--mail"],
                 ["--mail", "--by", "department", "--smtp", "localhost:25", "--from", "hr@example.com"],
                 ["--mail", "--smtp", "localhost:25", "--from", "not an address"]):
        res = runner.invoke(app, ["distribute", str(generated), *args])
        assert res.exit_code == 2, (args, res.output)
    assert not (generated / FOLDER).exists()


# ------------------------------------------------------------------------------------ e-mail


def eml_attachments(path: Path) -> tuple[str, dict[str, bytes]]:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    files = {part.get_filename(): part.get_payload(decode=True) for part in msg.iter_attachments()}
    return str(msg["To"]), files


@pytest.mark.slow
def test_dry_run_writes_one_eml_per_recipient_with_only_their_files(generated: Path, tmp_path: Path) -> None:
    out = fresh(generated, tmp_path)
    res = runner.invoke(app, ["distribute", str(out), "--by", "employee", "--by", "manager", "--dry-run",
                              "--from", "hr@servis-plus.ru", "--check"])
    assert res.exit_code == 1, res.output  # three team bundles have no address: reported, exit 1
    assert "not mailed: manager/Соколова Анна Викторовна" in res.output
    assert "isolation check" in res.output and "0 finding" not in res.output
    box = sorted((out / "outbox").glob("*.eml"))
    assert len(box) == 44 + 4
    cards = manifest(out)
    for path in box:
        to, files = eml_attachments(path)
        kind, key = path.stem.split("_", 1)
        if kind == "employee":
            assert list(files) == [Path(cards[key]["file"]).name]
            assert files[Path(cards[key]["file"]).name] == (out / cards[key]["file"]).read_bytes()
        else:
            bundle = next(b for b in index(out) if b["recipient_id"] == key and b["bundle"].startswith("manager/"))
            expected = {r["file"] for r in index(out) if r["bundle"] == bundle["bundle"]}
            assert set(files) == expected
            assert bundle["recipient_email"] in to
    assert not (out / "send-log.jsonl").exists()  # a dry run sends nothing and logs nothing
    assert check_report(out).ok


@contextmanager
def smtp_capture():
    received: dict[str, list[email.message.EmailMessage]] = defaultdict(list)

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            for rcpt in envelope.rcpt_tos:
                received[rcpt.lower()].append(msg)
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


@pytest.mark.slow
def test_real_send_each_person_gets_exactly_their_own_files_and_reruns_send_nothing(
        generated: Path, tmp_path: Path) -> None:
    out = fresh(generated, tmp_path)
    report = distribute(out, Options(by=("employee", "manager"), zip=True))
    with smtp_capture() as (port, received):
        config = SmtpConfig("127.0.0.1", port, sender="hr@servis-plus.ru", timeout=5)
        outcome = send(report, config)
        assert len(outcome.report.sent) == 48 and not outcome.report.failed
        assert {b.name for b, _ in outcome.not_mailed} == UNRESOLVED
        expected: dict[str, set[str]] = defaultdict(set)
        for b in report.bundles:
            if b.mailable:
                expected[b.recipient_email.lower()].add(b.path.name)
        assert set(received) == set(expected) and len(received) == 44
        for address, messages in received.items():
            got = [part.get_filename() for m in messages for part in m.iter_attachments()]
            assert sorted(got) == sorted(expected[address]), address  # exactly theirs, each once
            for m in messages:
                assert len(m.get_all("To")) == 1 and m.get_all("Cc") is None
        assert expected["k.stepanov@servis-plus.ru"] == {"1031 Степанов Кирилл Викторович.zip",
                                                         "Степанов Кирилл Викторович.zip"}
        stepanov = {p.get_filename(): p.get_payload(decode=True)
                    for m in received["k.stepanov@servis-plus.ru"] for p in m.iter_attachments()}
        with zipfile.ZipFile(io.BytesIO(stepanov["Степанов Кирилл Викторович.zip"])) as zf:
            assert sorted(n.split(" ", 1)[0] for n in zf.namelist() if n[0].isdigit()) == sorted(TEAM_1031)
        # resumable: the same run again (rebuilt, byte-identical) sends nothing
        again = distribute(out, Options(by=("employee", "manager"), zip=True))
        outcome2 = send(again, config)
        assert outcome2.report.sent == [] and len(outcome2.report.skipped_already_sent) == 48
        assert sum(len(v) for v in received.values()) == 48


# ---------------------------------------------------------------------------------------- PDF


@pytest.fixture(scope="module")
def with_pdf(generated: Path, tmp_path_factory: pytest.TempPathFactory):
    if soffice_path() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("LibreOffice (soffice) is not installed but CI=true: LibreOffice tests must run in CI")
        pytest.skip("LibreOffice (soffice) is not installed")
    out = fresh(generated, tmp_path_factory.mktemp("pdf"))
    calls: list[tuple[str, int, int]] = []
    report = distribute(out, Options(by=("employee", "manager"), pdf=True),
                        on_progress=lambda *a: calls.append(a))
    return out, report, calls


ROWS_TITLE = ROWS_TEXTS["ru"]["title"]


@pytest.mark.libreoffice
def test_pdf_of_every_card_one_page_with_the_name(with_pdf) -> None:
    out, report, calls = with_pdf
    assert report.pdf_converted == 44 + 7 and not report.problems.errors
    assert calls[-1] == ("pdf", 51, 51)
    for b in (b for b in report.bundles if b.by == "employee"):
        folder = out / FOLDER / "employee" / b.name
        pdf = folder / f"{b.name}.pdf"
        assert (folder / f"{b.name}.xlsx").exists()  # beside the workbook
        pages = pdf_page_count(pdf.read_bytes())
        text = subprocess.run(["pdftotext", "-l", "1", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        rest = subprocess.run(["pdftotext", "-f", "2", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout if pages > 1 else ""
        # the card sheet is page 1 alone; any further pages are the card's "Исходные строки" sheet (drill-down)
        assert ROWS_TITLE not in text
        assert pages == 1 or " ".join(rest.split()).startswith(ROWS_TITLE), rest[:200]
        # surname and given name (the card clips a long patronymic in print: Антонов Александр Александрови…)
        assert " ".join(b.recipient.split()[:2]) in " ".join(text.split()) and b.recipient_id in text
    summary = out / FOLDER / "manager" / "Степанов Кирилл Викторович" / "Сводка KPI Степанов Кирилл Викторович.pdf"
    text = subprocess.run(["pdftotext", str(summary), "-"], capture_output=True, text=True, check=True).stdout
    assert "Медведев Илья Андреевич" in text and "Козлов" not in text


@pytest.mark.libreoffice
def test_pdf_only_reuses_the_pdfs_and_ships_no_workbook(with_pdf, tmp_path: Path) -> None:
    out, _, _ = with_pdf
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    report = distribute(copy, Options(by=("employee",), pdf_only=True))
    assert report.pdf_converted == 0 and report.pdf_reused == 44  # no second soffice call
    files = list((copy / FOLDER / "employee").rglob("*"))
    assert {p.suffix for p in files if p.is_file()} == {".pdf"}
    assert check_report(copy).ok


@pytest.mark.libreoffice
def test_isolation_check_reads_the_pdfs_and_catches_a_foreign_one(with_pdf, tmp_path: Path) -> None:
    out, _, _ = with_pdf
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    assert check_report(copy).ok
    theirs = copy / FOLDER / "employee" / "1001 Козлов Денис Иванович" / "1001 Козлов Денис Иванович.pdf"
    mine = copy / FOLDER / "employee" / "1035 Медведев Илья Андреевич"
    shutil.copy(theirs, mine / "report.pdf")  # a renamed PDF: the name is only inside
    leaks = check_report(copy).leaks
    kinds = {(x.kind, x.employee_id) for x in leaks if x.file.endswith("report.pdf")}
    assert {("name", "1001"), ("id", "1001"), ("amount", "1001")} <= kinds


# ---- the output folder: one run at a time, no symbolic links (issue 9 §3)


def test_distribute_into_a_folder_locked_by_another_run_is_refused(generated: Path, tmp_path: Path) -> None:
    from xl_kpi.outputs import outdir

    out = fresh(generated, tmp_path)
    distribute(out)
    before = sorted(p.relative_to(out).as_posix() for p in (out / FOLDER).rglob("*"))
    with outdir.lock(out), pytest.raises(KpiError, match="another xl-kpi run"):
        distribute(out)
    assert sorted(p.relative_to(out).as_posix() for p in (out / FOLDER).rglob("*")) == before


def test_symlinked_distribution_folder_is_refused(generated: Path, tmp_path: Path) -> None:
    out = fresh(generated, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (out / FOLDER).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(KpiError, match="symbolic link"):
        distribute(out)
    assert sorted(os.listdir(elsewhere)) == ["keep.txt"]


@pytest.mark.slow
def test_symlinked_outbox_is_refused(generated: Path, tmp_path: Path) -> None:
    out = fresh(generated, tmp_path)
    report = distribute(out)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    (out / "outbox").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(KpiError, match="symbolic link"):
        send(report, None, dry_run=True)
    assert sorted(os.listdir(elsewhere)) == ["keep.txt"]
