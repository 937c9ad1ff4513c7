"""cp1251 exports read as raw bytes and re-encoded column by column give the text Python's codec gives."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xl_kpi.inputs.readers.cp1251 import UNDEFINED, utf8_column
from xl_kpi.inputs.readers.csvarrow import read_csv_arrow
from xl_kpi.inputs.readers.csvfile import read_csv_grid

ALPHABET = sorted({bytes([b]).decode("cp1251") for b in range(256) if bytes([b]) != UNDEFINED} - {"\x00"})
"""Every character cp1251 has (Cyrillic: two UTF-8 bytes; "№", "€", "…", "‰": three)."""
cells = st.lists(st.none() | st.text(alphabet=st.sampled_from(ALPHABET), max_size=12), max_size=40)


def _raw(chunks: list[list[str | None]]) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array([None if v is None else v.encode("cp1251") for v in c], pa.binary())
                             for c in chunks], pa.binary())


@settings(max_examples=300, deadline=None)
@given(st.lists(cells, min_size=1, max_size=4))
def test_every_cp1251_text_comes_out_as_the_codec_decodes_it(chunks):
    out = utf8_column(_raw(chunks))
    assert out.type == pa.string()
    assert out.to_pylist() == [v for c in chunks for v in c]
    out.validate(full=True)


@given(cells, st.integers(0, 40), st.integers(0, 40))
def test_a_slice_of_a_chunk_is_re_encoded_from_its_own_first_cell(values, start, length):
    sliced = _raw([values]).chunk(0).slice(start, length)
    out = utf8_column(pa.chunked_array([sliced], pa.binary()))
    assert out.to_pylist() == values[start:start + length]


def test_ascii_columns_are_relabelled_and_three_byte_characters_counted():
    out = utf8_column(_raw([["E-1", None, ""], ["№ 5 …", "да", None, "€"]]))
    assert out.to_pylist() == ["E-1", None, "", "№ 5 …", "да", None, "€"]
    assert out.null_count == 2


EXPORT = ('"id";"Клиент";"Сумма";"Комментарий"\r\n'
          '"1";"ООО «Ромашка»";"1 234,50";"счёт № 5\r\nоплачен"\r\n'
          '"2";"";"99,00";"he said ""yes"" … €"\r\n'
          '"3";"ИП Ёлкин";"";""\r\n'
          '"4";"E-4";"7";"plain"\r\n')


def test_the_arrow_reader_gives_the_line_readers_cells_for_a_cp1251_export(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(EXPORT.encode("cp1251"))
    grid = read_csv_arrow(path)
    assert grid is not None and all(t == pa.string() for t in grid.schema.types)
    lines = read_csv_grid(path)
    expected = [[None if v != v else v for v in row] for row in lines.itertuples(index=False)]
    assert [list(r.values()) for r in grid.to_pylist()] == expected
    assert grid.column(3)[1].as_py() == "счёт № 5\r\nоплачен"


@pytest.mark.parametrize("where", [b'"1";"\x98";"2"\r\n', b'"1";"a";"2"\r\n"\x98";"b";"c"\r\n'])
def test_a_byte_cp1251_does_not_have_goes_to_the_line_reader(tmp_path, where):
    path = tmp_path / "odd.csv"
    path.write_bytes('"id";"Имя";"n"\r\n'.encode("cp1251") + where)
    assert read_csv_arrow(path, encoding="cp1251") is None
