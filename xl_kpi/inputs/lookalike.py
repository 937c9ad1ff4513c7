"""Names that look like an expected one but are spelt with letters of another script.

A sheet called ``Еmployees`` with a Cyrillic «Е» (or a header ``bоnus_pool`` with a Cyrillic «о»)
reads like ``Employees`` on screen but is a different name to a program. :func:`lookalike` finds the
expected name such a name imitates, so the message can say *why* the sheet or column was not found
instead of only "missing sheet Employees". Names are compared by their *skeleton*: the
:func:`~xl_kpi.validate.header_key` of the name with Cyrillic and Greek letters that look like Latin
ones mapped to those (е→e, о→o, К→K…); the Latin letters of a Russian name (a Latin «C» in
``Cотрудники``) are found the same way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from xl_kpi.inputs.tables import header_key

_TO_LATIN = str.maketrans({
    # Cyrillic (after casefolding, so К, М, Т, Н, В… arrive as к, м, т, н, в)
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ү": "y", "һ": "h", "ѡ": "w",
    # Greek
    "α": "a", "β": "b", "ε": "e", "ζ": "z", "η": "h", "ι": "i", "κ": "k", "μ": "m", "ν": "n", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "y", "χ": "x", "ϲ": "c", "ϳ": "j",
})


def skeleton(text: object) -> str:
    """The :func:`header_key` of ``text`` with look-alike Cyrillic and Greek letters mapped to Latin.

    >>> skeleton("Еmployees") == skeleton("Employees")
    True
    """
    return header_key(text).translate(_TO_LATIN)


def lookalike(name: object, expected: Iterable[str]) -> str | None:
    """The expected name that ``name`` imitates (same skeleton, different spelling), or None.

    >>> lookalike("Еmployees", ["Employees", "Staff"])
    'Employees'
    >>> lookalike("Employees", ["Employees"]) is None
    True
    """
    key, skel = header_key(name), skeleton(name)
    for e in expected:
        if header_key(e) != key and skeleton(e) == skel:
            return e
    return None


def _script(ch: str) -> str:
    try:
        return unicodedata.name(ch).split()[0].capitalize()
    except ValueError:
        return "unknown"


def foreign_letters(name: str, like: str) -> str:
    """Which letters of ``name`` are of another script than those of ``like``, in words.

    >>> foreign_letters("Еmployees", "Employees")
    'a Cyrillic «Е» at position 1'
    """
    expected = {_script(c) for c in like if c.isalpha()}
    found = [(i, c) for i, c in enumerate(name, 1) if c.isalpha() and _script(c) not in expected]
    if not found:
        return "letters of another script"
    scripts = sorted({_script(c) for _, c in found})
    if len(found) == 1:
        i, c = found[0]
        return f"a {scripts[0]} «{c}» at position {i}"
    listed = ", ".join(f"«{c}» at position {i}" for i, c in found[:6]) + (", …" if len(found) > 6 else "")
    return f"{' and '.join(scripts)} letters: {listed}"


def describe(name: str, like: str, what: str = "sheet") -> str:
    """'sheet «Еmployees» looks like Employees but has a Cyrillic «Е» at position 1'."""
    return f"{what} «{name}» looks like {like} but has {foreign_letters(name, like)}"
