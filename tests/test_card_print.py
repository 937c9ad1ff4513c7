"""Printed cards (issue 13 §4): numbers in the card's language whatever the machine's locale, long labels
wrapped inside their cells. Checked on PDFs made by ``xl-kpi distribute --pdf``'s converter
(:func:`xl_kpi.delivery.office.convert`) under a locale that is not the card's, by text extraction."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests import lo
from tests._results_fixture import compute
from xl_kpi import Scale
from xl_kpi.outputs.cards import CardTemplate, render_card
from xl_kpi.outputs.numlang import tag_code, tag_styles
from xl_kpi.outputs.summary import summary_bytes

LONG_SCALE = "квартальная_шкала_выручки_по_ключевым_клиентам_с_ускорителем"
LONG_KPI = "Выручка по ключевым клиентам за квартал с учётом возвратов и скидок, руб."


def _results(lang: str) -> Any:
    """One employee: a fact of 1 500 000, a salary of 45 000, a long KPI name and a long scale name."""
    nan = math.nan
    lines = pd.DataFrame([
        dict(employee_id="E1", kpi_id="rev", kpi_name=LONG_KPI, unit="руб.", weight=0.6, base=1_000_000.0,
             norm=1_500_000.0, floor=nan, cap=nan, scale=LONG_SCALE, gate=nan, fact=1_500_000.0),
        dict(employee_id="E1", kpi_id="nps", kpi_name="NPS", unit="pts", weight=0.4, base=20.0, norm=50.0,
             floor=nan, cap=nan, scale="default", gate=nan, fact=56.0),
    ])
    emps = pd.DataFrame([dict(employee_id="E1", name="Иванова Мария Сергеевна", position="Менеджер",
                              department="Продажи", manager="Сидоров Пётр", email="e1@example.com",
                              salary=45_000.0, bonus_pool=20_000.0, multiplier=1.0, proration=1.0)])
    from xl_kpi import DEFAULT_SCALE

    scales = {"default": DEFAULT_SCALE,
              LONG_SCALE: Scale.steps([(0.8, 0.8), (1.0, 1.0), (1.2, 1.3)], below=0.2, cap=1.25, name=LONG_SCALE)}
    return compute(lines, emps, scales, language=lang)


def _text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return out


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """PDFs of the ru card made under an English/C locale and of the en card made under a Russian one."""
    lo.require_soffice()
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    from xl_kpi.delivery.office import convert

    root = tmp_path_factory.mktemp("print")
    out: dict[str, Path] = {}
    for lang, machine in (("ru", "C.UTF-8"), ("en", "ru_RU.UTF-8")):
        src = root / f"in_{lang}"
        src.mkdir()
        card = src / f"card_{lang}.xlsx"
        card.write_bytes(render_card(CardTemplate.load(lang=lang), _results(lang), "E1"))
        summary = src / f"summary_{lang}.xlsx"
        summary.write_bytes(summary_bytes(_results(lang)))
        with pytest.MonkeyPatch.context() as mp:
            for var in ("LC_ALL", "LANG", "LC_NUMERIC", "LC_MONETARY", "LANGUAGE"):
                mp.setenv(var, machine)
            res = convert([card, summary], root / f"out_{lang}", "pdf", timeout=300)
        assert res.ok, res.failed
        out[lang] = res.outputs[card.resolve()]
        out[f"summary_{lang}"] = res.outputs[summary.resolve()]
    return out


# the group separator: U+00A0 (no-break space) in the workbook, as LibreOffice's Russian locale writes it;
# pdftotext gives it back as a plain space
_SP = "[ \u00a0]"


@pytest.mark.libreoffice
def test_ru_card_prints_russian_numbers_on_an_english_machine(printed: dict[str, Path]) -> None:
    text = _text(printed["ru"])
    assert re.search(rf"(?<![\d,.]){_SP.join(['1', '500', '000'])}(?![\d,.])", text), text  # the fact, #,##0
    assert re.search(rf"(?<![\d,.])45{_SP}000,00 ₽", text), text  # the salary, money
    assert "1,500,000" not in text and "45,000.00" not in text
    assert re.search(r"100,0%", text)  # scores: a decimal comma


@pytest.mark.libreoffice
def test_en_card_prints_english_numbers_on_a_russian_machine(printed: dict[str, Path]) -> None:
    text = _text(printed["en"])
    assert re.search(r"(?<![\d,.])1,500,000(?![\d,.])", text), text
    assert re.search(r"(?<![\d,.])45,000\.00 ₽", text), text
    assert not re.search(rf"45{_SP}000,00", text)
    assert re.search(r"100\.0%", text)


@pytest.mark.libreoffice
def test_the_summary_prints_in_its_language_too(printed: dict[str, Path]) -> None:
    ru, en = _text(printed["summary_ru"]), _text(printed["summary_en"])
    assert re.search(rf"(?<![\d,.])65{_SP}800,00", ru) and "65,800.00" not in ru, ru  # total pay, money
    assert re.search(r"(?<![\d,.])65,800\.00", en) and not re.search(rf"65{_SP}800,00", en), en


def test_format_codes_get_the_card_language() -> None:
    assert tag_code('#,##0.00 "₽"', "ru") == '[$-419]#,##0.00 "₽"'
    assert tag_code("0.0%", "en") == "[$-409]0.0%"
    assert tag_code("General", "ru") == "[$-419]General"
    assert tag_code('[$-409]#,##0', "ru") == "[$-409]#,##0"  # an explicit language is kept
    assert tag_code("[$₽-419]#,##0.00", "en") == "[$₽-419]#,##0.00"
    assert tag_code("dd.mm.yyyy", "ru") == "dd.mm.yyyy"  # dates and text are left alone
    assert tag_code("@", "ru") == "@"
    assert tag_code('"< "0%', "ru") == '[$-419]"< "0%'  # letters inside literals are not dates
    assert tag_code("0.00", "de") == "0.00"  # no language id known: unchanged


def test_styles_built_in_formats_become_tagged_custom_ones() -> None:
    xml = ('<styleSheet><numFmts count="1"><numFmt numFmtId="164" formatCode="#,##0.00 &quot;₽&quot;"/>'
           '</numFmts><cellXfs count="4"><xf numFmtId="0" fontId="0"/><xf numFmtId="164" fontId="0"/>'
           '<xf numFmtId="9" fontId="1" applyNumberFormat="1"><alignment wrapText="1"/></xf>'
           '<xf numFmtId="14" fontId="0"/></cellXfs>'
           '<dxfs count="1"><dxf><numFmt numFmtId="170" formatCode="#,##0"/></dxf></dxfs></styleSheet>')
    out = tag_styles(xml, "ru")
    fmts = dict(re.findall(r'<numFmt numFmtId="(\d+)" formatCode="([^"]*)"/>', out))
    xfs = re.findall(r'<xf numFmtId="(\d+)"', re.sub(r"applyNumberFormat=\"1\" ", "", out))
    assert fmts["164"] == "[$-419]#,##0.00 &quot;₽&quot;" and fmts["170"] == "[$-419]#,##0"
    assert fmts[xfs[0]] == "[$-419]General" and fmts[xfs[2]] == "[$-419]0%"
    assert xfs[1] == "164" and xfs[3] == "14"  # a custom one kept its id; a date stays built in
    assert '<numFmts count="3">' in out
    assert tag_styles(out, "ru") == out  # idempotent


def test_the_card_workbook_carries_the_language(tmp_path: Path) -> None:
    import openpyxl

    for lang, tag in (("ru", "[$-419]"), ("en", "[$-409]")):
        p = tmp_path / f"{lang}.xlsx"
        p.write_bytes(render_card(CardTemplate.load(lang=lang), _results(lang), "E1"))
        ws = openpyxl.load_workbook(p).active
        money = [c.number_format for row in ws.iter_rows() for c in row if "0.00" in c.number_format]
        assert money and all(f.startswith(tag) for f in money), money


# ---------------------------------------------------------------------------------------- wrapping

TITLES = {"ru": f"Шкала «{LONG_SCALE}» — ступенчатая, коэффициент не выше 1,25",
          "en": f"Scale “{LONG_SCALE}” — steps, coefficient capped at 1.25"}
USED_BY = {"ru": f"Применяется к: {LONG_KPI}", "en": f"Applies to: {LONG_KPI}"}
BAND_HEAD = {"ru": "Диапазон", "en": "Score"}


def _words(pdf: Path) -> list[tuple[str, float, float, float, float]]:
    """(text, x0, y0, x1, y1) of every word on the page, in pdftotext's reading order."""
    xml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return [(html_unescape(w), float(a), float(b), float(c), float(d)) for a, b, c, d, w in re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', xml)]


def html_unescape(s: str) -> str:
    import html

    return html.unescape(s)


def _find(words: list[tuple[str, float, float, float, float]], text: str) -> list[tuple[str, float, float, float,
                                                                                        float]]:
    """The run of words that spells ``text`` (whitespace aside); fails when the page does not hold all of it."""
    target = "".join(text.split())
    for i in range(len(words)):
        got = ""
        for j in range(i, len(words)):
            got += words[j][0]
            if not target.startswith(got):
                break
            if got == target:
                return words[i: j + 1]
    raise AssertionError(f"{text!r} is not on the page whole: {' '.join(w[0] for w in words)}")


@pytest.mark.libreoffice
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_long_scale_title_wraps_inside_its_cell(printed: dict[str, Path], lang: str) -> None:
    from xl_kpi.delivery.office import pdf_page_count

    pdf = printed[lang]
    assert pdf_page_count(pdf.read_bytes()) == 1
    words = _words(pdf)
    applies = USED_BY[lang].split()[0]
    right = min(w[1] for w in words if w[0] == applies)  # where the "applies to" cell begins
    title = _find([w for w in words if w[1] < right], TITLES[lang])  # the left cell's words, in order
    used_by = _find([w for w in words if w[1] >= right], USED_BY[lang])
    assert len({round(w[2]) for w in title}) >= 2  # on more than one line
    # not cut by the next cell (the "applies to" text beside it) ...
    assert max(w[3] for w in title) <= min(w[1] for w in used_by) + 0.5
    # ... nor by the row below: the scale's header row starts under the title's last line
    head = min((w for w in words if w[0] == BAND_HEAD[lang] and w[2] > title[0][2]), key=lambda w: w[2])
    assert max(w[4] for w in title + used_by) <= head[2] + 0.5


@pytest.mark.libreoffice
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_long_kpi_name_gets_a_row_tall_enough(printed: dict[str, Path], lang: str) -> None:
    words = _words(printed[lang])
    name = _find(words, LONG_KPI)
    header = next(w for w in words if w[0] in ("Показатель", "KPI") and w[2] < name[0][2])
    below = min((w for w in words if w[0] == "NPS" and w[2] > name[0][2]), key=lambda w: w[2])
    assert min(w[2] for w in name) >= header[4] and max(w[4] for w in name) <= below[2]
    assert len({round(w[2]) for w in name}) >= 2


def test_rows_grow_for_wrapped_text_only(tmp_path: Path) -> None:
    import openpyxl

    from tests._results_fixture import sample_results

    tpl = CardTemplate.load(lang="ru")
    p = tmp_path / "long.xlsx"
    p.write_bytes(render_card(tpl, _results("ru"), "E1"))
    ws = openpyxl.load_workbook(p).active
    rows = {c.value: c.row for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    assert ws.row_dimensions[rows[TITLES["ru"]]].height >= 3 * 10 * 1.2  # three lines of 10 pt
    assert ws.row_dimensions[rows[LONG_KPI]].height >= 3 * 10 * 1.2
    assert ws.row_dimensions[rows["Базовая шкала — ступенчатая"]].height == 17  # short: the template's height
    q = tmp_path / "short.xlsx"
    q.write_bytes(render_card(tpl, sample_results("ru"), "E001"))
    ws = openpyxl.load_workbook(q).active
    assert {ws.row_dimensions[r].height for r in range(11, 14)} == {20}  # short KPI names: rows as designed


def test_line_count_estimate() -> None:
    from xl_kpi.outputs.cards.fit import line_count

    assert line_count("NPS", 30, 10) == 1
    assert line_count("слово " * 20, 30, 10) > 2
    assert line_count("a" * 200, 30, 10) >= 4  # one long word is broken
    assert line_count("one\ntwo", 30, 10) == 2
