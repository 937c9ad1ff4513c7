"""The private LibreOffice profile (:mod:`xl_kpi.delivery.office`): it says this LibreOffice version already ran
there, so a fresh profile's start skips the graphics self-tests (about 0.8 s of CPU a start), and the PDFs stay
what they were."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import xlsxwriter

from tests import lo
from xl_kpi.delivery import office


def test_the_profile_names_the_version_and_build_it_was_given() -> None:
    xcu = office._xcu(False, ("7.4", "40(Build:2)"))
    assert '<prop oor:name="ooSetupLastVersion" oor:op="fuse"><value>7.4</value>' in xcu
    assert '<prop oor:name="LastCompatibilityCheckID" oor:op="fuse"><value>40(Build:2)</value>' in xcu
    assert '<prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>1</value>' in xcu
    assert "ooSetupLastVersion" not in office._xcu(False)  # unknown installation: LibreOffice's own first start
    assert "&lt;b&gt;" in office._xcu(True, ("7.4", "<b>"))  # a build id is XML text, escaped


def test_an_installation_it_cannot_read_gives_no_version(tmp_path: Path) -> None:
    exe = tmp_path / "program" / "soffice"
    exe.parent.mkdir()
    exe.write_text("")
    assert office._installed(str(exe)) is None
    reg = tmp_path / "share" / "registry"
    reg.mkdir(parents=True)
    (reg / "main.xcd").write_bytes(b'<prop oor:name="ooSetupVersion">\n <value>24.2</value>\n</prop>')
    (exe.parent / "versionrc").write_text("[Version]\nbuildid=abc123\n")
    office._installed.cache_clear()  # read once a process: the installation does not change under a run
    assert office._installed(str(exe)) == ("24.2", "abc123")


@pytest.mark.libreoffice
def test_the_installed_version_is_the_one_soffice_reports() -> None:
    exe = lo.require_soffice()
    got = office._installed(exe)
    if got is None:
        pytest.skip("LibreOffice is not installed the way Linux packages install it")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120).stdout
    assert re.search(rf"\b{re.escape(got[0])}\.", out), (got, out)
    assert got[1] and got[1] in out


@pytest.mark.libreoffice
def test_a_start_in_the_private_profile_skips_the_graphics_self_tests(tmp_path: Path) -> None:
    exe = lo.require_soffice()
    if office._installed(exe) is None:
        pytest.skip("LibreOffice is not installed the way Linux packages install it")
    src = tmp_path / "in" / "card.xlsx"
    src.parent.mkdir()
    book = xlsxwriter.Workbook(str(src))
    book.add_worksheet("Card").write("A1", "KPI card")
    book.close()
    for installed, tests_ran in ((office._installed(exe), False), (None, True)):
        root = tmp_path / f"profile-{tests_ran}"
        (root / "user").mkdir(parents=True)
        (root / "user" / "registrymodifications.xcu").write_text(office._xcu(False, installed), encoding="utf-8")
        out = tmp_path / f"out-{tests_ran}"
        subprocess.run([exe, f"-env:UserInstallation={root.as_uri()}", "--headless", "--norestore", "--nolockcheck",
                        "--convert-to", office.FILTERS["pdf"], "--outdir", str(out), str(src)],
                       capture_output=True, timeout=300, check=True)
        assert (out / "card.pdf").read_bytes().startswith(b"%PDF-")
        assert (root / "user" / "GraphicsRenderTests.log").exists() == tests_ran
