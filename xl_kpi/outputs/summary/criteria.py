"""Pieces of formula text: sheet references, string literals, the COUNTIF/SUMIF criterion that matches a
name exactly, and a number as a criterion like ``">="&B2`` compares it."""

from __future__ import annotations


def _criterion_number(x: float) -> float:
    """A number after Excel's number → text → number trip in a criterion like ">="&B2."""
    return float(f"{x:.15g}")


def _quote_sheet(title: str) -> str:
    return "'" + title.replace("'", "''") + "'!"


def _formula_string(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _criterion(cell_ref: str, value: str) -> str:
    """COUNTIF/SUMIF criterion matching ``value`` exactly (text compare ignores case, as Excel does).

    A plain name is matched by referring to its cell. Names that COUNTIF would read as a
    comparison (leading = < >) or a wildcard (* ? ~) become an escaped "=…" string.
    """
    if value[:1] in ("=", "<", ">") or any(ch in value for ch in "*?~"):
        escaped = value.replace("~", "~~").replace("*", "~*").replace("?", "~?")
        return _formula_string("=" + escaped)
    return cell_ref
