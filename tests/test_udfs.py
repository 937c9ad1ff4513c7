"""Tests of the Excel functions in udfs.py.

Two ways, because classic xlwings UDFs only run in Excel on Windows:

1. The functions called directly as Python, with cells given as scalars, lists of lists, NumPy
   arrays and None (an empty cell), checked against the golden values of docs/domain.md.
2. xlwings itself reading the module: udfs.py loaded with xlwings' real UDF decorators (pywin32 is
   stubbed so that ``xlwings.udfs`` imports on Linux), the VBA that Excel's "Import Functions" would
   get from ``xlwings.udfs.generate_vba_wrapper``, and arguments run through xlwings' own converters.

Plus the demo workbook (workbooks/udf_demo.xlsx): its formulas, evaluated with udfs.py, give the
source's numbers, and it matches what scripts/make_udf_demo.py generates.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import io
import logging
import math
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pytest
import xlwings
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl.worksheet.formula import ArrayFormula

import udfs
import xl_kpi
from tests._demo_sheet import BUILTINS
from tests._demo_sheet import DemoSheet as _Sheet
from udfs import ERR_DIV0, ERR_NA, ERR_NUM, ERR_VALUE, XlError, is_error

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "workbooks" / "udf_demo.xlsx"

UDF_NAMES = [
    "KPI_SCORE",
    "KPI_COEFF",
    "KPI_BONUS",
    "KPI_TOTAL_BONUS",
    "KPI_NPS",
    "KPI_CHURN",
    "KPI_RETENTION",
    "KPI_CLV",
    "KPI_WEIGHTED_SCORE",
    "KPI_PRORATE",
    "KPI_PERIOD_BONUS",
    "KPI_GATE_FAILED",
    "KPI_TOTAL_PAY",
    # payout kinds (issue 15)
    "KPI_FIXED",
    "KPI_PROPORTIONAL",
    "KPI_PER_UNIT",
    "KPI_SHARE",
]

# The source's step table typed on a sheet: header row, thresholds as percentages (70% = 0.7).
DEFAULT_TABLE = [["threshold", "coefficient"], [0.7, 0.9], [1.0, 1.0], [1.1, 1.1]]


def approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# 1. Golden values of docs/domain.md
# ---------------------------------------------------------------------------------------------


def test_score_worked_example():
    # base 100 deals, norm 150, fact 160 → 120%
    assert udfs.KPI_SCORE(160, 100, 150) == approx(1.2)


def test_score_lower_is_better_by_base_above_norm():
    # base 10 complaints, norm 5, fact 4 → 120%
    assert udfs.KPI_SCORE(4, 10, 5) == approx(1.2)


def test_bonus_worked_example():
    # pool 20 000, weight 0.4, score 120% → coefficient 1.1 → 8 800
    assert udfs.KPI_BONUS(20000, 0.4, 1.2) == 8800.0


@pytest.mark.parametrize(
    ("score", "coefficient"),
    [(0.6999, 0.0), (0.70, 0.9), (0.995, 0.9), (1.0, 1.0), (1.0999, 1.0), (1.10, 1.1)],
)
def test_coefficient_band_boundaries(score, coefficient):
    assert udfs.KPI_COEFF(score) == coefficient


def test_coefficient_of_a_score_computed_as_110_percent_reaches_the_band():
    # 3.3/3 is 1.0999999999999999 in binary; the engine compares rounded scores
    assert udfs.KPI_COEFF(udfs.KPI_SCORE(3.3, 0, 3)) == 1.1


# ---------------------------------------------------------------------------------------------
# Error values
# ---------------------------------------------------------------------------------------------


def test_norm_equal_to_base_is_div0():
    assert udfs.KPI_SCORE(120, 100, 100) == ERR_DIV0
    assert is_error(udfs.KPI_SCORE(120, 100, 100))


@pytest.mark.parametrize("fact", ["abc", "160 deals", True, False, dt.datetime(2024, 3, 1), {"a": 1}])
def test_text_or_other_non_numbers_are_value_errors(fact):
    assert udfs.KPI_SCORE(fact, 100, 150) == ERR_VALUE


@pytest.mark.parametrize("fact", [None, "", "   ", float("nan"), np.nan])
def test_empty_cell_is_missing_not_zero(fact):
    assert udfs.KPI_SCORE(fact, 100, 150) == ERR_NA
    assert udfs.KPI_SCORE(fact, 100, 150) != udfs.KPI_SCORE(0, 100, 150)


@pytest.mark.parametrize("position", [0, 1, 2])
def test_any_missing_required_argument_is_na(position):
    args = [160, 100, 150]
    args[position] = None
    assert udfs.KPI_SCORE(*args) == ERR_NA


def test_infinite_input_or_overflow_is_num_error():
    assert udfs.KPI_SCORE(float("inf"), 100, 150) == ERR_NUM
    assert udfs.KPI_CLV(1e300, 1e300, 1) == ERR_NUM


@pytest.mark.parametrize("text", ["#DIV/0!", "#N/A", "#VALUE!", "#NUM!", "#REF!", "#NAME?", "#NULL!"])
def test_error_cells_are_passed_on(text):
    # xlwings (err_to_str=True) gives an error cell to Python as its text
    assert udfs.KPI_SCORE(text, 100, 150) == text
    assert is_error(udfs.KPI_SCORE(text, 100, 150))
    # and an error value chains through, as IFERROR-free Excel formulas do
    assert udfs.KPI_COEFF(udfs.KPI_SCORE(text, 100, 150)) == text


def test_raw_cverr_codes_are_errors():
    # COM hands over an error xlwings does not name (e.g. #SPILL!, code 2045) as the raw CVErr int
    assert udfs.KPI_SCORE(udfs.CVERR_CODES["#N/A"], 100, 150) == ERR_NA
    assert udfs.KPI_SCORE(-2146828288 + 2045, 100, 150) == ERR_VALUE
    assert udfs.KPI_SCORE(2045, 0, 10000) == approx(0.2045)  # an ordinary int is a number


def test_first_error_from_the_left_wins():
    assert udfs.KPI_SCORE("abc", None, 150) == ERR_VALUE
    assert udfs.KPI_SCORE(None, "abc", 150) == ERR_NA
    assert udfs.KPI_SCORE(160, "#NUM!", "#DIV/0!") == ERR_NUM


def test_xl_error_values():
    assert XlError("#N/A") == "#N/A"
    assert XlError("#DIV/0!").code == -2146826281
    assert repr(XlError("#NUM!")) == "XlError('#NUM!')"
    assert not is_error("#N/A")  # plain text is not an error value
    assert not is_error(1.2)
    with pytest.raises(ValueError, match="not an Excel error value"):
        XlError("#OOPS")


def test_error_constants_are_xl_errors_off_windows():
    if sys.platform == "win32":
        pytest.skip("on Windows with pywin32 the constants are VARIANTs")
    for err in (udfs.ERR_DIV0, udfs.ERR_NA, udfs.ERR_VALUE, udfs.ERR_NUM, udfs.ERR_REF, udfs.ERR_NAME):
        assert isinstance(err, XlError)
    assert udfs.ERR_NULL == "#NULL!"


def test_windows_error_values_are_vt_error_variants(monkeypatch):
    """With pywin32 present on Windows, errors are VARIANT(VT_ERROR, CVErr code) (pywin32 stubbed)."""

    class VARIANT:  # the shape of win32com.client.VARIANT: varianttype + value
        def __init__(self, vt: int, value: Any) -> None:
            self.varianttype = vt
            self.value = value

    pythoncom = types.ModuleType("pythoncom")
    pythoncom.VT_ERROR = 10
    win32com, client = _package("win32com"), types.ModuleType("win32com.client")
    client.VARIANT = VARIANT
    win32com.client = client
    for name, module in {"pythoncom": pythoncom, "win32com": win32com, "win32com.client": client}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys, "platform", "win32")

    make = udfs._error_factory()
    na = make("#N/A")
    assert isinstance(na, VARIANT)
    assert (na.varianttype, na.value) == (10, -2146826246)
    assert make("#DIV/0!").value == -2146826281
    assert is_error(na)
    # a VT_ERROR VARIANT coming back in (e.g. chained from Python) is passed on as that error
    assert udfs.KPI_SCORE(na, 100, 150) == ERR_NA


def test_unexpected_failures_become_value_errors_and_are_logged(monkeypatch, caplog):
    def broken(*args: Any, **kwargs: Any) -> float:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(xl_kpi, "score", broken)
    with caplog.at_level(logging.ERROR, logger="udfs"):
        result = udfs.KPI_SCORE([[160], [170]], 100, 150)
    assert result == [[ERR_VALUE], [ERR_VALUE]]
    assert "engine bug" in caplog.text


# ---------------------------------------------------------------------------------------------
# Ranges: same shape out, errors per element
# ---------------------------------------------------------------------------------------------


def test_range_in_gives_same_shape_out_with_per_element_errors():
    fact = [[160], [None], ["abc"], [175], ["#N/A"]]
    base = [[100], [100], [100], [100], [100]]
    norm = [[150], [150], [150], [100], [150]]
    assert udfs.KPI_SCORE(fact, base, norm) == [[approx(1.2)], [ERR_NA], [ERR_VALUE], [ERR_DIV0], [ERR_NA]]


def test_numpy_arrays_as_xlwings_gives_them():
    fact = np.array([[160.0, np.nan], [130.0, 90.0]], dtype=object)
    out = udfs.KPI_SCORE(fact, np.array([[100.0]]), np.array([[150.0]]))
    assert out == [[approx(1.2), ERR_NA], [approx(0.6), approx(-0.2)]]


def test_one_cell_range_gives_one_value():
    assert udfs.KPI_SCORE([[160]], [[100]], [[150]]) == approx(1.2)
    assert udfs.KPI_SCORE(np.array([[160.0]]), 100, 150) == approx(1.2)


def test_block_shape_is_kept():
    fact = [[100, 110, 120], [130, 140, 150]]
    out = udfs.KPI_SCORE(fact, 100, 150)
    assert np.shape(out) == (2, 3)
    assert out == [[approx(xl_kpi.score(f, 100, 150)) for f in row] for row in fact]


def test_a_row_is_a_row():
    assert udfs.KPI_SCORE([[160, 175]], 100, 150) == [[approx(1.2), approx(1.5)]]
    assert udfs.KPI_SCORE([160, 175], 100, 150) == [[approx(1.2), approx(1.5)]]  # 1-D = a row, as in xlwings


def test_column_against_row_broadcasts_like_excel():
    facts = [[110], [130], [160]]
    norms = [[150, 200]]
    out = udfs.KPI_SCORE(facts, 100, norms)
    assert out == [[approx(xl_kpi.score(f[0], 100, n)) for n in norms[0]] for f in facts]


def test_ranges_of_different_sizes_give_na_where_one_runs_out():
    out = udfs.KPI_SCORE([[160], [175], [130]], [[100], [100]], 150)
    assert out == [[approx(1.2)], [approx(1.5)], [ERR_NA]]


def test_floor_and_cap():
    assert udfs.KPI_SCORE(50, 100, 150, 0) == 0.0
    assert udfs.KPI_SCORE(250, 100, 150, None, 1.5) == 1.5
    assert udfs.KPI_SCORE(250, 100, 150, 0, 1.5) == 1.5
    assert udfs.KPI_SCORE(50, 100, 150, None, None) == approx(-1.0)


def test_empty_floor_or_cap_cell_means_no_limit():
    assert udfs.KPI_SCORE(250, 100, 150, [[None]], [[np.nan]]) == approx(3.0)
    # per row: a floor for one KPI, none for the other
    assert udfs.KPI_SCORE([[50], [50]], 100, 150, [[0], [None]]) == [[0.0], [approx(-1.0)]]


def test_bad_floor_or_cap():
    assert udfs.KPI_SCORE(160, 100, 150, 1.5, 1.0) == ERR_NUM  # floor above cap
    assert udfs.KPI_SCORE(160, 100, 150, "zero") == ERR_VALUE
    assert udfs.KPI_SCORE(160, 100, 150, None, "#REF!") == "#REF!"


def test_bad_shapes_are_value_errors_not_exceptions():
    assert udfs.KPI_SCORE([], 100, 150) == ERR_VALUE
    assert udfs.KPI_SCORE([[[160]]], 100, 150) == ERR_VALUE
    assert udfs.KPI_SCORE([[160], [1, 2]], 100, 150) == ERR_VALUE  # ragged


# ---------------------------------------------------------------------------------------------
# KPI_COEFF and the scale argument
# ---------------------------------------------------------------------------------------------


def test_scale_typed_like_the_default_gives_the_default():
    for s in (0.5, 0.6999, 0.7, 0.995, 1.0, 1.0999, 1.1, 2.0, -1.0):
        assert udfs.KPI_COEFF(s, DEFAULT_TABLE) == udfs.KPI_COEFF(s)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-5, max_value=5, allow_nan=False))
def test_scale_typed_like_the_default_gives_the_default_for_any_score(s):
    assert udfs.KPI_COEFF(s, DEFAULT_TABLE) == udfs.KPI_COEFF(s) == xl_kpi.coefficient(s)


def test_own_scale_with_header_and_empty_rows():
    table = [
        ["Threshold", "Coefficient"],
        [0.7, 0.9],
        [None, None],
        [1.0, 1.0],
        ["", np.nan],
        [1.2, 1.2],
    ]
    assert udfs.KPI_COEFF([[0.5], [0.8], [1.1], [1.2], [1.5]], table) == [[0.0], [0.9], [1.0], [1.2], [1.2]]


def test_scale_without_header():
    assert udfs.KPI_COEFF(1.3, [[0.5, 0.5], [1.25, 2.0]]) == 2.0


def test_header_with_one_label_is_skipped():
    assert udfs.KPI_COEFF(1.3, [["Score at least", None], [0.5, 0.5], [1.25, 2.0]]) == 2.0


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ([[0.7, 0.9, 1], [1.0, 1.0, 1]], ERR_VALUE),  # three columns
        ([[0.7], [1.0]], ERR_VALUE),  # one column
        ([[0.7, 0.9], ["high", 1.0]], ERR_VALUE),  # text below the first row
        ([[0.7, 0.9], ["threshold", "coefficient"]], ERR_VALUE),  # header not in the first row
        ([[0.7, 0.9], [1.0, None]], ERR_VALUE),  # half a pair
        ([[None, None], [None, None]], ERR_VALUE),  # nothing in it
        ([["threshold", "coefficient"]], ERR_VALUE),  # only a header
        ([[1.0, 1.0], [0.7, 0.9]], ERR_NUM),  # descending thresholds
        ([[0.7, 0.9], [0.7, 1.0]], ERR_NUM),  # a threshold twice
        ([[0.7, -0.9]], ERR_NUM),  # negative coefficient
        ([[0.7, 0.9], [1.0, "#DIV/0!"]], ERR_DIV0),  # an error cell is passed on
    ],
)
def test_bad_scales(table, error):
    assert udfs.KPI_COEFF(1.2, table) == error


def test_bad_scale_spoils_each_result_but_score_errors_come_first():
    out = udfs.KPI_COEFF([[1.2], [None], ["x"]], [[1.0, 1.0], [0.7, 0.9]])
    assert out == [[ERR_NUM], [ERR_NA], [ERR_VALUE]]


def test_coefficient_of_a_range_with_errors():
    assert udfs.KPI_COEFF([[1.2, None, "#N/A", 0.69]]) == [[1.1, ERR_NA, ERR_NA, 0.0]]


# ---------------------------------------------------------------------------------------------
# KPI_BONUS and KPI_TOTAL_BONUS
# ---------------------------------------------------------------------------------------------


def test_bonus_with_own_scale():
    table = [["threshold", "coefficient"], [0.7, 0.9], [1.0, 1.0], [1.2, 1.2]]
    assert udfs.KPI_BONUS(20000, 0.4, 1.2, table) == 9600.0


def test_bonus_over_a_column_of_kpis():
    out = udfs.KPI_BONUS(20000, [[0.4], [0.6], [0.2]], [[1.2], [1.0], [None]])
    assert out == [[8800.0], [12000.0], [ERR_NA]]


def test_bonus_is_rounded_to_kopecks():
    assert udfs.KPI_BONUS(333.33, 1 / 3, 1.0) == xl_kpi.round_money(333.33 / 3)


@pytest.mark.parametrize(
    ("weights", "scores"),
    [
        ([[0.4], [0.6]], [[1.2], [1.0]]),  # columns
        ([[0.4, 0.6]], [[1.2, 1.0]]),  # rows
        ([[0.4], [0.6]], [[1.2, 1.0]]),  # a column of weights, a row of scores
        (np.array([[0.4], [0.6]]), np.array([[1.2], [1.0]])),
    ],
)
def test_total_bonus(weights, scores):
    # 20000 × 0.4 × 1.1 + 20000 × 0.6 × 1.0
    assert udfs.KPI_TOTAL_BONUS(20000, weights, scores) == 20800.0


def test_total_bonus_is_the_sum_of_the_kpi_bonuses():
    weights = [[0.4], [0.2], [0.2], [0.2]]
    scores = [[1.2], [1.2], [0.8], [1.0]]
    lines = udfs.KPI_BONUS(20000, weights, scores)
    assert udfs.KPI_TOTAL_BONUS(20000, weights, scores) == approx(sum(x for (x,) in lines))
    assert udfs.KPI_TOTAL_BONUS(20000, weights, scores) == 20800.0


def test_total_bonus_with_own_scale():
    table = [["threshold", "coefficient"], [0.7, 0.9], [1.0, 1.0], [1.2, 1.2]]
    assert udfs.KPI_TOTAL_BONUS(20000, [[0.4], [0.6]], [[1.2], [1.0]], table) == 20000 * 0.4 * 1.2 + 12000


def test_total_bonus_skips_blank_rows():
    assert udfs.KPI_TOTAL_BONUS(20000, [[0.4], [None], [0.6]], [[1.2], [None], [1.0]]) == 20800.0


@pytest.mark.parametrize(
    ("pool", "weights", "scores", "error"),
    [
        (20000, [[0.4], [0.5]], [[1.2], [1.0]], ERR_NUM),  # weights sum to 90%
        (20000, [[1.4], [-0.4]], [[1.2], [1.0]], ERR_NUM),  # a negative weight
        (20000, [[0.4], [0.6]], [[1.2], [None]], ERR_NA),  # a score is missing
        (20000, [[0.4], [None]], [[1.2], [1.0]], ERR_NA),  # a weight is missing
        (20000, [[0.4], [0.6]], [[1.2], ["#N/A"]], ERR_NA),  # a score cell shows #N/A
        (20000, [[0.4], [0.6]], [[1.2], ["high"]], ERR_VALUE),
        (20000, [[0.4], [0.6]], [[1.2], [1.0], [1.0]], ERR_VALUE),  # different sizes
        (None, [[0.4], [0.6]], [[1.2], [1.0]], ERR_NA),
        ("#REF!", [[0.4], [0.6]], [[1.2], [1.0]], "#REF!"),
        ([[20000], [10000]], [[0.4], [0.6]], [[1.2], [1.0]], ERR_VALUE),  # pool must be one cell
        (20000, [[None], [None]], [[None], [None]], ERR_NA),  # no KPIs at all
    ],
)
def test_total_bonus_errors(pool, weights, scores, error):
    assert udfs.KPI_TOTAL_BONUS(pool, weights, scores) == error


def test_total_bonus_bad_scale():
    assert udfs.KPI_TOTAL_BONUS(20000, [[0.4], [0.6]], [[1.2], [1.0]], [[1.0, 1.0], [0.7, 0.9]]) == ERR_NUM


# ---------------------------------------------------------------------------------------------
# Indicators
# ---------------------------------------------------------------------------------------------


def test_nps():
    assert udfs.KPI_NPS([[10, 9, 8, 7, 6, 3]]) == 0.0
    # 6 promoters, 2 detractors of 10 answers; empty cells skipped
    assert udfs.KPI_NPS([[10, 9, 9, 8, 7, 10, 6, 3, 9, 10, None, np.nan]]) == approx(40.0)
    assert udfs.KPI_NPS([[10], [10], [0]]) == approx(100 / 3)


@pytest.mark.parametrize(
    ("answers", "error"),
    [
        ([[10, "no answer", 9]], ERR_VALUE),
        ([[10, 11]], ERR_NUM),
        ([[10, 7.5]], ERR_NUM),
        ([[10, -1]], ERR_NUM),
        ([[None, None]], ERR_DIV0),
        ([[10, "#N/A"]], ERR_NA),
    ],
)
def test_nps_errors(answers, error):
    assert udfs.KPI_NPS(answers) == error


def test_churn_retention_clv():
    assert udfs.KPI_CHURN(6, 120) == approx(0.05)
    assert udfs.KPI_RETENTION(134, 20, 120) == approx(0.95)
    assert udfs.KPI_CLV(1500, 12, 3) == approx(54000.0)


def test_indicator_errors_per_element():
    assert udfs.KPI_CHURN([[6], [1], [None]], [[120], [0], [10]]) == [[approx(0.05)], [ERR_DIV0], [ERR_NA]]
    assert udfs.KPI_RETENTION(134, 20, 0) == ERR_DIV0
    assert udfs.KPI_CLV(1500, "twelve", 3) == ERR_VALUE


# ---------------------------------------------------------------------------------------------
# Never a traceback
# ---------------------------------------------------------------------------------------------

_cells = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.booleans(),
    st.text(max_size=5),
    st.sampled_from(list(udfs.CVERR_CODES)),
    st.datetimes(),
)
_args = st.one_of(
    _cells,
    st.lists(st.lists(_cells, min_size=1, max_size=3), min_size=1, max_size=3),  # also ragged
    st.lists(_cells, max_size=3),
)


def _well_formed(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(
            isinstance(row, list) and len(row) == len(value[0]) and all(_well_formed(v) for v in row) for row in value
        )
    if isinstance(value, bool):
        return True  # KPI_GATE_FAILED answers TRUE/FALSE
    return is_error(value) or (isinstance(value, float) and math.isfinite(value))


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(UDF_NAMES), args=st.lists(_args, min_size=5, max_size=5))
def test_never_raises_always_numbers_or_error_values(name, args):
    func = getattr(udfs, name)
    n = func.__code__.co_argcount
    logged = _Records()
    logger = logging.getLogger("udfs")
    logger.addHandler(logged)
    try:
        out = func(*args[:n])
    finally:
        logger.removeHandler(logged)
    assert _well_formed(out)
    # bad input is answered by a rule; the logged catch-all is only for bugs
    assert not logged.records, [r.getMessage() for r in logged.records]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(-1e6, 1e6), st.just("x")),
            st.one_of(st.floats(-1e6, 1e6), st.none()),
            st.one_of(st.floats(-1e6, 1e6), st.just(0.0)),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_range_gives_what_each_row_gives_alone(rows):
    facts, bases, norms = ([[r[i]] for r in rows] for i in range(3))
    out = udfs.KPI_SCORE(facts, bases, norms)
    alone = [[udfs.KPI_SCORE(f, b, n)] for (f, b, n) in rows]
    if len(rows) == 1:
        out = [[out]]
    assert len(out) == len(rows)
    for (got,), (want,) in zip(out, alone, strict=True):
        assert got == want or (isinstance(got, float) and got == approx(want))


# ---------------------------------------------------------------------------------------------
# 2. xlwings reads the module: real decorators, VBA wrapper, converters
# ---------------------------------------------------------------------------------------------


def _package(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []
    return module


def _pywin32_stubs() -> dict[str, types.ModuleType]:
    """Just enough of pywin32 for ``import xlwings.udfs`` (it is only used once Excel calls in)."""
    pythoncom = types.ModuleType("pythoncom")
    pythoncom.CoInitialize = lambda: None
    pythoncom.VT_ERROR = 10
    pywintypes = types.ModuleType("pywintypes")
    pywintypes.com_error = type("com_error", (Exception,), {})
    win32com = _package("win32com")
    client = types.ModuleType("win32com.client")
    client.Dispatch = lambda *args, **kwargs: None
    win32com.client = client
    return {"pythoncom": pythoncom, "pywintypes": pywintypes, "win32com": win32com, "win32com.client": client}


@pytest.fixture(scope="module")
def xl() -> Iterator[types.SimpleNamespace]:
    """udfs.py as Excel's Import Functions sees it: loaded fresh with xlwings' real UDF decorators."""
    imported_here = "xlwings.udfs" not in sys.modules
    with pytest.MonkeyPatch.context() as mp:
        if imported_here:  # off Windows: stub pywin32 so that xlwings.udfs can be imported
            for name, module in _pywin32_stubs().items():
                mp.setitem(sys.modules, name, module)
        xlwings_udfs = importlib.import_module("xlwings.udfs")
        # on Linux xw.func/arg/ret are no-ops; on Windows they already are these
        mp.setattr(xlwings, "func", xlwings_udfs.xlfunc)
        mp.setattr(xlwings, "arg", xlwings_udfs.xlarg)
        mp.setattr(xlwings, "ret", xlwings_udfs.xlret)
        spec = importlib.util.spec_from_file_location("udfs_as_excel_sees_it", ROOT / "udfs.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        try:
            yield types.SimpleNamespace(xlwings_udfs=xlwings_udfs, module=module)
        finally:
            if imported_here:
                sys.modules.pop("xlwings.udfs", None)
                if "udfs" in vars(xlwings):
                    delattr(xlwings, "udfs")


class _Workbook:
    Name = "udf_demo.xlsm"  # what generate_vba_wrapper reads of the COM workbook


@pytest.fixture(scope="module")
def vba(xl) -> str:
    out = io.StringIO()
    xl.xlwings_udfs.generate_vba_wrapper("udfs", xl.module, out, _Workbook())
    return out.getvalue()


EXPECTED_SIGNATURES = {
    "KPI_SCORE": "fact, base, norm, Optional floor, Optional cap",
    "KPI_COEFF": "score, Optional scale",
    "KPI_BONUS": "pool, weight, score, Optional scale",
    "KPI_TOTAL_BONUS": "pool, weights, scores, Optional scale",
    "KPI_NPS": "scores",
    "KPI_CHURN": "lost, at_start",
    "KPI_RETENTION": "at_end, new_clients, at_start",
    "KPI_CLV": "spend_per_visit, visits_per_year, years",
    "KPI_WEIGHTED_SCORE": "weights, scores",
    "KPI_PRORATE": "days_worked, days_in_period",
    "KPI_PERIOD_BONUS": "kpi_bonus, Optional multiplier, Optional proration, Optional gated, Optional digits",
    "KPI_GATE_FAILED": "scores, gates",
    "KPI_TOTAL_PAY": "salary, bonus, Optional adjustment, Optional digits",
    # payout kinds (issue 15)
    "KPI_FIXED": "score, threshold, amount, Optional digits",
    "KPI_PROPORTIONAL": "pool, weight, score, Optional max_payout, Optional digits",
    "KPI_PER_UNIT": "fact, base, rate, Optional max_payout, Optional mode, Optional digits",
    "KPI_SHARE": "fact, rate, Optional max_payout, Optional mode, Optional digits",
}


def test_vba_declares_exactly_the_excel_functions(vba):
    declared = dict(re.findall(r"^Function (\w+)\((.*)\)$", vba, flags=re.MULTILINE))
    assert declared == EXPECTED_SIGNATURES
    assert sorted(declared) == sorted(UDF_NAMES)


@pytest.mark.parametrize("name", UDF_NAMES)
def test_vba_wrapper_calls_python_with_every_argument(vba, name):
    args = EXPECTED_SIGNATURES[name].replace("Optional ", "")
    call = f'{name} = XLPy.CallUDF("udfs", "{name}", Array({args}), ThisWorkbook, Application.Caller)'
    assert call in vba
    assert "End Function" in vba.split(f"Function {name}(", 1)[1]


# VBA keywords cannot be parameter names: the imported module would not compile.
VBA_RESERVED = {
    "and", "as", "boolean", "byref", "byte", "byval", "call", "case", "class", "const", "currency", "date",
    "debug", "dim", "do", "double", "each", "else", "elseif", "empty", "end", "endif", "enum", "eqv", "erase",
    "error", "event", "exit", "false", "for", "friend", "function", "get", "global", "gosub", "goto", "if",
    "imp", "implements", "in", "integer", "is", "let", "like", "long", "longlong", "loop", "lset", "me",
    "mod", "new", "next", "not", "nothing", "null", "object", "on", "option", "optional", "or",
    "paramarray", "preserve", "private", "property", "public", "raiseevent", "redim", "rem", "resume",
    "return", "rset", "select", "set", "single", "static", "step", "stop", "string", "sub", "then", "to",
    "true", "type", "typeof", "until", "variant", "wend", "while", "with", "withevents", "xor",
}  # fmt: skip


@pytest.mark.parametrize("name", UDF_NAMES)
def test_argument_names_are_valid_vba(xl, name):
    for arg in getattr(xl.module, name).__xlfunc__["args"]:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,254}", arg["name"])
        assert arg["name"].lower() not in VBA_RESERVED, arg["name"]


@pytest.mark.parametrize("name", UDF_NAMES)
def test_xlfunc_metadata(xl, name):
    info = getattr(xl.module, name).__xlfunc__
    assert info["name"] == name
    assert info["category"] == "xl_kpi"
    assert info["sub"] is False
    assert info["async_mode"] is None
    # Excel 365 spills a returned list natively; `expand` would switch on xlwings' legacy resize hack
    assert "expand" not in info["ret"]["options"]
    # the description in the function wizard: MacroOptions takes at most 255 characters
    assert info["ret"]["doc"] == getattr(udfs, name).__doc__
    assert 20 < len(info["ret"]["doc"]) <= 255 and "\n" not in info["ret"]["doc"]
    for arg in info["args"]:
        assert not arg["doc"].startswith("Positional argument"), f"{name}({arg['name']}) has no help text"
        assert len(arg["doc"]) <= 255
        # every cell/range argument: a 2-D object array (text stays text), errors as their text
        assert arg["options"]["convert"] is np.array
        assert arg["options"]["ndim"] == 2
        assert arg["options"]["dtype"] is object
        assert arg["options"]["err_to_str"] is True


@pytest.mark.parametrize("name", UDF_NAMES)
def test_optional_arguments_are_really_optional(xl, name):
    info = getattr(xl.module, name).__xlfunc__
    optional = {a["name"] for a in info["args"] if "optional" in a}
    expected = {p.split()[-1] for p in EXPECTED_SIGNATURES[name].split(", ") if p.startswith("Optional ")}
    assert optional == expected
    assert all(a["optional"] is None for a in info["args"] if "optional" in a)


@pytest.mark.parametrize("name", UDF_NAMES)
def test_xlwings_can_build_the_converters(xl, name):
    accessors = xlwings.conversion.accessors
    info = getattr(xl.module, name).__xlfunc__
    for arg in info["args"]:
        convert = arg["options"].get("convert")
        accessors.get(convert, convert).reader(arg["options"])  # raises for an unusable type hint


class _ComCleaning:
    """Stands in for xlwings' Windows engine in the read pipeline, doing only what _xlwindows does to
    values from COM before converting (empty → ``empty``, CVErr codes → "#N/A" with ``err_to_str``).
    The converter itself (np.array, ndim, dtype, empty=NaN) is xlwings' own code."""

    name = "excel"
    type = "desktop"

    @staticmethod
    def clean_value_data(data, datetime_builder, empty_as, number_builder, err_to_str):
        texts = {code: text for text, code in udfs.CVERR_CODES.items()}

        def clean(v: Any) -> Any:
            if v in ("", None):
                return empty_as
            if isinstance(v, int) and v in texts:
                return texts[v] if err_to_str else None
            return v

        return [[clean(v) for v in row] for row in data]


MISSING = -2147352572  # what COM passes for an omitted optional argument


@pytest.fixture
def call_like_excel(xl, monkeypatch):
    """Call a UDF the way xlwings' call_udf does: each COM value through the function's converters."""
    monkeypatch.setitem(xlwings.engines.engines_by_name, "excel", xlwings.main.Engine(impl=_ComCleaning()))

    def call(name: str, *com_values: Any) -> Any:
        func = getattr(xl.module, name)
        args = []
        for info, value in zip(func.__xlfunc__["args"], com_values, strict=True):
            if value == MISSING:
                args.append(info.get("optional"))
            else:
                args.append(xlwings.conversion.read(None, value, info["options"]))
        return func(*args)

    return call


def test_through_xlwings_converters_score_range(call_like_excel, xl):
    facts = ((160.0,), (None,), ("abc",), (-2146826281,), ("",), (130.0,))  # as COM gives a column
    out = call_like_excel("KPI_SCORE", facts, 100.0, 150.0, MISSING, MISSING)
    assert [v for (v,) in out] == [approx(1.2), "#N/A", "#VALUE!", "#DIV/0!", "#N/A", approx(0.6)]
    assert all(xl.module.is_error(v) for (v,) in out[1:5])


def test_through_xlwings_converters_scalars_and_scale(call_like_excel):
    assert call_like_excel("KPI_SCORE", 160.0, 100.0, 150.0, MISSING, MISSING) == approx(1.2)
    assert call_like_excel("KPI_SCORE", 50.0, 100.0, 150.0, 0.0, MISSING) == 0.0
    table = (("Threshold", "Coefficient"), (0.7, 0.9), (1.0, 1.0), (None, None), (1.2, 1.2))
    assert call_like_excel("KPI_COEFF", 1.2, table) == 1.2
    assert call_like_excel("KPI_COEFF", 1.2, MISSING) == 1.1
    assert call_like_excel("KPI_BONUS", 20000.0, 0.4, 1.2, MISSING) == 8800.0
    assert call_like_excel("KPI_TOTAL_BONUS", 20000.0, ((0.4,), (0.6,)), ((1.2,), (1.0,)), MISSING) == 20800.0
    assert call_like_excel("KPI_NPS", ((10.0, 9.0, None, 6.0),)) == approx(100 / 3)
    assert call_like_excel("KPI_RETENTION", 134.0, 20.0, 120.0) == approx(0.95)
    assert call_like_excel("KPI_CHURN", 6.0, 0.0) == "#DIV/0!"


# ---------------------------------------------------------------------------------------------
# 3. The demo workbook
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo() -> openpyxl.Workbook:
    return openpyxl.load_workbook(DEMO)


def _formula_cells(wb: openpyxl.Workbook) -> Iterator[tuple[str, str]]:
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                v = cell.value.text if isinstance(cell.value, ArrayFormula) else cell.value
                if isinstance(v, str) and v.startswith("="):
                    yield f"{ws.title}!{cell.coordinate}", v


def test_demo_has_the_sheets(demo):
    assert demo.sheetnames == ["KPI matrix", "xlwings.conf"]


def test_demo_config_sheet_names_the_udf_module(demo):
    ws = demo["xlwings.conf"]
    # xlwings reads key | value pairs from A1 down to the first empty row (utils.read_config_sheet);
    # its VBA looks keys up upper-cased, as "UDF MODULES"
    config = {}
    for key, value in ws.iter_rows(min_col=1, max_col=2, values_only=True):
        if key is None:
            break
        config[str(key).upper()] = value
    assert config == {"UDF MODULES": "udfs"}
    assert (ROOT / f"{config['UDF MODULES']}.py").is_file()


def test_demo_formulas_use_only_existing_functions_with_valid_argument_counts(demo):
    sheet = _Sheet(demo["KPI matrix"])
    for where, text in _formula_cells(demo):
        sheet.calls.clear()
        sheet.formula(text)
        for name, n_args in sheet.calls:
            assert name in UDF_NAMES or name in BUILTINS, f"{where}: unknown function {name}"
            if name in UDF_NAMES:
                code = getattr(udfs, name).__code__
                n_required = code.co_argcount - len(getattr(udfs, name).__defaults__ or ())
                assert n_required <= n_args <= code.co_argcount, f"{where}: {name} with {n_args} arguments"


def test_demo_uses_every_function(demo):
    used = set(re.findall(r"\b(KPI_[A-Z_]+)\(", " ".join(text for _, text in _formula_cells(demo))))
    assert used == set(UDF_NAMES)


def test_demo_formulas_give_the_source_numbers(demo):
    s = _Sheet(demo["KPI matrix"])
    # closed deals: the source's example, 120% → 1.1 → 8 800
    assert (s.value("F8"), s.value("G8"), s.value("H8")) == (approx(1.2), 1.1, 8800.0)
    # complaints, lower is better: base 10, norm 5, fact 4 → 120%
    assert (s.value("F9"), s.value("G9"), s.value("H9")) == (approx(1.2), 1.1, 4400.0)
    assert (s.value("F10"), s.value("G10"), s.value("H10")) == (approx(0.8), 0.9, 3600.0)
    # churn 6 of 120 = 5%, exactly the norm
    assert (s.value("E11"), s.value("F11"), s.value("G11"), s.value("H11")) == (approx(0.05), approx(1.0), 1.0, 4000.0)
    assert s.value("B12") == approx(1.0)  # the weights sum to 100%
    assert s.value("H12") == s.value("H13") == 20800.0
    # own scale J7:K11 (header row included): 120% is on the 120% threshold → 1.2
    assert (s.value("G16"), s.value("H16")) == (1.2, 9600.0)
    assert s.value("H17") == 9600.0 + 4800.0 + 3600.0 + 4000.0
    assert s.value("B24") == approx(0.95)  # retention (134 − 20) / 120
    assert s.value("B28") == approx(54000.0)  # CLV 1500 × 12 × 3
    assert s.value("B30") == approx(40.0)  # NPS: 6 promoters, 2 detractors of 10
    # the array formula F34:F37 gives the matrix's scores in one go
    assert demo["KPI matrix"]["F34"].value.ref == "F34:F37"
    assert s.value("F34") == [[s.value(f"F{r}")] for r in range(8, 12)]
    assert (s.value("F41"), s.value("F42"), s.value("F43")) == (ERR_DIV0, ERR_NA, ERR_VALUE)


def test_demo_rebuilds_the_cards_payout(demo):
    """Rows 46-51 and 66-70: the card's payout rebuilt with the functions equals what xl-kpi generate pays."""
    s = _Sheet(demo["KPI matrix"])
    proration = xl_kpi.prorate(19, 31)
    bonus = xl_kpi.period_bonus(20_800, 1.2, proration)
    assert s.value("B46") == xl_kpi.weighted_score([0.4, 0.2, 0.2, 0.2], [1.2, 1.2, 0.8, 1.0]) == approx(1.08)
    assert s.value("B49") == proration
    assert s.value("B51") == bonus == 15_298.06
    assert s.value("B67") is False  # closed deals at 120%, its gate 50%
    assert s.value("B68") == bonus
    assert s.value("B70") == xl_kpi.total_pay(80_000, bonus) == 95_298.06
    # the gate bites: closed deals below 50% → no bonus for the period, the salary alone
    ws = demo["KPI matrix"]
    ws["E8"] = 120  # score (120 - 100) / 50 = 40%
    try:
        s = _Sheet(ws)
        assert s.value("B67") is True
        assert s.value("B68") == 0.0
        assert s.value("B70") == 80_000.0
    finally:
        ws["E8"] = 160


def test_demo_number_formats(demo):
    ws = demo["KPI matrix"]
    for r in range(8, 12):
        assert ws[f"F{r}"].number_format.endswith("%")  # scores as percent
        assert ws[f"H{r}"].number_format == "#,##0.00"  # money
    for ref in ("B5", "H12", "H13", "H16", "H17", "B28"):
        assert ws[ref].number_format == "#,##0.00"


def test_demo_is_what_the_script_generates(tmp_path):
    from scripts import make_udf_demo

    fresh = openpyxl.load_workbook(make_udf_demo.main(["--out", str(tmp_path / "demo.xlsx")]))
    shipped = openpyxl.load_workbook(DEMO)
    assert fresh.sheetnames == shipped.sheetnames

    def content(wb: openpyxl.Workbook) -> list[tuple[str, str, Any, str]]:
        out = []
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for c in row:
                    v = (c.value.ref, c.value.text) if isinstance(c.value, ArrayFormula) else c.value
                    if v is not None:
                        out.append((ws.title, c.coordinate, v, c.number_format))
        return out

    assert content(fresh) == content(shipped), "workbooks/udf_demo.xlsx is stale: run scripts/make_udf_demo.py"


def test_demo_bytes_do_not_depend_on_the_clock(tmp_path, monkeypatch):
    """Rebuilding the demo changes no byte (openpyxl stamps the time of saving; the script pins it), so the
    shipped file is exactly what the script writes."""
    import datetime as dt

    from scripts import make_udf_demo

    first = make_udf_demo.workbook_bytes()

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # the clock openpyxl reads when saving
            return dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=tz)

    monkeypatch.setattr("openpyxl.writer.excel.datetime.datetime", Later)
    assert make_udf_demo.workbook_bytes() == first
    assert DEMO.read_bytes() == first, "workbooks/udf_demo.xlsx is stale: run scripts/make_udf_demo.py"


# ---------------------------------------------------------------------------------------------
# 4. The user documentation
# ---------------------------------------------------------------------------------------------

DOCS = ROOT / "docs" / "excel.md"


def test_docs_list_every_function_with_its_arguments():
    text = DOCS.read_text(encoding="utf-8")
    for name, signature in EXPECTED_SIGNATURES.items():
        args = ", ".join(f"[{p.split()[-1]}]" if p.startswith("Optional ") else p for p in signature.split(", "))
        assert f"`{name}({args})`" in text, f"{name}({args}) is not in the function table"


def _literal(arg: str) -> float:
    arg = arg.strip()
    return float(arg[:-1]) / 100 if arg.endswith("%") else float(arg)


def test_docs_examples_give_what_they_say():
    text = DOCS.read_text(encoding="utf-8")
    examples = re.findall(r"`=(KPI_\w+)\(([-\d., %]*)\)` → ([-\d,.]+)", text)
    assert len(examples) >= 9
    for name, args, result in examples:
        value = getattr(udfs, name)(*(_literal(a) for a in args.split(",")))
        assert value == approx(float(result.replace(",", ""))), f"={name}({args}) gives {value}, docs say {result}"


def test_payout_functions_are_the_batch_rule():
    """KPI_PERIOD_BONUS / KPI_PRORATE / KPI_WEIGHTED_SCORE call the engine's payout (issue 10 §1)."""
    assert udfs.KPI_PERIOD_BONUS(20_800, 1.2, 0.5) == xl_kpi.period_bonus(20_800, 1.2, 0.5) == 12_480.0
    assert udfs.KPI_PERIOD_BONUS(20_800, None, None, True) == 0.0
    assert udfs.KPI_PERIOD_BONUS(8_800.44, None, None, None, 0) == 8_800.0  # digits reach the ROUND
    assert udfs.KPI_PERIOD_BONUS([[100.005], [2.5]], None, None, None, [[2], [0]]) == [[100.01], [3.0]]
    assert udfs.KPI_PERIOD_BONUS("x") == ERR_VALUE and udfs.KPI_PERIOD_BONUS(None) == ERR_NA
    assert udfs.KPI_PRORATE(19, 31) == xl_kpi.prorate(19, 31) and udfs.KPI_PRORATE(5, 0) == ERR_NUM
    assert udfs.KPI_WEIGHTED_SCORE([[0.4, 0.6]], [[1.2, 1.0]]) == 1.08
    assert udfs.KPI_WEIGHTED_SCORE([[0.4, 0.6]], [[1.2]]) == ERR_VALUE


def test_all_names_every_excel_function(xl):
    """udfs.__all__ lists every function xlwings registers, so ``from udfs import *`` and the docs agree."""
    registered = {name for name in dir(xl.module) if hasattr(getattr(xl.module, name), "__xlfunc__")}
    assert registered == set(UDF_NAMES)
    assert registered <= set(udfs.__all__)
    assert all(hasattr(udfs, name) for name in udfs.__all__)


def test_gate_failed_is_the_engine_rule():
    """KPI_GATE_FAILED: some ROUND(score,12) below its gate, as the card's gate condition (issue 12 §2)."""
    assert udfs.KPI_GATE_FAILED([[0.49], [1.2]], [[0.5], [None]]) is True
    assert udfs.KPI_GATE_FAILED([[0.5], [1.2]], [[0.5], [None]]) is False  # exactly at the gate passes
    assert udfs.KPI_GATE_FAILED([[0.5 - 1e-14]], [[0.5]]) is False  # float noise below the gate: ROUND(,12)
    assert udfs.KPI_GATE_FAILED([[None], [1.2]], [[0.5], [0.5]]) is False  # no fact yet: the gate does not fail
    assert udfs.KPI_GATE_FAILED([[0.4, 1.0]], [[0.5]]) == ERR_VALUE  # sizes differ
    assert udfs.KPI_GATE_FAILED([["#REF!"]], [[0.5]]) == udfs.ERR_REF  # errors passed on
    assert udfs.KPI_GATE_FAILED([[0.4]], [["half"]]) == ERR_VALUE
    engine = xl_kpi.gate_failed([0.49, 1.2], [0.5, float("nan")])
    assert udfs.KPI_GATE_FAILED([[0.49, 1.2]], [[0.5, None]]) is bool(engine.any())


def test_total_pay_is_the_engine_rule():
    assert udfs.KPI_TOTAL_PAY(80_000, 12_480.004) == xl_kpi.total_pay(80_000, 12_480.004) == 92_480.0
    assert udfs.KPI_TOTAL_PAY(80_000, 0.005) == 80_000.01  # Excel's ROUND, half away from zero
    assert udfs.KPI_TOTAL_PAY(80_000, 12_480.4, None, 0) == 92_480.0
    assert udfs.KPI_TOTAL_PAY(80_000, 12_480, -1_500.5) == xl_kpi.total_pay(80_000, 12_480, -1_500.5) == 90_979.5
    assert udfs.KPI_TOTAL_PAY(80_000, 12_480, 0.4, 0) == 92_480.0  # the adjustment inside the one ROUND
    assert udfs.KPI_TOTAL_PAY([[80_000], [50_000]], [[100], [None]]) == [[80_100.0], [ERR_NA]]
    assert udfs.KPI_TOTAL_PAY(80_000, 1, None, 0.5) == ERR_NUM  # digits not whole
    assert udfs.KPI_TOTAL_PAY("x", 1) == ERR_VALUE
