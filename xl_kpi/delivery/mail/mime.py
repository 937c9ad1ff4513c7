"""A message's bytes written directly: exactly what the email package's generator writes for the message
:func:`~xl_kpi.delivery.mail.compose._compose` builds, without building its objects.

Building an ``EmailMessage`` and flattening it costs milliseconds a message (parsing every header into objects,
folding them, copying the parts); a run of 10,000 spent most of its time there. Here the parts whose bytes vary
from message to message (the raw headers :mod:`compose` writes itself, the base64 of the body and of the files,
the multipart frame) are written directly, and every header the email package folds is folded by it (once per
distinct text, kept in a small cache), so nothing about the wording rules is guessed. A message whose headers
this does not know how to write (none today; :func:`message_bytes` returns None) goes the slow way.
``tests/test_mail.py`` holds both ways to the same bytes over many names, texts and files.
"""

from __future__ import annotations

import binascii
import email.contentmanager
import email.policy
import random
import re
import sys
from collections.abc import Sequence
from email.headerregistry import Address
from functools import lru_cache

POLICY = email.policy.SMTP.clone(cte_type="7bit", refold_source="none")
"""CRLF line ends, 7-bit transfer encodings (no server needs 8BITMIME), headers we fold ourselves kept as is."""
_NEWLINES = re.compile(r"\r\n|\r|\n")
_BOUNDARY = re.compile(r"={15}[0-9]{19}==")


@lru_cache(maxsize=2048)
def folded(name: str, value: str) -> bytes:
    """The header ``name: value`` as the email package writes it (``msg[name] = value``, then as_bytes): parsed
    and folded by it, with :data:`POLICY`; cached, the subject and the MIME headers repeat."""
    return POLICY.fold_binary(*POLICY.header_store_parse(name, value))


@lru_cache(maxsize=2048)
def folded_address(name: str, display_name: str, username: str, domain: str) -> bytes:
    """The header ``name: <an Address>`` as the email package writes it, folded by it (cached: the sender)."""
    return POLICY.fold_binary(*POLICY.header_store_parse(
        name, Address(display_name=display_name, username=username, domain=domain)))


def raw(name: str, value: str) -> bytes:
    """A header set with ``set_raw`` as the generator writes it: its lines joined by CRLF, as they are."""
    return (name + ": " + "\r\n".join(value.splitlines()) + "\r\n").encode("ascii")


def text_part(body: str) -> bytes:
    """The text/plain part of ``body`` (UTF-8, the transfer encoding the email package picks for it)."""
    cte, data = email.contentmanager._encode_text(body, "utf-8", None, POLICY)
    head = folded("Content-Type", 'text/plain; charset="utf-8"') + folded("Content-Transfer-Encoding", cte)
    return head + b"\r\n" + _NEWLINES.sub("\r\n", data).encode("ascii")


def base64_lines(data: bytes) -> bytes:
    """``data`` in base64, lines of 76 characters (57 bytes) each ended by CRLF: the email package's attachment
    encoding (``_encode_base64``, its lines then ended by the generator), in one C call and slices."""
    text = binascii.b2a_base64(data, newline=False)
    if not text:
        return b""
    return b"\r\n".join([text[i:i + 76] for i in range(0, len(text), 76)]) + b"\r\n"


def attachment_part(data: bytes, content_type: str, disposition: bytes, ascii_name: bool) -> bytes:
    """One attachment part: its headers in the order the email package leaves them (``disposition`` folded by it
    for an ASCII file name, written raw otherwise), then the file in base64 lines of 76 characters."""
    mime = folded("MIME-Version", "1.0")
    head = folded("Content-Transfer-Encoding", "base64") + (disposition + mime if ascii_name else mime + disposition)
    return head + raw("Content-Type", content_type) + b"\r\n" + base64_lines(data)


_WIDTH = len(repr(sys.maxsize - 1))


def boundary(text: bytes) -> str:
    """The multipart boundary the generator would pick for ``text`` (``BytesGenerator._make_boundary``: the
    same random draw, the same form), found not to be a line of ``text`` by a substring search first: only a
    text holding it at all needs the generator's regular expression (compiled anew for each boundary)."""
    token = random.randrange(sys.maxsize)
    first = ("=" * 15) + f"{token:0{_WIDTH}d}" + "=="
    b, counter = first, 0
    while (b"--" + b.encode("ascii")) in text and re.search(
            ("^--" + re.escape(b) + "(--)?$").encode("ascii"), text, re.MULTILINE):
        b = first + "." + str(counter)
        counter += 1
    return b


def multipart(headers: bytes, parts: Sequence[bytes]) -> bytes:
    """The multipart/mixed message: ``headers`` (everything above MIME-Version), the frame, the ``parts``.

    The boundary is the generator's own (random, never a line of the parts); the Content-Type holding it is
    written directly when it has the generator's usual form (one line of 78 characters), else folded by the email
    package."""
    alltext = b"\r\n".join(parts)
    bound = boundary(alltext)
    if _BOUNDARY.fullmatch(bound):
        ctype = ('Content-Type: multipart/mixed; boundary="' + bound + '"\r\n').encode("ascii")
    else:
        ctype = folded.__wrapped__("Content-Type", f'multipart/mixed; boundary="{bound}"')
    b = bound.encode("ascii")
    out = [headers, folded("MIME-Version", "1.0"), ctype, b"\r\n--", b, b"\r\n"]
    for i, part in enumerate(parts):
        if i:
            out += [b"\r\n--", b, b"\r\n"]
        out.append(part)
    out += [b"\r\n--", b, b"--\r\n"]
    return b"".join(out)

