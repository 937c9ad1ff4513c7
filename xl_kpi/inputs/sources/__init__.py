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
    tail    := ("by" COLUMN | "dated" COLUMN | "for" "team" | "currency" (COLUMN | "none") | "*" NUMBER)*
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
places a row in a period (without it every row counts); ``for team`` counts the rows of the employee's
whole reporting subtree; ``currency`` names the column whose currency the amounts are in (converted
with the plan's Rates; ``currency none`` switches off the automatic Currency/Валюта column).
Clauses after the whole expression apply to every term that does not set its own.
Values: numbers (``1000``, ``2.5``, ``40%``), dates (``2026-10-15``), yes/no words
(``yes``/``да``/``true``/``1`` match each other), or text (compared without regard to case or
surrounding spaces).

Parsing is a hand-written tokenizer and recursive-descent parser; evaluation compiles each term into
Ibis expressions run on DuckDB (or another backend). User text is never passed to ``eval``, ``exec``
or pasted into SQL: names and values go through the Ibis API.

Where things are:

* :mod:`~xl_kpi.inputs.sources.errors`: :class:`SourceError`, :class:`SourceSyntaxError`;
* :mod:`~xl_kpi.inputs.sources.tokens`: the language's words and limits, :func:`tokenize`;
* :mod:`~xl_kpi.inputs.sources.tree`: the parsed form (:class:`Source`, :class:`Agg`, the conditions);
* :mod:`~xl_kpi.inputs.sources.printing`: how a parsed source is written back as text (quoting);
* :mod:`~xl_kpi.inputs.sources.parser`: :func:`parse`;
* :mod:`~xl_kpi.inputs.sources.evaluator`: :func:`evaluate`, :class:`Evaluator`, :data:`UNEVALUATED`.
"""

from __future__ import annotations

from xl_kpi.inputs.sources.errors import SourceError, SourceSyntaxError
from xl_kpi.inputs.sources.evaluator import UNEVALUATED, Evaluator, evaluate
from xl_kpi.inputs.sources.parser import parse
from xl_kpi.inputs.sources.tokens import DEFAULT_BY, MAX_DEPTH, MAX_LENGTH, VALUE_FUNCS, Token, TokenKind, tokenize
from xl_kpi.inputs.sources.tree import Agg, BoolOp, Compare, Cond, IsEmpty, IsIn, Not, Source, Value

__all__ = [
    "DEFAULT_BY",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "UNEVALUATED",
    "VALUE_FUNCS",
    "Agg",
    "BoolOp",
    "Compare",
    "Cond",
    "Evaluator",
    "IsEmpty",
    "IsIn",
    "Not",
    "Source",
    "SourceError",
    "SourceSyntaxError",
    "Token",
    "TokenKind",
    "Value",
    "evaluate",
    "parse",
    "tokenize",
]
