"""Safe file and folder names built from employee data (names, departments, ids).

An employee called ``../../etc/passwd``, ``CON`` or ``Bob\\x00`` must still get a card inside the
output folder, with a name every common file system (ext4, NTFS, APFS, FAT) accepts.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from pathlib import Path

MAX_COMPONENT = 100
"""Longest file or folder name we produce, in characters (extension included)."""

MAX_COMPONENT_BYTES = 240
"""And in UTF-8 bytes (ext4 allows 255)."""

_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"} | {
    f"{p}{d}" for p in ("COM", "LPT") for d in "0123456789¹²³"
}
_UNSAFE = re.compile(r'[\\/:*?"<>|]')
_SPACES = re.compile(r"\s+")


def safe_component(text: object, *, max_len: int = MAX_COMPONENT, fallback: str = "_") -> str:
    """One path component made from ``text``: no separators, control characters, reserved names.

    Characters that are illegal on Windows (``\\ / : * ? " < > |``) become ``_``; control and
    invisible format characters (NUL, RTL override, zero-width) are dropped; runs of white space
    become one space; leading dots, leading and trailing spaces and trailing dots are removed;
    Windows device names (``CON``, ``nul.txt``, ``COM1``) get a ``_`` appended; the result is cut
    to ``max_len`` characters and :data:`MAX_COMPONENT_BYTES` UTF-8 bytes. Empty → ``fallback``.

    >>> safe_component("../../etc/passwd")
    '_.._etc_passwd'
    >>> safe_component("CON")
    'CON_'
    """
    return _safe_component("" if text is None else str(text), max_len, fallback)


@functools.lru_cache(maxsize=65536)
def _safe_component(s: str, max_len: int, fallback: str) -> str:
    """:func:`safe_component` of a string, remembered: a department's folder name is made once, not per card."""
    s = unicodedata.normalize("NFC", s)
    if not s.isprintable():  # printable = no "Other" (Cc, Cf, Cs, Co, Cn) character: the filter would keep all
        s = "".join(ch for ch in s if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn") or ch in "\t\n")
    s = _SPACES.sub(" ", _UNSAFE.sub("_", s)).strip()
    s = s.lstrip(". ").rstrip(". ")
    s = _cut(s, max_len)
    if not s:
        return fallback
    stem = s.split(".", 1)[0].rstrip(" ").upper()
    if stem in _RESERVED:
        head, dot, tail = s.partition(".")
        s = _cut(head + "_" + dot + tail, max_len)
    return s


def _cut(s: str, max_len: int) -> str:
    s = s[:max_len]
    while len(s.encode("utf-8")) > MAX_COMPONENT_BYTES:
        s = s[:-1]
    return s.rstrip(". ")


def safe_file_name(stem: object, ext: str, *, max_len: int = MAX_COMPONENT) -> str:
    """``stem`` made safe and cut so that ``stem + ext`` fits in ``max_len`` characters."""
    base = safe_component(stem, max_len=max_len - len(ext))
    return base + ext


def inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """True when ``path`` lies within ``root`` (lexically, after normalising ``..``)."""
    r = os.path.normpath(os.path.abspath(root))
    p = os.path.normpath(os.path.abspath(path))
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def child(root: str | os.PathLike[str], *components: object, ext: str = "") -> Path:
    """``root / c1 / c2 / ... / cN+ext`` with every component made safe; always inside ``root``."""
    parts = [safe_component(c) for c in components[:-1]]
    parts.append(safe_file_name(components[-1], ext) if ext else safe_component(components[-1]))
    path = Path(root).joinpath(*parts)
    if not inside(root, path):  # cannot happen with safe components; a last line of defence
        raise ValueError(f"refusing to write outside {root}: {path}")
    return path
