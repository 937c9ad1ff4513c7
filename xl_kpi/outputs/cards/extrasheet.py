"""Adding a sheet of xl_kpi's own to a compiled card (the History and Source rows sheets): its entry in the
workbook, relationships and content types, and the cell formats it needs appended to ``xl/styles.xml``.

The card's own parts are patched, never rewritten: existing sheets, relationship ids, number formats and
cell formats keep their numbers, so the card sheet's bytes stay as they are.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from xl_kpi.outputs.cards.markup import TemplateError
from xl_kpi.outputs.numlang import tag_styles
from xl_kpi.outputs.ooxml import ZipEntry, deflate, parse_attrs, render_attrs, xml_attr

_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
_CT = "application/vnd.openxmlformats-officedocument."

XfSpec = tuple[str, str, bool, bool, str]
"""A cell format: (font name, number format key, filled, bordered, alignment XML or "")."""

RELS_PART = "xl/_rels/workbook.xml.rels"


@dataclass(frozen=True)
class SheetStyles:
    """What a sheet of xl_kpi's own appends to styles.xml (see :func:`append_styles`)."""

    fonts: Mapping[str, str]
    fill: str
    border: str
    xfs: Mapping[str, XfSpec]
    formats: Mapping[str, int | str]


def part_text(parts: Mapping[str, ZipEntry], part: str, what: str) -> str:
    """The XML of one deflated card part; a :class:`TemplateError` naming ``what`` cannot be added without it."""
    e = parts.get(part)
    if e is None:
        raise TemplateError(f"the card template has no {part}; {what} cannot be added")
    return zlib.decompress(e.comp, -15).decode("utf-8")


def add_sheet(parts: Mapping[str, ZipEntry], sheet: str, sheet_part: str, rid_stem: str,
              overrides: Iterable[tuple[str, str]], styles: SheetStyles, lang: str, what: str
              ) -> tuple[dict[str, ZipEntry], dict[str, int]]:
    """The card's workbook, relationships, content types and styles (read from ``parts``) patched for one more
    sheet: the replaced parts, deflated, and each new cell format's index. Numbers of the new formats carry the
    card's language tag (:func:`~xl_kpi.outputs.numlang.tag_styles`), whatever the machine's locale."""
    wb, rels, ct = register_sheet(part_text(parts, "xl/workbook.xml", what), part_text(parts, RELS_PART, what),
                                  part_text(parts, "[Content_Types].xml", what), sheet, sheet_part, rid_stem,
                                  overrides)
    xml, xf = append_styles(part_text(parts, "xl/styles.xml", what), styles.fonts, styles.fill, styles.border,
                            styles.xfs, styles.formats)
    xml = tag_styles(xml, lang)
    replaced = {p: deflate(p, x.encode("utf-8")) for p, x in (
        ("xl/workbook.xml", wb), (RELS_PART, rels), ("[Content_Types].xml", ct), ("xl/styles.xml", xml))}
    return replaced, xf


def register_sheet(wb: str, rels: str, content_types: str, sheet: str, sheet_part: str, rid_stem: str,
                   overrides: Iterable[tuple[str, str]]) -> tuple[str, str, str]:
    """(workbook.xml, its .rels, [Content_Types].xml) listing ``sheet`` (stored at ``sheet_part``) last.

    ``rid_stem``: the relationship id to use (numbered on when the card has it); ``overrides``: (part, content
    type after ``application/vnd.openxmlformats-officedocument.``) of every part added."""
    m = re.search(r"<(\w+:)?sheet\b([^>]*)/?>", wb)
    end = re.search(r"</(\w+:)?sheets>", wb)
    if m is None or end is None:
        raise TemplateError("the card template's xl/workbook.xml lists no sheets")
    prefix = m.group(1) or ""
    rid_attr = next((a for a, _ in parse_attrs(m.group(2)) if a.endswith(":id")), "r:id")
    ids = [int(x) for x in re.findall(r'<(?:\w+:)?sheet\b[^>]*\ssheetId="(\d+)"', wb)]
    taken_ids = set(re.findall(r'\sId="([^"]+)"', rels))
    rid, k = rid_stem, 2
    while rid in taken_ids:
        rid, k = f"{rid_stem}{k}", k + 1
    wb = (wb[:end.start()] + f'<{prefix}sheet name="{xml_attr(sheet)}" sheetId="{max(ids, default=0) + 1}" '
          f'{rid_attr}="{rid}"/>' + wb[end.start():])
    rels = rels.replace("</Relationships>", f'<Relationship Id="{rid}" Type="{_REL}worksheet" '
                                            f'Target="/{sheet_part}"/></Relationships>')
    content_types = content_types.replace("</Types>", "".join(
        f'<Override PartName="/{p}" ContentType="{_CT}{t}"/>' for p, t in overrides) + "</Types>")
    return wb, rels, content_types


def append_styles(xml: str, fonts: Mapping[str, str], fill: str, border: str, xfs: Mapping[str, XfSpec],
                  formats: Mapping[str, int | str]) -> tuple[str, dict[str, int]]:
    """styles.xml with ``fonts``, one ``fill``, one ``border``, the custom number ``formats`` (key → a built-in
    id, or a format code given the next free id) and the cell formats ``xfs`` appended; each xf's index."""
    fmt_ids = [int(x) for x in re.findall(r'<numFmt\b[^>]*\snumFmtId="(\d+)"', xml)]
    next_id = max([163, *fmt_ids]) + 1
    ids: dict[str, int] = {}
    custom = []
    for key, f in formats.items():
        if isinstance(f, int):
            ids[key] = f
        else:
            ids[key] = next_id
            custom.append(f'<numFmt numFmtId="{next_id}" formatCode="{xml_attr(f)}"/>')
            next_id += 1
    if custom:
        if re.search(r"<numFmts\b", xml):
            xml, _ = _append(xml, "numFmts", "numFmt", "".join(custom))
        else:
            head = re.search(r"<styleSheet\b[^>]*>", xml)
            if head is None:
                raise TemplateError("the card template's xl/styles.xml has no <styleSheet>")
            xml = xml[:head.end()] + f'<numFmts count="{len(custom)}">{"".join(custom)}</numFmts>' + xml[head.end():]
    xml, font0 = _append(xml, "fonts", "font", "".join(fonts.values()))
    font = {k: font0 + i for i, k in enumerate(fonts)}
    xml, fill_id = _append(xml, "fills", "fill", fill)
    xml, border_id = _append(xml, "borders", "border", border)
    items = []
    for f, num, filled, bordered, align in xfs.values():
        items.append(f'<xf numFmtId="{ids[num]}" fontId="{font[f]}" fillId="{fill_id if filled else 0}" '
                     f'borderId="{border_id if bordered else 0}" xfId="0" applyNumberFormat="1" applyFont="1" '
                     f'applyFill="1" applyBorder="1"' + (f' applyAlignment="1">{align}</xf>' if align else "/>"))
    xml, xf0 = _append(xml, "cellXfs", "xf", "".join(items))
    return xml, {k: xf0 + i for i, k in enumerate(xfs)}


def _append(xml: str, section: str, child: str, items: str) -> tuple[str, int]:
    """Append ``items`` (``child`` elements) to ``<section>``, fixing its count; the index of the first one."""
    m = re.search(rf"<{section}\b([^>]*?)(/?)>", xml)
    if m is None:
        raise TemplateError(f"the card template's xl/styles.xml has no <{section}>")
    added = len(re.findall(rf"<{child}\b", items))
    attrs = [(k, v) for k, v in parse_attrs(m.group(1)) if k != "count"]
    if m.group(2):  # <section/>: empty
        body, end, have = "", m.end(), 0
    else:
        close = xml.index(f"</{section}>", m.end())
        body, end = xml[m.end():close], close + len(f"</{section}>")
        have = len(re.findall(rf"<{child}\b", body))
    opened = f'<{section} count="{have + added}"{render_attrs(attrs)}>'
    return xml[:m.start()] + opened + body + items + f"</{section}>" + xml[end:], have
