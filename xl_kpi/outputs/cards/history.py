"""The card's history sheet (``--history``): the earlier periods' weighted scores and bonuses next to this one, a
trend chart and the year-to-date total.

Added to a card only when the run has history (:class:`xl_kpi.outputs.history.History`); otherwise the card's
bytes are exactly those without this module. The sheet is appended to the compiled card as new zip parts (a
worksheet, its drawing and chart) plus small additions to the workbook, its relationships, the content types
and the styles: those four are patched once per card shape and reused; only the sheet, drawing and chart are
written per card.

Rows hold the recorded numbers of the card's owner only (their ``employee_id`` in each earlier run). This
period's row refers to the card sheet's own cells (bonus, and the weighted score when the KPI rows allow it),
so the what-if on the card moves it too; the year-to-date cell is a live ``ROUND(SUM(…))`` from
:mod:`xl_kpi.engine.formulas`, cached with the engine's :func:`~xl_kpi.engine.payout.year_to_date`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xl_kpi.engine import formulas as fx
from xl_kpi.engine.money import CURRENCY_SYMBOLS
from xl_kpi.engine.payout import weighted_score, year_to_date
from xl_kpi.engine.period import Period
from xl_kpi.outputs.cards.cells import Fx, _num, _tail
from xl_kpi.outputs.cards.data import _LINE_COLS, _Card
from xl_kpi.outputs.cards.extrasheet import SheetStyles, add_sheet
from xl_kpi.outputs.history import SHOWN, History, HistoryRow
from xl_kpi.outputs.ooxml import ZipEntry, deflate, quote_sheet, xml_attr, xml_text

TEXTS = {
    "en": {
        "sheet": "History", "title": "Scores and bonuses by period", "period": "Period",
        "score": "Weighted score", "bonus": "Bonus", "this": "◀ this period", "ytd": "Year to date {}",
        "ytd_count": "{} periods", "chart": "Bonus and weighted score by period",
        "note": "Earlier periods: the results recorded by earlier xl-kpi runs, each checked against its "
                "manifest.json. Year to date: the bonuses of this period and of the earlier periods inside {}.",
    },
    "ru": {
        "sheet": "Динамика", "title": "Оценка и премия по периодам", "period": "Период",
        "score": "Взвешенная оценка", "bonus": "Премия", "this": "◀ текущий период",
        "ytd": "С начала {} года", "ytd_count": "периодов: {}", "chart": "Премия и взвешенная оценка по периодам",
        "note": "Прошлые периоды — результаты прошлых расчётов xl-kpi, каждый сверен со своим manifest.json. "
                "С начала года — премии этого периода и прошлых периодов внутри {} года.",
    },
}

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_C = "http://schemas.openxmlformats.org/drawingml/2006/chart"
NS_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
NS_XDR = "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
FIRST_ROW = 5
"""The first period row (row 4 holds the headers)."""
CHART_ROWS = 18


@dataclass(frozen=True)
class _Shape:
    """What is the same for every card of one compiled shape: the patched static parts and where things are."""

    replaced: dict[str, ZipEntry]
    added: list[ZipEntry]
    sheet_part: str
    drawing_part: str
    chart_part: str
    sheet: str
    xf: dict[str, int]


def add_history(template: Any, comp: Any, card: _Card, ctx: Any, entries: list[ZipEntry],
                locals_: list[bytes], level: int) -> tuple[list[ZipEntry], list[bytes]]:
    """The card's zip entries with the history sheet added (``ctx.history`` holds the earlier runs)."""
    history: History = ctx.history
    shapes = vars(template).setdefault("_history_shapes", {})  # compiled once per card shape, like the card
    shape = shapes.get((comp.key, ctx.lang))
    if shape is None:
        shape = shapes[(comp.key, ctx.lang)] = _shape(template, comp, ctx)
    out_e, out_l = [], []
    for e, loc in zip(entries, locals_, strict=True):
        r = shape.replaced.get(e.name.decode("utf-8"))
        out_e.append(r or e)
        out_l.append(r.local if r else loc)
    sheet, drawing, chart = _card_parts(template, comp, card, ctx, history.of(card.emp["employee_id"]), shape)
    for part, data in ((shape.sheet_part, sheet), (shape.drawing_part, drawing), (shape.chart_part, chart)):
        e = deflate(part, data.encode("utf-8"), level)
        out_e.append(e)
        out_l.append(e.local)
    for e in shape.added:
        out_e.append(e)
        out_l.append(e.local)
    return out_e, out_l


# ------------------------------------------------------------------------------------------ per card


def _card_parts(template: Any, comp: Any, card: _Card, ctx: Any, earlier: tuple[HistoryRow, ...],
                shape: _Shape) -> tuple[str, str, str]:
    """(sheet XML, drawing XML, chart XML) of one card."""
    t = TEXTS[ctx.lang]
    xf = shape.xf
    here = Period.parse(ctx.period)
    year = here.end.year
    in_year = ctx.history.year_to_date(card.emp["employee_id"], here)
    recent = len(earlier) - SHOWN  # the latest SHOWN earlier periods, and every one the year-to-date adds up
    shown = [h for i, h in enumerate(earlier) if i >= recent or h in in_year]
    emp = card.emp
    card_sheet = quote_sheet(template.sheet_name)
    rows: list[str] = []

    def row(r: int, cells: list[tuple[str, str, Any]]) -> None:
        rows.append(f'<row r="{r}">' + "".join(f'<c r="{c}{r}" s="{xf[s]}"{_tail(v)}' for c, s, v in cells)
                    + "</row>")

    row(1, [("A", "title", t["title"])])
    row(2, [("A", "sub", " — ".join(str(x) for x in (emp["name"], emp["position"]) if x not in (None, "")))])
    row(4, [("A", "head", t["period"]), ("B", "head", t["score"]), ("C", "head", t["bonus"]), ("D", "head", "")])
    r = FIRST_ROW
    ytd_first = None
    for h in shown:
        if h in in_year and ytd_first is None:
            ytd_first = r
        row(r, [("A", "text", Period.parse(h.period).label(ctx.lang)), ("B", "pct", _value(h.score)),
                ("C", "money", _value(h.bonus)), ("D", "text", "")])
        r += 1
    cur = r
    score = _current_score(template, comp, card, card_sheet)
    bonus_ref = comp.field_refs.get("bonus")
    bonus = emp["bonus"]
    row(cur, [("A", "cur_text", here.label(ctx.lang)), ("B", "cur_pct", score),
              ("C", "cur_money", Fx(f"{card_sheet}!{bonus_ref}", bonus) if bonus_ref else _value(bonus)),
              ("D", "cur_text", t["this"])])
    ytd_rows = len(in_year) + 1
    total = year_to_date([h.bonus for h in in_year] + [bonus], digits=ctx.digits)
    row(cur + 1, [("A", "ytd_text", t["ytd"].format(year)), ("B", "ytd_text", ""),
                  ("C", "ytd_money", Fx(fx.year_to_date_formula(f"C{ytd_first or cur}:C{cur}", ctx.digits), total)),
                  ("D", "ytd_text", t["ytd_count"].format(ytd_rows))])
    note = cur + 3
    rows.append(f'<row r="{note}" ht="36" customHeight="1"><c r="A{note}" s="{xf["note"]}"'
                f'{_tail(t["note"].format(year))}</row>')
    chart_row = note + 1
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{NS_MAIN}" xmlns:r="{NS_R}">'
        '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
        f'<dimension ref="A1:D{note}"/><sheetViews><sheetView showGridLines="0" workbookViewId="0"/></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/><cols><col min="1" max="1" width="26" customWidth="1"/>'
        '<col min="2" max="2" width="18" customWidth="1"/><col min="3" max="3" width="18" customWidth="1"/>'
        '<col min="4" max="4" width="20" customWidth="1"/></cols>'
        f'<sheetData>{"".join(rows)}</sheetData><mergeCells count="1"><mergeCell ref="A{note}:D{note}"/></mergeCells>'
        '<pageMargins left="0.5" right="0.5" top="0.6" bottom="0.6" header="0.3" footer="0.3"/>'
        '<pageSetup paperSize="9" orientation="portrait" fitToWidth="1" fitToHeight="0"/>'
        '<drawing r:id="rId1"/></worksheet>'
    )
    drawing = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<xdr:wsDr xmlns:xdr="{NS_XDR}" xmlns:a="{NS_A}" '
        f'xmlns:r="{NS_R}" xmlns:c="{NS_C}"><xdr:twoCellAnchor editAs="oneCell">'
        f"<xdr:from><xdr:col>0</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>{chart_row}</xdr:row>"
        f"<xdr:rowOff>0</xdr:rowOff></xdr:from><xdr:to><xdr:col>4</xdr:col><xdr:colOff>0</xdr:colOff>"
        f"<xdr:row>{chart_row + CHART_ROWS}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:to>"
        '<xdr:graphicFrame macro=""><xdr:nvGraphicFramePr><xdr:cNvPr id="2" name="History chart"/>'
        '<xdr:cNvGraphicFramePr/></xdr:nvGraphicFramePr><xdr:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/>'
        '</xdr:xfrm><a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/chart">'
        '<c:chart r:id="rId1"/></a:graphicData></a:graphic></xdr:graphicFrame><xdr:clientData/>'
        "</xdr:twoCellAnchor></xdr:wsDr>"
    )
    labels = [Period.parse(h.period).label(ctx.lang) for h in shown] + [here.label(ctx.lang)]
    scores = [h.score for h in shown] + [_cached(score)]
    bonuses = [h.bonus for h in shown] + [bonus]
    chart = _chart(shape.sheet, t, ctx.currency, FIRST_ROW, cur, labels, scores, bonuses)
    return sheet, drawing, chart


def _value(x: Any) -> Any:
    return x if type(x) is float and x == x else None


def _cached(v: Any) -> Any:
    return v.value if type(v) is Fx else v


def _current_score(template: Any, comp: Any, card: _Card, card_sheet: str) -> Any:
    """This period's weighted score: a live formula over the card's KPI rows when each line has a weight and
    a score (as the engine needs), else the engine's value (or an empty cell)."""
    wi, si = _LINE_COLS.index("weight"), _LINE_COLS.index("score")
    w = [ln[wi] for ln in card.lines]
    s = [ln[si] for ln in card.lines]
    if not card.lines or not all(type(x) is float and x == x for x in w + s):
        return None
    value = weighted_score(w, s)
    kc, rows = template.kpi_cols, comp.kpi_rows
    if "weight" not in kc or len(rows) != len(card.lines):
        return value
    first, last = rows[0], rows[-1]
    weights = f"{card_sheet}!${kc['weight']}${first}:${kc['weight']}${last}"
    scores = f"{card_sheet}!${kc['score']}${first}:${kc['score']}${last}"
    return Fx(fx.weighted_score_formula(weights, scores), value)


def _chart(sheet: str, t: dict[str, str], currency: str, first: int, last: int, labels: list[str],
           scores: list[Any], bonuses: list[Any]) -> str:
    q = quote_sheet(sheet)
    n = len(labels)
    cat_cache = "".join(f'<c:pt idx="{i}"><c:v>{xml_text(v)}</c:v></c:pt>' for i, v in enumerate(labels))
    cat = (f"<c:cat><c:strRef><c:f>{xml_text(q)}!$A${first}:$A${last}</c:f><c:strCache><c:ptCount val=\"{n}\"/>"
           f"{cat_cache}</c:strCache></c:strRef></c:cat>")

    def val(col: str, values: list[Any], fmt: str) -> str:
        pts = "".join(f'<c:pt idx="{i}"><c:v>{_num(v)}</c:v></c:pt>' for i, v in enumerate(values)
                      if type(v) is float and v == v)
        return (f"<c:val><c:numRef><c:f>{xml_text(q)}!${col}${first}:${col}${last}</c:f><c:numCache>"
                f"<c:formatCode>{xml_text(fmt)}</c:formatCode><c:ptCount val=\"{n}\"/>{pts}</c:numCache>"
                "</c:numRef></c:val>")

    def name(col: str, text: str) -> str:
        return (f"<c:tx><c:strRef><c:f>{xml_text(q)}!${col}$4</c:f><c:strCache><c:ptCount val=\"1\"/>"
                f'<c:pt idx="0"><c:v>{xml_text(text)}</c:v></c:pt></c:strCache></c:strRef></c:tx>')

    def axes(cat_id: int, val_id: int, deleted: bool, pos: str, fmt: str, crosses: str) -> str:
        return (f'<c:catAx><c:axId val="{cat_id}"/><c:scaling><c:orientation val="minMax"/></c:scaling>'
                f'<c:delete val="{int(deleted)}"/><c:axPos val="b"/><c:numFmt formatCode="General" sourceLinked="0"/>'
                f'<c:tickLblPos val="nextTo"/><c:crossAx val="{val_id}"/><c:crosses val="autoZero"/>'
                '<c:auto val="1"/><c:lblAlgn val="ctr"/><c:lblOffset val="100"/></c:catAx>'
                f'<c:valAx><c:axId val="{val_id}"/><c:scaling><c:orientation val="minMax"/></c:scaling>'
                f'<c:delete val="0"/><c:axPos val="{pos}"/>' + ("<c:majorGridlines/>" if not deleted else "")
                + f'<c:numFmt formatCode="{xml_attr(fmt)}" sourceLinked="0"/><c:tickLblPos val="nextTo"/>'
                f'<c:crossAx val="{cat_id}"/><c:crosses val="{crosses}"/><c:crossBetween val="between"/></c:valAx>')

    money = _money_format(currency)
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<c:chartSpace xmlns:c="{NS_C}" xmlns:a="{NS_A}" '
        f'xmlns:r="{NS_R}"><c:roundedCorners val="0"/><c:chart><c:title><c:tx><c:rich><a:bodyPr/><a:p><a:pPr>'
        f'<a:defRPr sz="1100" b="1"/></a:pPr><a:r><a:t>{xml_text(t["chart"])}</a:t></a:r></a:p></c:rich></c:tx>'
        '<c:overlay val="0"/></c:title><c:autoTitleDeleted val="0"/><c:plotArea><c:layout/>'
        '<c:barChart><c:barDir val="col"/><c:grouping val="clustered"/><c:varyColors val="0"/>'
        f'<c:ser><c:idx val="0"/><c:order val="0"/>{name("C", t["bonus"])}'
        '<c:spPr><a:solidFill><a:srgbClr val="2E75B6"/></a:solidFill></c:spPr><c:invertIfNegative val="0"/>'
        f'{cat}{val("C", bonuses, money)}</c:ser><c:gapWidth val="80"/><c:axId val="1001"/><c:axId val="1002"/>'
        '</c:barChart><c:lineChart><c:grouping val="standard"/><c:varyColors val="0"/>'
        f'<c:ser><c:idx val="1"/><c:order val="1"/>{name("B", t["score"])}'
        '<c:spPr><a:ln w="28575"><a:solidFill><a:srgbClr val="C55A11"/></a:solidFill></a:ln></c:spPr>'
        '<c:marker><c:symbol val="circle"/><c:size val="6"/></c:marker>'
        f'{cat}{val("B", scores, "0.0%")}<c:smooth val="0"/></c:ser><c:marker val="1"/>'
        '<c:axId val="1003"/><c:axId val="1004"/></c:lineChart>'
        + axes(1001, 1002, False, "l", money.replace("0.00", "0"), "autoZero")
        + axes(1003, 1004, True, "r", "0%", "max")
        + '</c:plotArea><c:legend><c:legendPos val="b"/><c:overlay val="0"/></c:legend><c:plotVisOnly val="1"/>'
        '<c:dispBlanksAs val="gap"/></c:chart></c:chartSpace>'
    )


def _money_format(currency: str) -> str:
    sym = CURRENCY_SYMBOLS.get(currency.upper(), currency) if currency else "₽"
    return f'#,##0.00 "{sym}"'


# ------------------------------------------------------------------------------------ per card shape


def _shape(template: Any, comp: Any, ctx: Any) -> _Shape:
    """Patch the compiled card's workbook, relationships, content types and styles once for this shape."""
    static = {e.name.decode("utf-8"): e for e in comp.entries if isinstance(e, ZipEntry)}
    names = set(static) | {e for e in comp.entries if isinstance(e, str)}

    def free(stem: str, ext: str = ".xml") -> str:
        n, part = 1, stem + ext
        while part in names:
            n += 1
            part = f"{stem}{n}{ext}"
        return part

    sheet_part = free("xl/worksheets/xl_kpi_history")
    drawing_part = free("xl/drawings/xl_kpi_history")
    chart_part = free("xl/charts/xl_kpi_history")
    taken = {n.casefold() for n, _ in template.sheets}
    sheet, k = TEXTS[ctx.lang]["sheet"], 2
    while sheet.casefold() in taken:
        sheet, k = f"{TEXTS[ctx.lang]['sheet']} {k}", k + 1

    replaced, xf = add_sheet(static, sheet, sheet_part, "rIdXlKpiHistory",
                             [(sheet_part, "spreadsheetml.worksheet+xml"), (drawing_part, "drawing+xml"),
                              (chart_part, "drawingml.chart+xml")],
                             SheetStyles(_FONTS, _FILL, _BORDER, _XFS,
                                         {"": 0, "pct": "0.0%", "money": _money_format(ctx.currency)}),
                             ctx.lang, "a history sheet")

    def rel_file(target: str, kind: str) -> bytes:
        return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
                f'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
                f'Type="{_REL}{kind}" Target="/{target}"/></Relationships>').encode()

    def rels_of(part: str) -> str:
        folder, _, file = part.rpartition("/")
        return f"{folder}/_rels/{file}.rels"

    added = [deflate(rels_of(sheet_part), rel_file(drawing_part, "drawing")),
             deflate(rels_of(drawing_part), rel_file(chart_part, "chart"))]
    return _Shape(replaced, added, sheet_part, drawing_part, chart_part, sheet, xf)


_FONTS = {"title": '<font><b val="1"/><sz val="14"/><color rgb="FF1F3864"/><name val="Calibri"/></font>',
          "bold": '<font><b val="1"/><sz val="10"/><name val="Calibri"/></font>',
          "text": '<font><sz val="10"/><name val="Calibri"/></font>',
          "note": '<font><i val="1"/><sz val="8"/><color rgb="FF7F7F7F"/><name val="Calibri"/></font>'}
_FILL = '<fill><patternFill patternType="solid"><fgColor rgb="FFD9E2F3"/><bgColor indexed="64"/></patternFill></fill>'
_BORDER = ('<border><left/><right/><top/><bottom style="thin"><color rgb="FFBFBFBF"/></bottom><diagonal/></border>')
# name → (font, number format: "" general / "pct" / "money", filled, bordered, alignment)
_XFS = {
    "title": ("title", "", False, False, ""), "sub": ("text", "", False, False, ""),
    "head": ("bold", "", True, True, '<alignment horizontal="center" vertical="center" wrapText="1"/>'),
    "text": ("text", "", False, True, ""), "pct": ("text", "pct", False, True, ""),
    "money": ("text", "money", False, True, ""),
    "cur_text": ("bold", "", False, True, ""), "cur_pct": ("bold", "pct", False, True, ""),
    "cur_money": ("bold", "money", False, True, ""),
    "ytd_text": ("bold", "", True, True, ""), "ytd_money": ("bold", "money", True, True, ""),
    "note": ("note", "", False, False, '<alignment vertical="top" wrapText="1"/>'),
}


