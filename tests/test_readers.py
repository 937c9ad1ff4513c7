"""Reading grids (issue 9 §8): NA-looking text stays text in .xlsx as in CSV; short CSV lines are errors."""

from __future__ import annotations

import pytest

from tests import _plan_helpers as ph
from xl_kpi.engine.errors import KpiError
from xl_kpi.inputs.readers import read_csv_grid, read_workbook


@pytest.mark.parametrize("text", ["N/A", "NULL", "None", "NA", "nan", "n/a"])  # openpyxl writes "#N/A" as an error cell
def test_na_strings_in_xlsx_stay_text(tmp_path, text):
    path = ph.write_workbook(tmp_path / "d.xlsx", {"D": [["a", "b"], [text, None], [1, 2]]})
    grid = read_workbook(path)[0].grid
    assert grid.iloc[1, 0] == text
    assert grid.isna().iloc[1, 1]  # a truly empty cell is still empty


def test_na_strings_in_csv_stay_text(tmp_path):
    (tmp_path / "d.csv").write_text("a;b\nN/A;\n", encoding="utf-8")
    grid = read_csv_grid(tmp_path / "d.csv")
    assert grid.iloc[1, 0] == "N/A" and grid.isna().iloc[1, 1]


def test_csv_line_with_a_value_too_few_names_the_line(tmp_path):
    (tmp_path / "d.csv").write_text("id;amount;n\n1;5;x\n\n2;6\n", encoding="utf-8")
    with pytest.raises(KpiError, match="line 4 has 2 values but the first line has 3"):
        read_csv_grid(tmp_path / "d.csv")


def test_csv_quoted_newline_and_blank_lines_are_fine(tmp_path):
    (tmp_path / "d.csv").write_text('id;note;n\n1;"a\nb";x\n\n2;;y\n', encoding="utf-8")
    grid = read_csv_grid(tmp_path / "d.csv")
    assert grid.iloc[1, 1] == "a\nb" and grid.shape == (4, 3)


def test_a_row_wider_than_any_column_letters_is_named_in_r1c1(tmp_path):
    """Cells without r="A1" past column ZZZ (a hostile file): the too-wide message still names the corner."""
    import io
    import re
    import zipfile

    import openpyxl

    from xl_kpi.inputs.readers import FileReadError, scan_xlsx

    wb = openpyxl.Workbook()
    wb.active.title = "Facts"
    wb.active["A1"] = 1
    buf = io.BytesIO()
    wb.save(buf)
    src, out = zipfile.ZipFile(buf), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb"<sheetData>.*</sheetData>|<sheetData/>",
                              b'<sheetData><row r="1">' + b"<c><v>1</v></c>" * 20_000 + b"</row></sheetData>",
                              data, flags=re.S)
            z.writestr(info, data)
    path = tmp_path / "wide.xlsx"
    path.write_bytes(out.getvalue())
    with pytest.raises(FileReadError, match=r"used range reaches R1C20000 \(1 rows × 20 000 columns\)"):
        scan_xlsx(path)
