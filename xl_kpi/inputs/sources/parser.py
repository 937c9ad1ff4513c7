"""The recursive-descent parser: :func:`parse` turns a source text into a
:class:`~xl_kpi.inputs.sources.tree.Source`, or raises a
:class:`~xl_kpi.inputs.sources.errors.SourceSyntaxError` that says what was expected where.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd

from xl_kpi.i18n import Msg
from xl_kpi.inputs.cells import EARLIEST, FAR_FUTURE
from xl_kpi.inputs.sources.errors import SourceSyntaxError
from xl_kpi.inputs.sources.tokens import (
    _BOOL_WORDS,
    _CURRENCY_OFF,
    _DURATION_UNITS,
    _FUNC_ALIASES,
    _KEYWORDS,
    CURRENCY_OFF,
    DEFAULT_BY,
    MAX_DEPTH,
    VALUE_FUNCS,
    Token,
    tokenize,
)
from xl_kpi.inputs.sources.tree import Agg, BoolOp, Compare, Cond, IsEmpty, IsIn, Not, Source, Value
from xl_kpi.inputs.tables import header_key


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
            raise SourceSyntaxError(Msg("the source is empty; e.g. write: count deals where status = won"), text, 0)

    # -- helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        t = self.tokens[self.i]
        if t.kind != "end":
            self.i += 1
        return t

    def fail(self, expected: Msg, tok: Token | None = None) -> SourceSyntaxError:
        t = tok or self.tok
        return SourceSyntaxError(self.expected(expected, t), self.text, t.pos)

    def expected(self, expected: Msg, t: Token) -> Msg:
        """What was expected where (after which text, or at the start) and what was found instead."""
        before = self.text[: t.pos].strip()[-40:]
        if t.kind == "end":
            if before:
                return Msg('expected {expected} after "{before}", found the end of the text', expected=expected,
                           before=before)
            return Msg("expected {expected} at the start, found the end of the text", expected=expected)
        if before:
            return Msg('expected {expected} after "{before}", found "{found}"', expected=expected, before=before,
                       found=t.text)
        return Msg('expected {expected} at the start, found "{found}"', expected=expected, found=t.text)

    def accept_sym(self, sym: str) -> bool:
        if self.tok.kind == "sym" and self.tok.text == sym:
            self.i += 1
            return True
        return False

    def expect_sym(self, sym: str, what: Msg) -> None:
        if not self.accept_sym(sym):
            raise self.fail(what)

    def accept_kw(self, *words: str) -> str | None:
        if self.tok.is_kw(*words):
            return self.next().text.casefold()
        return None

    def name(self, what: Msg) -> str:
        t = self.tok
        if t.kind == "string" and t.text.strip():
            self.i += 1
            return t.text.strip()
        if t.kind == "word" and t.text.casefold() not in _KEYWORDS:
            self.i += 1
            return t.text
        if t.kind == "word":
            raise SourceSyntaxError(Msg('{message} (to use the word "{word}" as a name, put it in quotes)',
                                        message=self.expected(what, t), word=t.text), self.text, t.pos)
        raise self.fail(what, t)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SourceSyntaxError(Msg("too many nested parentheses (more than {depth})", depth=MAX_DEPTH),
                                    self.text, self.tok.pos)

    # -- grammar
    def source(self) -> Source:
        num = self.term()
        den = None
        if self.accept_sym("/"):
            den = self.term()
        by, dated, factor, team, currency = self.tail(allow_factor=True)
        if self.tok.kind != "end":
            if self.tok.kind == "sym" and self.tok.text == "/":
                raise self.fail(Msg("the end of the source (a source divides at most two aggregations)"))
            raise self.fail(Msg('"/", "by", "dated", "for team", "currency", "*" or the end of the source'))
        terms = [_default(t, by, dated, team, currency) for t in (num, den) if t is not None]
        return Source(terms[0], terms[1] if den is not None else None, factor, self.text)

    def tail(self, allow_factor: bool) -> tuple[str | None, str | None, float, bool, str | None]:
        by = dated = currency = None
        factor = 1.0
        team = False
        while True:
            if self.accept_kw("by"):
                if by is not None:
                    raise self.fail(Msg("one 'by' clause only"))
                by = self.name(Msg('the employee column after "by"'))
            elif self.accept_kw("dated"):
                if dated is not None:
                    raise self.fail(Msg("one 'dated' clause only"))
                dated = self.name(Msg('the date column after "dated"'))
            elif self.tok.is_kw("for"):
                self.next()
                if team:
                    raise self.fail(Msg("one 'for team' clause only"))
                if not self.accept_kw("team"):
                    raise self.fail(Msg('"team" after "for" (write: ... for team)'))
                team = True
            elif self.tok.is_kw("currency") and self.tokens[self.i + 1].kind in ("word", "string"):
                self.next()
                if currency is not None:
                    raise self.fail(Msg("one 'currency' clause only"))
                if self.tok.kind == "word" and self.tok.text.casefold() in _CURRENCY_OFF:
                    self.next()
                    currency = CURRENCY_OFF
                else:
                    currency = self.name(Msg('the currency column after "currency" (or: currency none)'))
            elif allow_factor and self.accept_sym("*"):
                t = self.next()
                if t.kind != "number" or t.text.endswith("%"):
                    raise self.fail(Msg('a number after "*" (e.g. * 100 to show a share in percent)'), t)
                factor *= self.finite(t)
                if factor == 0 or not math.isfinite(factor):
                    raise SourceSyntaxError(Msg('the factor "* {factor}" makes the result too small or too large',
                                                factor=t.text), self.text, t.pos)
            else:
                return by, dated, factor, team, currency

    def term(self) -> Agg:
        if self.accept_sym("("):
            self.enter()
            agg = self.agg()
            by, dated, _, team, currency = self.tail(allow_factor=False)
            self.expect_sym(")", Msg('")" to close the bracket'))
            self.depth -= 1
            return replace(agg, by=by, dated=dated, team=team, currency=currency)
        return self.agg()

    def agg(self) -> Agg:
        t = self.tok
        func = self.accept_kw("count", "distinct", *VALUE_FUNCS, *_FUNC_ALIASES, "nps")
        if func is None:
            raise self.fail(Msg("an aggregation: count, sum, mean, min, max, median, distinct or nps"))
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
        self.expect_sym(".", Msg('"." and a column name after the table ({func} needs table.column)', func=func))
        column = self.name(Msg("a column name"))
        end = None
        if unit:
            if not self.accept_kw("to"):
                raise self.fail(Msg('"to" and the end column ({func} {unit} table.start to end)', func=func, unit=unit))
            end = self.name(Msg("the end column after 'to'"))
            if self.accept_sym("."):
                if header_key(end) != header_key(table.partition(":")[0]) and header_key(end) != header_key(table):
                    raise SourceSyntaxError(
                        Msg('the end column must be in the same table as the start ({table}), not in "{end}"',
                            table=table, end=end),
                        self.text,
                        t.pos,
                    )
                end = self.name(Msg("a column name"))
        return Agg(func, table, column, end, unit, self.where())

    def table(self) -> str:
        stem = self.name(Msg("a table name (a --data file name without extension, e.g. deals)"))
        if self.accept_sym(":"):
            sheet = self.name(Msg("a sheet name after {table}", table=repr(stem + ":")))
            return f"{stem}:{sheet}"
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
            self.expect_sym(")", Msg('")" to close the bracket'))
            self.depth -= 1
            return out
        column = self.name(Msg("a column name in the condition"))
        if self.accept_kw("is"):
            negate = bool(self.accept_kw("not"))
            if not self.accept_kw("empty"):
                raise self.fail(Msg('"empty" (write: {column} is empty, or {column} is not empty)', column=column))
            return IsEmpty(column, negate)
        negate = bool(self.accept_kw("not"))
        if self.accept_kw("in"):
            self.expect_sym("(", Msg('"(" and a list of values, e.g. in (won, paid)'))
            values = [self.value()]
            while self.accept_sym(","):
                values.append(self.value())
            self.expect_sym(")", Msg('"," or ")" to end the list'))
            return IsIn(column, tuple(values), negate)
        if negate:
            raise self.fail(Msg('"in" after "not" (write: status not in (lost, cancelled))'))
        t = self.tok
        if t.kind != "op":
            raise self.fail(Msg("a comparison after the column {column}: =, !=, <, <=, >, >=, in, is empty",
                                column=column))
        self.i += 1
        value = self.value()
        if t.text in ("<", "<=", ">", ">=") and value.kind in ("text", "flag"):
            raise SourceSyntaxError(
                Msg('"{condition}": < and > compare numbers or dates; use = or != for text',
                    condition=f"{column} {t.text} {value.text}"),
                self.text,
                t.pos,
            )
        return Compare(column, t.text, value)

    def finite(self, t: Token) -> float:
        """A number token's value; a number too large or too small for a float is an error, not inf or 0."""
        x = float(t.text.removesuffix("%"))
        if not math.isfinite(x) or (x == 0 and t.text.strip("-0.%")):
            raise SourceSyntaxError(Msg('"{number}" is too large or too small a number', number=t.text),
                                    self.text, t.pos)
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
                raise SourceSyntaxError(Msg('"{date}" is not a valid date', date=t.text), self.text, t.pos) from None
            if not EARLIEST <= day <= FAR_FUTURE:  # data dates are held in this range (later ones as its end)
                raise SourceSyntaxError(
                    Msg('"{date}" is outside the dates xl_kpi can compare ({first} to {last}); for "no end date" '
                        'test "is empty" or use a date before {last}', date=t.text, first=f"{EARLIEST:%Y-%m-%d}",
                        last=f"{FAR_FUTURE:%Y-%m-%d}"), self.text, t.pos)
            return Value("date", day.as_unit("ns"), t.text)
        if t.kind == "string":
            return Value("text", t.text, t.text)
        if t.kind == "word":
            word = t.text.casefold()
            if word in _BOOL_WORDS:
                return Value("flag", _BOOL_WORDS[word], t.text)
            if word in _KEYWORDS:
                expected = self.expected(Msg("a value"), t)
                raise SourceSyntaxError(
                    Msg('{message} (to compare with the word "{word}", put it in quotes)', message=expected,
                        word=t.text),
                    self.text,
                    t.pos,
                )
            return Value("text", t.text, t.text)
        raise self.fail(Msg("a value (a number, a date like 2026-10-31, a word or a quoted text)"), t)


def _default(agg: Agg, by: str | None, dated: str | None, team: bool = False, currency: str | None = None) -> Agg:
    return replace(agg, by=agg.by or by or DEFAULT_BY, dated=agg.dated or dated, team=agg.team or team,
                   currency=agg.currency if agg.currency is not None else currency)
