"""Formula-safe text in the CSVs xl_kpi writes, reversibly (one function pair for every writer and reader).

Excel runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, after a tab or carriage return,
often still) as a formula. Every text cell xl_kpi writes to a CSV goes through :func:`neutralise`: text
starting with one of those characters gets a leading apostrophe, and so does text that already starts
with an apostrophe. :func:`restore` removes exactly one leading apostrophe, so the round trip is exact:
``=1`` is written ``'=1`` and ``'=1`` is written ``''=1``; both read back as they were.

Only text is neutralised. Number columns (total_bonus, scores, amounts) are written as numbers, so a
negative amount stays ``-5.00`` and is read as a number; readers must not call :func:`restore` on them.
"""

from __future__ import annotations

DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralise(text: str) -> str:
    """``text`` as it goes into a CSV cell: an apostrophe before formula-like text or a leading apostrophe."""
    return "'" + text if text.startswith(DANGEROUS) else text


def restore(cell: str) -> str:
    """The text :func:`neutralise` was given: one leading apostrophe removed, if there is one."""
    return cell[1:] if cell.startswith("'") else cell
