"""The raw-data source language of ``KPIs.source``: how a fact is derived from CRM exports.

One line says which table, which rows, and which aggregation, per employee::

    count deals where status = won dated closed_at by manager_id
    sum deals.amount where status = "won" and amount >= 1000
    distinct deals.client_id
    nps surveys.score by manager_id dated answered_at
    count requests where complaint = yes / count requests
    mean hours requests.created_at to first_reply_at by handler
    (count deals where status = won by manager_id) / (count leads by owner) * 100

Grammar (keywords in any case; a name or value with spaces or a keyword goes in quotes:
``"Сумма сделки"``, ``'closed won'``, ``«да»``)::

    source  := term ["/" term] tail
    tail    := ("by" COLUMN | "dated" COLUMN | "*" NUMBER)*
    term    := "(" agg tail ")" | agg
    agg     := "count" TABLE [where]
             | ("distinct" | "count distinct") TABLE "." COLUMN [where]
             | ("sum"|"mean"|"avg"|"average"|"min"|"max"|"median"|"nps") TABLE "." COLUMN [where]
             | ("sum"|"mean"|…|"median") ("minutes"|"hours"|"days") ["from"] TABLE "." COLUMN "to" COLUMN [where]
    TABLE   := NAME [":" NAME]             file stem, or stem:sheet for a workbook sheet
    where   := "where" cond
    cond    := cond "or" cond | cond "and" cond | "not" cond | "(" cond ")"
             | COLUMN ("="|"!="|"<>"|"<"|"<="|">"|">=") VALUE
             | COLUMN ["not"] "in" "(" VALUE ("," VALUE)* ")"
             | COLUMN "is" ["not"] "empty"

``by`` names the employee column (default ``employee_id``); ``dated`` names the date column that
places a row in a period (without it every row counts). Clauses after the whole expression apply
to every term that does not set its own. Values: numbers (``1000``, ``2.5``, ``40%``), dates
(``2026-10-15``), yes/no words (``yes``/``да``/``true``/``1`` match each other), or text
(compared without regard to case or surrounding spaces).

Parsing is a hand-written tokenizer and recursive-descent parser; evaluation is pandas masks and
group-bys. User text is never passed to ``eval``, ``exec``, ``DataFrame.query`` or ``.eval``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.period import Period, month_keys, period_of
from xl_kpi.inputs.cells import EARLIEST, FAR_FUTURE, to_dates, to_flags_checked, to_ids, to_numbers
from xl_kpi.inputs.problems import Problems, row_ranges
from xl_kpi.inputs.tables import Table, header_key


class SourceError(KpiError):
    """A raw-data source cannot be evaluated (missing table or column, bad data)."""


class SourceSyntaxError(SourceError):
    """A ``KPIs.source`` text does not follow the source language."""

    def __init__(self, message: str, text: str = "", position: int | None = None) -> None:
        self.text = text
        self.position = position
        super().__init__(message)


UNEVALUATED = "the source could not be evaluated"
"""The note of every fact of a source that names a missing table or column."""
MAX_LENGTH = 2000
MAX_DEPTH = 40
DEFAULT_BY = "employee_id"

VALUE_FUNCS = ("sum", "mean", "min", "max", "median")
_FUNC_ALIASES = {"avg": "mean", "average": "mean"}
_DURATION_UNITS = {"minute": 60.0, "minutes": 60.0, "hour": 3600.0, "hours": 3600.0, "day": 86400.0, "days": 86400.0}
_KEYWORDS = frozenset(
    {"count", "distinct", "sum", "mean", "avg", "average", "min", "max", "median", "nps", "where", "and", "or",
     "not", "in", "is", "empty", "by", "dated", "from", "to"}
)
_BOOL_WORDS = {"yes": True, "true": True, "да": True, "no": False, "false": False, "нет": False}

# ------------------------------------------------------------------------------------ tokens

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
        raise SourceSyntaxError(f"a source must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise SourceSyntaxError(f"the source is {len(text)} characters long; keep it under {MAX_LENGTH}", text)
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _QUOTES:
            close = _QUOTES[ch]
            j = text.find(close, i + 1)
            if j < 0:
                raise SourceSyntaxError(
                    f"the quote {ch} at position {i + 1} is never closed; add a closing {close}", text, i
                )
            tokens.append(Token("string", text[i + 1 : j], i))
            i = j + 1
            continue
        m = _TOKEN.match(text, i)
        if not m:
            raise SourceSyntaxError(
                f"cannot read {text[i]!r} at position {i + 1} (in {_context(text, i)!r}); "
                "put names and values with special characters in quotes",
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


# -------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Value:
    """A literal in a condition: number, date (Timestamp), yes/no flag, or text."""

    kind: Literal["number", "date", "flag", "text"]
    value: Any
    text: str

    def __str__(self) -> str:
        if self.kind != "text":
            return self.text
        plain = _is_plain(self.text) and self.text.casefold() not in _BOOL_WORDS
        return self.text if plain else _quote(self.text)


@dataclass(frozen=True)
class Compare:
    column: str
    op: str
    value: Value

    def __str__(self) -> str:
        return f"{_name(self.column)} {self.op} {self.value}"


@dataclass(frozen=True)
class IsIn:
    column: str
    values: tuple[Value, ...]
    negate: bool = False

    def __str__(self) -> str:
        return f"{_name(self.column)} {'not in' if self.negate else 'in'} ({', '.join(map(str, self.values))})"


@dataclass(frozen=True)
class IsEmpty:
    column: str
    negate: bool = False

    def __str__(self) -> str:
        return f"{_name(self.column)} is {'not empty' if self.negate else 'empty'}"


@dataclass(frozen=True)
class Not:
    cond: Cond

    def __str__(self) -> str:
        return f"not ({self.cond})"


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    left: Cond
    right: Cond

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


Cond = Compare | IsIn | IsEmpty | Not | BoolOp


@dataclass(frozen=True)
class Agg:
    """One aggregation over one table, per employee (and per period when ``dated`` is set)."""

    func: str  # count, distinct, sum, mean, min, max, median, nps
    table: str
    column: str | None = None
    end_column: str | None = None  # durations: from ``column`` to ``end_column``
    unit: str | None = None  # durations: minutes, hours or days
    where: Cond | None = None
    by: str | None = None
    dated: str | None = None

    @property
    def empty_value(self) -> float:
        """The value for an employee with no rows: 0 for count, distinct and sum; otherwise none."""
        return 0.0 if self.func in ("count", "distinct") or (self.func == "sum" and self.unit is None) else np.nan

    def columns(self) -> list[str]:
        """Every column this aggregation reads."""
        cols = [c for c in (self.by or DEFAULT_BY, self.dated, self.column, self.end_column) if c]
        return cols + _cond_columns(self.where)

    def __str__(self) -> str:
        table = _table_name(self.table)
        if self.func == "count":
            head = f"count {table}"
        elif self.unit:
            head = f"{self.func} {self.unit} {table}.{_name(self.column or '')} to {_name(self.end_column or '')}"
        else:
            head = f"{self.func} {table}.{_name(self.column or '')}"
        if self.where is not None:
            head += f" where {self.where}"
        if self.by:
            head += f" by {_name(self.by)}"
        if self.dated:
            head += f" dated {_name(self.dated)}"
        return head


@dataclass(frozen=True)
class Source:
    """A parsed source: one aggregation, or a ratio of two, times an optional factor."""

    numerator: Agg
    denominator: Agg | None = None
    factor: float = 1.0
    text: str = field(default="", compare=False)

    @property
    def terms(self) -> list[Agg]:
        return [self.numerator] + ([self.denominator] if self.denominator is not None else [])

    @property
    def tables(self) -> list[str]:
        return list(dict.fromkeys(t.table for t in self.terms))

    @property
    def dated(self) -> bool:
        return any(t.dated for t in self.terms)

    def __str__(self) -> str:
        if self.denominator is None:
            out = str(self.numerator)
        else:
            out = f"({self.numerator}) / ({self.denominator})"
        return out + (f" * {_plain_number(self.factor)}" if self.factor != 1.0 else "")


def _plain_number(x: float) -> str:
    """A float as the source language writes numbers: digits and a point, never an exponent
    (``1e-07`` would not parse back), exact to the float's shortest repr."""
    out = format(Decimal(repr(x)), "f")
    return out.rstrip("0").rstrip(".") if "." in out else out


def _cond_columns(cond: Cond | None) -> list[str]:
    if cond is None:
        return []
    if isinstance(cond, (Compare, IsIn, IsEmpty)):
        return [cond.column]
    if isinstance(cond, Not):
        return _cond_columns(cond.cond)
    return _cond_columns(cond.left) + _cond_columns(cond.right)


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


# ----------------------------------------------------------------------------------- parser


def parse(text: str) -> Source:
    """Parse a source text; raises :class:`SourceSyntaxError` (a :class:`~xl_kpi.KpiError`) with a hint.

    >>> str(parse("count requests where complaint = yes / count requests by manager_id"))
    '(count requests where complaint = yes by manager_id) / (count requests by manager_id)'
    """
    return _Parser(text).source()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        if len(self.tokens) == 1:
            raise SourceSyntaxError("the source is empty; e.g. write: count deals where status = won", text, 0)

    # -- helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        t = self.tokens[self.i]
        if t.kind != "end":
            self.i += 1
        return t

    def fail(self, expected: str, tok: Token | None = None) -> SourceSyntaxError:
        t = tok or self.tok
        found = "the end of the text" if t.kind == "end" else f'"{t.text}"'
        before = self.text[: t.pos].strip()
        after = f' after "{before[-40:]}"' if before else " at the start"
        return SourceSyntaxError(f"expected {expected}{after}, found {found}", self.text, t.pos)

    def accept_sym(self, sym: str) -> bool:
        if self.tok.kind == "sym" and self.tok.text == sym:
            self.i += 1
            return True
        return False

    def expect_sym(self, sym: str, what: str) -> None:
        if not self.accept_sym(sym):
            raise self.fail(what)

    def accept_kw(self, *words: str) -> str | None:
        if self.tok.is_kw(*words):
            return self.next().text.casefold()
        return None

    def name(self, what: str) -> str:
        t = self.tok
        if t.kind == "string" and t.text.strip():
            self.i += 1
            return t.text.strip()
        if t.kind == "word" and t.text.casefold() not in _KEYWORDS:
            self.i += 1
            return t.text
        hint = f' (to use the word "{t.text}" as a name, put it in quotes)' if t.kind == "word" else ""
        raise SourceSyntaxError(str(self.fail(what, t)) + hint, self.text, t.pos)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SourceSyntaxError(f"too many nested parentheses (more than {MAX_DEPTH})", self.text, self.tok.pos)

    # -- grammar
    def source(self) -> Source:
        num = self.term()
        den = None
        if self.accept_sym("/"):
            den = self.term()
        by, dated, factor = self.tail(allow_factor=True)
        if self.tok.kind != "end":
            if self.tok.kind == "sym" and self.tok.text == "/":
                raise self.fail("the end of the source (a source divides at most two aggregations)")
            raise self.fail('"/", "by", "dated", "*" or the end of the source')
        terms = [_default(t, by, dated) for t in (num, den) if t is not None]
        return Source(terms[0], terms[1] if den is not None else None, factor, self.text)

    def tail(self, allow_factor: bool) -> tuple[str | None, str | None, float]:
        by = dated = None
        factor = 1.0
        while True:
            if self.accept_kw("by"):
                if by is not None:
                    raise self.fail("one 'by' clause only")
                by = self.name('the employee column after "by"')
            elif self.accept_kw("dated"):
                if dated is not None:
                    raise self.fail("one 'dated' clause only")
                dated = self.name('the date column after "dated"')
            elif allow_factor and self.accept_sym("*"):
                t = self.next()
                if t.kind != "number" or t.text.endswith("%"):
                    raise self.fail('a number after "*" (e.g. * 100 to show a share in percent)', t)
                factor *= self.finite(t)
                if factor == 0 or not math.isfinite(factor):
                    raise SourceSyntaxError(f'the factor "* {t.text}" makes the result too small or too large',
                                            self.text, t.pos)
            else:
                return by, dated, factor

    def term(self) -> Agg:
        if self.accept_sym("("):
            self.enter()
            agg = self.agg()
            by, dated, _ = self.tail(allow_factor=False)
            self.expect_sym(")", '")" to close the bracket')
            self.depth -= 1
            return replace(agg, by=by, dated=dated)
        return self.agg()

    def agg(self) -> Agg:
        t = self.tok
        func = self.accept_kw("count", "distinct", *VALUE_FUNCS, *_FUNC_ALIASES, "nps")
        if func is None:
            raise self.fail("an aggregation: count, sum, mean, min, max, median, distinct or nps")
        func = _FUNC_ALIASES.get(func, func)
        if func == "count" and self.accept_kw("distinct"):
            func = "distinct"
        if func == "count":
            table = self.table()
            return Agg("count", table, where=self.where())
        unit = None
        if func in VALUE_FUNCS and self.tok.kind == "word" and self.tok.text.casefold() in _DURATION_UNITS:
            nxt = self.tokens[self.i + 1]
            if not (nxt.kind == "sym" and nxt.text in ".:"):  # "hours" could also be a table name
                unit = self.next().text.casefold()
                unit = unit if unit.endswith("s") else unit + "s"
                self.accept_kw("from")
        table = self.table()
        self.expect_sym(".", f'"." and a column name after the table ({func} needs table.column)')
        column = self.name("a column name")
        end = None
        if unit:
            if not self.accept_kw("to"):
                raise self.fail(f'"to" and the end column ({func} {unit} table.start to end)')
            end = self.name("the end column after 'to'")
            if self.accept_sym("."):
                if header_key(end) != header_key(table.partition(":")[0]) and header_key(end) != header_key(table):
                    raise SourceSyntaxError(
                        f'the end column must be in the same table as the start ({table}), not in "{end}"',
                        self.text,
                        t.pos,
                    )
                end = self.name("a column name")
        return Agg(func, table, column, end, unit, self.where())

    def table(self) -> str:
        stem = self.name("a table name (a --data file name without extension, e.g. deals)")
        if self.accept_sym(":"):
            return f"{stem}:{self.name('a sheet name after ' + repr(stem + ':'))}"
        return stem

    def where(self) -> Cond | None:
        if not self.accept_kw("where"):
            return None
        return self.or_cond()

    def or_cond(self) -> Cond:
        left = self.and_cond()
        while self.accept_kw("or"):
            left = BoolOp("or", left, self.and_cond())
        return left

    def and_cond(self) -> Cond:
        left = self.not_cond()
        while self.accept_kw("and"):
            left = BoolOp("and", left, self.not_cond())
        return left

    def not_cond(self) -> Cond:
        if self.accept_kw("not"):
            self.enter()
            out = Not(self.not_cond())
            self.depth -= 1
            return out
        if self.accept_sym("("):
            self.enter()
            out = self.or_cond()
            self.expect_sym(")", '")" to close the bracket')
            self.depth -= 1
            return out
        column = self.name("a column name in the condition")
        if self.accept_kw("is"):
            negate = bool(self.accept_kw("not"))
            if not self.accept_kw("empty"):
                raise self.fail(f'"empty" (write: {column} is empty, or {column} is not empty)')
            return IsEmpty(column, negate)
        negate = bool(self.accept_kw("not"))
        if self.accept_kw("in"):
            self.expect_sym("(", '"(" and a list of values, e.g. in (won, paid)')
            values = [self.value()]
            while self.accept_sym(","):
                values.append(self.value())
            self.expect_sym(")", '"," or ")" to end the list')
            return IsIn(column, tuple(values), negate)
        if negate:
            raise self.fail('"in" after "not" (write: status not in (lost, cancelled))')
        t = self.tok
        if t.kind != "op":
            raise self.fail(f"a comparison after the column {column}: =, !=, <, <=, >, >=, in, is empty")
        self.i += 1
        value = self.value()
        if t.text in ("<", "<=", ">", ">=") and value.kind in ("text", "flag"):
            raise SourceSyntaxError(
                f'"{column} {t.text} {value.text}": < and > compare numbers or dates; use = or != for text',
                self.text,
                t.pos,
            )
        return Compare(column, t.text, value)

    def finite(self, t: Token) -> float:
        """A number token's value; a number too large or too small for a float is an error, not inf or 0."""
        x = float(t.text.removesuffix("%"))
        if not math.isfinite(x) or (x == 0 and t.text.strip("-0.%")):
            raise SourceSyntaxError(f'"{t.text}" is too large or too small a number', self.text, t.pos)
        return x

    def value(self) -> Value:
        t = self.next()
        if t.kind == "number":
            number = self.finite(t) / 100 if t.text.endswith("%") else self.finite(t)
            return Value("number", number, t.text)
        if t.kind == "date":
            try:
                day = pd.Timestamp(t.text)
            except ValueError:
                raise SourceSyntaxError(f'"{t.text}" is not a valid date', self.text, t.pos) from None
            if not EARLIEST <= day <= FAR_FUTURE:  # data dates are held in this range (later ones as its end)
                raise SourceSyntaxError(
                    f'"{t.text}" is outside the dates xl_kpi can compare ({EARLIEST:%Y-%m-%d} to '
                    f'{FAR_FUTURE:%Y-%m-%d}); for "no end date" test "is empty" or use a date before '
                    f"{FAR_FUTURE:%Y-%m-%d}", self.text, t.pos)
            return Value("date", day.as_unit("ns"), t.text)
        if t.kind == "string":
            return Value("text", t.text, t.text)
        if t.kind == "word":
            word = t.text.casefold()
            if word in _BOOL_WORDS:
                return Value("flag", _BOOL_WORDS[word], t.text)
            if word in _KEYWORDS:
                raise SourceSyntaxError(
                    str(self.fail("a value", t)) + f' (to compare with the word "{t.text}", put it in quotes)',
                    self.text,
                    t.pos,
                )
            return Value("text", t.text, t.text)
        raise self.fail("a value (a number, a date like 2026-10-31, a word or a quoted text)", t)


def _default(agg: Agg, by: str | None, dated: str | None) -> Agg:
    return replace(agg, by=agg.by or by or DEFAULT_BY, dated=agg.dated or dated)


# -------------------------------------------------------------------------------- evaluation


def evaluate(
    source: Source | str,
    tables: Mapping[str, Table] | Sequence[Table],
    *,
    period: Period | str | None = None,
    employees: Sequence[str] | None = None,
    problems: Problems | None = None,
    at: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Facts from raw tables: a DataFrame with columns employee_id, period, fact, note.

    ``period`` (a :class:`Period` or its text: ``2026-10``, ``2026-Q4``, ``2026-10-01..2026-12-31``)
    keeps only rows dated inside its bounds, both days included (for dated terms). Without it, dated
    sources give one row per employee and month found. ``employees`` completes the result with
    the employees that have no rows (0 for count, distinct and sum; NaN otherwise, with a note);
    employees found in the data but not listed are kept too, after the listed ones.
    Problems go to ``problems`` when given (located at ``at`` for the source itself); otherwise
    the first errors are raised as :class:`SourceError`.
    """
    own = problems is None
    sink = Problems() if own else problems
    out = Evaluator(tables, sink).evaluate(source, period=period_of(period), employees=employees, at=at)
    if own and sink.has_errors:
        raise SourceError("; ".join(str(p) for p in sink.errors[:5]))
    return out


class Evaluator:
    """Evaluates sources against a set of tables, converting each column once."""

    def __init__(self, tables: Mapping[str, Table] | Sequence[Table], problems: Problems | None = None) -> None:
        items = tables.values() if isinstance(tables, Mapping) else tables
        self.tables: dict[str, Table] = {}
        for t in items:
            self.tables.setdefault(t.name.casefold(), t)
        self.problems = problems if problems is not None else Problems()
        self._cache: dict[tuple[str, str, str], Any] = {}
        self._reported: set[tuple[str, ...]] = set()

    # -- lookups
    def table(self, name: str, at: Mapping[str, Any]) -> Table | None:
        t = self.tables.get(name.casefold())
        if t is None and ":" not in name:
            t = self.tables.get(name.strip().casefold())
        if t is None:
            known = ", ".join(sorted(self.tables)) or "none"
            self.report_once(
                ("table", name, str(at)),
                "error",
                f'the source names table "{name}", but no data file or sheet is called that (tables: {known})',
                f"pass a file named {name}.csv or {name}.xlsx with --data, or correct the name in the source",
                at,
            )
        else:
            t.report(self.problems)  # what reading found about the whole table (hidden rows, stale formulas…)
        return t

    def column(self, table: Table, name: str, at: Mapping[str, Any], role: str) -> str | None:
        col = table.column(name)
        if col is None:
            cols = ", ".join(str(c) for c in table.frame.columns)
            hint = " (name the employee column with 'by ...')" if role == "employee" and name == DEFAULT_BY else ""
            self.report_once(
                ("column", table.name, name, str(at)),
                "error",
                f'table {table.name} ({table.file}) has no column "{name}"{hint}; its columns are: {cols}',
                "correct the column name in the source, or add the column to the file",
                at,
            )
        else:
            table.report(self.problems, [col])  # formulas without a saved value, merged cells… in this column
        return col

    def report_once(self, key: tuple[str, ...], severity: str, message: str, fix: str, at: Mapping[str, Any]) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        if severity == "error":
            self.problems.error(message, fix, **dict(at))
        else:
            self.problems.warning(message, fix, **dict(at))

    def _converted(self, table: Table, col: str, kind: str) -> Any:
        key = (table.name, col, kind)
        if key not in self._cache:
            s = table.frame[col]
            conv = {"numbers": to_numbers, "dates": to_dates}.get(kind)
            if conv is not None:
                self._cache[key] = conv(s)
            elif kind == "ids":
                self._cache[key] = to_ids(s)
            elif kind == "flags":
                self._cache[key] = to_flags_checked(s)
            elif kind == "text":
                self._cache[key] = to_ids(s).map(lambda v: v.casefold() if isinstance(v, str) else v)
            elif kind == "day":
                dates, _ = self._converted(table, col, "dates")
                self._cache[key] = dates.dt.normalize()
        return self._cache[key]

    def _bad_cells(self, table: Table, col: str, errors: pd.Series, mask: np.ndarray, what: str) -> None:
        bad = errors[mask & errors.notna().to_numpy()]
        key = ("cells", table.name, col, what)
        if bad.empty or key in self._reported:
            return
        self._reported.add(key)
        self.problems.cells(
            "error", table, list(bad.index), col, [f"{what}: {m}" for m in bad],
            "correct the cell in the raw data (or filter the row out with 'where')",
        )

    # -- evaluation
    def evaluate(
        self,
        source: Source | str,
        *,
        period: Period | None = None,
        employees: Sequence[str] | None = None,
        at: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """See :func:`evaluate`."""
        at = dict(at or {})
        period = period_of(period)
        if isinstance(source, str):
            try:
                source = parse(source)
            except SourceSyntaxError as e:
                self.problems.error(f"source: {e}", "correct the source text (see docs/plan.md)", **at)
                return _empty_frame(employees, period)
        num = self.term(source.numerator, period, at)
        den = self.term(source.denominator, period, at) if source.denominator is not None else None
        if num is None or (source.denominator is not None and den is None):
            return _empty_frame(employees, period)
        result, note = self.combine(source, num, den, period, employees)
        result = result * source.factor
        frame = result.rename("fact").reset_index()
        frame["period"] = frame["period"].where(frame["period"] != "", np.nan).astype(object)
        frame["note"] = note.reindex(result.index).to_numpy()
        frame["note"] = frame["note"].where(frame["fact"].isna(), np.nan)
        return frame[["employee_id", "period", "fact", "note"]]

    def combine(
        self,
        source: Source,
        num: pd.Series,
        den: pd.Series | None,
        period: Period | None,
        employees: Sequence[str] | None,
    ) -> tuple[pd.Series, pd.Series]:
        """Align the terms on (employee_id, period), fill employees with no rows, divide."""
        index = num.index if den is None else num.index.union(den.index)
        periods = sorted(set(index.get_level_values("period")))
        if employees is not None:
            wanted_periods = [period.key] if period is not None and source.dated else (periods or [""])
            if not source.dated:
                wanted_periods = [""]
            wanted = pd.MultiIndex.from_product([list(employees), wanted_periods], names=["employee_id", "period"])
            index = wanted.append(index.difference(wanted)) if len(index) else wanted
        n = _align(num, index, source.numerator.empty_value)
        no_rows = f"no rows in {source.numerator.table} for this employee" + (f" in {period}" if period else "")
        if den is None:
            note = pd.Series(no_rows, index=index, dtype=object)
            return n, note
        d = _align(den, index, source.denominator.empty_value)  # type: ignore[union-attr]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = n / d.where(d != 0)
        note = pd.Series(no_rows, index=index, dtype=object)
        note[(d == 0).to_numpy()] = f"division by zero: {source.denominator} is 0"
        return value, note

    def term(self, agg: Agg, period: Period | None, at: Mapping[str, Any]) -> pd.Series | None:
        """One aggregation: a Series indexed by (employee_id, period) ('' period when undated)."""
        table = self.table(agg.table, at)
        if table is None:
            return None
        roles = [(agg.by or DEFAULT_BY, "employee"), (agg.dated, "date"), (agg.column, "value"),
                 (agg.end_column, "value")] + [(c, "filter") for c in _cond_columns(agg.where)]
        cols: dict[str, str] = {}
        for name, role in roles:
            if name:
                col = self.column(table, name, at, role)
                if col is None:
                    return None
                cols[name] = col
        frame = table.frame
        mask = np.ones(len(frame), dtype=bool)
        if agg.where is not None:
            mask &= self.cond(table, agg.where, cols)
        emp = self._converted(table, cols[agg.by or DEFAULT_BY], "ids")
        if agg.dated:
            dcol = cols[agg.dated]
            dates, errors = self._converted(table, dcol, "dates")
            self._bad_cells(table, dcol, errors, mask, "date")
            no_date = mask & dates.isna().to_numpy() & errors.isna().to_numpy()
            if no_date.any():
                self.report_once(
                    ("nodate", table.name, dcol, str(agg.where)),
                    "warning",
                    f"{int(no_date.sum())} rows of {table.file} have no {dcol} date, so they belong to no period "
                    f"and are not counted (rows {row_ranges(list(frame.index[no_date]))})",
                    "fill in the date, or filter these rows out with 'where'",
                    table.at(None, dcol),
                )
            mask &= dates.notna().to_numpy()
            if period is None:
                periods = month_keys(dates)  # the period is found from the data: one per month
            else:
                periods = pd.Series(period.key, index=frame.index, dtype=object)
                in_period = period.contains(dates).to_numpy()
                if mask.any() and not (mask & in_period).any():
                    first, last = dates[mask].min(), dates[mask].max()
                    self.report_once(
                        ("period", table.name, dcol, period.key),
                        "error",
                        f"no row of {table.file} is dated in {period} ({period.start:%d.%m.%Y} – "
                        f"{period.end:%d.%m.%Y}): the {dcol} dates run from "
                        f"{first:%d.%m.%Y} to {last:%d.%m.%Y}",
                        "check the period (Settings or --period) or pass the export for this period",
                        table.at(None, dcol),
                    )
                mask &= in_period
        else:
            periods = pd.Series("", index=frame.index, dtype=object)
        no_emp = mask & emp.isna().to_numpy()
        if no_emp.any():
            ecol = cols[agg.by or DEFAULT_BY]
            self.report_once(
                ("noemp", table.name, ecol, str(agg.where), str(period)),
                "warning",
                f"{int(no_emp.sum())} rows of {table.file} have no {ecol}, so they count for nobody "
                f"(rows {row_ranges(list(frame.index[no_emp]))})",
                f"fill in {ecol}, or filter these rows out with 'where'",
                table.at(None, ecol),
            )
        mask &= emp.notna().to_numpy()
        keys = [emp[mask].rename("employee_id"), periods[mask].fillna("").rename("period")]
        return self.aggregate(agg, table, cols, mask, keys)

    def aggregate(
        self, agg: Agg, table: Table, cols: Mapping[str, str], mask: np.ndarray, keys: list[pd.Series]
    ) -> pd.Series:
        index = table.frame.index[mask]
        if agg.func == "count":
            return pd.Series(1.0, index=index).groupby(keys).sum().astype(float)
        col = cols[agg.column or ""]
        if agg.func == "distinct":
            return self._converted(table, col, "ids")[mask].groupby(keys).nunique().astype(float)
        if agg.unit:
            end = cols[agg.end_column or ""]
            start, e1 = self._converted(table, col, "dates")
            stop, e2 = self._converted(table, end, "dates")
            stop = stop.mask(stop >= FAR_FUTURE)  # an end of 31.12.9999 means "not yet": like an empty end
            self._bad_cells(table, col, e1, mask, "date")
            self._bad_cells(table, end, e2, mask, "date")
            values = (stop - start)[mask].dt.total_seconds() / _DURATION_UNITS[agg.unit]
            negative = values < 0
            if negative.any():
                self._bad_cells(
                    table, end, pd.Series(np.where(negative, f"{end} is before {col}", None), index=values.index)
                    .reindex(table.frame.index), mask, "time")
                values = values.where(~negative)
        else:
            numbers, errors = self._converted(table, col, "numbers")
            self._bad_cells(table, col, errors, mask, "number")
            values = numbers[mask]
        if agg.func == "nps":
            bad = values.notna() & ((values < 0) | (values > 10) | (values != np.floor(values)))
            if bad.any():
                msgs = pd.Series(np.nan, index=table.frame.index, dtype=object)
                msgs[values.index[bad]] = [f"NPS answers are whole numbers 0–10, not {v:g}" for v in values[bad]]
                self._bad_cells(table, col, msgs, mask, "answer")
                values = values.where(~bad)
            frame = pd.DataFrame({"p": (values >= 9).astype(float), "d": (values <= 6).astype(float),
                                  "n": values.notna().astype(float)})
            frame = frame[values.notna().to_numpy()]
            k = [key[values.notna().to_numpy()] for key in keys]
            g = frame.groupby(k).sum()
            return ((g["p"] - g["d"]) * 100.0 / g["n"]).astype(float)
        grouped = values.groupby(keys)
        if agg.func == "sum":
            return grouped.sum().astype(float)
        return getattr(grouped, agg.func)().astype(float)

    def cond(self, table: Table, cond: Cond, cols: Mapping[str, str]) -> np.ndarray:
        """Boolean mask of the rows satisfying a condition."""
        if isinstance(cond, BoolOp):
            left, right = self.cond(table, cond.left, cols), self.cond(table, cond.right, cols)
            return (left & right) if cond.op == "and" else (left | right)
        if isinstance(cond, Not):
            return ~self.cond(table, cond.cond, cols)
        col = cols[cond.column]
        if isinstance(cond, IsEmpty):
            empty = self._converted(table, col, "ids").isna().to_numpy()
            return ~empty if cond.negate else empty
        if isinstance(cond, IsIn):
            hit = np.zeros(len(table.frame), dtype=bool)
            for v in cond.values:
                hit |= self.equals(table, col, v)
            return ~hit if cond.negate else hit
        if cond.op == "=":
            return self.equals(table, col, cond.value)
        if cond.op == "!=":
            return ~self.equals(table, col, cond.value)
        left, right = self.operands(table, col, cond.value)
        with np.errstate(invalid="ignore"):
            out = {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[cond.op]
        return np.asarray(out, dtype=bool) & ~pd.isna(left)

    def operands(self, table: Table, col: str, value: Value) -> tuple[np.ndarray, Any]:
        if value.kind == "date":
            return self._converted(table, col, "day").to_numpy(), np.datetime64(value.value)
        numbers, _ = self._converted(table, col, "numbers")
        return numbers.to_numpy(), float(value.value)

    def equals(self, table: Table, col: str, value: Value) -> np.ndarray:
        if value.kind == "flag":
            flags, errors = self._converted(table, col, "flags")
            self._bad_cells(table, col, errors, np.ones(len(table.frame), dtype=bool), "yes/no")
            text = self._converted(table, col, "text")
            return (flags == value.value).fillna(False).to_numpy(dtype=bool) | (
                text == value.text.casefold()
            ).to_numpy(dtype=bool)
        if value.kind in ("number", "date"):
            left, right = self.operands(table, col, value)
            with np.errstate(invalid="ignore"):
                return np.asarray(left == right, dtype=bool)
        text = self._converted(table, col, "text")
        return (text == value.value.strip().casefold()).to_numpy(dtype=bool)


def _align(values: pd.Series, index: pd.MultiIndex, empty: float) -> pd.Series:
    """Values on ``index``; (employee, period) pairs with no rows take the aggregation's empty value."""
    if values.index.nlevels != 2:
        values = values.copy()
        values.index = pd.MultiIndex.from_tuples([], names=["employee_id", "period"])
    return values.reindex(index, fill_value=empty).astype(float)


def _empty_frame(employees: Sequence[str] | None, period: Period | None) -> pd.DataFrame:
    ids = list(employees or [])
    key = period.key if period is not None else None
    return pd.DataFrame(
        {"employee_id": pd.Series(ids, dtype=object), "period": pd.Series([key] * len(ids), dtype=object),
         "fact": np.nan, "note": pd.Series([UNEVALUATED] * len(ids), dtype=object)}
    )
