"""Encryption of cards and bundles: real Office (ECMA-376 agile) encryption, passwords for HR."""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import stat
import zipfile
from pathlib import Path

import msoffcrypto
import openpyxl
import pytest
from msoffcrypto import exceptions as mso_exceptions
from typer.testing import CliRunner

from xl_kpi.cli import app
from xl_kpi.delivery.crypto import (
    ALPHABET,
    PASSWORD_BITS,
    WrongPasswordError,
    decrypt_xlsx,
    encrypt_xlsx,
    generate_password,
    is_encrypted,
    read_passwords,
)
from xl_kpi.delivery.distribute import FOLDER, PASSWORDS, Options, distribute
from xl_kpi.delivery.isolation import check_report
from xl_kpi.inputs.problems import Problems

runner = CliRunner()


@pytest.fixture(scope="module")
def card(generated: Path) -> tuple[bytes, dict[str, str]]:
    """Козлов Денис Иванович's card and what must not be readable without the password."""
    path = next((generated / "cards").rglob("1001 *.xlsx"))
    return path.read_bytes(), {"name": "Козлов Денис Иванович", "id": "1001", "bonus": "22950", "total": "86950",
                               "salary": "64000"}


def values(data: bytes) -> list[list[object]]:
    wb = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    return [[c for c in row] for ws in wb.worksheets for row in ws.iter_rows(values_only=True)]


# ------------------------------------------------------------------------------------ passwords


def test_generated_passwords_are_strong_and_unambiguous() -> None:
    pws = {generate_password() for _ in range(500)}
    assert len(pws) == 500
    assert len(ALPHABET) == len(set(ALPHABET)) == 32 and not set("0O1I") & set(ALPHABET)
    assert PASSWORD_BITS == 20 * math.log2(len(ALPHABET)) >= 100
    for pw in pws:
        groups = pw.split("-")
        assert len(groups) == 4 and all(len(g) == 5 and set(g) <= set(ALPHABET) for g in groups)


def test_passwords_file_is_checked(tmp_path: Path) -> None:
    f = tmp_path / "pw.csv"
    f.write_text("employee_id,password,bundle\n1001,correct horse battery,\n'-7,also long enough,\n"
                 "1002,short,\n1003,,\n1004, spaced pass ,\n1001,another password,\n,team secret pw,manager/X\n",
                 encoding="utf-8-sig")
    problems = Problems()
    by_id, by_bundle = read_passwords(f, problems)
    assert by_id == {"1001": "correct horse battery", "-7": "also long enough"}
    assert by_bundle == {"manager/X": "team secret pw"}
    messages = " | ".join(p.message for p in problems.errors)
    assert "shorter than 8" in messages and "no password for 1003" in messages
    assert "space" in messages and "two different passwords for 1001" in messages
    problems = Problems()
    (tmp_path / "bad.csv").write_text("id,pw\n1,2\n", encoding="utf-8")
    read_passwords(tmp_path / "bad.csv", problems)
    assert problems.has_errors


# ------------------------------------------------------------------------------------ encryption


@pytest.mark.slow
def test_right_password_decrypts_and_the_values_are_intact(card) -> None:
    data, _ = card
    enc = encrypt_xlsx(data, "K7QX2-M9TZC-4HWPA-R8NDE")
    assert is_encrypted(enc) and not is_encrypted(data)
    plain = decrypt_xlsx(enc, "K7QX2-M9TZC-4HWPA-R8NDE")
    assert plain == data
    # msoffcrypto-tool, the way Excel-compatible readers do it
    office = msoffcrypto.OfficeFile(io.BytesIO(enc))
    office.load_key(password="K7QX2-M9TZC-4HWPA-R8NDE", verify_password=True)
    out = io.BytesIO()
    office.decrypt(out, verify_integrity=True)
    assert values(out.getvalue()) == values(data)
    assert "agile" == office.type  # the ECMA-376 agile kind Excel 2010+ writes (AES-256, SHA-512)


@pytest.mark.slow
def test_a_wrong_password_fails(card) -> None:
    data, _ = card
    enc = encrypt_xlsx(data, "K7QX2-M9TZC-4HWPA-R8NDE")
    with pytest.raises(WrongPasswordError):
        decrypt_xlsx(enc, "K7QX2-M9TZC-4HWPA-R8NDF")
    office = msoffcrypto.OfficeFile(io.BytesIO(enc))
    with pytest.raises(mso_exceptions.InvalidKeyError):
        office.load_key(password="wrong password", verify_password=True)
    with pytest.raises((mso_exceptions.InvalidKeyError, mso_exceptions.DecryptionError)):
        office = msoffcrypto.OfficeFile(io.BytesIO(enc))
        office.load_key(password="wrong password")
        office.decrypt(io.BytesIO())


@pytest.mark.slow
def test_the_encrypted_file_holds_no_plain_name_or_number(card) -> None:
    data, secrets_ = card
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        plain_text = b"".join(zf.read(n) for n in zf.namelist())
    for v in secrets_.values():  # they are in the plain card...
        assert v.encode("utf-8") in plain_text
    enc = encrypt_xlsx(data, "K7QX2-M9TZC-4HWPA-R8NDE")
    assert not zipfile.is_zipfile(io.BytesIO(enc))
    for v in secrets_.values():  # ...and in no encoding in the encrypted one
        for encoding in ("utf-8", "utf-16-le", "utf-16-be", "cp1251"):
            assert v.encode(encoding) not in enc, (v, encoding)
    for word in ("Карта", "sheet", "worksheet", "Kozlov"):
        assert word.encode("utf-8") not in enc and word.encode("utf-16-le") not in enc
    assert encrypt_xlsx(data, "K7QX2-M9TZC-4HWPA-R8NDE") != enc  # fresh salts every time


# ------------------------------------------------------------------------------------ bundles


@pytest.fixture(scope="module")
def encrypted(generated: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("enc") / "out"
    shutil.copytree(generated, out)
    given = out.parent / "hr-passwords.csv"
    given.write_text("employee_id,password\n1031,Stepanov-own-password\n1001,Kozlov-own-password\n",
                     encoding="utf-8")
    report = distribute(out, Options(by=("employee", "manager"), encrypt=True, passwords=given))
    return out, report


def pw_rows(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / FOLDER / PASSWORDS).read_bytes().decode("utf-8-sig"))))


@pytest.mark.slow
def test_every_workbook_of_a_bundle_opens_with_its_recipients_password_only(encrypted) -> None:
    out, report = encrypted
    rows = {r["bundle"]: r for r in pw_rows(out)}
    assert len(rows) == len([b for b in report.bundles if not b.failed]) == 44 + 7
    assert report.passwords == {"given": 3, "reused": 0, "generated": 48}
    for b in report.bundles:
        pw = rows[b.key]["password"]
        assert pw == b.password
        for f in b.files:
            enc = (out / FOLDER / b.key / f.name).read_bytes()
            assert is_encrypted(enc)
            plain = decrypt_xlsx(enc, pw)
            assert zipfile.is_zipfile(io.BytesIO(plain))
    # the manager's bundle uses the manager's own password; a team whose manager is no employee gets its own
    assert rows["manager/Степанов Кирилл Викторович"]["password"] == "Stepanov-own-password"
    assert rows["employee/1031 Степанов Кирилл Викторович"]["password"] == "Stepanov-own-password"
    assert rows["employee/1001 Козлов Денис Иванович"]["password"] == "Kozlov-own-password"
    sokolova = rows["manager/Соколова Анна Викторовна"]
    assert sokolova["employee_id"] == "" and len(sokolova["password"]) == 23
    other = (out / FOLDER / "employee" / "1002 Кузнецов Денис Владимирович" /
             "1002 Кузнецов Денис Владимирович.xlsx").read_bytes()
    with pytest.raises(WrongPasswordError):
        decrypt_xlsx(other, "Kozlov-own-password")


@pytest.mark.slow
def test_passwords_file_is_private_and_never_inside_a_bundle(encrypted) -> None:
    out, _ = encrypted
    pw_file = out / FOLDER / PASSWORDS
    if os.name == "posix":
        assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    bundles = [p for p in (out / FOLDER).rglob("*") if p.is_file() and p.parent != out / FOLDER]
    assert bundles and all(p.suffix == ".xlsx" for p in bundles)
    secrets_ = [r["password"] for r in pw_rows(out)]
    for p in bundles:
        data = p.read_bytes()
        assert not any(s.encode() in data for s in secrets_)


@pytest.mark.slow
def test_isolation_check_decrypts_with_the_passwords_file(encrypted) -> None:
    out, _ = encrypted
    report = check_report(out, cards=False, full=True)
    assert report.ok, report.leaks[:5]
    assert report.files == report.decrypted == 44 + 44 + 7  # every workbook opened with its password
    bound = check_report(out, cards=False)  # through binding.csv: no password needed
    assert bound.ok and bound.decrypted == 0 and bound.bound == 44 + 44 + 7


@pytest.mark.slow
def test_rerun_keeps_passwords_and_bytes_new_passwords_changes_them(generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(generated, out)
    distribute(out, Options(by=("employee",), encrypt=True))
    card = out / FOLDER / "employee" / "1001 Козлов Денис Иванович" / "1001 Козлов Денис Иванович.xlsx"
    first, pws = card.read_bytes(), pw_rows(out)
    again = distribute(out, Options(by=("employee",), encrypt=True))
    assert again.reused == 44 and again.encrypted == 0 and again.passwords["reused"] == 44
    assert card.read_bytes() == first and pw_rows(out) == pws  # a resumed mail run sees the same files
    fresh = distribute(out, Options(by=("employee",), encrypt=True, new_passwords=True))
    assert fresh.passwords["generated"] == 44 and fresh.encrypted == 44
    new = {r["bundle"]: r["password"] for r in pw_rows(out)}
    old = {r["bundle"]: r["password"] for r in pws}
    assert all(new[k] != old[k] for k in old)
    with pytest.raises(WrongPasswordError):
        decrypt_xlsx(card.read_bytes(), old["employee/1001 Козлов Денис Иванович"])


@pytest.mark.slow
def test_cli_encrypt_refuses_plain_pdfs_and_reports_the_passwords_file(generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(generated, out)
    res = runner.invoke(app, ["distribute", str(out), "--encrypt", "--pdf-only"])
    assert res.exit_code == 2 and "PDFs cannot be encrypted" in res.output
    assert not (out / FOLDER).exists()
    res = runner.invoke(app, ["distribute", str(out), "--by", "manager", "--encrypt", "--zip", "--check"])
    assert res.exit_code == 0, res.output
    assert "passwords.csv" in res.output and "for HR only" in res.output
    assert "✓ isolation check" in res.output
    assert not any(PASSWORDS in zipfile.ZipFile(p).namelist() for p in (out / FOLDER / "manager").iterdir())
