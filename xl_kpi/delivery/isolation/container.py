"""The clear-text part of an encrypted workbook: the OLE container with its ciphertext stream blanked.

An encrypted workbook (ECMA-376, as Excel and msoffcrypto-tool write it) is an OLE compound file whose
``EncryptedPackage`` stream holds the AES ciphertext of the workbook; everything else (the header, the directory,
``EncryptionInfo``, the data-space streams, any other stream and any bytes in no stream at all) is clear text
that anybody can read with a hex editor. The isolation check looks for names, ids and amounts in that clear
text. The ciphertext is looked at differently: it is proven by decrypting it (with the key kept from
encryption, or from passwords.csv) and checking the workbook it gives; AES output is random bytes, and a
search of it for 5-digit amounts only finds chance matches (about one in every thousand encrypted cards).
"""

from __future__ import annotations

import io
import struct

STREAM = "EncryptedPackage"


def clear_text(data: bytes) -> bytes:
    """``data`` (an OLE compound file) with the bytes of its ``EncryptedPackage`` stream set to zero, the rest
    unchanged (same length, same offsets). A container olefile cannot read, or one without that stream, comes
    back unchanged: all of it is then searched."""
    import olefile

    buf = io.BytesIO(data)
    try:
        ole = olefile.OleFileIO(buf)
        if ole.get_type(STREAM) != olefile.STGTY_STREAM:
            return data
        ole.write_stream(STREAM, bytes(ole.get_size(STREAM)))
    except (OSError, ValueError, IndexError, TypeError, struct.error):
        return data
    return buf.getvalue()
