"""The one zip writer, .rels parser and column-letter conversion of xl_kpi.outputs.ooxml.

The zip writer is checked against the standard library's zipfile: the bundles it writes must be the very
bytes zipfile wrote before (a rerun of ``distribute --mail`` recognises a bundle by its sha256).
"""

from __future__ import annotations

import io
import random
import stat
import zipfile

import pytest

from xl_kpi.delivery.distribute import zip_bytes
from xl_kpi.outputs.ooxml import (
    col_index,
    col_letters,
    read_parts,
    read_rels,
    rels_path,
    resolve_target,
    write_xlsx,
    write_zip,
)


def _zipfile_bundle(files: list[tuple[str, bytes]]) -> bytes:
    """A bundle as zipfile writes it: sorted, 1980-01-01, rw-r--r-- on Unix, deflated at level 6."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, data in sorted(files, key=lambda x: x[0]):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _files(seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    names = ["card.xlsx", "Козлов Денис Иванович/карта.xlsx", "a b/c.pdf", "z.csv", "é.txt"]
    return [(f"{i}-{rng.choice(names)}", b"x" * rng.randrange(3000) + rng.randbytes(rng.randrange(200)))
            for i in range(rng.randrange(0, 12))]


@pytest.mark.parametrize("seed", range(8))
def test_bundles_are_the_bytes_zipfile_writes(seed):
    files = _files(seed)
    assert write_zip(files) == _zipfile_bundle(files) == zip_bytes(files)


def test_a_bundle_unpacks_with_its_names_permissions_and_contents():
    files = [("b/Иванов.xlsx", b"\x00" * 1000), ("a.pdf", b"%PDF-1.7")]
    with zipfile.ZipFile(io.BytesIO(write_zip(files))) as zf:
        assert zf.testzip() is None
        assert [i.filename for i in zf.infolist()] == ["a.pdf", "b/Иванов.xlsx"]
        assert all(i.external_attr >> 16 == stat.S_IFREG | 0o644 and i.date_time == (1980, 1, 1, 0, 0, 0)
                   for i in zf.infolist())
        assert {n: zf.read(n) for n in zf.namelist()} == dict(files)


def test_more_than_65535_entries_get_a_zip64_end_record():
    files = [(f"{i}.txt", str(i).encode()) for i in range(70_000)]
    data = write_zip(files)
    assert data == _zipfile_bundle(files)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert len(zf.infolist()) == 70_000 and zf.read("69999.txt") == b"69999"


def test_xlsx_parts_round_trip_with_content_types_first():
    parts = {"xl/workbook.xml": b"<workbook/>", "[Content_Types].xml": b"<Types/>"}
    data = write_xlsx(parts)
    assert list(read_parts(data)) == ["[Content_Types].xml", "xl/workbook.xml"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert all(i.external_attr == 0 for i in zf.infolist())  # as Excel writes: no Unix permissions


def test_relationships_resolve_relative_absolute_and_skip_external_targets():
    rels = (
        b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="rId1" Type="http://x/drawing" Target="../drawings/drawing1.xml"/>'
        b'<Relationship Id="rId2" Type="http://x/comments" Target="/xl/comments1.xml"/>'
        b'<Relationship Id="rId3" Type="http://x/hyperlink" Target="https://example.com/?a=1&amp;b=2" '
        b'TargetMode="External"/>'
        b"<Relationship Id='rId4' Type='http://x/table' Target='../tables/t&amp;1.xml'/></Relationships>"
    )
    sheet = "xl/worksheets/sheet1.xml"
    assert rels_path(sheet) == "xl/worksheets/_rels/sheet1.xml.rels"
    got = read_rels({rels_path(sheet): rels}, sheet)
    assert [(r["Id"], r["path"]) for r in got] == [
        ("rId1", "xl/drawings/drawing1.xml"), ("rId2", "xl/comments1.xml"), ("rId4", "xl/tables/t&1.xml")]
    assert read_rels({}, sheet) == []
    assert resolve_target("xl/workbook.xml", "./worksheets/sheet2.xml") == "xl/worksheets/sheet2.xml"
    assert resolve_target("xl/workbook.xml", "../../../x.xml") == "x.xml"  # never above the package root


@pytest.mark.parametrize(("n", "letters"), [(1, "A"), (26, "Z"), (27, "AA"), (52, "AZ"), (702, "ZZ"),
                                            (703, "AAA"), (16384, "XFD"), (18278, "ZZZ")])
def test_column_letters_both_ways(n, letters):
    assert col_letters(n) == letters and col_index(letters) == n and col_index(letters.lower()) == n
