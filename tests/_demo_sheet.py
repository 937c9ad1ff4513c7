"""Evaluate the demo workbook's formulas (workbooks/udf_demo.xlsx) without Excel: tests/test_udfs.py calls
udfs.py directly, tests/test_officejs.py sends each call through xlwings' Office.js dispatcher."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
from openpyxl.worksheet.formula import ArrayFormula

import udfs

_TOKEN = re.compile(
    r"\s*(?:(?P<range>\$?[A-Z]{1,3}\$?\d+:\$?[A-Z]{1,3}\$?\d+)|(?P<ref>\$?[A-Z]{1,3}\$?\d+)"
    r"|(?P<num>\d+(?:\.\d+)?)|(?P<func>[A-Z][A-Z0-9_.]*)\(|(?P<comma>,)|(?P<close>\)))"
)
BUILTINS = {"SUM"}


class DemoSheet:
    """A tiny evaluator for the demo's formulas: functions of refs, ranges and numbers (no operators).

    KPI_* functions are udfs.py's called directly, or whatever ``call(name, *args)`` does (e.g. send them
    through xlwings' Office.js dispatcher); SUM is Excel's. It records every call as (name, argument count).
    """

    def __init__(self, ws: Any, call: Callable[..., Any] | None = None) -> None:
        self.ws = ws
        self.call = call or (lambda name, *args: getattr(udfs, name)(*args))
        self.calls: list[tuple[str, int]] = []

    def value(self, ref: str) -> Any:
        v = self.ws[ref.replace("$", "")].value
        if isinstance(v, ArrayFormula):
            v = v.text
        if isinstance(v, str) and v.startswith("="):
            return self.formula(v)
        return v

    def formula(self, text: str) -> Any:
        tokens = [(m.lastgroup, m.group(m.lastgroup)) for m in _TOKEN.finditer(text[1:])]
        assert "".join(t for _, t in tokens).replace(" ", "") == text[1:].replace("(", "").replace(" ", ""), text
        value, rest = self._expr(tokens)
        assert not rest, text
        return value

    def _expr(self, tokens: list[tuple[str, str]]) -> tuple[Any, list[tuple[str, str]]]:
        kind, text = tokens[0]
        rest = tokens[1:]
        if kind == "num":
            return float(text), rest
        if kind == "ref":
            return self.value(text), rest
        if kind == "range":
            rows = self.ws[text.replace("$", "")]
            return [[self.value(c.coordinate) for c in row] for row in rows], rest
        assert kind == "func", tokens
        args = []
        while rest[0][0] != "close":
            arg, rest = self._expr(rest)
            args.append(arg)
            if rest[0][0] == "comma":
                rest = rest[1:]
        self.calls.append((text, len(args)))
        if text == "SUM":
            flat = np.ravel(np.asarray(args, dtype=object))
            return float(sum(v for v in flat if isinstance(v, (int, float)))), rest[1:]
        return self.call(text, *args), rest[1:]
