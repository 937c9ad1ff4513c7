"""A message's bytes written directly: exactly what the email package's generator writes for the message
:func:`~xl_kpi.delivery.mail.compose._compose` builds, without building its objects.

Building an ``EmailMessage`` and flattening it costs milliseconds a message (parsing every header into objects,
folding them, copying the parts); a run of 10,000 spent most of its time there. Here the parts whose bytes vary
from message to message (the raw headers :mod:`compose` writes itself, the base64 of the body and of the files,
the multipart frame and boundary) are written directly; the headers whose wording the email package decides are
folded by it (once per distinct text, in a small cache), except the ``To`` of a name in words, which
:func:`to_header` folds by the email package's own steps. Where a step is not followed here the email package
does it (:func:`to_header` returns None; ``compose._compose_bytes`` builds a message with a file name it encodes
itself the slow way). ``tests/test_mail.py`` holds both ways to the same bytes over many names, texts and files.
"""

from __future__ import annotations

import binascii
import email._encoded_words as _ew
import email.contentmanager
import email.policy
import random
import re
import string
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



# --------------------------------------------------------------------------------------------
# The To header of a display name in words (the email package's folding, without its parse tree)

_MAX = 78
_CHROME = len("=?utf-8?q??=")
_Q_SAFE = frozenset(b"-!*+/ " + string.ascii_letters.encode("ascii") + string.digits.encode("ascii"))
"""Bytes a Q encoded word writes as one character (the space as ``_``); any other takes three (``=XX``)."""


def _plain_word(word: str) -> bool:
    return word.isascii() and all(ch.isalnum() or ch == "-" for ch in word)


def _coded_word(word: str) -> bool:
    return not word.isascii() and all(ch.isalpha() or ch == "-" or (ch.isascii() and ch.isalnum()) for ch in word)


def _ew_len(prefix_bytes: int, prefix_q: int) -> int:
    """The length of the encoded word ``_ew.encode`` writes for text of this many UTF-8 bytes and Q length."""
    b = (prefix_bytes + 2) // 3 * 4
    return _CHROME + (prefix_q if prefix_q - b < 5 else b)


def _fold_words(words: Sequence[str], angle: str, first: str) -> list[str] | None:
    """The lines the email package folds ``words`` (each followed by its space) and ``angle`` into, from a line
    holding ``first``: its ``_refold_parse_tree`` over a display name of atoms, with ``_fold_as_ew`` combining the
    encoded words; None where that would take a path not followed here (then the email package folds it)."""
    lines = [first]
    last_ew: int | None = None  # where the last encoded word starts on the last line
    last_text = ""  # the text of that encoded word
    for word in words:
        if word.isascii():
            tstr = word + " "
            if len(tstr) <= _MAX - len(lines[-1]):
                lines[-1] += tstr
                continue
            if not lines[-1].endswith(" ") or len(tstr) + 1 > _MAX:
                return None
            lines[-1] = lines[-1][:-1]
            lines.append(" " + tstr)
            last_ew = None
            continue
        to_encode = word
        if last_ew is not None:  # combined with the encoded word before it (and the plain text since), decoded
            after = lines[-1][last_ew:]
            lead = len(after) - len(after.lstrip(" "))
            ew_end = after.index("?=", lead + 10) + 2
            to_encode = after[:lead] + last_text + after[ew_end:] + word
            lines[-1] = lines[-1][:last_ew]
            if to_encode[0] == " ":  # a leading space stays outside the encoded word
                if len(lines[-1]) == _MAX:
                    return None
                lines[-1] += " "
                to_encode = to_encode[1:]
        new_last = len(lines[-1]) if last_ew is None else last_ew
        raw = to_encode.encode("utf-8")
        while to_encode:
            remaining = _MAX - len(lines[-1])
            if remaining - _CHROME <= 0:
                return None
            k = min(len(to_encode), remaining - _CHROME)
            nbytes = [len(ch.encode("utf-8")) for ch in to_encode[:k]]
            total_b = sum(nbytes)
            total_q = sum(1 if b in _Q_SAFE else 3 for b in raw[:total_b])
            while k and _ew_len(total_b, total_q) > remaining:
                k -= 1
                chunk = raw[total_b - nbytes[k]:total_b]
                total_b -= nbytes[k]
                total_q -= sum(1 if b in _Q_SAFE else 3 for b in chunk)
            if k == 0:
                return None
            piece = to_encode[:k]
            lines[-1] += _ew.encode(piece, charset="utf-8")
            last_text = piece
            to_encode, raw = to_encode[k:], raw[total_b:]
            if to_encode:
                lines.append(" ")
                new_last = 1
        last_ew = new_last
        if len(lines[-1]) < _MAX:
            lines[-1] += " "
        else:
            lines.append(" ")
            last_ew = None
    if len(angle) <= _MAX - len(lines[-1]):
        lines[-1] += angle
    elif lines[-1].endswith(" ") and len(angle) + 1 <= _MAX:
        lines[-1] = lines[-1][:-1]
        lines.append(" " + angle)
    else:
        return None
    return lines


def to_header(display_name: str, local: str, domain: str) -> bytes | None:
    """``To: display name <local@domain>`` as the email package folds it, for a name of words (letters, digits,
    hyphens; some not ASCII) separated by single spaces and an ASCII address; None for anything else.

    The email package folds such a header in about 2 ms (a parse tree, each level folded again on its own, each
    encoded word re-encoded a character at a time until it fits); this follows the same steps on the words.
    ``tests/test_mail.py`` compares the two over many names."""
    words = display_name.split(" ")
    if (not display_name or display_name.isascii() or "" in words or not (local + domain).isascii()
            or not all(_plain_word(w) or _coded_word(w) for w in words)):
        return None
    angle = f"<{local}@{domain}>"
    alone = _fold_words(words, angle, "")  # each level of the address is first folded on its own
    if alone is None:
        return None
    if len(alone) == 1:
        line = alone[0]
        return ("To: " + line if len(line) <= _MAX - 4 else "To:\r\n " + line).encode("ascii") + b"\r\n"
    lines = _fold_words(words, angle, "To: ")
    return None if lines is None else ("\r\n".join(lines) + "\r\n").encode("ascii")
