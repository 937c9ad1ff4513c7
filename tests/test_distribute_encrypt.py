"""--encrypt at scale: the key derived once and the read-back proof (binding), the check through binding.csv,
--full-check, the journal (an interrupted run resumes), --jobs."""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import msoffcrypto
import pytest
from typer.testing import CliRunner

from xl_kpi.cli import app
from xl_kpi.delivery import crypto
from xl_kpi.delivery.crypto import BindingError, confirm_binding, decrypt_xlsx, encrypt_bound
from xl_kpi.delivery.distribute import FOLDER, INDEX, Options, distribute
from xl_kpi.delivery.distribute.encrypt import JOURNAL
from xl_kpi.delivery.isolation import check_report
from xl_kpi.outputs.layout import BINDING

runner = CliRunner()
PW = "K7QX2-M9TZC-4HWPA-R8NDE"


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


def write_rows(path: Path, data: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(data[0]), lineterminator="\r\n")
    w.writeheader()
    w.writerows(data)
    path.write_bytes(buf.getvalue().encode("utf-8"))


def cards(generated: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((generated / "cards").rglob("*.xlsx"))[:2]]


# ------------------------------------------------------------------------------ the key derived once


@pytest.mark.slow
def test_encrypt_bound_opens_with_the_password_to_exactly_the_plain_workbook(generated: Path) -> None:
    plain = cards(generated)[0]
    enc = encrypt_bound(plain, PW)
    assert decrypt_xlsx(enc, PW) == plain  # msoffcrypto-tool, from the password alone
    office = msoffcrypto.OfficeFile(io.BytesIO(enc))
    assert office.info["spinValue"] == 100_000  # Excel's spin count kept
    office.load_key(password=PW, verify_password=True)  # the verifier Excel checks


@pytest.mark.slow
def test_encrypt_bound_derives_the_key_once(generated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from msoffcrypto.method.ecma376_agile import ECMA376Agile

    calls = []
    real = ECMA376Agile._derive_iterated_hash_from_password

    def counting(*a, **k):
        calls.append(a[3])
        return real(*a, **k)

    monkeypatch.setattr(ECMA376Agile, "_derive_iterated_hash_from_password", staticmethod(counting))
    encrypt_bound(cards(generated)[0], PW)
    assert calls == [100_000]  # encrypting AND proving it: one derivation of 100,000 rounds


@pytest.mark.slow
def test_binding_catches_a_swapped_a_modified_and_a_foreign_key_file(generated: Path) -> None:
    a, b = cards(generated)
    info, secret, derived = crypto._parameters(PW)
    salt = info.encryptedKey.saltValue
    from msoffcrypto.method.container.ecma376_encrypted import ECMA376Encrypted
    from msoffcrypto.method.ecma376_agile import ECMA376Agile

    package = ECMA376Agile.encrypt_payload(io.BytesIO(a), info.encryptedKey, secret, info.keyData.saltValue)
    out = io.BytesIO()
    ECMA376Encrypted(package, ECMA376Agile.get_encryption_information(info, package, secret)).write_to(out)
    enc = out.getvalue()
    confirm_binding(enc, a, derived, salt)  # the honest file passes
    with pytest.raises(BindingError, match="does not decrypt to the checked workbook"):
        confirm_binding(enc, b, derived, salt)  # another employee's plain card
    other = encrypt_bound(b, PW)  # same password, other content, other salts
    with pytest.raises(BindingError):
        confirm_binding(other, a, derived, salt)
    damaged = bytearray(enc)
    damaged[-200] ^= 0xFF  # one byte of the encrypted package flipped
    with pytest.raises(BindingError):
        confirm_binding(bytes(damaged), a, derived, salt)
    _, _, wrong = crypto._parameters("another-password-123")
    with pytest.raises(BindingError, match=r"verifier|salt"):
        confirm_binding(enc, a, wrong, salt)


# ------------------------------------------------------------------------------ the check through binding.csv


@pytest.fixture(scope="module")
def bound_out(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bound") / "out"
    shutil.copytree(generated, out)
    report = distribute(out, Options(by=("employee", "manager"), encrypt=True, jobs=2))
    assert report.encrypted == 44 + 44 + 7 and report.resumed == 0
    return out


def fresh_copy(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    return out


@pytest.mark.slow
def test_every_encrypted_file_is_bound_and_checked_without_a_key_derivation(bound_out: Path) -> None:
    binding = rows(bound_out / FOLDER / BINDING)
    index = {(r["bundle"], r["file"]): r for r in rows(bound_out / FOLDER / INDEX)}
    assert len(binding) == len(index) == 44 + 44 + 7
    for r in binding:  # each row names the encrypted bytes and the plain workbook they open to
        assert index[(r["bundle"], r["file"])]["sha256"] == r["sha256"]
        assert index[(r["bundle"], r["file"])]["source_sha256"] == r["source_sha256"]
    rep = check_report(bound_out)
    assert rep.ok, rep.leaks[:5]
    assert rep.bound == 44 + 44 + 7 and rep.decrypted == 0
    full = check_report(bound_out, full=True)
    assert full.ok and full.bound == 0 and full.decrypted == 44 + 44 + 7


@pytest.mark.slow
def test_a_swapped_encrypted_file_is_caught_by_the_bound_check(bound_out: Path, tmp_path: Path) -> None:
    out = fresh_copy(bound_out, tmp_path)
    dist = out / FOLDER
    a = dist / "employee" / "1001 Козлов Денис Иванович" / "1001 Козлов Денис Иванович.xlsx"
    b = dist / "employee" / "1002 Кузнецов Денис Владимирович" / "1002 Кузнецов Денис Владимирович.xlsx"
    shutil.copyfile(a, b)  # Kozlov's encrypted card in Kuznetsov's bundle, index.csv "fixed" to match
    index = rows(dist / INDEX)
    sha_a = next(r["sha256"] for r in index if r["file"] == a.name)
    for r in index:
        if r["file"] == b.name:
            r["sha256"] = sha_a
    write_rows(dist / INDEX, index)
    rep = check_report(out, cards=False)
    found = {(lk.kind, lk.employee_id) for lk in rep.leaks if lk.file.startswith(f"{FOLDER}/employee/1002 ")}
    assert ("name", "1001") in found and ("amount", "1001") in found
    assert rep.decrypted == 0  # found through the binding, no password needed


@pytest.mark.slow
def test_a_modified_encrypted_file_is_not_bound_and_a_forged_binding_is_caught_by_full_check(
        bound_out: Path, tmp_path: Path) -> None:
    out = fresh_copy(bound_out, tmp_path)
    dist = out / FOLDER
    b = dist / "employee" / "1002 Кузнецов Денис Владимирович" / "1002 Кузнецов Денис Владимирович.xlsx"
    data = bytearray(b.read_bytes())
    data[-100] ^= 0x01
    b.write_bytes(bytes(data))
    rep = check_report(out, cards=False)
    kinds = {lk.kind for lk in rep.leaks if "1002 " in lk.file}
    assert "modified" in kinds and "unreadable" in kinds  # not bound (new sha), and the password cannot open it
    # a forged binding.csv (someone's card in another's bundle, every record rewritten): the bound check
    # trusts binding.csv as it trusts index.csv; --full-check decrypts from passwords.csv and catches it
    out2 = fresh_copy(bound_out, tmp_path / "2")
    dist = out2 / FOLDER
    a = dist / "employee" / "1001 Козлов Денис Иванович" / "1001 Козлов Денис Иванович.xlsx"
    b = dist / "employee" / "1002 Кузнецов Денис Владимирович" / "1002 Кузнецов Денис Владимирович.xlsx"
    shutil.copyfile(a, b)
    index, binding = rows(dist / INDEX), rows(dist / BINDING)
    sha_a = next(r["sha256"] for r in index if r["file"] == a.name)
    for table in (index, binding):
        for r in table:
            if r["file"] == b.name:
                r["sha256"] = sha_a
    binding = [r for r in binding if r["file"] != a.name]  # Kozlov's ciphertext now "bound" to Kuznetsov's card
    write_rows(dist / INDEX, index)
    write_rows(dist / BINDING, binding)
    full = check_report(out2, cards=False, full=True)
    assert any(lk.kind == "unreadable" and lk.file.startswith(f"{FOLDER}/employee/1002 ") for lk in full.leaks)
    res = runner.invoke(app, ["distribute", str(out2), "--full-check"])
    assert res.exit_code == 1 and "unreadable" in res.output


@pytest.mark.slow
def test_cli_encrypt_check_uses_the_binding(generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(generated, out)
    res = runner.invoke(app, ["distribute", str(out), "--encrypt", "--check", "--jobs", "2"])
    assert res.exit_code == 0, res.output
    assert "✓ isolation check" in res.output and "44 encrypted workbooks checked through" in res.output
    assert "0 decrypted" in res.output


# ------------------------------------------------------------------------------ the journal, --jobs


def test_jobs_default_to_the_cores() -> None:
    assert Options().jobs == (os.cpu_count() or 1)


@pytest.mark.slow
def test_sigkill_during_encryption_then_rerun_resumes_and_ships_nothing_half_written(generated: Path,
                                                                                     tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(generated, out)
    proc = subprocess.Popen([sys.executable, "-m", "xl_kpi", "distribute", str(out), "--by", "employee",
                             "--by", "manager", "--encrypt", "--jobs", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = out / JOURNAL
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            done = [p for p in journal.glob("*.*") if len(p.name) == 129] if journal.is_dir() else []
            if len(done) >= 6:
                break
            assert proc.poll() is None, "ended before it could be killed: " + proc.stderr.read().decode()
            time.sleep(0.01)
        else:
            pytest.fail("no journal entries appeared in time")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (out / FOLDER).exists()  # nothing of the killed run is shipped
    assert oct((journal).stat().st_mode & 0o777) == "0o700"
    assert oct((journal / "passwords.json").stat().st_mode & 0o777) == "0o600"
    report = distribute(out, Options(by=("employee", "manager"), encrypt=True, jobs=1))
    assert report.resumed >= 6 and report.resumed + report.encrypted == 44 + 44 + 7
    assert report.passwords["reused"] == 0  # the killed run's passwords came back from its journal
    assert not journal.exists()
    pws = {r["bundle"]: r["password"] for r in rows(out / FOLDER / "passwords.csv")}
    for r in rows(out / FOLDER / INDEX):
        enc = (out / FOLDER / r["bundle"] / r["file"]).read_bytes()
        assert decrypt_xlsx(enc, pws[r["bundle"]])[:2] == b"PK"
    rep = check_report(out)
    assert rep.ok and rep.bound == 44 + 44 + 7


@pytest.mark.slow
def test_a_damaged_journal_entry_is_encrypted_again(generated: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    shutil.copytree(generated, out)
    from xl_kpi.delivery.distribute import build

    monkeypatch.setattr(build, "_write", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        distribute(out, Options(by=("employee",), encrypt=True, jobs=1))
    monkeypatch.undo()
    entries = sorted(p for p in (out / JOURNAL).iterdir() if len(p.name) == 129)
    assert len(entries) == 44
    entries[0].write_bytes(entries[0].read_bytes()[:-10])  # torn: no longer hashes to its name
    report = distribute(out, Options(by=("employee",), encrypt=True, jobs=1))
    assert report.resumed == 43 and report.encrypted == 1
    assert check_report(out, full=True).ok
