"""The LibreOffice helper really recalculates (it does not echo the cached values back)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import lo
from xl_kpi.outputs.ooxml import write_xlsx

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def workbook(cells: str) -> bytes:
    """A minimal hand-written xlsx whose only sheet has ``cells`` (row XML) as its data."""
    return write_xlsx({
        "[Content_Types].xml": (
            b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
            b'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            b'officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            f'2006/relationships"><Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>").encode(),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook {NS} xmlns:r="{REL}"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>').encode(),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            f'2006/relationships"><Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>").encode(),
        "xl/worksheets/sheet1.xml": f'<?xml version="1.0" encoding="UTF-8"?><worksheet {NS}><sheetData>{cells}'
                                    "</sheetData></worksheet>".encode(),
    })


@pytest.mark.libreoffice
def test_recalc_replaces_a_wrong_cached_value(tmp_path: Path) -> None:
    lo.require_soffice()
    src = tmp_path / "in"
    src.mkdir()
    # A3 = A1*A2 = 6, but the file claims 999; A4 = A1+A2 = 5 with the right cached value
    wrong = src / "wrong.xlsx"
    wrong.write_bytes(workbook(
        '<row r="1"><c r="A1"><v>2</v></c></row><row r="2"><c r="A2"><v>3</v></c></row>'
        '<row r="3"><c r="A3"><f>A1*A2</f><v>999</v></c></row>'
        '<row r="4"><c r="A4"><f>A1+A2</f><v>5</v></c></row>'
    ))
    right = src / "right.xlsx"
    right.write_bytes(workbook('<row r="1"><c r="A1"><v>1.5</v></c><c r="B1"><f>ROUND(A1*3,2)</f><v>4.5</v></c></row>'))

    out = lo.recalc([wrong, right], tmp_path / "out")

    assert [p.name for p in out] == ["wrong.xlsx", "right.xlsx"]
    bad = lo.formula_cells_vs_cached(wrong, out[0])
    assert bad.compared == 2
    assert [(m.cell, m.cached, m.recalculated) for m in bad] == [("A3", 999, 6)]
    good = lo.formula_cells_vs_cached(right, out[1])
    assert good.compared == 1 and good == []


@pytest.mark.libreoffice
def test_recalc_reports_files_it_could_not_convert(tmp_path: Path) -> None:
    lo.require_soffice()
    src = tmp_path / "in"
    src.mkdir()
    broken = src / "broken.xlsx"
    broken.write_bytes(b"this is not a zip file")
    with pytest.raises(lo.LibreOfficeError, match="did not write"):
        lo.recalc([broken], tmp_path / "out")


def test_recalc_refuses_to_overwrite_inputs(tmp_path: Path) -> None:
    if lo.soffice() is None:
        pytest.skip("needs soffice on PATH to get past the binary check")
    f = tmp_path / "a.xlsx"
    f.write_bytes(workbook(""))
    with pytest.raises(ValueError, match="differ"):
        lo.recalc([f], tmp_path)


def test_comparison_tolerances() -> None:
    assert lo.is_money_format('#,##0.00 "₽"')
    assert not lo.is_money_format("0.0%")
    assert lo._same(1.0000000001, 1.0, 1e-9)
    assert not lo._same(1.00001, 1.0, 1e-9)
    assert lo._same(100.004, 100.0, 0.005)
    assert not lo._same(100.01, 100.0, 0.005)
    assert lo._same("", None, 1e-9)
    assert not lo._same("#DIV/0!", 0, 1e-9)
