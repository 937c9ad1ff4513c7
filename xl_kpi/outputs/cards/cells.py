"""Values written into card cells: an Excel error (``Err``), a formula with its cached value (``Fx``), and
the XML tail of a ``<c>`` element for any value."""

from __future__ import annotations

from typing import Any, NamedTuple

from xl_kpi.outputs.ooxml import (
    number_text,
    xml_text,
)

# ----------------------------------------------------------------------------------------------
# values written into cells


class Err(str):
    """An Excel error value (``#DIV/0!``) as a cached result."""


class Fx(NamedTuple):
    """A formula cell: the formula (no leading '=') and the value xl_kpi computed for it."""

    text: str
    value: Any


_num = number_text


def _fx_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _tail(v: Any) -> str:
    """The end of a ``<c r=".." s=".."`` element for value ``v`` (text is always an inline string)."""
    tv = type(v)
    if tv is str:
        if not v:
            return "/>"
        return f' t="inlineStr"><is><t xml:space="preserve">{xml_text(v)}</t></is></c>'
    if tv is float:
        if v - v != 0.0:  # NaN or infinity
            return "/>"
        r = repr(v)
        return f"><v>{r[:-2] if r.endswith('.0') else r}</v></c>"
    if tv is int:
        return f"><v>{v}</v></c>"
    if v is None:
        return "/>"
    if tv is Fx:
        f = _fx_text(v.text)
        c = v.value
        tc = type(c)
        if c is None or (tc is float and c != c):
            return f"><f>{f}</f></c>"
        if tc is Err:
            return f' t="e"><f>{f}</f><v>{c}</v></c>'
        if tc is str:
            return f' t="str"><f>{f}</f><v>{xml_text(c)}</v></c>'
        if tc is bool:
            return f' t="b"><f>{f}</f><v>{int(c)}</v></c>'
        return f"><f>{f}</f><v>{_num(c)}</v></c>"
    if tv is bool:
        return f' t="b"><v>{int(v)}</v></c>'
    if isinstance(v, float):
        return _tail(float(v))
    if isinstance(v, int):
        return _tail(int(v))
    return _tail(str(v))


def _plain(v: Any) -> Any:
    """The cached value behind a cell value (for chart caches and text)."""
    return v.value if type(v) is Fx else v
