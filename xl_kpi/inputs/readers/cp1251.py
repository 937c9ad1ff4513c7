"""cp1251 text cells turned into UTF-8 column by column, with NumPy (:func:`utf8_column`).

pyarrow reads a cp1251 export fastest as raw bytes: told the encoding, it first runs the whole file through
Python's codec, block by block under the GIL (on a 1,000,000-row export 0.24-0.43 s against 0.10-0.14 s for the
bytes). cp1251 is one byte a character, so a column of raw cells is re-encoded a block at a time by the codec, and each
cell's offset moves by the UTF-8 bytes added before it (one or two per non-ASCII byte). A column of
ASCII bytes only (ids, dates, amounts: most of an export) is the same bytes in UTF-8 and is only relabelled.
The codec is Python's own, so the text is the text the codec gives; the one byte cp1251 leaves
undefined (0x98) is for the caller to refuse before (:data:`UNDEFINED`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

UNDEFINED = b"\x98"
"""The byte Python's cp1251 codec does not decode: a file holding it is not cp1251 text."""


def _extra_bytes() -> np.ndarray:
    """How many UTF-8 bytes each cp1251 byte's character takes beyond its one byte (0, 1 or 2)."""
    extra = np.zeros(256, dtype=np.int64)
    for b in range(0x80, 256):
        try:
            extra[b] = len(bytes([b]).decode("cp1251").encode("utf-8")) - 1
        except UnicodeDecodeError:  # 0x98: refused by the caller before
            pass
    return extra


_EXTRA = _extra_bytes()


def utf8_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column of raw cp1251 cells (binary) as UTF-8 text (string), nulls kept.

    A whole column at a time, in a few calls: the file is read in a background thread while the command line
    imports, and every call that releases the interpreter's lock waits to get it back (one per 1 MB chunk made
    the re-encoding of a 1,000,000-row export take 0.38 s instead of 0.1 s)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.chunked_array([chunk.view(pa.string()) for chunk in column.chunks], pa.string())  # not checked yet
    if not len(text) or pc.all(pc.string_is_ascii(text)).as_py() is not False:
        return text  # ASCII only (or no cells): the same bytes are UTF-8
    parts, size, start = [], 0, 0
    for i, chunk in enumerate(column.chunks):  # whole, or in pieces of at most 1 GB (32-bit offsets)
        if size and size + chunk.nbytes > _PIECE_BYTES:
            parts.append(_utf8_chunk(pa.concat_arrays(column.chunks[start:i])))
            size, start = 0, i
        size += chunk.nbytes
    parts.append(_utf8_chunk(pa.concat_arrays(column.chunks[start:])))
    return pa.chunked_array(parts, pa.string())


_PIECE_BYTES = 1 << 30
"""The most raw bytes re-encoded at once: their UTF-8 (at most three bytes a byte) must stay under 2**31."""


def _utf8_chunk(chunk: pa.Array) -> pa.Array:
    """One chunk: its bytes through Python's codec at once (C speed), each cell's offset moved by the extra UTF-8
    bytes of the non-ASCII bytes before it (found with NumPy: a comparison, a cumulative sum, a binary search)."""
    import pyarrow as pa

    if chunk.offset:  # a slice: its own copy, so that the buffers start at the first cell
        chunk = pa.concat_arrays([chunk])
    validity, offsets_buf, data_buf = chunk.buffers()
    n = len(chunk)
    if offsets_buf is None or data_buf is None:
        return chunk.cast(pa.string())
    offsets = np.frombuffer(offsets_buf, dtype=np.int32, count=n + 1)
    first, last = int(offsets[0]), int(offsets[-1])
    raw = np.frombuffer(data_buf, dtype=np.uint8)[first:last]
    high = np.flatnonzero(raw >= 0x80)
    if not high.size:  # ASCII only: the same bytes are UTF-8
        return chunk.cast(pa.string())
    added = np.concatenate(([0], np.cumsum(_EXTRA[raw[high]])))
    moved = offsets - first + added[np.searchsorted(high, offsets - first)]
    if int(moved[-1]) > np.iinfo(np.int32).max:  # pragma: no cover - pyarrow's blocks are a few MB
        raise OverflowError("a block of cells longer than 2 GB")
    text = str(memoryview(data_buf)[first:last], "cp1251").encode("utf-8")
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(moved.astype(np.int32)),
                                                  pa.py_buffer(text)], null_count=chunk.null_count)
