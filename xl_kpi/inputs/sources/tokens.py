"""The words of the source language (keywords, aggregations, duration units, yes/no words, length
and nesting limits) and :func:`tokenize`, which cuts a source text into :class:`Token` s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from xl_kpi.i18n import Msg
from xl_kpi.inputs.sources.errors import SourceSyntaxError

MAX_LENGTH = 2000
MAX_DEPTH = 40
DEFAULT_BY = "employee_id"
CURRENCY_OFF = ""
"""``Agg.currency`` of ``currency none``: no currency column, even if the table has one named Currency/Валюта."""
_CURRENCY_OFF = frozenset({"none", "off", "нет"})

VALUE_FUNCS = ("sum", "mean", "min", "max", "median")
_FUNC_ALIASES = {"avg": "mean", "average": "mean"}
_DURATION_UNITS = {"minute": 60.0, "minutes": 60.0, "hour": 3600.0, "hours": 3600.0, "day": 86400.0, "days": 86400.0}
_KEYWORDS = frozenset(
    {"count", "distinct", "sum", "mean", "avg", "average", "min", "max", "median", "nps", "where", "and", "or",
     "not", "in", "is", "empty", "by", "dated", "from", "to", "for"}
)
_BOOL_WORDS = {"yes": True, "true": True, "да": True, "no": False, "false": False, "нет": False}

TokenKind = Literal["word", "string", "number", "date", "op", "sym", "end"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    pos: int

    def is_kw(self, *words: str) -> bool:
        return self.kind == "word" and self.text.casefold() in words


_QUOTES = {'"': '"', "'": "'", "«": "»", "“": "”", "„": "“", "`": "`"}
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w.]))
  | (?P<number>-?\d+(?:\.\d+)?%?(?![\w]))
  | (?P<word>[^\W\d]\w*(?:-\w+)*)
  | (?P<op>!=|<>|<=|>=|==|=|<|>|≠|≤|≥)
  | (?P<sym>[().,/*×:])
    """,
    re.VERBOSE,
)
_WORD = re.compile(r"[^\W\d]\w*(?:-\w+)*")
_OPS = {"==": "=", "≠": "!=", "<>": "!=", "≤": "<=", "≥": ">="}


def tokenize(text: str) -> list[Token]:
    """Split a source text into tokens; raises :class:`SourceSyntaxError` on a character it cannot read."""
    if not isinstance(text, str):
        raise SourceSyntaxError(Msg("a source must be text, not {kind}", kind=type(text).__name__))
    if len(text) > MAX_LENGTH:
        raise SourceSyntaxError(Msg("the source is {n} characters long; keep it under {limit}", n=len(text),
                                    limit=MAX_LENGTH), text)
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _QUOTES:
            close = _QUOTES[ch]
            j = text.find(close, i + 1)
            if j < 0:
                raise SourceSyntaxError(
                    Msg("the quote {quote} at position {position} is never closed; add a closing {close}", quote=ch,
                        position=i + 1, close=close), text, i
                )
            tokens.append(Token("string", text[i + 1 : j], i))
            i = j + 1
            continue
        m = _TOKEN.match(text, i)
        if not m:
            raise SourceSyntaxError(
                Msg("cannot read {char} at position {position} (in {context}); put names and values with special "
                    "characters in quotes", char=repr(text[i]), position=i + 1, context=repr(_context(text, i))),
                text,
                i,
            )
        kind = m.lastgroup
        if kind != "space":
            word = m.group(0)
            if kind == "op":
                word = _OPS.get(word, word)
            elif kind == "sym" and word == "×":
                word = "*"
            tokens.append(Token(kind, word, i))  # type: ignore[arg-type]
        i = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _context(text: str, i: int) -> str:
    return text[max(0, i - 12) : i + 12]
