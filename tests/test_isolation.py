"""The isolation check: nobody's name, id or pay in a file meant for someone else; planted leaks are caught."""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import io
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from tests import _results_fixture
from xl_kpi.cli import app
from xl_kpi.delivery.crypto import encrypt_xlsx
from xl_kpi.delivery.distribute import FOLDER, INDEX, Options, distribute, send
from xl_kpi.delivery.isolation import check, check_report, norm_name, numbers_in
from xl_kpi.outputs.cards import write_cards
from xl_kpi.outputs.manifest import write_manifest
from xl_kpi.outputs.results_files import load_results, save_results
from xl_kpi.outputs.summary import summary_bytes
from xl_kpi.results import Results

runner = CliRunner()
STEPANOV = "manager/Степанов Кирилл Викторович"
MEDVEDEV = "employee/1035 Медведев Илья Андреевич"


@pytest.fixture(scope="module")
def sample(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample company, distributed every way (folders), mailed in a dry run."""
    out = copy(generated, tmp_path_factory.mktemp("sample"))
    report = distribute(out, Options(by=("employee", "manager", "department")))
    send(report, None, dry_run=True)
    return out


def copy(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(src, out)
    return out


def card_of(out: Path, eid: str) -> Path:
    return next((out / "cards").rglob(f"{eid} *.xlsx"))


def kinds(leaks, file_part: str) -> set[tuple[str, str]]:
    return {(x.kind, x.employee_id) for x in leaks if file_part in x.file}


# ----------------------------------------------------------------------------- real output


@pytest.mark.slow
def test_real_output_is_isolated(sample: Path) -> None:
    report = check_report(sample)
    assert report.ok, "\n".join(map(str, report.leaks[:10]))
    # cards + bundles by employee, manager (+7 summaries), department (+3) + the .eml and their attachments
    # (44 employees' cards, the 4 mailable teams: 3+1, 3+1, 2+1, 2+1 files)
    assert report.files == 44 + (44 + 51 + 47) + (48 + 44 + 14)
    # the false positives it had to set aside: shared bonuses, salaries, KPI numbers equal to someone's pay
    assert report.skipped_ambiguous > 0


# ----------------------------------------------------------------------------- planted leaks


@pytest.mark.slow
def test_a_card_copied_into_someone_elses_bundle_is_caught(sample: Path, tmp_path: Path) -> None:
    out = copy(sample, tmp_path)
    shutil.copy(card_of(out, "1001"), out / FOLDER / MEDVEDEV / "1001 Козлов Денис Иванович.xlsx")
    leaks = check_report(out, outbox=False).leaks
    found = kinds(leaks, "1035 Медведев Илья Андреевич/1001")
    assert {("name", "1001"), ("id", "1001"), ("amount", "1001"), ("unlisted", "")} <= found
    assert all("1035 Медведев" in x.file for x in leaks)  # nothing else is flagged
    res = runner.invoke(app, ["distribute", str(out), "--check"])
    assert res.exit_code == 1 and "Козлов Денис Иванович" in res.output


@pytest.mark.slow
def test_a_renamed_card_listed_in_the_index_is_caught_by_content(sample: Path, tmp_path: Path) -> None:
    """Even with a harmless name and a matching sha256 in index.csv, the content gives it away."""
    out = copy(sample, tmp_path)
    target = out / FOLDER / MEDVEDEV / "1035 Медведев Илья Андреевич.xlsx"
    data = card_of(out, "1002").read_bytes()
    target.write_bytes(data)
    _fix_sha(out, MEDVEDEV, target.name, data)
    leaks = check_report(out, cards=False, outbox=False).leaks
    assert {("name", "1002"), ("id", "1002"), ("amount", "1002")} <= kinds(leaks, MEDVEDEV)
    assert not any(x.kind == "modified" for x in leaks if FOLDER in x.file)


def _fix_sha(out: Path, bundle: str, name: str, data: bytes) -> None:
    path = out / FOLDER / INDEX
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
    for r in rows:
        if r[0] == bundle and r[4] == name:
            r[5] = hashlib.sha256(data).hexdigest()
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8-sig"))


@pytest.mark.slow
def test_a_team_summary_with_one_foreign_row_is_caught(sample: Path, tmp_path: Path) -> None:
    out = copy(sample, tmp_path)
    results = load_results(out)
    emp = results.employees
    ids = {"1035", "1036", "1037", "1001"}  # Степанов's team plus Козлов from sales
    leaky = replace(results, employees=emp[emp["employee_id"].isin(ids)].reset_index(drop=True),
                    lines=results.lines[results.lines["employee_id"].isin(ids)].reset_index(drop=True))
    name = "Сводка KPI Степанов Кирилл Викторович.xlsx"
    data = summary_bytes(leaky)
    (out / FOLDER / STEPANOV / name).write_bytes(data)
    _fix_sha(out, STEPANOV, name, data)
    found = kinds(check_report(out, cards=False, outbox=False).leaks, f"{STEPANOV}/{name}")
    assert {("name", "1001"), ("id", "1001"), ("amount", "1001")} <= found
    assert {eid for _, eid in found} == {"1001"}  # the team itself is fine


@pytest.mark.slow
def test_a_foreign_card_inside_a_zip_bundle_is_caught(sample: Path, tmp_path: Path) -> None:
    out = copy(sample, tmp_path)
    distribute(out, Options(by=("manager",), zip=True))
    bundle = out / FOLDER / f"{STEPANOV}.zip"
    with zipfile.ZipFile(bundle, "a") as zf:
        zf.writestr("notes/extra.xlsx", card_of(out, "1038").read_bytes())
    leaks = check_report(out, cards=False, outbox=False).leaks
    assert {("name", "1038"), ("id", "1038"), ("amount", "1038")} <= kinds(leaks, "Степанов Кирилл Викторович.zip!/")
    assert ("unlisted", "") in kinds(leaks, "Степанов Кирилл Викторович.zip!/notes/extra.xlsx")


@pytest.mark.slow
def test_an_eml_carrying_someone_elses_card_or_two_recipients_is_caught(sample: Path, tmp_path: Path) -> None:
    out = copy(sample, tmp_path)
    path = out / "outbox" / "employee_1035.eml"
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    msg.add_attachment(card_of(out, "1040").read_bytes(), maintype="application", subtype="octet-stream",
                       filename="attachment.bin")
    path.write_bytes(msg.as_bytes())
    other = out / "outbox" / "employee_1036.eml"
    msg2 = email.message_from_bytes(other.read_bytes(), policy=email.policy.default)
    msg2["Cc"] = "boss@servis-plus.ru"
    other.write_bytes(msg2.as_bytes())
    leaks = check_report(out, cards=False, distribution=False).leaks
    assert {("name", "1040"), ("id", "1040"), ("amount", "1040")} <= kinds(leaks, "employee_1035.eml!/attachment.bin")
    assert ("recipients", "") in kinds(leaks, "employee_1036.eml")


@pytest.fixture(scope="module")
def encrypted_sample(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = copy(sample, tmp_path_factory.mktemp("enc"))
    report = distribute(out, Options(by=("employee", "manager"), encrypt=True))
    send(report, None, dry_run=True)
    return out


@pytest.mark.slow
def test_real_output_encrypted_is_isolated(encrypted_sample: Path) -> None:
    rep = check_report(encrypted_sample, cards=False, full=True)
    assert rep.ok, "\n".join(map(str, rep.leaks[:10]))
    # every workbook of every bundle, and of every e-mail (44 own cards, 4 mailable teams: 14 files)
    assert rep.decrypted == (44 + 44 + 7) + (44 + 14) and rep.bound == 0
    bound = check_report(encrypted_sample, cards=False)  # through binding.csv: the same files, no key derived
    assert bound.ok and bound.decrypted == 0 and bound.bound == (44 + 44 + 7) + (44 + 14)


@pytest.mark.slow
def test_encrypted_leaks_are_caught_after_decryption_and_unopenable_files_reported(encrypted_sample: Path,
                                                                                  tmp_path: Path) -> None:
    out = copy(encrypted_sample, tmp_path)
    pw = {r["bundle"]: r["password"] for r in csv.DictReader(io.StringIO(
        (out / FOLDER / "passwords.csv").read_bytes().decode("utf-8-sig")))}
    folder = out / FOLDER / MEDVEDEV
    (folder / "x.xlsx").write_bytes(encrypt_xlsx(card_of(out, "1001").read_bytes(), pw[MEDVEDEV]))
    (folder / "y.xlsx").write_bytes(encrypt_xlsx(card_of(out, "1035").read_bytes(), "a password nobody has"))
    (folder / "z.xlsx").write_bytes(card_of(out, "1002").read_bytes())  # plain among encrypted: still read
    leaks = check_report(out, cards=False, outbox=False).leaks
    assert {("name", "1001"), ("id", "1001"), ("amount", "1001")} <= kinds(leaks, f"{MEDVEDEV}/x.xlsx")
    assert ("unreadable", "") in kinds(leaks, f"{MEDVEDEV}/y.xlsx")
    assert ("name", "1002") in kinds(leaks, f"{MEDVEDEV}/z.xlsx")
    assert all(MEDVEDEV in x.file for x in leaks)


@pytest.mark.slow
def test_plain_text_in_encrypted_bytes_is_caught(encrypted_sample: Path, tmp_path: Path) -> None:
    out = copy(encrypted_sample, tmp_path)
    path = out / FOLDER / MEDVEDEV / "1035 Медведев Илья Андреевич.xlsx"
    data = path.read_bytes()
    path.write_bytes(data + "Козлов Денис Иванович".encode("utf-16-le"))  # junk after the container
    leaks = check_report(out, cards=False, outbox=False).leaks
    assert ("plaintext", "1001") in kinds(leaks, MEDVEDEV)


def _with_stream(data: bytes, stream: str, at: int, text: bytes) -> bytes:
    """``data`` (an OLE file) with ``text`` written over ``stream`` from byte ``at`` (its size unchanged)."""
    import olefile

    buf = io.BytesIO(data)
    ole = olefile.OleFileIO(buf)
    body = bytearray(ole.openstream(stream).read())
    body[at:at + len(text)] = text
    ole.write_stream(stream, bytes(body))
    return buf.getvalue()


def test_clear_text_blanks_the_ciphertext_stream_and_nothing_else(sample: Path) -> None:
    import olefile

    from xl_kpi.delivery.isolation.container import clear_text

    card = next((sample / "cards").rglob("*.xlsx")).read_bytes()
    enc = encrypt_xlsx(card, "pw")
    clear = clear_text(enc)
    a, b = olefile.OleFileIO(enc), olefile.OleFileIO(clear)
    assert len(clear) == len(enc)
    assert b.openstream("EncryptedPackage").read() == bytes(a.get_size("EncryptedPackage"))
    others = [s for s in a.listdir() if s != ["EncryptedPackage"]]
    assert others and all(a.openstream(s).read() == b.openstream(s).read() for s in others)
    changed = sum(x != y for x, y in zip(enc, clear, strict=True))
    assert 0 < changed <= a.get_size("EncryptedPackage")
    junk = b"\xd0\xcf\x11\xe0 not a container"
    assert clear_text(card) == card and clear_text(junk) == junk


@pytest.mark.slow
def test_names_in_the_container_streams_are_plaintext_chance_bytes_in_the_ciphertext_are_not(
        encrypted_sample: Path, tmp_path: Path) -> None:
    """The ciphertext is proven by decrypting it, the rest of the container by reading it: a name in a clear
    stream is plain text; the same bytes inside the ciphertext (as an amount's digits occur there by chance in
    about one card in a thousand) are not, and the damaged ciphertext is still reported."""
    out = copy(encrypted_sample, tmp_path)
    path = out / FOLDER / MEDVEDEV / "1035 Медведев Илья Андреевич.xlsx"
    data = path.read_bytes()
    name = "Козлов Денис Иванович".encode("utf-16-le")
    path.write_bytes(_with_stream(data, "\x06DataSpaces/Version", 4, name))
    leaks = check_report(out, cards=False, outbox=False).leaks
    assert ("plaintext", "1001") in kinds(leaks, MEDVEDEV)
    path.write_bytes(_with_stream(data, "EncryptedPackage", 5000, name))
    leaks = check_report(out, cards=False, outbox=False).leaks
    assert ("plaintext", "1001") not in kinds(leaks, MEDVEDEV)
    assert kinds(leaks, MEDVEDEV)  # the altered file does not pass: its content is not the checked one


# --------------------------------------------------------------------------- false positives


def test_numbers_are_read_in_every_format() -> None:
    for text in ("22950", "22950.0", "22950,00", "22 950,00 ₽", "22\u00a0950,00", "22,950.00", "22.950,00",
                 "22950.000000000004", "2.295E4", "Премия: 22 950 руб."):
        assert 2295000 in numbers_in(norm_name(text).replace("\n", " ")), text
    assert 2295000 not in numbers_in("122950") and 2295000 not in numbers_in("22950.5")
    assert 2295000 not in numbers_in("229500") and 2295000 not in numbers_in("1,229,500.00")
    assert {150000, 150} <= numbers_in("1,500")  # grouping or decimal comma: both readings


@pytest.mark.slow
def test_same_bonus_and_manager_names_are_not_leaks(sample: Path) -> None:
    """Медведев (1035) and Борисова (1043) both earn 20 800; Медведев's card names his manager Степанов (1031)."""
    emp = load_results(sample).employees.set_index("employee_id")
    assert emp.loc["1035", "bonus"] == emp.loc["1043", "bonus"] == 20800
    assert emp.loc["1035", "manager"] == emp.loc["1031", "name"]
    assert not [x for x in check(sample) if MEDVEDEV in x.file]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hostile names (=HYPERLINK, <tags>, +/-/@), a one-digit id (9), managers by id and by name."""
    r = _results_fixture.sample_results()
    emp = r.employees.copy()
    emp["employee_id"] = emp["employee_id"].astype(str)
    emp["status"] = "ok"
    manager = {"E001": "иванова  мария сергеевна", "E003": "Иванова Мария Сергеевна", "E004": "9", "E006": "9",
               "E007": "Иванова Мария Сергеевна"}
    emp["manager"] = [manager.get(e, "Olga Popova") for e in emp["employee_id"]]
    lines = r.lines.copy()
    lines["employee_id"] = lines["employee_id"].astype(str)
    results = Results(lines=lines, employees=emp, scales=r.scales, period=r.period, currency=r.currency,
                      company=r.company, language="en")
    out = tmp_path_factory.mktemp("hostile") / "out"
    out.mkdir()
    save_results(results, out)
    write_manifest(write_cards(results, out, lang="en", fsync=False), out)
    report = distribute(out, Options(by=("employee", "manager"), zip=True))
    send(report, None, dry_run=True)
    return out


@pytest.mark.slow
def test_hostile_names_and_short_ids_are_isolated(hostile: Path) -> None:
    report = check_report(hostile)
    assert report.ok, "\n".join(map(str, report.leaks[:10]))
    rows = list(csv.DictReader(io.StringIO((hostile / FOLDER / INDEX).read_bytes().decode("utf-8-sig"))))
    teams = {r["bundle"]: set() for r in rows if r["bundle"].startswith("manager/")}
    for r in rows:
        if r["bundle"] in teams and r["employee_id"]:
            teams[r["bundle"]].add(r["employee_id"])
    assert teams["manager/Иванова Мария Сергеевна.zip"] == {"E001", "E003", "E007"}  # by name, any case/spacing
    assert teams["manager/Numeric Id.zip"] == {"E004", "E006"}  # by employee id
    assert any(r["recipient"] == "'=HYPERLINK(\"http://evil\",\"x\")" for r in rows)  # neutralised in the CSV


@pytest.mark.slow
def test_a_short_id_counts_only_as_a_text_cell(hostile: Path, tmp_path: Path) -> None:
    out = copy(hostile, tmp_path)
    bundle = out / FOLDER / "employee" / "E001 Ivan Petrov.zip"

    def plant(value: object) -> list:
        wb = openpyxl.Workbook()
        wb.active["A1"] = value
        wb.active["A2"] = 9.5
        buf = io.BytesIO()
        wb.save(buf)
        data = bundle.read_bytes() if not (tmp_path / "orig.zip").exists() else (tmp_path / "orig.zip").read_bytes()
        (tmp_path / "orig.zip").write_bytes(data)
        with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(bundle, "w") as zout:
            for i in zin.infolist():
                zout.writestr(i, zin.read(i))
            zout.writestr("planted.xlsx", buf.getvalue())
        return [x for x in check_report(out, cards=False, outbox=False).leaks if x.kind != "unlisted"]

    assert plant(9) == []  # the number 9 (a row number, a KPI value) is nobody's id
    assert [(x.kind, x.employee_id) for x in plant("9")] == [("id", "9")]  # the text cell "9" is employee 9


# ------------------------------------------------------------------ every part, read as XML (issue 9 §6)


def _rewrite_part(path: Path, part: str, change) -> bytes:
    """Rewrite one part of the workbook at ``path`` with ``change(text) -> text``; the new bytes."""
    with zipfile.ZipFile(path) as zin:
        parts = [(i, zin.read(i)) for i in zin.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in parts:
            zout.writestr(info, change(data.decode("utf-8")).encode("utf-8") if info.filename == part else data)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _planted(sample: Path, tmp_path: Path, part: str, change) -> list:
    """Медведев's own card in his bundle, one part changed (sha256 in index.csv fixed): the findings there."""
    out = copy(sample, tmp_path)
    target = out / FOLDER / MEDVEDEV / "1035 Медведев Илья Андреевич.xlsx"
    _fix_sha(out, MEDVEDEV, target.name, _rewrite_part(target, part, change))
    return [x for x in check_report(out, cards=False, outbox=False).leaks if MEDVEDEV in x.file]


KOZLOV_ROW = '<row r="999"><c r="A999" t="inlineStr"><is><t>{}</t></is></c></row></sheetData>'


@pytest.mark.slow
def test_a_leak_hidden_in_a_cdata_section_is_caught(sample: Path, tmp_path: Path) -> None:
    leaks = _planted(sample, tmp_path, "xl/worksheets/sheet1.xml", lambda x: x.replace(
        "</sheetData>", KOZLOV_ROW.format("<![CDATA[Козлов Денис Иванович, табельный 1001]]>")))
    assert {("name", "1001"), ("id", "1001")} <= {(x.kind, x.employee_id) for x in leaks}


@pytest.mark.slow
def test_a_leak_in_a_single_quoted_attribute_is_caught(sample: Path, tmp_path: Path) -> None:
    leaks = _planted(sample, tmp_path, "xl/workbook.xml",
                     lambda x: x.replace("<sheet ", "<sheet descr='Козлов Денис Иванович' ", 1))
    assert ("name", "1001") in {(x.kind, x.employee_id) for x in leaks}


@pytest.mark.slow
def test_a_leak_in_an_xml_comment_is_caught(sample: Path, tmp_path: Path) -> None:
    leaks = _planted(sample, tmp_path, "docProps/core.xml",
                     lambda x: x.replace("</cp:coreProperties>", "<!-- Козлов Денис Иванович --></cp:coreProperties>"))
    assert ("name", "1001") in {(x.kind, x.employee_id) for x in leaks}


@pytest.mark.slow
def test_a_part_declaring_entities_is_reported_and_still_read(sample: Path, tmp_path: Path) -> None:
    """An entity can assemble a name written nowhere; such a part cannot be vouched for."""
    leaks = _planted(sample, tmp_path, "docProps/core.xml", lambda x: x.replace(
        "<cp:coreProperties", '<!DOCTYPE x [<!ENTITY k "Козлов Денис Иванович">]><cp:coreProperties', 1))
    found = {(x.kind, x.employee_id) for x in leaks}
    assert ("unreadable", "") in found and ("name", "1001") in found
    assert any("docProps/core.xml" in x.file and "entities" in x.evidence for x in leaks)


@pytest.mark.slow
def test_a_part_that_is_not_well_formed_is_still_read_whole(sample: Path, tmp_path: Path) -> None:
    leaks = _planted(sample, tmp_path, "docProps/core.xml", lambda x: x.replace(
        "</cp:coreProperties>", "<broken a='Козлов Денис Иванович'><![CDATA[1001]]></cp:coreProperties>"))
    assert {("name", "1001"), ("id", "1001")} <= {(x.kind, x.employee_id) for x in leaks}


@pytest.mark.slow
def test_a_name_in_a_formula_literal_is_caught_but_cell_references_are_no_ids(sample: Path, tmp_path: Path) -> None:
    formula = '<f>IF($A$1&gt;0,"1001 Козлов Денис Иванович","")</f>'
    leaks = _planted(sample, tmp_path, "xl/worksheets/sheet1.xml", lambda x: x.replace(
        "</sheetData>", f'<row r="999"><c r="A999" t="str">{formula}</c></row></sheetData>'))
    assert {("name", "1001"), ("id", "1001")} <= {(x.kind, x.employee_id) for x in leaks}


@pytest.fixture(scope="module")
def one_letter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The card-test company with the ids A … I (one letter each), managed by B; distributed and mailed (dry run)."""
    r = _results_fixture.sample_results()
    ids = dict(zip(r.employees["employee_id"].astype(str), "ABCDEFGHI", strict=True))
    emp = r.employees.copy()
    emp["employee_id"] = emp["employee_id"].astype(str).map(ids)
    emp["email"] = [f"{e.lower()}@example.com" for e in emp["employee_id"]]
    emp["manager"] = ["Olga Popova" if e == "B" else "B" for e in emp["employee_id"]]
    lines = r.lines.copy()
    lines["employee_id"] = lines["employee_id"].astype(str).map(ids)
    results = Results(lines=lines, employees=emp, scales=r.scales, period=r.period, currency=r.currency,
                      company=r.company, language="en")
    out = tmp_path_factory.mktemp("letters") / "out"
    out.mkdir()
    save_results(results, out)
    write_manifest(write_cards(results, out, lang="en", fsync=False), out)
    report = distribute(out, Options(by=("employee", "manager")))
    send(report, None, dry_run=True)  # raises LeakError if the check finds anything
    return out


@pytest.mark.slow
def test_one_letter_ids_give_no_false_leaks(one_letter: Path) -> None:
    """Formulas say $D$30 and 'Card'!$H$11: no id D or H there; nor is A in 'Average' or 'a'."""
    report = check_report(one_letter)
    assert report.ok, "\n".join(map(str, report.leaks[:10]))
    assert len(list((one_letter / "outbox").glob("*.eml"))) == 9 + 1


def test_one_letter_ids_a_real_leak_is_still_found(one_letter: Path, tmp_path: Path) -> None:
    out = copy(one_letter, tmp_path)
    folder = next((out / FOLDER / "employee").glob("A *"))
    shutil.copy(card_of(out, "D"), folder / "D.xlsx")
    found = kinds(check_report(out, cards=False, outbox=False).leaks, f"{folder.name}/D.xlsx")
    assert {("name", "D"), ("id", "D"), ("amount", "D")} <= found


@pytest.mark.slow
def test_one_shared_mailbox_in_two_spellings_is_one_mailbox(sample: Path, tmp_path: Path) -> None:
    """ivan@почта.рф and ivan@xn--80a1acny.xn--p1ai are one mailbox: a message there reaches two employees."""
    out = copy(sample, tmp_path)
    results = load_results(out)
    emp = results.employees.copy()
    emp.loc[emp["employee_id"] == "1035", "email"] = "ivan@почта.рф"
    emp.loc[emp["employee_id"] == "1036", "email"] = "Ivan@XN--80A1ACNY.xn--p1ai"
    save_results(replace(results, employees=emp), out)
    path = out / "outbox" / "employee_1035.eml"
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    msg.replace_header("To", "ivan@xn--80a1acny.xn--p1ai")
    path.write_bytes(msg.as_bytes())
    leaks = [x for x in check_report(out, cards=False, distribution=False).leaks if "employee_1035" in x.file]
    assert any(x.kind == "recipients" and "2 employees (1035, 1036)" in x.evidence for x in leaks), leaks


def test_a_teams_own_average_is_allowed_as_excel_rounds_it():
    """A team summary's AVERAGE of 999.99 and 1000.02 shows 1000.01 (Excel's ROUND of 1000.005); Python's round()
    gives 1000.0, which would leave the team's own figure looking like somebody else's amount."""
    from types import SimpleNamespace

    import pandas as pd

    from xl_kpi.delivery.isolation.audience import _Company
    from xl_kpi.delivery.isolation.text import _cents

    emp = pd.DataFrame({"employee_id": ["E1", "E2", "E3"], "name": ["Анна Петрова", "Иван Сидоров", "Олег Котов"],
                        "department": ["Sales", "Sales", "Support"], "manager": "", "email": "",
                        "bonus": [999.99, 1000.02, 5000.0]})
    lines = pd.DataFrame({"employee_id": ["E1", "E2", "E3"], "fact": [1, 2, 3]})
    company = _Company(SimpleNamespace(employees=emp, lines=lines, period="2026-10"))
    assert _cents(1000.01) in company.allowed(frozenset({"E1", "E2"})).numbers


def _scan_text(audience: set[str], text: str) -> set[tuple[str, str]]:
    """(kind, employee id) of every finding in ``text`` for a file meant for ``audience`` (a small company whose
    names carry digits: Иван Петров 4050's name holds Олег Котов's bonus of 4 050)."""
    from types import SimpleNamespace

    import pandas as pd

    from xl_kpi.delivery.isolation.audience import _Company
    from xl_kpi.delivery.isolation.model import IsolationReport
    from xl_kpi.delivery.isolation.scan import _Scanner
    from xl_kpi.delivery.isolation.text import _Text

    emp = pd.DataFrame({"employee_id": ["E1", "E2", "E3"],
                        "name": ["Иван Петров 4050", "Олег Котов", "Анна Сидорова 7777"],
                        "department": "Sales", "manager": "", "email": "",
                        "bonus": [1234.5, 4050.0, 9100.0], "salary": [60000.0, 61000.0, 62000.0]})
    lines = pd.DataFrame({"employee_id": ["E1", "E2", "E3"], "fact": [1, 2, 3]})
    company = _Company(SimpleNamespace(employees=emp, lines=lines, period="2026-10"))
    report = IsolationReport()
    t = _Text()
    t.add(text)
    _Scanner(company, report).match("file", t, company.allowed(frozenset(audience)), "")
    return {(x.kind, x.employee_id) for x in report.leaks}


def test_digits_in_the_audiences_own_name_are_no_amount() -> None:
    """The number inside the audience's own name is part of the name; written anywhere else it is still read,
    and inside somebody else's name it is still found (with the name)."""
    assert _scan_text({"E1"}, "Карта: Иван Петров 4050, премия 1 234,50") == set()
    assert _scan_text({"E1"}, "ИВАН  ПЕТРОВ 4050") == set()  # any case and spacing, as names are compared
    # the same number elsewhere in the file: Котов's bonus
    assert _scan_text({"E1"}, "Иван Петров 4050; итого 4 050,00") == {("amount", "E2")}
    assert _scan_text({"E1"}, "Иван Петров 4050,00") == {("amount", "E2")}  # reaching past the name: read whole
    assert _scan_text({"E1"}, "Иван Петров 40501 4050") == {("amount", "E2")}  # not the name: no mask
    # another person's name with digits: their name, and the number in it, are found
    assert _scan_text({"E3"}, "Анна Сидорова 7777 и Иван Петров 4050") == {("name", "E1"), ("amount", "E2")}


@pytest.mark.slow
def test_the_check_reports_progress_and_finds_the_same_with_two_workers(sample: Path, tmp_path: Path,
                                                                              monkeypatch) -> None:
    """Two forked workers count the files they have checked and the progress follows them to the total; the
    findings (a card planted in someone else's bundle) and the counts are those of the check in one process."""
    import importlib

    isolation_check = importlib.import_module("xl_kpi.delivery.isolation.check")  # the package's check() hides it
    out = copy(sample, tmp_path)
    bundle = out / FOLDER / STEPANOV
    shutil.copyfile(card_of(out, "1038"), bundle / "planted.xlsx")
    one = check_report(out)
    monkeypatch.setattr(isolation_check, "PROGRESS_EVERY", 3)
    seen: list[tuple[int, int]] = []
    two = check_report(out, jobs=2, on_progress=lambda n, total: seen.append((n, total)))
    assert (two.files, two.skipped_ambiguous) == (one.files, one.skipped_ambiguous)
    assert len({n for n, _ in seen}) >= 3 and [n for n, _ in seen] == sorted(n for n, _ in seen)
    assert seen[-1][0] == seen[-1][1] and {total for _, total in seen} == {seen[-1][1]}
    assert two.leaks == one.leaks and ("name", "1038") in kinds(two.leaks, "planted.xlsx")
    serial: list[tuple[int, int]] = []
    check_report(out, on_progress=lambda n, total: serial.append((n, total)))
    assert serial[-1] == seen[-1]
