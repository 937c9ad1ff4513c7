"""The isolation check's fast paths read exactly what the slow ones read: expat driven directly gives the
text ``xml.sax`` (defusedxml) gives, a template part read once per process is the same text as read per
card, the names are normalised the same, and the caches stay small however many files are checked."""

from __future__ import annotations

import io
import re
import xml.sax
import xml.sax.handler
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xl_kpi.delivery.isolation import text as T
from xl_kpi.outputs.csvsafe import read_rows

HOSTILE_PARTS = [
    b'<?xml version="1.0"?><x a="1" b=\'\xd0\x9a\xd0\xbe\xd0\xb7\xd0\xbb\xd0\xbe\xd0\xb2\'><![CDATA[1001 <b>]]>'
    b"<!-- comment 22950 --><?pi some data?><c t=\"s\"><v>12</v></c><c t=\"str\"><v>E1</v></c>"
    b"<si><r><t>\xd0\x9a\xd0\xbe\xd0\xb7</t></r><r><t>\xd0\xbb\xd0\xbe\xd0\xb2</t></r></si>"
    b"<f>ROUND(H11,12)&lt;$D$30&amp;\"1001 x\"</f><xdr:col>7</xdr:col><sheet name=\"A&#x41;\"/></x>",
    b'<a:t xmlns:a="urn:x">  spaced   text </a:t>',
    b'<!DOCTYPE x [<!ENTITY k "secret">]><x>&k;</x>',
    b'<!DOCTYPE x SYSTEM "x.dtd"><x>a</x>',
    b"<x><unclosed></x>",
    b"\xff\xfe<\x00x\x00>\x00\x1a\x04>\x00/\x00<\x00/\x00x\x00>\x00",  # UTF-16 with a BOM
]


class _Sax(T._XmlHandler, xml.sax.handler.ContentHandler, xml.sax.handler.LexicalHandler):
    """The same handler, driven by the SAX reader of defusedxml (how the check used to read XML)."""

    def __init__(self, out: T._Text) -> None:
        T._XmlHandler.__init__(self, out)


def _sax_text(data: bytes) -> tuple[T._Text, str | None]:
    from defusedxml import DefusedXmlException
    from defusedxml.expatreader import DefusedExpatParser

    out, part = T._Text(), T._Text()
    handler = _Sax(part)
    parser = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.setContentHandler(handler)
    parser.setProperty(xml.sax.handler.property_lexical_handler, handler)
    parser.setErrorHandler(xml.sax.handler.ErrorHandler())
    try:
        parser.parse(io.BytesIO(data))
    except DefusedXmlException:
        T._loose_xml_text(T._decode_xml(data), out)
        return out, "doctype"
    except (xml.sax.SAXException, ValueError, UnicodeError):
        T._loose_xml_text(T._decode_xml(data), out)
        return out, None
    out.extend(part)
    return out, None


def _fast_text(data: bytes) -> tuple[T._Text, str | None]:
    out = T._Text()
    why = T._xml_text(data, out)
    return out, "doctype" if why else None


def _same(a: T._Text, b: T._Text) -> None:
    assert a.spaced == b.spaced and a.plain == b.plain and a.cells == b.cells
    assert a.glued == b.glued and a.filenames == b.filenames and a.rendered == b.rendered


@pytest.mark.parametrize("data", HOSTILE_PARTS)
def test_expat_reads_exactly_what_sax_reads_in_hostile_parts(data: bytes) -> None:
    (a, why_a), (b, why_b) = _sax_text(data), _fast_text(data)
    assert why_a == why_b
    _same(a, b)


def test_expat_reads_exactly_what_sax_reads_in_real_cards_and_summaries(generated: Path) -> None:
    files = [generated / r["file"] for r in read_rows(generated / "manifest.csv") if r.get("status") == "ok"][:12]
    files.append(generated / "summary.xlsx")
    parts = 0
    for f in files:
        with zipfile.ZipFile(f) as zf:
            for n in zf.namelist():
                data = zf.read(n)
                if T._looks_like_xml(data):
                    (a, why_a), (b, why_b) = _sax_text(data), _fast_text(data)
                    assert why_a == why_b is None, n
                    _same(a, b)
                    parts += 1
    assert parts > 50


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2007\u2028\u3000\u00adabЁё\u0301Й", max_size=40))
def test_names_are_normalised_as_the_regular_expression_did(s: str) -> None:
    ws = re.compile(r"\s+")
    assert T.norm_name(s) == ws.sub(" ", T._fold(s)).strip()
    import unicodedata

    assert T._id_form(s) == ws.sub(" ", unicodedata.normalize("NFC", s).translate(T._SPACES)).strip()


def test_a_template_part_is_read_once_and_the_caches_stay_small(generated: Path, monkeypatch) -> None:
    cards = [generated / r["file"] for r in read_rows(generated / "manifest.csv") if r.get("status") == "ok"][:6]
    T._OFFICE.clear()
    T._PARTS.clear()
    reads: list[bytes] = []
    real = T._xml_text

    def counting(data: bytes, out: T._Text) -> str | None:
        reads.append(data)
        return real(data, out)

    monkeypatch.setattr(T, "_xml_text", counting)
    texts = []
    for c in cards:
        data = c.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            texts.append(T._office_text(data, zf, zf.namelist())[0])
    assert len(reads) == len(set(reads))  # every distinct part read once: the styles and theme of the template too
    with zipfile.ZipFile(cards[0]) as zf:
        xml_parts = sum(1 for n in zf.namelist() if T._looks_like_xml(zf.read(n)))
    assert len(reads) < xml_parts * len(cards) / 2  # most parts are the template's
    T._OFFICE.clear()
    T._PARTS.clear()
    monkeypatch.setattr(T, "_xml_text", real)
    for c, cached in zip(cards, texts, strict=True):  # read without the cache: the same text
        data = c.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            _same(T._office_text(data, zf, zf.namelist())[0], cached)
    monkeypatch.setattr(T, "_CACHE_SIZE", 3)
    T._PARTS.clear()
    for i in range(10):
        T._remember(T._PARTS, str(i), (T._Text(), None))
        T._recall(T._PARTS, "0")  # used again and again: stays
    assert len(T._PARTS) <= 3 and "0" in T._PARTS and "1" not in T._PARTS
