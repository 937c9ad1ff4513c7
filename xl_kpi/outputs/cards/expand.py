"""Compiling a card template for one card shape: rows expanded (KPI rows, scale blocks), every row reference
moved (formulas, merged cells, conditional formats, charts, drawings, defined names, print area), and the
result cut into literal chunks with slots for the per-employee values."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from xl_kpi.engine.money import CURRENCY_SYMBOLS
from xl_kpi.outputs.cards.cells import (
    _fx_text,
)
from xl_kpi.outputs.cards.fit import CellFit, Styles, cell_width, col_widths, merged_spans, row_fit
from xl_kpi.outputs.cards.markup import _CELL_RE, _F_RE, _V_RE, _Row
from xl_kpi.outputs.ooxml import (
    COMPRESS_LEVEL,
    RowPlan,
    ZipEntry,
    col_letters,
    deflate,
    map_range,
    map_sqref,
    parse_attrs,
    range_cells,
    refers_to,
    render_attrs,
    shift_formula,
    split_cell,
    split_sheet_ref,
    xml_attr,
    xml_unescape,
)

FIXED_TIMESTAMP = "2026-01-01T00:00:00Z"
"""docProps/core.xml created/modified of every card (same input → same bytes)."""



class _Key(NamedTuple):
    rows: int
    scales: tuple[tuple[str, ...], ...]  # per scale: the kinds of its rows ("below", "point", "cap")
    hide_multiplier: bool
    hide_proration: bool
    currency: str
    recalc: bool = False  # some total has no cached value: the office suite recalculates on load
    hide_adjustment: bool = True  # no Adjustments row for this employee: the card's adjustment row is hidden


@dataclass
class _Slot:
    ctx: int
    field: str | None
    pieces: list[Any] | None  # text template: str or (ctx, field)


@dataclass
class _ChartSlot:
    numeric: bool
    prefix: str
    format_code: str
    cells: list[Any]  # ("s", slot index) or ("v", static value)


@dataclass
class _Compiled:
    key: _Key
    plan: RowPlan
    sheet_parts: list[str | None]
    sheet_slots: list[tuple[int, _Slot]]
    charts: dict[str, tuple[list[str | None], list[tuple[int, _ChartSlot]]]]
    entries: list[ZipEntry | str]  # str = name of a per-card part
    locals_: list[bytes | None]
    kpi_rows: list[int]
    scale_rows: list[dict[str, Any]]  # per scale: {"ctx": title context, "rows": [(kind, row, context)]}
    ctx_count: int
    field_refs: dict[str, str]  # header marker → absolute reference of its first cell



class _Compiler:
    """The compile half of :class:`~xl_kpi.outputs.cards.template.CardTemplate`: the attributes below are set
    when the template is parsed."""

    parts: dict[str, bytes]
    names: list[str]
    sheets: list[tuple[str, str]]
    sheet_name: str
    sheet_part: str
    head: str
    tail: str
    rows: dict[int, _Row]
    max_row: int
    kpi_row: int
    point_row: int | None
    scale_start: int | None
    field_cells: dict[str, tuple[str, int]]
    hide_rows: dict[str, int]
    strings_part: str | None
    strings_xml: list[str]
    drawing_part: str | None
    comment_parts: list[str]
    vml_parts: list[str]
    table_parts: list[str]
    chart_parts: list[str]
    other_sheets: list[str]
    _compiled: dict[_Key, _Compiled]

    def compiled(self, key: _Key) -> _Compiled:
        """The compiled form for one card shape (built on first use, then cached)."""
        c = self._compiled.get(key)
        if c is None:
            c = self._compiled[key] = self._compile(key)
        return c

    def _row_plan(self, key: _Key) -> tuple[list[int], list[int], list[int], list[dict[str, Any]], int]:
        sources: list[int] = []
        ctx: list[int] = []
        kpi_rows: list[int] = []
        scale_rows: list[dict[str, Any]] = []
        nk = key.rows
        next_ctx = 1 + nk
        for r in range(1, self.max_row + 1):
            if r == self.kpi_row:
                for i in range(nk):
                    sources.append(r)
                    ctx.append(1 + i)
                    kpi_rows.append(len(sources))
            elif self.scale_start is not None and r == self.scale_start:
                for kinds in key.scales:
                    title_ctx = next_ctx
                    next_ctx += 1
                    info: dict[str, Any] = {"ctx": title_ctx, "rows": []}
                    for t in range(self.scale_start, self.point_row):
                        sources.append(t)
                        ctx.append(title_ctx)
                    for kind in kinds:
                        sources.append(self.point_row)
                        ctx.append(next_ctx)
                        info["rows"].append((kind, len(sources), next_ctx))
                        next_ctx += 1
                    scale_rows.append(info)
            elif self.scale_start is not None and self.scale_start < r <= self.point_row:
                continue
            else:
                sources.append(r)
                ctx.append(0)
        if self.scale_start is None:  # no scale block: still give each scale a context
            for kinds in key.scales:
                info = {"ctx": next_ctx, "rows": []}
                next_ctx += 1
                for kind in kinds:
                    info["rows"].append((kind, 0, next_ctx))
                    next_ctx += 1
                scale_rows.append(info)
        return sources, ctx, kpi_rows, scale_rows, next_ctx

    def _compile(self, key: _Key) -> _Compiled:
        sources, row_ctx, kpi_rows, scale_rows, ctx_count = self._row_plan(key)
        plan = RowPlan(sources, self.max_row)
        sheet = self.sheet_name
        hidden = set()
        if key.hide_multiplier and "multiplier" in self.hide_rows:
            hidden.add(plan.first_of(self.hide_rows["multiplier"]))
        if key.hide_proration and "proration" in self.hide_rows:
            hidden.add(plan.first_of(self.hide_rows["proration"]))
        if key.hide_adjustment and "adjustment" in self.hide_rows:
            hidden.add(plan.first_of(self.hide_rows["adjustment"]))

        chunks: list[Any] = []
        dyn: dict[tuple[int, int], int] = {}
        static: dict[tuple[int, int], Any] = {}
        slots: list[Any] = []  # _Slot, or a RowFit for a row with wrapped text cells
        max_col = 1
        strip_values = False
        tail = self._shift_tail(self.tail, plan)
        wraps, widths, spans = self._fit_styles().wrap, col_widths(self.head), merged_spans(tail)
        for o, (src, ci) in enumerate(zip(sources, row_ctx, strict=True), 1):
            row = self.rows.get(src)
            if row is None:
                if o in hidden:
                    chunks.append(f'<row r="{o}" hidden="1"/>')
                continue
            attrs = row.attrs
            if o in hidden:
                attrs = [(k, v) for k, v in attrs if k != "hidden"] + [("hidden", "1")]
            if not row.cells:
                chunks.append(f'<row r="{o}"{render_attrs(attrs)}/>')
                continue
            fits: list[CellFit] | None = None
            if o not in hidden and any(c.marker is not None and _style(c) in wraps for c in row.cells):
                fits, fit_at = [], len(slots)  # the row's tag is a slot: its height follows the card's text
                chunks.append(fit_at)
                slots.append(None)
            else:
                chunks.append(f'<row r="{o}"{render_attrs(attrs)}>')
            copy = (src, o) if src in plan.repeated else None
            for cell in row.cells:
                ref = f"{col_letters(cell.col)}{o}"
                max_col = max(max_col, cell.col)
                if cell.marker is not None:
                    a = render_attrs((k, v) for k, v in cell.attrs if k != "t")
                    chunks.append(f'<c r="{ref}"{a}')
                    slot = self._slot(cell.marker, ci)
                    dyn[(o, cell.col)] = len(slots)
                    if fits is not None and _style(cell) in wraps:
                        size, bold, indent = wraps[_style(cell)]
                        width = cell_width(widths, cell.col, spans.get((o, cell.col), cell.col), indent)
                        fits.append(CellFit(len(slots), width, size, bold))
                    chunks.append(len(slots))
                    slots.append(slot)
                elif cell.formula is not None:
                    f = shift_formula(cell.formula, plan, sheet=sheet, own_sheet=True, copy=copy)
                    fattrs = [(k, map_range(v, plan) if k == "ref" else v) for k, v in cell.fattrs]
                    a = render_attrs((k, v) for k, v in cell.attrs if k != "t")
                    chunks.append(f'<c r="{ref}"{a}><f{render_attrs(fattrs)}>{_fx_text(f)}</f></c>')
                    strip_values = True
                else:
                    a = render_attrs(cell.attrs)
                    chunks.append(f'<c r="{ref}"{a}>{cell.inner}</c>' if cell.inner else f'<c r="{ref}"{a}/>')
                    if cell.value is not None:
                        static[(o, cell.col)] = cell.value
            chunks.append("</row>")
            if fits is not None:
                slots[fit_at] = row_fit(o, attrs, fits)
        head = self._shift_head(self.head, plan, len(sources), max_col)
        sheet_parts, sheet_slots = _finish([head, "<sheetData>", *chunks, "</sheetData>", tail], slots)

        charts: dict[str, tuple[list[str | None], list[tuple[int, _ChartSlot]]]] = {}
        static_parts: dict[str, bytes] = {}
        for part in self.chart_parts:
            body, cslots = self._compile_chart(self.parts[part].decode("utf-8"), plan, dyn, static)
            if cslots:
                charts[part] = _finish(body, cslots)
            else:
                static_parts[part] = "".join(body).encode("utf-8")
        static_parts.update(self._static_parts(plan, key, strip_values or key.recalc))

        entries: list[ZipEntry | str] = []
        locals_: list[bytes | None] = []
        order = sorted(self.names, key=lambda n: n != "[Content_Types].xml")
        for name in order:
            if name == self.sheet_part or name in charts:
                entries.append(name)
                locals_.append(None)
            elif name in static_parts or name in self.parts:
                data = static_parts.get(name, self.parts[name])
                if data is None:
                    continue
                e = deflate(name, data, COMPRESS_LEVEL)
                entries.append(e)
                locals_.append(e.local)
        field_refs = {name: f"${col}${plan.first_of(r)}" for name, (col, r) in self.field_cells.items()}
        return _Compiled(key, plan, sheet_parts, sheet_slots, charts, entries, locals_, kpi_rows, scale_rows,
                         ctx_count, field_refs)

    def _fit_styles(self) -> Styles:
        """The template's wrapped cell formats (read once)."""
        st = self.__dict__.get("_styles_fit")
        if st is None:
            xml = self.parts.get("xl/styles.xml")
            st = self.__dict__["_styles_fit"] = Styles(xml.decode("utf-8") if xml else None)
        return st

    def _slot(self, marker: Any, ci: int) -> _Slot:
        def ctx_of(name: str) -> int:
            return ci if "." in name else 0

        if marker[0] == "v":
            return _Slot(ctx_of(marker[1]), marker[1], None)
        pieces = [p if isinstance(p, str) else (ctx_of(p[0]), p[0]) for p in marker[1]]
        return _Slot(0, None, pieces)

    def _shift_head(self, head: str, plan: RowPlan, last_row: int, max_col: int) -> str:
        def dim(m: re.Match[str]) -> str:
            ref = m.group(2)
            start = ref.split(":")[0]
            try:
                _, c_end = split_cell(ref.split(":")[-1])
            except ValueError:
                c_end = max_col
            return f'{m.group(1)}{start}:{col_letters(max(c_end, max_col))}{max(last_row, 1)}"'

        head = re.sub(r'(<dimension\s+ref=")([^"]*)"', dim, head)
        head = re.sub(r'(\s(?:sqref|activeCell|topLeftCell)=")([^"]*)(")',
                      lambda m: m.group(1) + map_sqref(m.group(2), plan, grow=False) + m.group(3), head)
        return head

    def _shift_tail(self, tail: str, plan: RowPlan) -> str:
        copies: dict[int, list[int]] = {}
        for o, src in enumerate(plan.sources, 1):
            copies.setdefault(src, []).append(o)

        def merges(m: re.Match[str]) -> str:
            refs = re.findall(r'<mergeCell\s+ref="([^"]*)"\s*/>', m.group(0))
            out: list[str] = []
            for ref in refs:
                a, _, b = ref.partition(":")
                try:
                    (r1, c1), (r2, c2) = split_cell(a), split_cell(b or a)
                except ValueError:
                    out.append(ref)
                    continue
                if r1 == r2 and r1 in plan.repeated:
                    for o in copies[r1]:
                        out.append(f"{col_letters(c1)}{o}:{col_letters(c2)}{o}")
                else:
                    out.append(map_range(ref, plan))
            body = "".join(f'<mergeCell ref="{r}"/>' for r in out)
            return f'<mergeCells count="{len(out)}">{body}</mergeCells>'

        placeholder = "\x00MERGES\x00"
        mm = re.search(r"<mergeCells\b[^>]*>.*?</mergeCells>", tail, re.S)
        merged = merges(mm) if mm else None
        if mm:
            tail = tail[: mm.start()] + placeholder + tail[mm.end():]
        sheet = self.sheet_name
        tail = re.sub(r'(\ssqref=")([^"]*)(")', lambda m: m.group(1) + map_sqref(m.group(2), plan) + m.group(3),
                      tail)
        tail = re.sub(r'(\sref=")([^"]*)(")', lambda m: m.group(1) + map_sqref(m.group(2), plan) + m.group(3),
                      tail)
        tail = re.sub(
            r"(<((?:\w+:)?(?:formula|formula1|formula2|f))>)(.*?)(</\2>)",
            lambda m: m.group(1) + _fx_text(shift_formula(xml_unescape(m.group(3)), plan, sheet=sheet,
                                                          own_sheet=True)) + m.group(4),
            tail, flags=re.S)
        tail = re.sub(r"(<(\w+:)?sqref>)(.*?)(</\2sqref>)",
                      lambda m: m.group(1) + map_sqref(m.group(3), plan) + m.group(4), tail, flags=re.S)
        tail = re.sub(r'(<brk\b[^>]*?\sid=")(\d+)(")',
                      lambda m: f"{m.group(1)}{plan.last_of(int(m.group(2)))}{m.group(3)}", tail)
        if merged is not None:
            tail = tail.replace(placeholder, merged)
        return tail

    def _compile_chart(
        self, xml: str, plan: RowPlan, dyn: dict[tuple[int, int], int], static: dict[tuple[int, int], Any]
    ) -> tuple[list[Any], list[_ChartSlot]]:
        sheet = self.sheet_name
        body: list[Any] = []
        slots: list[_ChartSlot] = []
        pos = 0
        for m in re.finditer(r"<((\w+:)?)(numRef|strRef|multiLvlStrRef)>(.*?)</\1\3>", xml, re.S):
            p, kind, inner = m.group(1), m.group(3), m.group(4)
            fm = re.search(rf"<{re.escape(p)}f>(.*?)</{re.escape(p)}f>", inner, re.S)
            if not fm:
                continue
            ftext = xml_unescape(fm.group(1))
            if not refers_to(ftext, sheet):
                continue  # a literal or another sheet's data: static, keep its cache
            new_f = shift_formula(ftext, plan, sheet=sheet, own_sheet=False, grow=True)
            cache_re = rf"<{re.escape(p)}(numCache|strCache|multiLvlStrCache)\b.*?</{re.escape(p)}\1>|" \
                       rf"<{re.escape(p)}(numCache|strCache|multiLvlStrCache)\s*/>"
            fmt = re.search(rf"<{re.escape(p)}formatCode>(.*?)</{re.escape(p)}formatCode>", inner, re.S)
            rest = re.sub(cache_re, "", inner[fm.end():], flags=re.S)
            body.append(xml[pos: m.start()])
            body.append(f"<{p}{kind}>{inner[: fm.start()]}<{p}f>{xml_attr(new_f).replace('&quot;', chr(34))}</{p}f>")
            sh2, area2 = split_sheet_ref(new_f)
            cells = range_cells(area2) if sh2 == sheet and kind != "multiLvlStrRef" else None
            if cells is not None:
                srcs = [("s", dyn[c]) if c in dyn else ("v", static.get(c)) for c in cells]
                body.append(len(slots))
                slots.append(_ChartSlot(kind == "numRef", p, fmt.group(1) if fmt else "General", srcs))
            body.append(f"{rest}</{p}{kind}>")
            pos = m.end()
        body.append(xml[pos:])
        return body, slots

    def _static_parts(self, plan: RowPlan, key: _Key, strip_values: bool) -> dict[str, bytes | None]:
        """Every part that changes with the shape but not with the employee (None = drop the part)."""
        parts = self.parts
        out: dict[str, bytes | None] = {}
        sheet = self.sheet_name

        def text(name: str) -> str:
            return parts[name].decode("utf-8")

        # workbook: defined names (print area, user names) follow the rows; calc on load if needed
        wb = text("xl/workbook.xml")
        wb = re.sub(
            r"(<definedName\b[^>]*>)(.*?)(</definedName>)",
            lambda m: m.group(1) + _fx_text(shift_formula(xml_unescape(m.group(2)), plan, sheet=sheet,
                                                          own_sheet=False)) + m.group(3),
            wb, flags=re.S)
        if strip_values and "fullCalcOnLoad" not in wb:
            wb = re.sub(r"<calcPr\b", '<calcPr fullCalcOnLoad="1"', wb, count=1) if "<calcPr" in wb else \
                wb.replace("</workbook>", '<calcPr fullCalcOnLoad="1"/></workbook>')
        out["xl/workbook.xml"] = wb.encode("utf-8")

        # drop the calculation chain (cells moved) and the thumbnail (it shows the template)
        drop = {n for n in parts if n.endswith("calcChain.xml") or n.startswith("docProps/thumbnail")}
        for n in drop:
            out[n] = None
        for rels_name in ("xl/_rels/workbook.xml.rels", "_rels/.rels"):
            if rels_name in parts:
                rels = re.sub(r"<Relationship\b[^>]*?(calcChain|thumbnail)[^>]*?/>", "", text(rels_name))
                out[rels_name] = rels.encode("utf-8")
        ct = text("[Content_Types].xml")
        ct = re.sub(r'<Override\b[^>]*PartName="/(?:xl/calcChain\.xml|docProps/thumbnail[^"]*)"[^>]*/>', "", ct)
        out["[Content_Types].xml"] = ct.encode("utf-8")

        # core properties: fixed dates (deterministic output), no last-printed date
        if "docProps/core.xml" in parts:
            core = text("docProps/core.xml")
            core = re.sub(r"(<dcterms:(created|modified)\b[^>]*>)[^<]*(</dcterms:\2>)",
                          rf"\g<1>{FIXED_TIMESTAMP}\g<3>", core)
            core = re.sub(r"<cp:lastPrinted>[^<]*</cp:lastPrinted>", "", core)
            out["docProps/core.xml"] = core.encode("utf-8")

        # shared strings used only by marker cells are blanked (indices stay valid)
        if self.strings_part and self.strings_part in parts:
            used = self._used_strings()
            items = [si if i in used else "<si><t></t></si>" for i, si in enumerate(self.strings_xml)]
            xml = text(self.strings_part)
            m1 = re.search(r"<si\b", xml)
            m2 = xml.rfind("</sst>")
            if m1 and m2 > 0:
                xml = xml[: m1.start()] + "".join(items) + xml[m2:]
            out[self.strings_part] = xml.encode("utf-8")

        # currency symbol of money formats
        sym = CURRENCY_SYMBOLS.get(key.currency.upper(), key.currency) if key.currency else "₽"
        if sym != "₽" and "xl/styles.xml" in parts:
            styles = text("xl/styles.xml")
            styles = re.sub(r'formatCode="([^"]*)"', lambda m: 'formatCode="' + m.group(1).replace(
                "₽", xml_attr(sym).replace('"', "&quot;")) + '"', styles)
            out["xl/styles.xml"] = styles.encode("utf-8")

        if not plan.identity:
            if self.drawing_part and self.drawing_part in parts:
                out[self.drawing_part] = _shift_anchors(text(self.drawing_part), plan).encode("utf-8")
            for p in self.comment_parts:
                xml = re.sub(r'(<comment\b[^>]*?\sref=")([^"]*)(")',
                             lambda m: m.group(1) + map_range(m.group(2), plan) + m.group(3), text(p))
                out[p] = xml.encode("utf-8")
            for p in self.vml_parts:
                out[p] = _shift_vml(text(p), plan).encode("utf-8")
            for p in self.table_parts:
                xml = re.sub(r'(\sref=")([^"]*)(")', lambda m: m.group(1) + map_range(m.group(2), plan) + m.group(3),
                             text(p))
                out[p] = xml.encode("utf-8")
            for p in self.other_sheets:
                out[p] = _shift_other_sheet(text(p), plan, sheet).encode("utf-8")
        return out

    def _used_strings(self) -> set[int]:
        used: set[int] = set()
        for _, part in self.sheets:
            xml = self.parts[part].decode("utf-8")
            for m in _CELL_RE.finditer(xml):
                if 't="s"' not in m.group(1):
                    continue
                vm = _V_RE.search(m.group(2) or "")
                if not vm:
                    continue
                idx = int(vm.group(1))
                if part == self.sheet_part:
                    ref = dict(parse_attrs(m.group(1))).get("r", "")
                    try:
                        r, c = split_cell(ref)
                    except ValueError:
                        used.add(idx)
                        continue
                    row = self.rows.get(r)
                    cell = next((x for x in row.cells if x.col == c), None) if row else None
                    if cell is not None and cell.marker is not None:
                        continue
                used.add(idx)
        return used



def _style(cell: Any) -> int:
    """A cell's format index (its ``s`` attribute)."""
    for k, v in cell.attrs:
        if k == "s":
            return int(v) if v.isdigit() else 0
    return 0


def _finish(chunks: Sequence[Any], slots: Sequence[Any]) -> tuple[list[str | None], list[tuple[int, Any]]]:
    """Merge adjacent literal chunks; slots become None placeholders with their positions."""
    parts: list[str | None] = []
    where: list[tuple[int, Any]] = []
    buf: list[str] = []
    for ch in chunks:
        if isinstance(ch, str):
            buf.append(ch)
        else:
            parts.append("".join(buf))
            buf = []
            where.append((len(parts), slots[ch]))
            parts.append(None)
    parts.append("".join(buf))
    return parts, where


def _shift_anchors(xml: str, plan: RowPlan) -> str:
    def anchor(m: re.Match[str]) -> str:
        block = m.group(0)
        edit_as = re.search(r'editAs="(\w+)"', block[:200])
        fm = re.search(r"<((?:\w+:)?)from>.*?<\1row>(\d+)</\1row>", block, re.S)
        tm = re.search(r"<((?:\w+:)?)to>.*?<\1row>(\d+)</\1row>", block, re.S)
        new_from = new_to = None
        if fm:
            new_from = plan.first_of(int(fm.group(2)) + 1) - 1
        if tm:
            t = int(tm.group(2)) + 1
            if edit_as and edit_as.group(1) in ("oneCell", "absolute") and fm:
                new_to = new_from + (t - 1 - int(fm.group(2)))
            else:
                new_to = (plan.last_of(t) if t in plan.repeated else plan.first_of(t)) - 1
        out = block
        if tm and new_to is not None:
            s, e = tm.span(2)
            out = out[:s] + str(new_to) + out[e:]
        if fm and new_from is not None:
            s, e = fm.span(2)
            out = out[:s] + str(new_from) + out[e:]
        return out

    return re.sub(r"<((?:\w+:)?)(twoCellAnchor|oneCellAnchor)\b.*?</\1\2>", anchor, xml, flags=re.S)


def _shift_vml(xml: str, plan: RowPlan) -> str:
    xml = re.sub(r"(<x:Row>)(\d+)(</x:Row>)", lambda m: f"{m.group(1)}{plan.first_of(int(m.group(2)) + 1) - 1}"
                 f"{m.group(3)}", xml)

    def anchor(m: re.Match[str]) -> str:
        v = [s.strip() for s in m.group(2).split(",")]
        if len(v) == 8:
            v[2] = str(plan.first_of(int(v[2]) + 1) - 1)
            v[6] = str(plan.first_of(int(v[6]) + 1) - 1)
        return m.group(1) + ", ".join(v) + m.group(3)

    return re.sub(r"(<x:Anchor>)(.*?)(</x:Anchor>)", anchor, xml, flags=re.S)


def _shift_other_sheet(xml: str, plan: RowPlan, sheet: str) -> str:
    def cell(m: re.Match[str]) -> str:
        inner = m.group(2) or ""
        fm = _F_RE.search(inner)
        if not fm or not fm.group(2):
            return m.group(0)
        f = xml_unescape(fm.group(2))
        nf = shift_formula(f, plan, sheet=sheet, own_sheet=False)
        if nf == f:
            return m.group(0)
        attrs = [(k, v) for k, v in parse_attrs(m.group(1)) if k != "t"]
        return f"<c{render_attrs(attrs)}><f{fm.group(1)}>{_fx_text(nf)}</f></c>"

    return _CELL_RE.sub(cell, xml)
