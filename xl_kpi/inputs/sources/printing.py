"""Printing a parsed source back as text: when a name or value needs quotes, which quotes, and
numbers written without an exponent, so that ``parse(str(source)) == source``.
"""

from __future__ import annotations

from decimal import Decimal

from xl_kpi.inputs.sources.tokens import _KEYWORDS, _WORD


def _plain_number(x: float) -> str:
    """A float as the source language writes numbers: digits and a point, never an exponent
    (``1e-07`` would not parse back), exact to the float's shortest repr."""
    out = format(Decimal(repr(x)), "f")
    return out.rstrip("0").rstrip(".") if "." in out else out


def _quote(text: str) -> str:
    return f'"{text}"' if '"' not in text else (f"'{text}'" if "'" not in text else f"«{text}»")


def _is_plain(text: str) -> bool:
    """A bare word the tokenizer reads back as one name (not a keyword)."""
    return bool(_WORD.fullmatch(text)) and text.casefold() not in _KEYWORDS


def _name(text: str) -> str:
    return text if _is_plain(text) else _quote(text)


def _table_name(text: str) -> str:
    stem, sep, sheet = text.partition(":")
    return _name(stem) + (f":{_name(sheet)}" if sep else "")
