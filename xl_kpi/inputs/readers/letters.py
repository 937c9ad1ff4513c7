"""Excel column letters and numbers (A = 1, Z = 26, AA = 27 … ZZZ = 18278), as openpyxl's ``get_column_letter``
and ``column_index_from_string`` give them, without importing openpyxl: reading and validating the inputs
need the letters for their messages, and openpyxl's import alone costs a tenth of a second."""

from __future__ import annotations

import functools
from string import ascii_uppercase

LAST_COLUMN = 18278
"""ZZZ: the largest number that has column letters."""


@functools.cache
def column_letter(number: int) -> str:
    """The letters of column ``number`` (1 → 'A', 27 → 'AA'); ValueError outside 1..18278."""
    if not 1 <= number <= LAST_COLUMN:
        raise ValueError(f"Invalid column index {number}")
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = ascii_uppercase[rest] + letters
    return letters


@functools.cache
def column_number(letters: str) -> int:
    """The number of a column by its letters, case ignored ('AA' → 27); ValueError for other text."""
    text = letters.upper()
    if not 1 <= len(text) <= 3 or not all("A" <= c <= "Z" for c in text):
        raise ValueError(f"'{letters}' is not a valid column name. Column names are from A to ZZZ")
    number = 0
    for c in text:
        number = number * 26 + ord(c) - ord("A") + 1
    return number
