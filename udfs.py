"""Excel functions of xl_kpi (xlwings UDFs): KPI_SCORE, KPI_COEFF, KPI_BONUS, KPI_TOTAL_BONUS, ...

Thin wrappers over the engine: each function reads cell values, calls ``xl_kpi`` and returns numbers
or Excel error values. No KPI math lives here (docs/design.md: the faces never compute KPI math).

Rules shared by every function:

* A range in gives a range out of the same shape (Excel 365 spills it); one cell gives one value.
  Ranges of different sizes are paired cell by cell; cells one range lacks give #N/A, as in Excel.
* An empty cell is *missing*, never 0: a missing required input gives #N/A.
* Bad input gives an Excel error value, never a Python traceback, and ranges are checked cell by
  cell, so one bad row does not spoil the others:

  ========  ==================================================================================
  #DIV/0!   norm equals base, or a denominator is 0 (no clients at the start, no NPS answers)
  #VALUE!   text, TRUE/FALSE or a date where a number is needed; a malformed range (a scale
            that is not two columns of numbers, weights and scores of different sizes)
  #NUM!     numbers the function cannot accept: weights negative or not summing to 100%,
            floor above cap, NPS answers outside 0-10, scale thresholds unsorted or repeated
  #N/A      a required input is missing (empty cell)
  ========  ==================================================================================

  An error value in an input cell is passed on unchanged, as Excel's own functions do.

Runtimes: classic xlwings (Excel on Windows, the VBA wrappers of "Import Functions") and, with the same
decorators, xlwings Lite and xlwings Server (Office.js custom functions on Windows, macOS and the web;
tests/test_officejs.py). ``__all__`` names every function, so a Lite ``main.py`` can ``from udfs import *``.
Excel desktop sends an empty referenced cell to Office.js functions as 0, not as empty (docs/excel.md).

Error values: on Windows with pywin32 they are real Excel errors (a VT_ERROR VARIANT holding the
CVErr code), so ISERROR / IFERROR / ISNA work on them; elsewhere (Linux, tests) they are
:class:`XlError` strings such as ``XlError("#N/A")``. Compare results with ``ERR_DIV0``, ``ERR_NA``, ...

Type hints here are all ``Any`` on purpose: xlwings reads a UDF's type hints as converters, so a
hint like ``float | None`` would break the call in Excel. The real conversion is set by ``@xw.arg``.
There is no ``@xw.ret(expand=...)``: that is xlwings' resize hack for Excel before dynamic arrays;
Excel 365 spills a returned 2-D list natively (xlwings docs, "Legacy Dynamic Arrays").
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xlwings as xw

import xl_kpi
from xl_kpi import metrics
from xl_kpi.engine import payout

__all__ = [
    "CATEGORY",
    "CVERR_CODES",
    "ERR_DIV0",
    "ERR_NA",
    "ERR_NAME",
    "ERR_NULL",
    "ERR_NUM",
    "ERR_REF",
    "ERR_VALUE",
    "KPI_BONUS",
    "KPI_CHURN",
    "KPI_CLV",
    "KPI_COEFF",
    "KPI_GATE_FAILED",
    "KPI_NPS",
    "KPI_PERIOD_BONUS",
    "KPI_PRORATE",
    "KPI_RETENTION",
    "KPI_SCORE",
    "KPI_TOTAL_BONUS",
    "KPI_TOTAL_PAY",
    "KPI_WEIGHTED_SCORE",
    "XlError",
    "is_error",
]

logger = logging.getLogger(__name__)

CATEGORY = "xl_kpi"
"""Category of the functions in Excel's Insert Function dialog."""

# ---------------------------------------------------------------------------------------------
# Excel error values
# ---------------------------------------------------------------------------------------------

CVERR_CODES: dict[str, int] = {
    "#NULL!": -2146826288,
    "#DIV/0!": -2146826281,
    "#VALUE!": -2146826273,
    "#REF!": -2146826265,
    "#NAME?": -2146826259,
    "#NUM!": -2146826252,
    "#N/A": -2146826246,
}
"""Excel error text → the HRESULT-style code VBA's CVErr puts in a VT_ERROR VARIANT."""

_TEXT_BY_CODE = {code: text for text, code in CVERR_CODES.items()}
_CVERR_BASE = -2146828288  # 0x800A0000 as a signed 32-bit int: CVErr(n) holds _CVERR_BASE + n
_VT_ERROR = 10  # pythoncom.VT_ERROR


class XlError(str):
    """An Excel error value off Windows: its text ("#DIV/0!"), so it compares equal to that text."""

    __slots__ = ()

    def __new__(cls, text: str) -> XlError:
        if text not in CVERR_CODES:
            raise ValueError(f"{text!r} is not an Excel error value; expected one of {', '.join(CVERR_CODES)}")
        return super().__new__(cls, text)

    @property
    def code(self) -> int:
        """The CVErr code Excel uses for this error on Windows."""
        return CVERR_CODES[str(self)]

    def __repr__(self) -> str:
        return f"XlError({str(self)!r})"


def _error_factory() -> Callable[[str], Any]:
    """Real Excel errors (VT_ERROR VARIANTs) on Windows with pywin32, XlError strings elsewhere."""
    if sys.platform == "win32":
        try:
            import pythoncom
            from win32com.client import VARIANT
        except ImportError:
            pass
        else:
            return lambda text: VARIANT(pythoncom.VT_ERROR, CVERR_CODES[text])
    return XlError


_make_error = _error_factory()
_ERRORS: dict[str, Any] = {text: _make_error(text) for text in CVERR_CODES}

ERR_NULL = _ERRORS["#NULL!"]
ERR_DIV0 = _ERRORS["#DIV/0!"]
ERR_VALUE = _ERRORS["#VALUE!"]
ERR_REF = _ERRORS["#REF!"]
ERR_NAME = _ERRORS["#NAME?"]
ERR_NUM = _ERRORS["#NUM!"]
ERR_NA = _ERRORS["#N/A"]


def is_error(value: Any) -> bool:
    """True if ``value`` is an Excel error value returned by these functions."""
    if isinstance(value, XlError):
        return True
    return getattr(value, "varianttype", None) == _VT_ERROR


def _as_error(value: Any) -> Any | None:
    """The error constant ``value`` stands for, or None if it is no error.

    Error cells reach a UDF as text ("#N/A", xlwings' ``err_to_str``), as a raw CVErr code (an int,
    for errors xlwings does not name, e.g. #SPILL!) or, from Python callers, as an error value.
    """
    if isinstance(value, str):
        return _ERRORS.get(str(value))
    if type(value) is int:
        if value in _TEXT_BY_CODE:
            return _ERRORS[_TEXT_BY_CODE[value]]
        if _CVERR_BASE + 2000 <= value < _CVERR_BASE + 2100:  # newer errors: #SPILL!, #CALC!, ...
            return ERR_VALUE
        return None
    if getattr(value, "varianttype", None) == _VT_ERROR:
        return _ERRORS.get(_TEXT_BY_CODE.get(getattr(value, "value", None), "#VALUE!"))
    return None


class _Reject(Exception):
    """Stop one function call with an Excel error value (bad input, not a bug: not logged)."""

    def __init__(self, error: Any) -> None:
        super().__init__(str(error))
        self.error = error


# ---------------------------------------------------------------------------------------------
# Reading cells
# ---------------------------------------------------------------------------------------------

_OUTSIDE = object()
"""Marks a cell a smaller range lacks when ranges of different sizes are paired (Excel: #N/A)."""


def _number(value: Any) -> Any:
    """One cell as a float, None if it is empty, or the error value that stands in for it."""
    if value is _OUTSIDE:
        return ERR_NA
    if value is None:
        return None
    error = _as_error(value)
    if error is not None:
        return error
    if isinstance(value, str):
        return None if not value.strip() else ERR_VALUE
    if isinstance(value, (bool, np.bool_)):
        return ERR_VALUE
    if isinstance(value, (int, float, np.integer, np.floating)):
        x = float(value)
        if math.isnan(x):
            return None
        return x if math.isfinite(x) else ERR_NUM
    return ERR_VALUE  # dates, and anything else that is not a number


def _failed(parsed: Any) -> bool:
    """True if a value from :func:`_number` is an error value (not a number, not missing)."""
    return parsed is not None and not isinstance(parsed, float)


def _grid(value: Any) -> np.ndarray:
    """A cell value or range as a 2-D object array; a 1-D sequence is one row, as in xlwings."""
    arr = value.astype(object) if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.size == 0 or any(isinstance(v, (list, tuple, np.ndarray)) for v in arr.flat):
        raise _Reject(ERR_VALUE)  # not a rectangle of cells (ragged rows, 3-D, empty)
    return arr


def _broadcast(grids: list[np.ndarray]) -> list[np.ndarray]:
    """Bring ranges to one shape as Excel does: a single row/column repeats, missing cells are #N/A."""
    rows = max(g.shape[0] for g in grids)
    cols = max(g.shape[1] for g in grids)
    out = []
    for g in grids:
        if g.shape[0] == 1:
            g = np.repeat(g, rows, axis=0)
        if g.shape[1] == 1:
            g = np.repeat(g, cols, axis=1)
        if g.shape != (rows, cols):
            padded = np.full((rows, cols), _OUTSIDE, dtype=object)
            padded[: g.shape[0], : g.shape[1]] = g
            g = padded
        out.append(g)
    return out


def _single(value: Any) -> float:
    """A one-cell argument (e.g. the bonus pool) as a float; raise _Reject otherwise."""
    grid = _grid(value)
    if grid.size != 1:
        raise _Reject(ERR_VALUE)
    x = _number(grid[0, 0])
    if x is None:
        raise _Reject(ERR_NA)
    if _failed(x):
        raise _Reject(x)
    return x


def _is_header(row: Sequence[Any]) -> bool:
    """A row of labels ("threshold", "coefficient"): text, or empty, and at least one text cell."""
    texts = [v for v in row if isinstance(v, str) and v.strip() and _as_error(v) is None]
    return bool(texts) and all(v in texts or _number(v) is None for v in row)


def _scale(table: Any) -> xl_kpi.Scale | None:
    """The optional scale range (rows of threshold | coefficient) as a step scale; None = default.

    Thresholds are score fractions (70% or 0.7); fully empty rows and a first row of labels are
    skipped. Raises _Reject(#VALUE!) for a malformed range, _Reject(#NUM!) for a scale the engine
    refuses (unsorted or repeated thresholds, negative coefficients).
    """
    if table is None:
        return None
    grid = _grid(table)
    if grid.shape[1] != 2:
        raise _Reject(ERR_VALUE)
    points: list[tuple[float, float]] = []
    for i, row in enumerate(grid):
        cells = [_number(v) for v in row]
        if all(c is None for c in cells):
            continue
        if i == 0 and _is_header(list(row)):
            continue
        for c in cells:
            if c is None:
                raise _Reject(ERR_VALUE)  # half a pair: a threshold without its coefficient or vice versa
            if _failed(c):
                raise _Reject(c)
        points.append((cells[0], cells[1]))
    if not points:
        raise _Reject(ERR_VALUE)
    try:
        return xl_kpi.Scale.steps(points)
    except xl_kpi.ScaleError:
        raise _Reject(ERR_NUM) from None


# ---------------------------------------------------------------------------------------------
# Calling the engine
# ---------------------------------------------------------------------------------------------


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call the engine on one set of numbers; map its exceptions to Excel error values."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is checked below: #NUM!
            result = fn(*args)
    except ZeroDivisionError:  # ZeroRangeError (norm = base), DivisionByZeroError
        return ERR_DIV0
    except xl_kpi.NotANumberError:
        return ERR_VALUE
    except xl_kpi.KpiError:  # WeightError, ScaleError, floor > cap, NPS answer out of range
        return ERR_NUM
    except Exception:
        logger.exception("xl_kpi failed on %r", args)
        return ERR_VALUE
    x = float(result)
    return x if math.isfinite(x) else ERR_NUM


def _elementwise(
    fn: Callable[..., Any],
    required: Sequence[Any],
    optional: Sequence[Any] = (),
    fail: Any = None,
) -> Any:
    """Apply ``fn`` cell by cell over broadcast ranges; a 1x1 result is returned as one value.

    Per cell, left to right: a missing required input → #N/A, an error or text → that error;
    a missing optional input is passed as None. ``fail`` (an error value) replaces the result of
    every cell whose own inputs are fine, e.g. when the scale range is bad.
    """
    grids = _broadcast([_grid(a) for a in (*required, *optional)])
    n = len(required)
    out = np.empty(grids[0].shape, dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = _one(fn, [g[idx] for g in grids[:n]], [g[idx] for g in grids[n:]], fail)
    return out[0, 0] if out.shape == (1, 1) else out.tolist()


def _one(fn: Callable[..., Any], required: list[Any], optional: list[Any], fail: Any) -> Any:
    args = []
    for v in required:
        x = _number(v)
        if x is None:
            return ERR_NA
        if _failed(x):
            return x
        args.append(x)
    for v in optional:
        x = _number(v)
        if _failed(x):
            return x
        args.append(x)
    if fail is not None:
        return fail
    return _call(fn, *args)


def _safely(name: str, body: Callable[[], Any]) -> Any:
    """Run a UDF body; a rejected input becomes its error value, a bug becomes #VALUE! (logged)."""
    try:
        return body()
    except _Reject as rejected:
        return rejected.error
    except Exception:
        logger.exception("%s failed", name)
        return ERR_VALUE


def _scale_or_error(table: Any) -> tuple[xl_kpi.Scale | None, Any]:
    """(scale, None) if the scale range is fine, else (None, the error value for every result)."""
    try:
        return _scale(table), None
    except _Reject as rejected:
        return None, rejected.error


# Options for every cell/range argument: a 2-D NumPy object array (text stays text, not '<U32'),
# empty cells as NaN (missing), error cells as their text ("#N/A") so they can be passed on.
_CELLS: dict[str, Any] = {"ndim": 2, "dtype": object, "err_to_str": True}

_SCALE_DOC = (
    "Optional. A two-column range: score threshold (70% or 0.7) | coefficient, ascending; a header row "
    "and empty rows are skipped. Below the first threshold the coefficient is 0. Default: the standard "
    "table <70% 0, 70% 0.9, 100% 1.0, 110% 1.1."
)

# ---------------------------------------------------------------------------------------------
# The Excel functions
# ---------------------------------------------------------------------------------------------


@xw.func(category=CATEGORY)
@xw.arg("fact", np.array, doc="Actual result for the period (a cell or a range).", **_CELLS)
@xw.arg("base", np.array, doc="Base: the minimum acceptable result, scored 0%.", **_CELLS)
@xw.arg("norm", np.array, doc="Norm (target): the required result, scored 100%. Must differ from base.", **_CELLS)
@xw.arg("floor", np.array, doc="Optional. Lowest score allowed, e.g. 0 (0%). Empty = no floor.", **_CELLS)
@xw.arg("cap", np.array, doc="Optional. Highest score allowed, e.g. 1.5 (150%). Empty = no cap.", **_CELLS)
def KPI_SCORE(fact: Any, base: Any, norm: Any, floor: Any = None, cap: Any = None) -> Any:
    """KPI score as a fraction: (fact - base) / (norm - base); 1.2 = 120%. Lower is better: base above norm."""

    def score(f: float, b: float, n: float, lo: float | None, hi: float | None) -> Any:
        return xl_kpi.score(f, b, n, floor=lo, cap=hi)

    return _safely("KPI_SCORE", lambda: _elementwise(score, [fact, base, norm], [floor, cap]))


@xw.func(category=CATEGORY)
@xw.arg("score", np.array, doc="KPI score as a fraction (120% or 1.2); a cell or a range.", **_CELLS)
@xw.arg("scale", np.array, doc=_SCALE_DOC, **_CELLS)
def KPI_COEFF(score: Any, scale: Any = None) -> Any:
    """Premium coefficient of a KPI score on a step scale (default: <70% 0, 70% 0.9, 100% 1, 110% 1.1)."""

    def body() -> Any:
        sc, fail = _scale_or_error(scale)
        return _elementwise(lambda s: xl_kpi.coefficient(s, sc), [score], fail=fail)

    return _safely("KPI_COEFF", body)


@xw.func(category=CATEGORY)
@xw.arg("pool", np.array, doc="Bonus pool: the variable pay for the period (money).", **_CELLS)
@xw.arg("weight", np.array, doc="Weight of this KPI: its share of the pool (40% or 0.4).", **_CELLS)
@xw.arg("score", np.array, doc="KPI score as a fraction (120% or 1.2).", **_CELLS)
@xw.arg("scale", np.array, doc=_SCALE_DOC, **_CELLS)
def KPI_BONUS(pool: Any, weight: Any, score: Any, scale: Any = None) -> Any:
    """Bonus for one KPI: pool x weight x coefficient(score), to 2 decimals (20000, 40%, 120% -> 8800)."""

    def body() -> Any:
        sc, fail = _scale_or_error(scale)
        return _elementwise(lambda p, w, s: xl_kpi.bonus(p, w, s, sc), [pool, weight, score], fail=fail)

    return _safely("KPI_BONUS", body)


@xw.func(category=CATEGORY)
@xw.arg("pool", np.array, doc="Bonus pool: the variable pay for the period (one cell).", **_CELLS)
@xw.arg("weights", np.array, doc="Weights of the employee's KPIs (a row or column); they must sum to 100%.", **_CELLS)
@xw.arg("scores", np.array, doc="KPI scores, as many cells as weights, in the same order.", **_CELLS)
@xw.arg("scale", np.array, doc=_SCALE_DOC, **_CELLS)
def KPI_TOTAL_BONUS(pool: Any, weights: Any, scores: Any, scale: Any = None) -> Any:
    """Total bonus: sum over the KPIs of pool x weight x coefficient(score); weights must sum to 100%."""
    return _safely("KPI_TOTAL_BONUS", lambda: _total_bonus(pool, weights, scores, scale))


def _total_bonus(pool: Any, weights: Any, scores: Any, scale: Any) -> Any:
    p = _single(pool)
    pairs = _pairs(weights, scores)
    if not isinstance(pairs, tuple):
        return pairs
    ws, ss = pairs
    sc = _scale(scale)
    return _call(xl_kpi.total_bonus, p, ws, ss, sc)


def _pairs(weights: Any, scores: Any) -> tuple[list[float], list[float]] | Any:
    """The (weight, score) numbers of two equally long ranges, blank pairs skipped; an error value if not."""
    w_cells = _grid(weights).ravel()
    s_cells = _grid(scores).ravel()
    if w_cells.size != s_cells.size:
        return ERR_VALUE
    ws: list[float] = []
    ss: list[float] = []
    for w_cell, s_cell in zip(w_cells, s_cells, strict=True):
        w, s = _number(w_cell), _number(s_cell)
        if w is None and s is None:
            continue
        for x in (w, s):
            if x is None:
                return ERR_NA
            if _failed(x):
                return x
        ws.append(w)
        ss.append(s)
    return (ws, ss) if ws else ERR_NA


@xw.func(category=CATEGORY)
@xw.arg("weights", np.array, doc="Weights of the employee's KPIs (a row or column).", **_CELLS)
@xw.arg("scores", np.array, doc="KPI scores, as many cells as weights, in the same order.", **_CELLS)
def KPI_WEIGHTED_SCORE(weights: Any, scores: Any) -> Any:
    """Weighted score: sum of weight x score, rounded to 12 decimals (the summary's ranking score)."""

    def body() -> Any:
        pairs = _pairs(weights, scores)
        if not isinstance(pairs, tuple):
            return pairs
        return _call(xl_kpi.weighted_score, *pairs)

    return _safely("KPI_WEIGHTED_SCORE", body)


@xw.func(category=CATEGORY)
@xw.arg("days_worked", np.array, doc="Days employed inside the period.", **_CELLS)
@xw.arg("days_in_period", np.array, doc="Days of the period (31 for October).", **_CELLS)
def KPI_PRORATE(days_worked: Any, days_in_period: Any) -> Any:
    """Share of the period worked: days worked / days of the period, between 0 and 1 (19 of 31 -> 61.3%)."""
    return _safely("KPI_PRORATE", lambda: _elementwise(xl_kpi.prorate, [days_worked, days_in_period]))


@xw.func(category=CATEGORY)
@xw.arg("kpi_bonus", np.array, doc="KPI bonus: the sum of the employee's KPI line bonuses.", **_CELLS)
@xw.arg("multiplier", np.array, doc="Optional. Individual multiplier. Empty = 1.", **_CELLS)
@xw.arg("proration", np.array, doc="Optional. Share of the period worked (0.5 or 50%). Empty = 1.", **_CELLS)
@xw.arg("gated", np.array, doc="Optional. TRUE (or 1) if a gate KPI was missed: the bonus is 0.", **_CELLS)
@xw.arg("digits", np.array, doc="Optional. Rounding digits of money. Empty = 2.", **_CELLS)
def KPI_PERIOD_BONUS(kpi_bonus: Any, multiplier: Any = None, proration: Any = None, gated: Any = None,
                     digits: Any = None) -> Any:
    """Bonus for the period as the batch pays it: ROUND(KPI bonus x multiplier x proration), 0 if gated."""

    def one(k: float, m: float | None, p: float | None, g: float | None, d: float | None) -> Any:
        return xl_kpi.period_bonus(k, 1.0 if m is None else m, 1.0 if p is None else p, gated=bool(g),
                                   digits=_cell_digits(d))

    def body() -> Any:
        flags = _grid(gated)
        flags = np.vectorize(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v, otypes=[object])(flags)
        return _elementwise(one, [kpi_bonus], [multiplier, proration, flags, digits])

    return _safely("KPI_PERIOD_BONUS", body)


@xw.func(category=CATEGORY)
@xw.arg("scores", np.array, doc="Survey answers, whole numbers 0-10 (a range). Empty cells are skipped.", **_CELLS)
def KPI_NPS(scores: Any) -> Any:
    """Net Promoter Score of 0-10 answers: % promoters (9-10) - % detractors (0-6), in points -100..100."""

    def body() -> Any:
        answers: list[float] = []
        for cell in _grid(scores).ravel():
            x = _number(cell)
            if x is None:
                continue
            if _failed(x):
                return x
            answers.append(x)
        return _call(metrics.nps, answers)

    return _safely("KPI_NPS", body)


@xw.func(category=CATEGORY)
@xw.arg("lost", np.array, doc="Clients lost during the period.", **_CELLS)
@xw.arg("at_start", np.array, doc="Clients at the start of the period.", **_CELLS)
def KPI_CHURN(lost: Any, at_start: Any) -> Any:
    """Churn rate: clients lost in the period / clients at its start (a fraction: 5% = 0.05)."""
    return _safely("KPI_CHURN", lambda: _elementwise(metrics.churn_rate, [lost, at_start]))


@xw.func(category=CATEGORY)
@xw.arg("at_end", np.array, doc="Clients at the end of the period.", **_CELLS)
@xw.arg("new_clients", np.array, doc="New clients won during the period.", **_CELLS)
@xw.arg("at_start", np.array, doc="Clients at the start of the period.", **_CELLS)
def KPI_RETENTION(at_end: Any, new_clients: Any, at_start: Any) -> Any:
    """Retention rate: (clients at end - new clients) / clients at start (a fraction)."""
    return _safely("KPI_RETENTION", lambda: _elementwise(metrics.retention_rate, [at_end, new_clients, at_start]))


@xw.func(category=CATEGORY)
@xw.arg("spend_per_visit", np.array, doc="Average spend per visit (money).", **_CELLS)
@xw.arg("visits_per_year", np.array, doc="Visits per year.", **_CELLS)
@xw.arg("years", np.array, doc="Years of the relationship.", **_CELLS)
def KPI_CLV(spend_per_visit: Any, visits_per_year: Any, years: Any) -> Any:
    """Customer lifetime value: average spend per visit x visits per year x years of relationship."""
    return _safely("KPI_CLV", lambda: _elementwise(metrics.clv, [spend_per_visit, visits_per_year, years]))


# ---------------------------------------------------------------------------------------------
# Rebuilding a card: the gate and the total pay (issue 12 §2). Engine calls only, as above.
# ---------------------------------------------------------------------------------------------


@xw.func(category=CATEGORY)
@xw.arg("scores", np.array, doc="KPI scores of one employee (a row or column, 120% or 1.2).", **_CELLS)
@xw.arg("gates", np.array, doc="Gate of each KPI, as many cells as scores (50% or 0.5); empty = no gate.", **_CELLS)
def KPI_GATE_FAILED(scores: Any, gates: Any) -> Any:
    """TRUE if some KPI score is below its gate (the period bonus is then 0); empty gates and scores never fail."""
    return _safely("KPI_GATE_FAILED", lambda: _gate_failed(scores, gates))


def _gate_failed(scores: Any, gates: Any) -> Any:
    s_cells = _grid(scores).ravel()
    g_cells = _grid(gates).ravel()
    if s_cells.size != g_cells.size:
        return ERR_VALUE
    ss: list[float] = []
    gs: list[float] = []
    for s_cell, g_cell in zip(s_cells, g_cells, strict=True):
        s, g = _number(s_cell), _number(g_cell)
        for x in (s, g):
            if _failed(x):
                return x
        ss.append(math.nan if s is None else s)
        gs.append(math.nan if g is None else g)
    return bool(payout.gated(ss, gs, [0] * len(ss)).iloc[0])


@xw.func(category=CATEGORY)
@xw.arg("salary", np.array, doc="Fixed salary for the period (money); a cell or a range.", **_CELLS)
@xw.arg("bonus", np.array, doc="The period's bonus (KPI_PERIOD_BONUS).", **_CELLS)
@xw.arg("adjustment", np.array, doc="Optional. The employee's adjustments (one-off corrections). Empty = 0.",
        **_CELLS)
@xw.arg("digits", np.array, doc="Optional. Rounding digits of money. Empty = 2.", **_CELLS)
def KPI_TOTAL_PAY(salary: Any, bonus: Any, adjustment: Any = None, digits: Any = None) -> Any:
    """Total pay for the period: ROUND(salary + bonus + adjustment, digits) (80000 + 12480 -> 92480)."""

    def one(s: float, b: float, a: float | None, d: float | None) -> Any:
        return xl_kpi.total_pay(s, b, 0.0 if a is None else a, digits=_cell_digits(d))

    return _safely("KPI_TOTAL_PAY", lambda: _elementwise(one, [salary, bonus], [adjustment, digits]))


def _cell_digits(d: float | None) -> int:
    """Rounding digits from a cell: empty = 2, a whole number -10..10, else KpiError (#NUM!)."""
    if d is None:
        return 2
    if d != int(d) or not -10 <= d <= 10:
        raise xl_kpi.KpiError("digits must be a whole number between -10 and 10")
    return int(d)


# ---------------------------------------------------------------------------------------------
# Payout kinds (issue 15): one function per kind, each calling the engine's rule
# ---------------------------------------------------------------------------------------------

__all__ += ["KPI_FIXED", "KPI_PER_UNIT", "KPI_PROPORTIONAL", "KPI_SHARE"]


def _digits(value: Any) -> int:
    """The optional rounding digits (a whole number from -10 to 10; empty = 2), else _Reject(#NUM!)."""
    if value is None or (_grid(value).size == 1 and _number(_grid(value)[0, 0]) is None):
        return 2
    d = _single(value)
    if d != int(d) or not -10 <= d <= 10:
        raise _Reject(ERR_NUM)
    return int(d)


def _mode(value: Any) -> str:
    """The optional tier mode: marginal (empty) or retroactive, in English or Russian; else _Reject(#VALUE!)."""
    grid = _grid(value) if value is not None else np.empty((0, 0), dtype=object)
    if grid.size == 0:
        return "marginal"
    if grid.size != 1:
        raise _Reject(ERR_VALUE)
    v = grid[0, 0]
    if _as_error(v) is not None:
        raise _Reject(_as_error(v))
    if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
        return "marginal"
    mode = payout.TIER_MODE_WORDS.get(" ".join(str(v).casefold().replace("_", " ").split()))
    if mode is None:
        raise _Reject(ERR_VALUE)
    return mode


def _rate_or_tiers(rate: Any, mode: Any) -> tuple[float | None, payout.Tiers | None]:
    """One cell: the rate. A two-column range (from | rate, a header row and empty rows skipped): the tiers."""
    grid = _grid(rate)
    if grid.size == 1:
        r = _single(rate)
        if r < 0:
            raise _Reject(ERR_NUM)
        return r, None
    if grid.shape[1] != 2:
        raise _Reject(ERR_VALUE)
    starts: list[float] = []
    rates: list[float] = []
    for i, row in enumerate(grid):
        cells = [_number(v) for v in row]
        if all(c is None for c in cells) or (i == 0 and _is_header(list(row))):
            continue
        for c in cells:
            if c is None:
                raise _Reject(ERR_VALUE)
            if _failed(c):
                raise _Reject(c)
        starts.append(cells[0])
        rates.append(cells[1])
    try:
        return None, payout.Tiers(tuple(starts), tuple(rates), _mode(mode))
    except xl_kpi.KpiError:
        raise _Reject(ERR_NUM) from None


_DIGITS_DOC = "Optional. Rounding digits of money (the plan's Settings digits). Empty = 2."
_RATE_DOC = ("A rate (one cell: 500 per unit, 3% of the amount) or tiers: a two-column range from | rate, the first "
             "tier from 0, ascending; a header row is skipped.")
_MODE_DOC = "Optional. With tiers: marginal (empty; each tier's rate on its part) or retroactive (on all of it)."


@xw.func(category=CATEGORY)
@xw.arg("score", np.array, doc="KPI score as a fraction (120% or 1.2); a cell or a range.", **_CELLS)
@xw.arg("threshold", np.array, doc="The score from which the amount is paid (100% or 1).", **_CELLS)
@xw.arg("amount", np.array, doc="The fixed amount paid when the score reaches the threshold.", **_CELLS)
@xw.arg("digits", np.array, doc=_DIGITS_DOC, **_CELLS)
def KPI_FIXED(score: Any, threshold: Any, amount: Any, digits: Any = None) -> Any:
    """Fixed payout: the amount if ROUND(score, 12) >= threshold, else 0 (104%, 100%, 5000 -> 5000)."""

    def body() -> Any:
        d = _digits(digits)
        return _elementwise(lambda s, t, a: payout.fixed_bonus(s, t, a, digits=d), [score, threshold, amount])

    return _safely("KPI_FIXED", body)


@xw.func(category=CATEGORY)
@xw.arg("pool", np.array, doc="Bonus pool: the variable pay for the period (money).", **_CELLS)
@xw.arg("weight", np.array, doc="Weight of this KPI: its share of the pool (40% or 0.4).", **_CELLS)
@xw.arg("score", np.array, doc="KPI score as a fraction, after its floor and cap (120% or 1.2).", **_CELLS)
@xw.arg("max_payout", np.array, doc="Optional. The most this line pays. Empty = no limit.", **_CELLS)
@xw.arg("digits", np.array, doc=_DIGITS_DOC, **_CELLS)
def KPI_PROPORTIONAL(pool: Any, weight: Any, score: Any, max_payout: Any = None, digits: Any = None) -> Any:
    """Proportional payout: pool x weight x score, never below 0, at most max_payout (20000, 30%, 87.5% -> 5250)."""

    def body() -> Any:
        d = _digits(digits)

        def one(p: float, w: float, s: float, m: float | None) -> Any:
            return payout.proportional_bonus(p, w, s, np.nan if m is None else m, digits=d)

        return _elementwise(one, [pool, weight, score], [max_payout])

    return _safely("KPI_PROPORTIONAL", body)


@xw.func(category=CATEGORY)
@xw.arg("fact", np.array, doc="Actual result for the period, in units (deals, calls); a cell or a range.", **_CELLS)
@xw.arg("base", np.array, doc="Units paid from: the fact above it counts (10 = from the 11th deal).", **_CELLS)
@xw.arg("rate", np.array, doc=_RATE_DOC, **_CELLS)
@xw.arg("max_payout", np.array, doc="Optional. The most this line pays. Empty = no limit.", **_CELLS)
@xw.arg("mode", np.array, doc=_MODE_DOC, **_CELLS)
@xw.arg("digits", np.array, doc=_DIGITS_DOC, **_CELLS)
def KPI_PER_UNIT(fact: Any, base: Any, rate: Any, max_payout: Any = None, mode: Any = None,
                 digits: Any = None) -> Any:
    """Per-unit payout: rate x the units of the fact above the base, or tiered rates (14, 10, 500 -> 2000)."""

    def body() -> Any:
        d = _digits(digits)
        r, tiers = _rate_or_tiers(rate, mode)

        def one(f: float, b: float, m: float | None) -> Any:
            return payout.per_unit_bonus(f, b, np.nan if r is None else r, np.nan if m is None else m, tiers=tiers,
                                         digits=d)

        return _elementwise(one, [fact, base], [max_payout])

    return _safely("KPI_PER_UNIT", body)


@xw.func(category=CATEGORY)
@xw.arg("fact", np.array, doc="The amount of money the share is of (won revenue); a cell or a range.", **_CELLS)
@xw.arg("rate", np.array, doc=_RATE_DOC, **_CELLS)
@xw.arg("max_payout", np.array, doc="Optional. The most this line pays. Empty = no limit.", **_CELLS)
@xw.arg("mode", np.array, doc=_MODE_DOC, **_CELLS)
@xw.arg("digits", np.array, doc=_DIGITS_DOC, **_CELLS)
def KPI_SHARE(fact: Any, rate: Any, max_payout: Any = None, mode: Any = None, digits: Any = None) -> Any:
    """Share (commission): rate x the amount, or tiered rates; a negative amount pays 0 (1200000, 3% -> 36000)."""

    def body() -> Any:
        d = _digits(digits)
        r, tiers = _rate_or_tiers(rate, mode)

        def one(f: float, m: float | None) -> Any:
            return payout.share_bonus(f, np.nan if r is None else r, np.nan if m is None else m, tiers=tiers,
                                      digits=d)

        return _elementwise(one, [fact], [max_payout])

    return _safely("KPI_SHARE", body)
