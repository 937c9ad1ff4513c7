"""Number formats that carry their language, so a workbook shows its numbers the same on every machine.

LibreOffice draws the thousands and decimal separators of a number format from the format's language,
and a format without one takes the machine's locale: on an English machine a Russian card printed
``45,000.00 ₽``. A locale tag at the start of the format code (``[$-419]`` Russian, ``[$-409]`` English
(US)) gives the format its language: LibreOffice then writes ``45 000,00 ₽`` (the group separator is the
no-break space U+00A0, as in LibreOffice's and Windows' Russian locale) or ``45,000.00`` whatever the
locale of the machine that converts the file to PDF. Excel keeps taking the separators from its own
settings, so what Excel users see does not change.

:func:`tag_styles` rewrites ``xl/styles.xml``: every format code without a locale tag gets one (cell
formats and the formats of conditional formats), and cells on a built-in format (General, ``0.00``,
``#,##0``, ``0%``…) get a custom format with the same code and the tag. Dates and text are left alone.
"""

from __future__ import annotations

import re

__all__ = ["LCID", "tag_code", "tag_styles"]

LCID = {"en": "409", "ru": "419"}
"""Windows language ids of the card languages, as format codes write them (``[$-419]``)."""

BUILTIN = {
    0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00", 9: "0%", 10: "0.00%", 11: "0.00E+00",
    37: "#,##0 ;(#,##0)", 38: "#,##0 ;[Red](#,##0)", 39: "#,##0.00;(#,##0.00)", 40: "#,##0.00;[Red](#,##0.00)",
    48: "##0.0E+0",
}
"""The built-in number formats whose separators follow the locale (dates and ``@`` are not rewritten)."""

_TAGGED = re.compile(r"\[\$[^\]]*-[0-9A-Fa-f]+\]")
_DATE = re.compile(r"[dmyhsDMYHS]")
_NUMFMT = re.compile(r'(<numFmt\b[^>]*?\sformatCode=")([^"]*)(")')
_FIRST_CUSTOM = 164


def tag_code(code: str, lang: str) -> str:
    """``code`` with the locale tag of ``lang`` in front (unchanged when it has one, is text or a date)."""
    lcid = LCID.get(lang)
    if lcid is None or _TAGGED.search(code) or code.strip() in ("@", ""):
        return code
    bare = re.sub(r'"[^"]*"|\\.|\[[^\]]*\]', "", code)  # literals, escapes and brackets hold no date letters
    if bare.lower() != "general" and _DATE.search(bare):
        return code
    return f"[$-{lcid}]{code}"


def _attr(v: str) -> str:
    return v.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def _unattr(v: str) -> str:
    return v.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&apos;", "'") \
        .replace("&amp;", "&")


def tag_styles(xml: str, lang: str) -> str:
    """``xl/styles.xml`` with every number format tagged with ``lang`` (see the module docstring)."""
    if lang not in LCID:
        return xml
    xml = _NUMFMT.sub(lambda m: m.group(1) + _attr(tag_code(_unattr(m.group(2)), lang)) + m.group(3), xml)
    cm = re.search(r"<cellXfs\b[^>]*>(.*?)</cellXfs>", xml, re.S)
    if cm is None:
        return xml
    ids = [int(i) for i in re.findall(r'<numFmt\b[^>]*?\snumFmtId="(\d+)"', xml)]
    next_id = max([_FIRST_CUSTOM - 1, *ids]) + 1
    defined = set(ids)
    added: dict[int, int] = {}

    def xf(m: re.Match[str]) -> str:
        nonlocal next_id
        tag = m.group(0)
        im = re.search(r'\snumFmtId="(\d+)"', tag)
        fid = int(im.group(1)) if im else 0
        if fid not in BUILTIN or fid in defined:
            return tag
        if fid not in added:
            added[fid] = next_id
            next_id += 1
        new = f' numFmtId="{added[fid]}"'
        tag = tag[: im.start()] + new + tag[im.end():] if im else tag.replace("<xf", "<xf" + new, 1)
        if 'applyNumberFormat="' not in tag:
            tag = tag.replace("<xf", '<xf applyNumberFormat="1"', 1)
        return tag

    body = re.sub(r"<xf\b[^>]*?/?>", xf, cm.group(1))
    xml = xml[: cm.start(1)] + body + xml[cm.end(1):]
    if not added:
        return xml
    new_fmts = "".join(f'<numFmt numFmtId="{nid}" formatCode="{_attr(tag_code(BUILTIN[fid], lang))}"/>'
                       for fid, nid in added.items())
    nm = re.search(r"<numFmts\b([^>]*?)(/?)>", xml)
    if nm is None:
        at = re.search(r"<styleSheet\b[^>]*>", xml)
        if at is None:
            return xml
        return xml[: at.end()] + f'<numFmts count="{len(added)}">{new_fmts}</numFmts>' + xml[at.end():]
    if nm.group(2):  # <numFmts/>
        return xml[: nm.start()] + f'<numFmts count="{len(added)}">{new_fmts}</numFmts>' + xml[nm.end():]
    end = xml.index("</numFmts>", nm.end())
    xml = xml[:end] + new_fmts + xml[end:]
    count = len(re.findall(r"<numFmt\b", xml[nm.start(): end + len(new_fmts)]))
    head = re.sub(r'\scount="\d+"', "", xml[nm.start(): nm.end()]).replace("<numFmts", f'<numFmts count="{count}"', 1)
    return xml[: nm.start()] + head + xml[nm.end():]
