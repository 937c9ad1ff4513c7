"""KPI cards: cached values, formulas, restyled templates, safety, determinism, LibreOffice recalculation."""

from __future__ import annotations

import hashlib
import io
import math
import re
import shutil
import struct
import subprocess
import warnings
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
from openpyxl.chart import PieChart, Reference
from openpyxl.formatting.rule import DataBarRule
from openpyxl.styles import Font, PatternFill
from openpyxl.workbook.defined_name import DefinedName

import xl_kpi
from tests import lo
from tests._results_fixture import SCALES, compute, sample_results, synthetic_results
from xl_kpi.outputs.cards import (
    FIXED_TIMESTAMP,
    TEMPLATE_DIR,
    CardTemplate,
    TemplateError,
    card_path,
    iter_cards,
    render_card,
    write_atomic,
    write_cards,
)
from xl_kpi.outputs.ooxml import RowPlan, read_parts, shift_formula, write_xlsx

LABELS = {
    "en": {"pool": "Bonus pool (target bonus)", "kpi_bonus": "KPI bonus (sum of the KPI lines)",
           "bonus": "Bonus for the period", "salary": "Fixed salary", "total_pay": "Total pay",
           "multiplier": "Personal multiplier", "proration": "Share of the period worked"},
    "ru": {"pool": "Плановая премия (фонд)", "kpi_bonus": "Премия по KPI (сумма строк)", "bonus": "Премия за период",
           "salary": "Оклад", "total_pay": "Итого к начислению", "multiplier": "Персональный множитель",
           "proration": "Доля отработанного периода"},
}


# ----------------------------------------------------------------------------------------------
# helpers


def load(data: bytes, data_only: bool = True) -> openpyxl.Workbook:
    with warnings.catch_warnings():  # LibreOffice output has extension lists openpyxl does not read
        warnings.simplefilter("ignore", UserWarning)
        return openpyxl.load_workbook(io.BytesIO(data), data_only=data_only)


def xml_text(data: bytes) -> str:
    """All XML parts of an xlsx, joined (what a grep over the unzipped card sees)."""
    return "\n".join(v.decode("utf-8", "replace") for k, v in read_parts(data).items()
                     if k.endswith((".xml", ".rels", ".vml")))


def label_value(ws: Any, label: str) -> tuple[int, Any]:
    """(row, value in column D) of the bonus-block line labelled ``label`` in column A."""
    for row in ws.iter_rows(min_col=1, max_col=1):
        if row[0].value == label:
            return row[0].row, ws.cell(row[0].row, 4).value
    raise AssertionError(f"label {label!r} not found")


def kpi_rows(ws: Any, tpl: CardTemplate, n: int) -> list[int]:
    """The card rows of the n KPI lines (they start where the template's KPI row was)."""
    rows = list(range(tpl.kpi_row, tpl.kpi_row + n))
    name_col = tpl.kpi_cols["no"]
    assert [ws[f"{name_col}{r}"].value for r in rows] == list(range(1, n + 1))
    return rows


def lines_of(results: Any, eid: Any) -> pd.DataFrame:
    return results.lines[results.lines["employee_id"] == eid].reset_index(drop=True)


def emp_of(results: Any, eid: Any) -> pd.Series:
    return results.employees.set_index("employee_id").loc[eid]


def tiny_png(w: int = 6, h: int = 4, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid RGB PNG written by hand (no imaging library)."""
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PNG = tiny_png()
SAMPLE_NUMBER = "424242.42"
SAMPLE_CHART = "4242.4242"
SAMPLE_THUMB = b"SAMPLE_THUMBNAIL_BYTES"


def restyled_template(tmp: Path) -> Path:
    """The bundled template as a user might restyle it in Excel, plus the leftovers of a preview.

    openpyxl: other fonts and fills, a sentence with a marker, a merged cell, a defined name, a
    second chart, a data-bar rule, user formulas on and below the KPI row, a page header.
    XML: a logo image (hand-made PNG) below the scale block, sample values in the chart cache
    and in a formula's cached value, and a thumbnail, none of which may reach a card.
    """
    wb = openpyxl.load_workbook(TEMPLATE_DIR / "kpi_card_en.xlsx")
    ws = wb.active
    ws["A1"].font = Font(name="Georgia", size=20, bold=True, color="8B0000")
    ws["A10"].fill = PatternFill("solid", start_color="00B050", end_color="00B050")
    ws["F3"] = "Prepared for {{name}}, {{period_name}}"
    ws["F3"].font = Font(name="Georgia", italic=True)
    ws.merge_cells("F3:J3")
    ws["L11"] = "=J11*2"
    ws["L12"] = "=SUM(J11:J11)*2"
    wb.defined_names["BonusColumn"] = DefinedName("BonusColumn", attr_text="Card!$J$11:$J$11")
    ws.conditional_formatting.add("J11", DataBarRule(start_type="min", end_type="max", color="638EC6"))
    pie = PieChart()
    pie.add_data(Reference(ws, min_col=10, min_row=11, max_row=11))
    pie.set_categories(Reference(ws, min_col=2, min_row=11, max_row=11))
    pie.title = "Bonus by KPI"
    ws.add_chart(pie, "L14")
    ws.oddHeader.center.text = "Confidential"
    buf = io.BytesIO()
    wb.save(buf)

    parts = read_parts(buf.getvalue())
    drawing = "xl/drawings/drawing1.xml"
    rels = "xl/drawings/_rels/drawing1.xml.rels"
    parts["xl/media/logo.png"] = PNG
    parts[rels] = parts[rels].replace(
        b"</Relationships>",
        b'<Relationship Id="rIdLogo" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        b'image" Target="../media/logo.png"/></Relationships>')
    xml = parts[drawing].decode()
    x = re.search(r"</(\w+:)?wsDr>", xml).group(1) or ""  # openpyxl writes no prefix, Excel writes xdr:
    pic = (
        f'<{x}twoCellAnchor editAs="oneCell"><{x}from><{x}col>8</{x}col><{x}colOff>0</{x}colOff>'
        f"<{x}row>29</{x}row><{x}rowOff>0</{x}rowOff></{x}from><{x}to><{x}col>9</{x}col>"
        f"<{x}colOff>0</{x}colOff><{x}row>30</{x}row><{x}rowOff>0</{x}rowOff></{x}to>"
        f'<{x}pic><{x}nvPicPr><{x}cNvPr id="99" name="Logo"/><{x}cNvPicPr/></{x}nvPicPr>'
        f'<{x}blipFill><a:blip xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
        f'r:embed="rIdLogo"/><a:stretch><a:fillRect/></a:stretch></{x}blipFill><{x}spPr><a:prstGeom prst="rect">'
        f"<a:avLst/></a:prstGeom></{x}spPr></{x}pic><{x}clientData/></{x}twoCellAnchor>"
    )
    parts[drawing] = xml.replace(f"</{x}wsDr>", pic + f"</{x}wsDr>").encode()
    ct = parts["[Content_Types].xml"].decode()
    if 'Extension="png"' not in ct:
        ct = ct.replace("<Default ", '<Default Extension="png" ContentType="image/png"/><Default ', 1)
    ct = ct.replace("<Default ", '<Default Extension="jpeg" ContentType="image/jpeg"/><Default ', 1)
    parts["[Content_Types].xml"] = ct.encode()
    parts["docProps/thumbnail.jpeg"] = SAMPLE_THUMB
    parts["_rels/.rels"] = parts["_rels/.rels"].replace(
        b"</Relationships>",
        b'<Relationship Id="rIdThumb" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
        b'thumbnail" Target="docProps/thumbnail.jpeg"/></Relationships>')
    chart = next(k for k in parts if k.startswith("xl/charts/") and b"$H$11" in parts[k])
    parts[chart], n = re.subn(
        rb"(<val><numRef><f>[^<]*</f>)",
        rb"\1<numCache><formatCode>General</formatCode><ptCount val=\"1\"/><pt idx=\"0\"><v>"
        + SAMPLE_CHART.encode() + rb"</v></pt></numCache>", parts[chart], count=1)
    assert n == 1
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    sheet, n = re.subn(r"(<c r=\"L12\"[^>]*>)<f>([^<]*)</f>(<v\s*/>|<v>[^<]*</v>)?",
                       rf"\1<f>\2</f><v>{SAMPLE_NUMBER}</v>", sheet)
    assert n == 1
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    path = tmp / "restyled.xlsx"
    path.write_bytes(write_xlsx(parts))
    return path


def edge_results() -> Any:
    """Scores exactly on (or a hair off) every threshold, missing facts, norm = base, no KPIs at all."""
    kpi = [  # (base, norm, fact, scale, floor, cap)
        (100, 150, 135, "default", np.nan, np.nan),      # 0.7 exactly → 0.9
        (10, 5, 6.5, "default", np.nan, np.nan),         # (6.5-10)/(5-10) = 0.7
        (0, 3, 3.3, "default", np.nan, np.nan),          # 1.0999999999999999 → rounds to 1.1
        (0, 10, 11, "default", np.nan, np.nan),          # 1.1
        (0, 10, 6.9999999999999, "default", np.nan, np.nan),
        (0, 1, 0.7 - 1e-13, "default", np.nan, np.nan),  # rounds to 0.7
        (0, 1, 0.7 - 1e-11, "default", np.nan, np.nan),  # stays below 0.7
        (40, 60, 50, "sales_linear", np.nan, np.nan),    # 0.5: a linear point
        (40, 60, 57.3, "sales_linear", np.nan, np.nan),  # between points
        (40, 60, 75, "sales_linear", np.nan, np.nan),    # beyond the last point (flat)
        (40, 60, 20, "sales_linear", 0.0, np.nan),       # floor 0
        (20, 50, 44, "service_steps", np.nan, np.nan),   # 0.8
        (20, 50, 56, "service_steps", np.nan, np.nan),   # 1.2 → 1.3 capped to 1.25
        (20, 50, 80, "service_steps", np.nan, 1.1),      # score cap
        (60, 30, 33, "service_steps", np.nan, np.nan),   # lower is better: 0.9
        (60, 30, 30.000000001, "service_steps", np.nan, np.nan),
        (0, 7, 7 * 1.1, "default", np.nan, np.nan),
        (3, 7, -5, "default", np.nan, np.nan),           # negative score
    ]
    weights = (0.5, 0.3, 0.2)
    rows, emps = [], []
    for e in range(math.ceil(len(kpi) / 3)):
        eid = f"X{e:02d}"
        emps.append(dict(employee_id=eid, name=f"Edge {e}", position="Edge", department="Edge", manager="",
                         email="", salary=50_000.5 + e, bonus_pool=33_333.33 + 7 * e,
                         multiplier=1.0 + 0.05 * (e % 3), proration=1.0 if e % 2 else 0.37))
        for j, w in enumerate(weights):
            base, norm, fact, scale, floor, cap = kpi[(3 * e + j) % len(kpi)]
            rows.append(dict(employee_id=eid, kpi_id=f"k{j}", kpi_name=f"Edge KPI {j}", unit="", weight=w,
                             base=float(base), norm=float(norm), floor=floor, cap=cap, scale=scale,
                             gate=0.75 if (e == 2 and j == 0) else np.nan, fact=float(fact)))
    # a missing fact, and norm = base (Excel: #DIV/0!)
    emps.append(dict(employee_id="X90", name="Missing fact", position="Edge", department="Edge", manager="",
                     email="", salary=1000.0, bonus_pool=1000.0, multiplier=1.0, proration=1.0))
    emps.append(dict(employee_id="X91", name="Zero range", position="Edge", department="Edge", manager="",
                     email="", salary=1000.0, bonus_pool=1000.0, multiplier=1.0, proration=1.0))
    emps.append(dict(employee_id="X92", name=None, position="Edge", department=None, manager=None,
                     email=None, salary=1234.5, bonus_pool=1000.0, multiplier=1.0, proration=1.0))  # no KPIs
    for eid, facts, norms in (("X90", (np.nan, 150.0, 120.0), (150.0,) * 3), ("X91", (150.0,) * 3, (150, 100, 150))):
        for j, w in enumerate(weights):
            rows.append(dict(employee_id=eid, kpi_id=f"k{j}", kpi_name=f"Edge KPI {j}", unit="", weight=w,
                             base=100.0, norm=float(norms[j]), floor=np.nan, cap=np.nan, scale="default",
                             gate=np.nan, fact=facts[j]))
    return compute(pd.DataFrame(rows), pd.DataFrame(emps), SCALES)


# ----------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def results() -> Any:
    return sample_results("en")


@pytest.fixture(scope="module")
def results_ru() -> Any:
    return sample_results("ru")


@pytest.fixture(scope="module")
def tpl() -> CardTemplate:
    return CardTemplate.load(lang="en")


@pytest.fixture(scope="module")
def tpl_ru() -> CardTemplate:
    return CardTemplate.load(lang="ru")


@pytest.fixture(scope="module")
def cards(tpl: CardTemplate, results: Any) -> dict[Any, bytes]:
    return dict(iter_cards(tpl, results))


@pytest.fixture(scope="module")
def restyled(tmp_path_factory: pytest.TempPathFactory) -> CardTemplate:
    return CardTemplate.load(restyled_template(tmp_path_factory.mktemp("restyled")), "en")


# ----------------------------------------------------------------------------------------------
# values


def test_cards_open_and_cached_values_equal_the_engine(tpl: CardTemplate, results: Any,
                                                       cards: dict[Any, bytes]) -> None:
    assert set(cards) == set(results.employees["employee_id"])
    sc, cc, bc = (tpl.kpi_cols[k] for k in ("score", "coefficient", "bonus"))
    for eid, data in cards.items():
        ws = load(data).active
        lines = lines_of(results, eid)
        emp = emp_of(results, eid)
        rows = kpi_rows(ws, tpl, len(lines))
        for r, ln in zip(rows, lines.itertuples(), strict=True):
            assert ws[f"{tpl.kpi_cols['name']}{r}"].value == ln.kpi_name
            assert ws[f"{tpl.kpi_cols['fact']}{r}"].value == pytest.approx(ln.fact, abs=0)
            assert ws[f"{sc}{r}"].value == ln.score  # exactly the engine's float
            assert ws[f"{cc}{r}"].value == ln.coefficient
            assert ws[f"{bc}{r}"].value == ln.bonus
        labels = LABELS["en"]
        assert label_value(ws, labels["kpi_bonus"])[1] == emp.kpi_bonus
        assert label_value(ws, labels["bonus"])[1] == emp.bonus
        assert label_value(ws, labels["total_pay"])[1] == emp.total_pay
        assert label_value(ws, labels["salary"])[1] == emp.salary
        assert label_value(ws, labels["pool"])[1] == emp.bonus_pool
        assert ws.cell(rows[-1] + 1, 10).value == emp.kpi_bonus  # the table's total row


def test_the_source_worked_example(cards: dict[Any, bytes], tpl: CardTemplate) -> None:
    # docs/domain.md: pool 20 000, weight 0.4, 160 deals against base 100 / norm 150 → 120% → 1.1 → 8 800
    ws = load(cards["E001"]).active
    r = tpl.kpi_row
    assert (ws[f"H{r}"].value, ws[f"I{r}"].value, ws[f"J{r}"].value) == (1.2, 1.1, 8800)


def test_cells_hold_live_formulas_that_reference_their_own_scale(cards: dict[Any, bytes], tpl: CardTemplate,
                                                                  results: Any) -> None:
    data = cards["E002"]  # 9 KPIs on three different scales
    ws_f = load(data, data_only=False).active
    ws_v = load(data).active
    lines = lines_of(results, "E002")
    titles = {}  # scale block title row → the rows of its points
    for row in ws_v.iter_rows(min_col=1, max_col=1):
        v = row[0].value
        if isinstance(v, str) and ("scale" in v.lower()) and "—" in v:
            titles[row[0].row] = v
    assert len(titles) == 3
    for r, ln in zip(kpi_rows(ws_v, tpl, len(lines)), lines.itertuples(), strict=True):
        score_f = ws_f[f"H{r}"].value
        coef_f = ws_f[f"I{r}"].value
        bonus_f = ws_f[f"J{r}"].value
        assert score_f.startswith("=") and f"G{r}" in score_f and f"E{r}" in score_f and f"F{r}" in score_f
        assert bonus_f.startswith("=ROUND(") or "ROUND(" in bonus_f
        m = re.search(r"\$D\$(\d+):\$D\$(\d+)", coef_f)
        assert m, coef_f
        first = int(m.group(1))
        title_row = max(t for t in titles if t < first)
        title = titles[title_row]
        if ln.scale == "default":
            assert title.startswith("Default scale")
            assert "LOOKUP(ROUND(" in coef_f
        else:
            assert f"“{ln.scale}”" in title
        if ln.scale == "sales_linear":
            assert "MATCH(" in coef_f and "LOOKUP" not in coef_f
        # the thresholds the formula reads are the scale's own
        thresholds = [ws_v[f"D{x}"].value for x in range(first, int(m.group(2)) + 1)]
        assert thresholds == list(SCALES[ln.scale].thresholds)


def test_three_and_nine_kpis_grow_every_reference(cards: dict[Any, bytes], tpl: CardTemplate) -> None:
    for eid, n in (("E001", 3), ("E002", 9)):
        data = cards[eid]
        wb = load(data, data_only=False)
        ws = wb.active
        first, last = tpl.kpi_row, tpl.kpi_row + n - 1
        total = ws.cell(last + 1, 10).value
        assert total == f"=SUM(J{first}:J{last})"
        assert ws.cell(last + 1, 4).value == f"=SUM(D{first}:D{last})"
        cf = {str(rng.sqref) for rng in ws.conditional_formatting}
        assert f"H{first}:H{last}" in cf
        names = {n: d.attr_text for n, d in wb.defined_names.items()}
        assert names["TrafficLow"] == f"Card!$H${last + 2}"  # the legend moved down with the table
        assert re.fullmatch(r"'?Card'?!\$A\$1:\$J\$\d+", ws.print_area)
        assert int(ws.print_area.rsplit("$", 1)[1]) > last + 20
        text = xml_text(data)
        for col in "AHK":  # chart categories (#), scores, the 100% line
            assert f"${col}${first}:${col}${last}" in text
        merged = {str(m) for m in ws.merged_cells.ranges}
        assert f"D{label_value(ws, 'Total pay')[0]}:E{label_value(ws, 'Total pay')[0]}" in merged
        assert ws.page_setup.paperSize == 9 and ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.page_setup.fitToHeight == 1 and ws.page_setup.fitToWidth == 1


def test_unused_multiplier_and_proration_rows_are_hidden(cards: dict[Any, bytes], results: Any) -> None:
    for eid in results.employees["employee_id"]:
        emp = emp_of(results, eid)
        ws = load(cards[eid]).active
        for key, value in (("multiplier", emp.multiplier), ("proration", emp.proration)):
            row, shown = label_value(ws, LABELS["en"][key])
            assert shown == value
            assert bool(ws.row_dimensions[row].hidden) == (value == 1.0), (eid, key)


def test_gate_sets_the_bonus_to_zero_with_a_note(cards: dict[Any, bytes], results: Any) -> None:
    emp = emp_of(results, "E005")
    assert emp.gated and emp.kpi_bonus > 0
    ws_v = load(cards["E005"]).active
    ws_f = load(cards["E005"], data_only=False).active
    row, value = label_value(ws_v, "Bonus for the period")
    assert value == 0
    assert ws_f.cell(row, 4).value.startswith("=IF(OR(IF(ISNUMBER(H")
    notes = [c.value for r in ws_v.iter_rows() for c in r if isinstance(c.value, str) and c.value.startswith("Gate:")]
    assert notes and "Not reached" in notes[0] and "50%" in notes[0]


def test_text_is_text_never_a_formula(cards: dict[Any, bytes]) -> None:
    for eid, name in (("E003", '=HYPERLINK("http://evil","x")'), ("E006", "+Plus Minus-"), ("E007", "-Minus @At"),
                      ("E004", "Tom <Jerry> & \"Co\" 'x'")):
        ws = load(cards[eid], data_only=False).active
        cell = ws["A5"]
        assert cell.value == name and cell.data_type == "s"
        sheet = read_parts(cards[eid])["xl/worksheets/sheet1.xml"].decode()
        a5 = re.search(r'<c r="A5"[^>]*>.*?</c>', sheet).group(0)
        assert "<f>" not in a5 and 't="inlineStr"' in a5


def test_cyrillic_text_and_russian_template(tpl_ru: CardTemplate, results_ru: Any) -> None:
    data = render_card(tpl_ru, results_ru, "E002")
    wb = load(data)
    ws = wb.active
    assert ws.title == "Карточка"
    assert ws["A1"].value == "ООО «Ромашка»"
    assert ws["A5"].value == "Иванова Мария Сергеевна"
    assert ws["G7"].value == "октябрь 2026"
    emp = emp_of(results_ru, "E002")
    assert label_value(ws, LABELS["ru"]["total_pay"])[1] == emp.total_pay
    assert any(isinstance(c.value, str) and c.value.startswith("Базовая шкала") for r in ws.iter_rows() for c in r)
    assert '#,##0.00 &quot;₽&quot;' in read_parts(data)["xl/styles.xml"].decode()


def test_currency_symbol_follows_results(tpl: CardTemplate, results: Any) -> None:
    usd = sample_results("en")
    usd.currency = "USD"
    styles = read_parts(render_card(tpl, usd, "E001"))["xl/styles.xml"].decode()
    assert '#,##0.00 &quot;$&quot;' in styles and "₽" not in styles


def test_nothing_of_other_employees_or_template_samples_remains(cards: dict[Any, bytes], results: Any,
                                                                restyled: CardTemplate) -> None:
    emps = results.employees
    for eid, data in cards.items():
        text = xml_text(data)
        assert "{{" not in text and "}}" not in text
        for other in emps.itertuples():
            if other.employee_id == eid:
                continue
            if isinstance(other.employee_id, str) and not other.employee_id.isdigit():  # "9" is also a number
                assert f">{other.employee_id}<" not in text and f"{other.employee_id}@" not in text
            escaped = str(other.name).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert escaped not in text, (eid, other.name)
        own = emp_of(results, eid)
        assert str(own["name"]).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in text
    for eid in ("E001", "E002"):
        data = render_card(restyled, results, eid)
        text = xml_text(data)
        names = read_parts(data)
        assert SAMPLE_NUMBER not in text and SAMPLE_CHART not in text
        assert not any(SAMPLE_THUMB in v for v in names.values())
        assert not any("thumbnail" in k for k in names) and "thumbnail" not in text
        assert "{{" not in text


def test_unknown_employee_is_an_error(tpl: CardTemplate, results: Any) -> None:
    with pytest.raises(xl_kpi.KpiError, match="not in the results"):
        render_card(tpl, results, "NOPE")


def test_output_is_deterministic(tpl: CardTemplate, results: Any, cards: dict[Any, bytes]) -> None:
    again = CardTemplate.load(lang="en")
    for eid in ("E001", "E002", "9"):
        assert render_card(again, results, eid) == cards[eid]
        assert render_card(tpl, results, eid) == cards[eid]
    with zipfile.ZipFile(io.BytesIO(cards["E001"])) as zf:
        assert zf.testzip() is None
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert zf.namelist()[0] == "[Content_Types].xml"
        core = zf.read("docProps/core.xml").decode()
    assert core.count(FIXED_TIMESTAMP) == 2


def test_formulas_written_once_per_plan_line_tell_zero_from_minus_zero(tpl: CardTemplate, results: Any) -> None:
    """A worker writes a plan line's formulas once and reuses them on every card with the same plan values: E001 and
    E003 (both account managers) differ only in the floor of their complaints line, 0 and -0, which Excel reads alike
    but the formula writes as 0 and (-0); E001's and 9's deals lines have no floor (NaN, never equal to itself)."""
    lines = results.lines.copy()
    at = lines["kpi_id"].eq("complaints")
    lines.loc[at & lines["employee_id"].eq("E001"), "floor"] = 0.0
    lines.loc[at & lines["employee_id"].eq("E003"), "floor"] = -0.0
    changed = replace(results, lines=lines)
    together = dict(iter_cards(tpl, changed, ["E001", "E003", "9"]))  # one worker: formulas reused
    for eid in ("E001", "E003", "9"):
        assert together[eid] == render_card(tpl, changed, eid)  # each card on its own: formulas written afresh
    sheets = {eid: read_parts(together[eid])["xl/worksheets/sheet1.xml"].decode() for eid in ("E001", "E003")}
    assert "MAX(" in sheets["E001"] and "(-0)" not in sheets["E001"] and "(-0)" in sheets["E003"]


def test_pandas_and_calamine_read_the_cached_values(cards: dict[Any, bytes], results: Any) -> None:
    emp = emp_of(results, "E001")
    for engine in ("openpyxl", "calamine"):
        df = pd.read_excel(io.BytesIO(cards["E001"]), header=None, engine=engine)
        flat = df.to_numpy().ravel().tolist()
        assert emp.total_pay in flat and 8800 in flat


# ----------------------------------------------------------------------------------------------
# restyled templates


def test_restyled_template_keeps_the_users_work(restyled: CardTemplate, results: Any) -> None:
    for eid, n in (("E001", 3), ("E002", 9)):
        data = render_card(restyled, results, eid)
        wb = load(data, data_only=False)
        ws = wb.active
        first, last = restyled.kpi_row, restyled.kpi_row + n - 1
        name = emp_of(results, eid)["name"]
        # styles, text with a marker, merged cells
        assert ws["A1"].font.name == "Georgia" and ws["A1"].font.sz == 20
        assert ws["A10"].fill.start_color.rgb.endswith("00B050")
        assert load(data)["Card"]["F3"].value == f"Prepared for {name}, October 2026"
        assert ws["F3"].font.name == "Georgia"
        assert "F3:J3" in {str(m) for m in ws.merged_cells.ranges}
        # user formulas follow the rows (and carry no stale cached value)
        for r in range(first, last + 1):
            assert ws[f"L{r}"].value == f"=J{r}*2"
        assert ws[f"L{last + 1}"].value == f"=SUM(J{first}:J{last})*2"
        # defined names, conditional formats, print settings
        assert wb.defined_names["BonusColumn"].attr_text == f"Card!$J${first}:$J${last}"
        cf = {str(r.sqref): [x.type for x in r.rules] for r in ws.conditional_formatting}
        assert cf[f"J{first}:J{last}"] == ["dataBar"] and len(cf[f"H{first}:H{last}"]) == 3
        assert ws.oddHeader.center.text == "Confidential"
        assert ws.page_setup.paperSize == 9
        # both charts, growing with the table; the logo image, moved with the rows below the table
        parts = read_parts(data)
        charts = [k for k in parts if k.startswith("xl/charts/chart")]
        assert len(charts) == 2
        refs = " ".join(re.findall(r"<(?:c:)?f>([^<]*)</(?:c:)?f>", " ".join(parts[c].decode() for c in charts)))
        assert f"$J${first}:$J${last}" in refs and f"$H${first}:$H${last}" in refs
        assert parts["xl/media/logo.png"] == PNG
        drawing = parts["xl/drawings/drawing1.xml"].decode()
        assert 'r:embed="rIdLogo"' in drawing and "logo.png" in parts["xl/drawings/_rels/drawing1.xml.rels"].decode()
        how = next(c.row for r in ws.iter_rows(min_col=1, max_col=1) for c in r
                   if c.value == "How your bonus was computed")
        anchor = re.search(r"<(?:xdr:)?twoCellAnchor editAs=\"oneCell\"><(?:xdr:)?from>.*?<(?:xdr:)?row>(\d+)<.*?"
                           r"<(?:xdr:)?to>.*?<(?:xdr:)?row>(\d+)<", drawing, re.S)
        assert (int(anchor.group(1)), int(anchor.group(2))) == (how - 1, how)


def test_template_without_markers_or_with_bad_ones_is_rejected(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active["A1"] = "no markers here"
    wb.save(tmp_path / "plain.xlsx")
    with pytest.raises(TemplateError, match="markers"):
        CardTemplate.load(tmp_path / "plain.xlsx")
    wb.active["A2"] = "{{kpi.name}}"
    wb.active["A3"] = "{{kpi.fact}}"
    wb.active["B2"] = "{{nmae}}"
    wb.save(tmp_path / "bad.xlsx")
    with pytest.raises(TemplateError) as info:
        CardTemplate.load(tmp_path / "bad.xlsx")
    msg = str(info.value)
    assert "one row" in msg and "{{nmae}}" in msg
    with pytest.raises(TemplateError, match=r"missing\.xlsx: file not found"):
        CardTemplate.load(tmp_path / "missing.xlsx")


def test_minimal_template_without_scale_block_inlines_the_scale(tmp_path: Path, results: Any) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "My card"
    ws.append(["{{name}}", "{{bonus_pool}}"])
    ws.append(["{{kpi.name}}", "{{kpi.weight}}", "{{kpi.fact}}", "{{kpi.score}}", "{{kpi.coefficient}}",
               "{{kpi.bonus}}"])
    ws.append(["Total", None, None, None, None, "{{kpi_bonus}}", "{{total_pay}}"])
    wb.save(tmp_path / "mini.xlsx")
    tpl = CardTemplate.load(tmp_path / "mini.xlsx")
    data = render_card(tpl, results, "E001")
    ws_f = load(data, data_only=False).active
    ws_v = load(data).active
    lines = lines_of(results, "E001")
    assert "LOOKUP(ROUND(D2,12),{0.7,1,1.1},{0.9,1,1.1})" in ws_f["E2"].value
    assert "MATCH(D4,{0.5,1,1.5},1)" in ws_f["E4"].value
    assert "(C2-100)/(150-100)" in ws_f["D2"].value  # base and norm inlined: no cells for them
    assert [ws_v[f"F{r}"].value for r in (2, 3, 4)] == lines["bonus"].tolist()
    assert ws_v["F5"].value == emp_of(results, "E001").kpi_bonus
    assert ws_v["G5"].value == emp_of(results, "E001").total_pay


# ----------------------------------------------------------------------------------------------
# files


def test_card_path_is_safe_and_inside_out(tmp_path: Path) -> None:
    out = tmp_path / "OUT"
    p = card_path(out, "Sales", "E001", "Ivan Petrov")
    assert p == out / "cards" / "Sales" / "E001 Ivan Petrov.xlsx"
    for dept, eid, name in (("../../etc", "E1", "../../passwd"), ("CON", "NUL", "COM1"), ("a/b\\c", "x\x00y", "z:*?"),
                            ("  .hidden. ", "E2", "trailing dots..."), (None, 7, None), ("Отдел продаж", "E3", "Ёж")):
        q = card_path(out, dept, eid, name)
        assert lo_inside(out, q)
        rel = q.relative_to(out)
        assert len(rel.parts) == 3 and rel.parts[0] == "cards"
        for comp in rel.parts:
            assert comp and comp == comp.strip() and not comp.endswith(".") and len(comp) <= 100
            assert not re.search(r'[\\/:*?"<>|\x00-\x1f]', comp)
            assert comp.split(".")[0].upper() not in ("CON", "NUL", "COM1", "PRN", "AUX")
        assert q.suffix == ".xlsx"
    long = card_path(out, "D" * 300, "E9", "Я" * 300)
    assert all(len(c) <= 100 for c in long.relative_to(out).parts)
    assert card_path(out, "Отдел продаж", "E3", "Ёж").name == "E3 Ёж.xlsx"


def lo_inside(root: Path, p: Path) -> bool:
    return str(p.resolve()).startswith(str(root.resolve()) + "/")


def test_write_atomic_replaces_whole_files_only(tmp_path: Path) -> None:
    target = tmp_path / "d" / "card.xlsx"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["card.xlsx"]  # no temp file left


def test_open_atomic_streams_a_whole_file_or_leaves_the_old_one(tmp_path: Path) -> None:
    from xl_kpi.outputs.atomic import open_atomic

    target = tmp_path / "results" / "lines.csv"
    with open_atomic(target) as f:
        f.write(b"a,b\r\n")
        assert not target.exists()  # visible only when complete
        f.write(b"1,2\r\n")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"
    with pytest.raises(RuntimeError), open_atomic(target) as f:
        f.write(b"half")
        raise RuntimeError("the writer failed half-way")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"
    assert [p.name for p in target.parent.iterdir()] == ["lines.csv"]  # no temp file left


def test_atomic_batch_commits_all_or_leaves_nothing(tmp_path: Path) -> None:
    from xl_kpi.outputs.atomic import AtomicBatch

    with AtomicBatch() as batch:
        batch.write(tmp_path / "a" / "1.xlsx", b"one")
        batch.write(tmp_path / "b" / "2.xlsx", b"two")
        assert not (tmp_path / "a" / "1.xlsx").exists()  # staged, not yet visible
    assert (tmp_path / "a" / "1.xlsx").read_bytes() == b"one" and (tmp_path / "b" / "2.xlsx").read_bytes() == b"two"
    with pytest.raises(RuntimeError), AtomicBatch() as batch:
        batch.write(tmp_path / "a" / "1.xlsx", b"changed")
        raise RuntimeError("rendering failed half-way")
    assert (tmp_path / "a" / "1.xlsx").read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["1.xlsx", "2.xlsx", "a", "b"]


@pytest.mark.parametrize("jobs", [1, pytest.param(2, marks=pytest.mark.slow)])  # 2: a process pool
def test_write_cards_records_and_files(tmp_path: Path, jobs: int) -> None:
    res = synthetic_results(230, seed=3)
    seen: list[int] = []
    recs = write_cards(res, tmp_path, jobs=jobs, on_progress=seen.append, chunk_size=50, fsync=jobs == 1)
    assert [r.employee_id for r in recs] == res.employees["employee_id"].tolist()
    assert seen == sorted(seen) and seen[-1] == 230
    emp = res.employees.set_index("employee_id")
    for r in recs[::23]:
        data = r.path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == r.sha256
        assert r.total_bonus == emp.loc[r.employee_id, "bonus"] and r.status == emp.loc[r.employee_id, "status"]
        assert r.path.parent.parent == tmp_path / "cards"
        assert load(data).active["A5"].value == emp.loc[r.employee_id, "name"]
    assert len(list((tmp_path / "cards").rglob("*.xlsx"))) == 230
    assert not list(tmp_path.rglob("*.tmp"))
    # the same cards, byte for byte, whatever the number of processes
    tpl = CardTemplate.load(lang="en")
    for r in recs[:5]:
        assert render_card(tpl, res, r.employee_id) == r.path.read_bytes()


def test_write_cards_waits_for_the_disk_once_not_per_chunk(tmp_path: Path, monkeypatch) -> None:
    # every card's write-out starts as it is written; the disk is waited for once, at the end (was once a chunk)
    from xl_kpi.outputs import atomic

    waits: list[Path] = []
    real = atomic._syncfs
    monkeypatch.setattr(atomic, "_syncfs", lambda p: waits.append(p) or real(p))
    res = synthetic_results(120, seed=5)
    recs = write_cards(res, tmp_path, chunk_size=25)
    assert len(waits) == 1
    assert all(hashlib.sha256(r.path.read_bytes()).hexdigest() == r.sha256 for r in recs)
    assert not list(tmp_path.rglob("*.tmp"))


def test_colliding_file_names_get_a_suffix(tmp_path: Path) -> None:
    res = sample_results()
    res.employees.loc[res.employees["employee_id"] == "E006", "name"] = "Same"
    res.employees.loc[res.employees["employee_id"] == "E004", "name"] = "Same"
    res.employees.loc[res.employees["employee_id"] == "E004", "employee_id"] = "e006"
    res.lines.loc[res.lines["employee_id"] == "E004", "employee_id"] = "e006"
    recs = write_cards(res, tmp_path, fsync=False)
    paths = [r.path for r in recs]
    assert len({str(p).casefold() for p in paths}) == len(paths)
    assert any(p.name.endswith("(2).xlsx") for p in paths)


# ----------------------------------------------------------------------------------------------
# reference shifting (hand-derived)


def test_shift_formula_moves_and_grows_references() -> None:
    # template rows 1..5, row 3 repeated 4 times → output rows 1,2,3,4,5,6,7,8
    plan = RowPlan([1, 2, 3, 3, 3, 3, 4, 5], 5)
    s = dict(plan=plan, sheet="Card", own_sheet=True)
    assert shift_formula("SUM(C3:C3)", **s) == "SUM(C3:C6)"
    assert shift_formula("A4+$B$5*Card!C5", **s) == "A7+$B$8*Card!C8"
    assert shift_formula("C3*2", copy=(3, 5), **s) == "C5*2"  # on the third copy: its own row
    assert shift_formula("$C$3*2", copy=(3, 5), **s) == "$C$3*2"  # absolute: the first copy
    assert shift_formula('IF(A4="A4",Other!A4,\'Card\'!B2:B4)', **s) == 'IF(A7="A4",Other!A4,\'Card\'!B2:B7)'
    assert shift_formula("SUM(4:5)+COUNT(A:A)", **s) == "SUM(7:8)+COUNT(A:A)"
    assert shift_formula("Card!A4", plan=plan, sheet="Card", own_sheet=False) == "Card!A7"
    assert shift_formula("A4", plan=plan, sheet="Card", own_sheet=False) == "A4"
    assert shift_formula("Card!$K$3", plan=plan, sheet="Card", own_sheet=False, grow=True) == "Card!$K$3:$K$6"


# ----------------------------------------------------------------------------------------------
# LibreOffice: recalculate everything, compare with the cached values (3 soffice calls in all)


@pytest.fixture(scope="module")
def lo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lo.require_soffice()
    return tmp_path_factory.mktemp("lo")


@pytest.fixture(scope="module")
def lo_resaved_template(lo_dir: Path) -> CardTemplate:
    """The bundled template after a round trip through another office suite (shared strings etc.)."""
    src = lo_dir / "tpl_in"
    src.mkdir()
    shutil.copy(TEMPLATE_DIR / "kpi_card_en.xlsx", src / "resaved.xlsx")
    (out,) = lo.recalc([src / "resaved.xlsx"], lo_dir / "tpl_out")
    assert "xl/sharedStrings.xml" in read_parts(out.read_bytes())
    return CardTemplate.load(out, "en")


WHAT_IF_FACTS = {"E001": (135.0, 6.5, 60.0), "E005": (15.0, 150.0, 50.0)}


def what_if(data: bytes, tpl: CardTemplate, facts: tuple[float, ...]) -> bytes:
    """The card with new facts typed in (cached values left stale on purpose)."""
    parts = read_parts(data)
    sheet = parts[tpl.sheet_part].decode()
    col = tpl.kpi_cols["fact"]
    for i, fact in enumerate(facts):
        ref = f"{col}{tpl.kpi_row + i}"
        sheet, n = re.subn(rf'(<c r="{ref}"[^>]*>)<v>[^<]*</v>', rf"\g<1><v>{fact!r}</v>", sheet)
        assert n == 1
    parts[tpl.sheet_part] = sheet.encode()
    return write_xlsx(parts)


@pytest.fixture(scope="module")
def lo_batch(lo_dir: Path, tpl: CardTemplate, tpl_ru: CardTemplate, results: Any, results_ru: Any,
             restyled: CardTemplate, lo_resaved_template: CardTemplate) -> dict[str, Any]:
    """Every card the LibreOffice tests need, recalculated in one soffice call."""
    src = lo_dir / "cards"
    src.mkdir()
    files: dict[str, Path] = {}

    def put(key: str, data: bytes) -> None:
        files[key] = src / f"{key}.xlsx"
        files[key].write_bytes(data)

    edge = edge_results()
    for eid, data in iter_cards(tpl, results):
        put(f"en_{eid}", data)
    for eid, data in iter_cards(tpl_ru, results_ru):
        put(f"ru_{eid}", data)
    for eid, data in iter_cards(tpl, edge):
        put(f"edge_{eid}", data)
    for eid, data in iter_cards(tpl, synthetic_results(24, seed=7)):  # random facts on every scale
        put(f"syn_{eid}", data)
    for eid in ("E001", "E002"):
        put(f"restyled_{eid}", render_card(restyled, results, eid))
    for eid in ("E001", "E002", "E005"):
        put(f"resaved_{eid}", render_card(lo_resaved_template, results, eid))
    for eid, facts in WHAT_IF_FACTS.items():
        put(f"whatif_{eid}", what_if(render_card(tpl, results, eid), tpl, facts))
    outs = lo.recalc(list(files.values()), lo_dir / "recalc")
    return {"files": files, "out": dict(zip(files, outs, strict=True)), "edge": edge}


@pytest.mark.libreoffice
def test_libreoffice_agrees_with_every_cached_value(lo_batch: dict[str, Any]) -> None:
    compared = 0
    problems = []
    edge = lo_batch["edge"].employees
    in_error = {f"edge_{e}" for e in edge.loc[edge["status"] != "ok", "employee_id"]}
    assert in_error == {"edge_X90", "edge_X91", "edge_X92"}
    for key, src in lo_batch["files"].items():
        if key.startswith("whatif_"):
            continue
        ignore_user_formulas = key.startswith("restyled_")
        mm = lo.formula_cells_vs_cached(src, lo_batch["out"][key])
        mm = [m for m in mm if not (ignore_user_formulas and m.cell.startswith("L"))]
        if key in in_error:  # results have no totals for them: no cached value, recalculated when opened
            assert 'fullCalcOnLoad="1"' in read_parts(src.read_bytes())["xl/workbook.xml"].decode()
            mm = [m for m in mm if m.cached is not None]
        problems += [(key, m) for m in mm]
        compared += lo.formula_cells_vs_cached(src, lo_batch["out"][key]).compared
    print(f"LibreOffice recalculated {len(lo_batch['files'])} cards; {compared} formula cells agree with the cache")
    assert problems == []
    assert compared > 500, compared


@pytest.mark.libreoffice
def test_edge_cases_agree_including_errors(lo_batch: dict[str, Any], tpl: CardTemplate) -> None:
    edge = lo_batch["edge"]
    ws = load(lo_batch["out"]["edge_X91"].read_bytes()).active
    assert ws[f"H{tpl.kpi_row + 1}"].value == "#DIV/0!"
    assert ws[f"I{tpl.kpi_row + 1}"].value in (None, "") and ws[f"J{tpl.kpi_row + 1}"].value in (None, "")
    # an employee in error has no KPI bonus in results; the card, recalculated, sums the lines it can score
    assert label_value(ws, "KPI bonus (sum of the KPI lines)")[1] == lines_of(edge, "X91")["bonus"].sum()
    ws = load(lo_batch["out"]["edge_X90"].read_bytes()).active
    assert ws[f"H{tpl.kpi_row}"].value in (None, "")
    assert label_value(ws, "KPI bonus (sum of the KPI lines)")[1] == lines_of(edge, "X90")["bonus"].sum()
    ws = load(lo_batch["out"]["edge_X92"].read_bytes()).active  # no KPI lines: an empty row, pay = salary
    assert label_value(ws, "Total pay")[1] == 1234.5 and label_value(ws, "Bonus for the period")[1] == 0
    # the 3.3/3 case: 1.0999999999999999 is in the 110% band in the engine and in LibreOffice
    ws = load(lo_batch["out"]["edge_X00"].read_bytes()).active
    assert ws[f"I{tpl.kpi_row + 2}"].value == 1.1


@pytest.mark.libreoffice
def test_the_card_is_a_what_if_calculator(lo_batch: dict[str, Any], tpl: CardTemplate, results: Any) -> None:
    for eid, facts in WHAT_IF_FACTS.items():
        lines = results.lines.copy()
        mask = lines["employee_id"] == eid
        lines.loc[mask, "fact"] = facts
        emps = results.employees[["employee_id", "name", "position", "department", "manager", "email", "salary",
                                  "bonus_pool", "multiplier", "proration"]]
        expected = compute(lines, emps, SCALES)
        exp_lines = lines_of(expected, eid)
        exp_emp = emp_of(expected, eid)
        assert exp_emp.total_pay != emp_of(results, eid).total_pay or exp_emp.gated != emp_of(results, eid).gated
        ws = load(lo_batch["out"][f"whatif_{eid}"].read_bytes()).active
        for i, ln in enumerate(exp_lines.itertuples()):
            r = tpl.kpi_row + i
            assert ws[f"H{r}"].value == pytest.approx(ln.score, abs=1e-9)
            assert ws[f"I{r}"].value == pytest.approx(ln.coefficient, abs=1e-9)
            assert ws[f"J{r}"].value == pytest.approx(ln.bonus, abs=0.005)
        assert label_value(ws, "Bonus for the period")[1] == pytest.approx(exp_emp.bonus, abs=0.005)
        assert label_value(ws, "Total pay")[1] == pytest.approx(exp_emp.total_pay, abs=0.005)


@pytest.mark.libreoffice
def test_restyled_user_formulas_compute_in_libreoffice(lo_batch: dict[str, Any], restyled: CardTemplate,
                                                       results: Any) -> None:
    ws = load(lo_batch["out"]["restyled_E002"].read_bytes()).active
    bonuses = lines_of(results, "E002")["bonus"].tolist()
    first = restyled.kpi_row
    for i, b in enumerate(bonuses):
        assert ws[f"L{first + i}"].value == pytest.approx(2 * b)
    assert ws[f"L{first + len(bonuses)}"].value == pytest.approx(2 * sum(bonuses))


@pytest.mark.libreoffice
def test_a_card_prints_on_one_a4_page(lo_dir: Path, tpl: CardTemplate, tpl_ru: CardTemplate, results: Any,
                                      results_ru: Any) -> None:
    if shutil.which("pdfinfo") is None:
        pytest.skip("pdfinfo (poppler-utils) is not installed")
    src = lo_dir / "pdf_in"
    src.mkdir()
    (src / "en_9kpi.xlsx").write_bytes(render_card(tpl, results, "E002"))
    (src / "ru_9kpi.xlsx").write_bytes(render_card(tpl_ru, results_ru, "E002"))
    for pdf in lo.to_pdf(sorted(src.iterdir()), lo_dir / "pdf_out"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        assert re.search(r"Pages:\s+1\b", info), info
        w, h = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
        assert (round(w), round(h)) == (595, 842)  # A4 portrait, in points


def test_engine_round_trip_of_the_fixture() -> None:
    # the fixture's numbers are the engine's: spot-check one line against a direct call
    res = sample_results()
    ln = lines_of(res, "E001").iloc[0]
    assert ln.bonus == xl_kpi.bonus(20_000, 0.4, xl_kpi.score(160, 100, 150))


def test_user_template_gets_the_same_file_checks_as_a_plan(tmp_path):
    import zipfile

    from xl_kpi.outputs.cards import CardTemplate, TemplateError

    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/sharedStrings.xml", "<sst>" + "a" * (300 * 1024 * 1024 // 100) + "</sst>")
    with pytest.raises(TemplateError, match=r"bomb\.xlsx"):
        CardTemplate.load(bomb)
    not_xlsx = tmp_path / "card.xlsx"
    not_xlsx.write_text("name;value\n")
    with pytest.raises(TemplateError, match=r"card\.xlsx"):
        CardTemplate.load(not_xlsx)


@pytest.mark.libreoffice
@pytest.mark.parametrize("digits", [0, 1])
def test_settings_digits_reach_every_round_on_the_card(lo_dir: Path, tpl: CardTemplate, digits: int) -> None:
    """Issue 10: with digits = 0 the engine cached 8800 while the card's ROUND(…,2) showed 8800.44."""
    import dataclasses

    from xl_kpi.inputs.facts import load_facts
    from xl_kpi.inputs.plan import load_plan, sample_inputs
    from xl_kpi.results import compute

    plan_path, data = sample_inputs()
    plan = load_plan(plan_path)
    facts = load_facts(plan, data)
    plan = dataclasses.replace(plan, settings=dataclasses.replace(plan.settings, digits=digits))
    plan.employees["bonus_pool"] = plan.employees["bonus_pool"] + 33.3337  # amounts with fractions
    plan.employees["salary"] = plan.employees["salary"] + 0.4444
    results = compute(plan, facts)
    src = lo_dir / f"digits{digits}"
    src.mkdir()
    files = []
    for eid, data_ in list(iter_cards(tpl, results))[:8]:
        files.append(src / f"{eid}.xlsx")
        files[-1].write_bytes(data_)
    scaled = results.employees["total_pay"].to_numpy(float) * 10.0**digits
    assert (abs(scaled - scaled.round()) < 1e-6).all()  # the engine rounded to `digits`
    outs = lo.recalc(files, lo_dir / f"digits{digits}_recalc")
    problems = [(f.name, m) for f, o in zip(files, outs, strict=True)
                for m in lo.formula_cells_vs_cached(f, o, money_tol=10.0 ** -digits / 100)]
    assert problems == []


@pytest.mark.parametrize(("department", "employee_id", "name"), [
    ("Отдел продаж", 5.0, "Иванов Иван"), (None, "E1", None), ("../..", "..", ".."), ("CON", "a/b", "c\\d"),
    (float("nan"), 1, "nul.txt"), ("  . ", ".", "."), ("a" * 300, "b" * 300, "c"), ("x\u202ey", "E\u200b2", "Bob\x00"),
])
def test_fast_card_paths_equal_card_path(tmp_path, department, employee_id, name):
    # the batch names every card with _CardPaths (text, no pathlib): the very names card_path gives, inside OUT
    from xl_kpi.outputs.cards.write import _CardPaths

    fast = _CardPaths(tmp_path)(department, employee_id, name)
    assert fast == str(card_path(tmp_path, department, employee_id, name))
    assert Path(fast).resolve().is_relative_to((tmp_path / "cards").resolve())


def test_per_employee_parts_are_stored_and_the_zip_is_sound():
    # the sheet and chart XML are stored (method 0, no zlib per card); the shared parts stay deflated
    res = sample_results()
    tpl = CardTemplate.load(lang="ru")
    data = render_card(tpl, res, res.employees["employee_id"].iloc[0])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        kinds = {i.filename: i.compress_type for i in z.infolist()}
    assert kinds[tpl.sheet_part] == zipfile.ZIP_STORED
    assert kinds["xl/styles.xml"] == zipfile.ZIP_DEFLATED
