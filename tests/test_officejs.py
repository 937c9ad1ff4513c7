"""The Excel functions in xlwings Lite and xlwings Server: udfs.py behind xlwings' Office.js dispatcher.

Excel on Windows, macOS and the web calls Office.js custom functions; xlwings Lite (Pyodide) and
xlwings Server answer them with ``xlwings.server.custom_functions_meta`` (the registration) and
``custom_functions_call`` (one call). These tests send the payloads Excel sends (tests/_officejs.py):
every argument a 2-D matrix, integers as ints, an omitted optional argument as null, an empty cell as
null (Excel on the web) or "" (a formula returning ""), error cells as ``{"type": "Error", ...}``, and
check what comes back: numbers, spilled matrices, and error values in Office.js' own form
(``{"type": "Error", "errorType": "Div0"}``), which Excel shows as #DIV/0!.

Excel desktop sends 0, not null, for an empty referenced cell (OfficeDev/office-js issues 4702, 1951)
and xlwings passes that 0 on unchanged: the tests under "empty cell as 0" pin down what the functions
then return, as docs/excel.md says.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import openpyxl
import pytest

import udfs
import xl_kpi
from tests._demo_sheet import DemoSheet
from tests._officejs import OfficeJs, error, returned

DEMO = Path(__file__).resolve().parent.parent / "workbooks" / "udf_demo.xlsx"

DIV0, NA, VALUE, NUM = (returned(e) for e in ("#DIV/0!", "#N/A", "#VALUE!", "#NUM!"))
FUNCTIONS = sorted(name for name in udfs.__all__ if name.startswith("KPI_"))
DEFAULT_TABLE = [["Threshold", "Coefficient"], [0.7, 0.9], [1.0, 1.0], [1.1, 1.1], [1.2, 1.2]]


def one(result: list[list[object]]) -> object:
    """The single value of a 1x1 result matrix (custom functions always answer a matrix)."""
    assert isinstance(result, list) and len(result) == 1 and len(result[0]) == 1, result
    return result[0][0]


def close(x: float) -> object:
    return pytest.approx(x, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Registration: what Excel's formula help shows
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def meta(officejs: OfficeJs) -> dict[str, dict]:
    return {f["id"]: f for f in officejs.meta()["functions"]}


def test_every_function_is_registered(meta):
    assert sorted(meta) == FUNCTIONS
    assert len(FUNCTIONS) >= 13


def test_a_lite_main_py_importing_udfs_registers_the_same(officejs, meta):
    """xlwings Lite reads main.py: `from udfs import *` (udfs.__all__) must bring every function along."""
    lite = {f["id"]: f for f in officejs.lite_meta()["functions"]}
    assert lite == meta


@pytest.mark.parametrize("name", FUNCTIONS)
def test_registration_has_help_for_the_function_and_every_argument(meta, name):
    f = meta[name]
    assert f["name"] == name
    assert f["description"] == getattr(udfs, name).__doc__ and len(f["description"]) > 30
    assert f["result"] == {"dimensionality": "matrix", "type": "any"}
    params = inspect.signature(getattr(udfs, name)).parameters
    assert [p["name"] for p in f["parameters"]] == list(params)
    for p in f["parameters"]:
        assert p["dimensionality"] == "matrix" and p["type"] == "any"
        assert not p["description"].startswith("Positional argument"), f"{name}({p['name']}) has no help"
        optional = params[p["name"]].default is not inspect.Parameter.empty
        assert p.get("optional", False) is optional
        assert p["description"].startswith("Optional.") is optional


# ---------------------------------------------------------------------------------------------
# Scalars: the source's worked examples (docs/domain.md), ints as Excel sends them
# ---------------------------------------------------------------------------------------------

SCALARS = [
    ("KPI_SCORE", [160, 100, 150, None, None], 1.2),
    ("KPI_SCORE", [4, 10, 5, None, None], 1.2),  # lower is better: base above norm
    ("KPI_SCORE", [160.0, 100.0, 150.0, None, None], 1.2),  # floats like ints
    ("KPI_COEFF", [0.995, None], 0.9),
    ("KPI_COEFF", [1, None], 1.0),  # exactly 100% → 1.0, an int
    ("KPI_COEFF", [1.1, None], 1.1),
    ("KPI_COEFF", [0.69, None], 0.0),
    ("KPI_BONUS", [20000, 0.4, 1.2, None], 8800.0),
    ("KPI_TOTAL_BONUS", [20000, [[0.4], [0.6]], [[1.2], [1.0]], None], 20800.0),
    ("KPI_WEIGHTED_SCORE", [[[0.4, 0.6]], [[1.2, 1.0]]], 1.08),
    ("KPI_PRORATE", [19, 31], xl_kpi.prorate(19, 31)),
    ("KPI_PERIOD_BONUS", [20800, 1.2, 0.5, None, None], 12480.0),
    ("KPI_PERIOD_BONUS", [20800, None, None, True, None], 0.0),  # a TRUE cell: gated
    ("KPI_PERIOD_BONUS", [8800.44, None, None, None, 0], 8800.0),
    ("KPI_TOTAL_PAY", [80000, 12480, None, None], 92480.0),
    ("KPI_TOTAL_PAY", [80000, 12480, -1500.5, None], 90979.5),
    ("KPI_NPS", [[[10, 9, 9, 8, 7, 10, 6, 3, 9, 10]]], 40.0),
    ("KPI_CHURN", [6, 120], 0.05),
    ("KPI_RETENTION", [134, 20, 120], 0.95),
    ("KPI_CLV", [1500, 12, 3], 54000.0),
]


@pytest.mark.parametrize(("name", "args", "expected"), SCALARS, ids=[f"{n}{a}" for n, a, _ in SCALARS])
def test_scalar_results(officejs, name, args, expected):
    assert one(officejs.call(name, *args)) == close(expected)


def test_scalar_results_equal_the_python_call(officejs):
    """The dispatcher adds nothing: the same answer as calling udfs directly (what the batch computes)."""
    for name, args, _ in SCALARS:
        assert one(officejs.call(name, *args)) == close(getattr(udfs, name)(*args)), name


@pytest.mark.parametrize(("scores", "gates", "expected"), [
    ([[0.49], [1.2]], [[0.5], [None]], True),
    ([[0.5], [1.2]], [[0.5], [None]], False),  # exactly on the gate passes
    ([[None], [1.2]], [[0.5], [0.5]], False),  # no fact yet never fails a gate
])
def test_gate_failed_answers_a_boolean(officejs, scores, gates, expected):
    assert one(officejs.call("KPI_GATE_FAILED", scores, gates)) is expected


# ---------------------------------------------------------------------------------------------
# Spills: a range in gives a range out of the same shape
# ---------------------------------------------------------------------------------------------


def test_a_column_of_facts_spills_a_column_of_scores(officejs):
    out = officejs.call("KPI_SCORE", [[160], [4], [125]], [[100], [10], [100]], [[150], [5], [150]], None, None)
    assert out == [[close(1.2)], [close(1.2)], [close(0.5)]]


def test_one_cell_repeats_along_a_range(officejs):
    out = officejs.call("KPI_BONUS", 20000, [[0.4], [0.2]], [[1.2], [0.8]], None)
    assert out == [[8800.0], [3600.0]]


def test_a_column_and_a_row_give_a_table(officejs):
    out = officejs.call("KPI_BONUS", [[10000], [20000]], [[0.4, 0.2]], 1.2, None)
    assert out == [[4400.0, 2200.0], [8800.0, 4400.0]]


def test_a_shorter_range_gives_na_where_it_runs_out(officejs):
    out = officejs.call("KPI_SCORE", [[160], [170], [180]], [[100], [100]], 150, None, None)
    assert out == [[close(1.2)], [close(1.4)], [NA]]


def test_one_bad_row_spoils_only_its_own_cell(officejs):
    out = officejs.call("KPI_SCORE", [[160], ["n/a"], [None], [error("#REF!")], [125]], 100, 150, None, None)
    assert out == [[close(1.2)], [VALUE], [NA], [returned("#REF!")], [close(0.5)]]


def test_spilled_period_bonus_and_total_pay(officejs):
    bonus = officejs.call("KPI_PERIOD_BONUS", [[20800], [10000]], [[1.2], [None]], [[0.5], [1]], [[False], [True]],
                          None)
    assert bonus == [[12480.0], [0.0]]
    assert officejs.call("KPI_TOTAL_PAY", [[80000], [50000]], bonus, None, None) == [[92480.0], [50000.0]]


def test_spilled_proration(officejs):
    out = officejs.call("KPI_PRORATE", [[31], [19], [0], [40]], 31)
    assert out == [[1.0], [close(19 / 31)], [0.0], [1.0]]  # within 0..1


# ---------------------------------------------------------------------------------------------
# Every error value out
# ---------------------------------------------------------------------------------------------

ERRORS_OUT = [
    ("norm = base", "KPI_SCORE", [160, 100, 100, None, None], DIV0),
    ("no clients at the start", "KPI_CHURN", [6, 0], DIV0),
    ("no NPS answers", "KPI_NPS", [[[None, None]]], DIV0),
    ("fact missing", "KPI_SCORE", [None, 100, 150, None, None], NA),
    ("weight without score", "KPI_TOTAL_BONUS", [20000, [[0.4], [0.6]], [[1.2], [None]], None], NA),
    ("text fact", "KPI_SCORE", ["160 deals", 100, 150, None, None], VALUE),
    ("TRUE as a fact", "KPI_SCORE", [True, 100, 150, None, None], VALUE),
    ("weights and scores of different sizes", "KPI_TOTAL_BONUS", [20000, [[0.4], [0.6]], [[1.2]], None], VALUE),
    ("pool of two cells", "KPI_TOTAL_BONUS", [[[1, 2]], [[1.0]], [[1.2]], None], VALUE),
    ("weights not summing to 100%", "KPI_TOTAL_BONUS", [20000, [[0.4], [0.4]], [[1.2], [1.0]], None], NUM),
    ("floor above cap", "KPI_SCORE", [160, 100, 150, 1.5, 1.0], NUM),
    ("NPS answer 11", "KPI_NPS", [[[10, 11]]], NUM),
    ("period of 0 days", "KPI_PRORATE", [5, 0], NUM),
    ("digits not whole", "KPI_TOTAL_PAY", [80000, 1, None, 0.5], NUM),
    ("gates and scores of different sizes", "KPI_GATE_FAILED", [[[0.4, 1.0]], [[0.5]]], VALUE),
]


@pytest.mark.parametrize(("case", "name", "args", "expected"), ERRORS_OUT, ids=[c for c, *_ in ERRORS_OUT])
def test_error_values_out(officejs, case, name, args, expected):
    assert one(officejs.call(name, *args)) == expected


def test_an_old_runtime_gets_the_error_text(officejs):
    """Before custom-functions runtime 1.4 xlwings sends the error text, which Excel shows as is."""
    assert one(officejs.call("KPI_SCORE", 160, 100, 100, None, None, runtime="1.3")) == "#DIV/0!"


def test_nan_never_leaks_out(officejs):
    """xlwings turns a NaN result into #NUM!; the functions answer a rule's error instead (here #N/A)."""
    assert one(officejs.call("KPI_WEIGHTED_SCORE", [[None, None]], [[None, None]])) == NA


# ---------------------------------------------------------------------------------------------
# Errors passed on
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("err", ["#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!"])
def test_an_error_in_a_cell_is_passed_on(officejs, err):
    assert one(officejs.call("KPI_SCORE", error(err), 100, 150, None, None)) == returned(err)
    assert one(officejs.call("KPI_BONUS", 20000, 0.4, error(err), None)) == returned(err)
    assert one(officejs.call("KPI_TOTAL_BONUS", 20000, [[0.4], [0.6]], [[1.2], [error(err)]], None)) == returned(err)


@pytest.mark.parametrize("err", ["#SPILL!", "#CALC!"])
def test_newer_errors_give_value(officejs, err):
    """Errors Python has no constant for (#SPILL!, #CALC!) come out as #VALUE!."""
    assert one(officejs.call("KPI_SCORE", error(err), 100, 150, None, None)) == VALUE


def test_an_error_in_an_optional_argument_is_passed_on(officejs):
    assert one(officejs.call("KPI_SCORE", 160, 100, 150, error("#REF!"), None)) == returned("#REF!")
    assert one(officejs.call("KPI_PERIOD_BONUS", 20800, None, error("#N/A"), None, None)) == NA


def test_an_error_in_the_scale_is_passed_on(officejs):
    table = [row[:] for row in DEFAULT_TABLE]
    table[2][1] = error("#REF!")
    assert one(officejs.call("KPI_COEFF", 1.2, table)) == returned("#REF!")


# ---------------------------------------------------------------------------------------------
# Empty cells: null (Excel on the web), "" (a formula returning ""), 0 (Excel desktop)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("empty", [None, ""], ids=["null", "empty-string"])
def test_an_empty_required_cell_is_missing(officejs, empty):
    assert one(officejs.call("KPI_SCORE", [[empty]], 100, 150, None, None)) == NA
    assert one(officejs.call("KPI_BONUS", 20000, [[empty]], 1.2, None)) == NA


@pytest.mark.parametrize("empty", [None, ""], ids=["null", "empty-string"])
def test_an_empty_optional_cell_is_left_out(officejs, empty):
    assert one(officejs.call("KPI_SCORE", 250, 100, 150, [[empty]], [[empty]])) == close(3.0)
    assert one(officejs.call("KPI_PERIOD_BONUS", 20800, [[empty]], [[empty]], [[empty]], [[empty]])) == 20800.0


@pytest.mark.parametrize("empty", [None, ""], ids=["null", "empty-string"])
def test_empty_cells_inside_ranges(officejs, empty):
    assert one(officejs.call("KPI_NPS", [[10, empty, 9, 3]])) == close(100 * (2 - 1) / 3)
    assert one(officejs.call("KPI_TOTAL_BONUS", 20000, [[0.4], [0.6], [empty]], [[1.2], [1.0], [empty]], None)) \
        == 20800.0


def test_empty_cell_as_0_fact_is_scored_as_0(officejs):
    """Excel desktop: an empty fact cell arrives as 0 and is scored as a fact of 0, not #N/A."""
    assert one(officejs.call("KPI_SCORE", 0, 100, 150, None, None)) == close(-2.0)


def test_empty_cell_as_0_cap_clamps_every_score_to_0(officejs):
    """Excel desktop: a cap pointing at an empty cell is a cap of 0. Leave the argument out instead."""
    assert one(officejs.call("KPI_SCORE", 160, 100, 150, None, 0)) == 0.0
    assert one(officejs.call("KPI_SCORE", 160, 100, 150, None, None)) == close(1.2)


def test_empty_cell_as_0_nps_counts_a_detractor(officejs):
    """Excel desktop: empty cells in an NPS range arrive as 0, i.e. detractors. Select the answers only."""
    assert one(officejs.call("KPI_NPS", [[10, 9, 0, 0]])) == 0.0
    assert one(officejs.call("KPI_NPS", [[10, 9, None, None]])) == 100.0


def test_empty_cell_as_0_spare_scale_rows_are_refused(officejs):
    """Excel desktop: spare empty scale rows arrive as (0, 0), a threshold out of order: #NUM!, never a wrong band."""
    assert one(officejs.call("KPI_COEFF", 1.2, [*DEFAULT_TABLE, [0, 0]])) == NUM
    assert one(officejs.call("KPI_COEFF", 1.2, [*DEFAULT_TABLE, [None, None]])) == 1.2


def test_empty_cell_as_0_blank_kpi_rows_cost_nothing(officejs):
    """Excel desktop: a blank KPI row arrives as weight 0, score 0 and adds nothing to the bonus."""
    out = one(officejs.call("KPI_TOTAL_BONUS", 20000, [[0.4], [0.6], [0]], [[1.2], [1.0], [0]], None))
    assert out == 20800.0


def test_empty_cell_as_0_gate_and_proration(officejs):
    """Excel desktop: an empty gate cell is a gate of 0 (never failed by a score of 0% or more)."""
    assert one(officejs.call("KPI_GATE_FAILED", [[0.3]], [[0]])) is False
    assert one(officejs.call("KPI_PERIOD_BONUS", 20800, 0, 0, 0, None)) == 0.0  # multiplier 0 pays 0


# ---------------------------------------------------------------------------------------------
# Floors and caps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fact", "floor", "cap", "expected"), [
    (250, 0, 1.5, 1.5),
    (50, 0, 1.5, 0.0),
    (50, None, None, -1.0),
    (250, None, 1.5, 1.5),
    (50, 0, None, 0.0),
    ([[250], [50], [160]], 0, 1.5, [[1.5], [0.0], [1.2]]),
])
def test_floors_and_caps(officejs, fact, floor, cap, expected):
    out = officejs.call("KPI_SCORE", fact, 100, 150, floor, cap)
    if isinstance(expected, list):
        assert out == [[close(v)] for (v,) in expected]
    else:
        assert one(out) == close(expected)


# ---------------------------------------------------------------------------------------------
# Scales as ranges
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("score", "expected"), [(0.69, 0.0), (0.7, 0.9), (1.0, 1.0), (1.15, 1.1), (1.2, 1.2)])
def test_own_scale_with_header_row(officejs, score, expected):
    assert one(officejs.call("KPI_COEFF", score, DEFAULT_TABLE)) == expected


def test_own_scale_in_bonus_and_total_bonus(officejs):
    assert one(officejs.call("KPI_BONUS", 20000, 0.4, 1.2, DEFAULT_TABLE)) == 9600.0
    out = officejs.call("KPI_TOTAL_BONUS", 20000, [[0.4], [0.2], [0.2], [0.2]], [[1.2], [1.2], [0.8], [1.0]],
                        DEFAULT_TABLE)
    assert one(out) == 9600.0 + 4800.0 + 3600.0 + 4000.0


def test_own_scale_spills_over_a_range_of_scores(officejs):
    assert officejs.call("KPI_COEFF", [[0.5], [0.95], [1.3]], DEFAULT_TABLE) == [[0.0], [0.9], [1.2]]


@pytest.mark.parametrize(("case", "table", "expected"), [
    ("three columns", [[0.7, 0.9, 1], [1.0, 1.0, 1]], VALUE),
    ("text below the header", [["Threshold", "Coefficient"], ["seventy", 0.9]], VALUE),
    ("threshold without coefficient", [[0.7, 0.9], [1.0, None]], VALUE),
    ("unsorted thresholds", [[1.0, 1.0], [0.7, 0.9]], NUM),
    ("negative coefficient", [[0.7, -0.9]], NUM),
])
def test_bad_scales(officejs, case, table, expected):
    assert one(officejs.call("KPI_COEFF", 1.2, table)) == expected
    assert officejs.call("KPI_COEFF", [[1.2], [error("#N/A")]], table) == [[expected], [NA]]  # own errors first


# ---------------------------------------------------------------------------------------------
# The demo workbook recalculated as xlwings Lite would: every KPI_* call through the dispatcher
# ---------------------------------------------------------------------------------------------

_TEXT_OF_KIND = {"Div0": "#DIV/0!", "NotAvailable": "#N/A", "Name": "#NAME?", "Null": "#NULL!", "Num": "#NUM!",
                 "Ref": "#REF!", "Value": "#VALUE!"}


def _as_cell(value: object) -> object:
    """A result as the cell Excel then passes on: an Office.js error becomes an error cell again."""
    if isinstance(value, dict) and value.get("type") == "Error":
        return error(_TEXT_OF_KIND[value["errorType"]])
    if isinstance(value, list):
        return [[_as_cell(v) for v in row] for row in value]
    return value


@pytest.fixture
def lite_sheet(officejs):
    def call(name: str, *args: object) -> object:
        n = len(inspect.signature(getattr(udfs, name)).parameters)
        out = officejs.call(name, *args, *[None] * (n - len(args)))  # Excel sends every parameter
        return _as_cell(out[0][0] if len(out) == 1 and len(out[0]) == 1 else out)

    wb = openpyxl.load_workbook(DEMO)
    return DemoSheet(wb["KPI matrix"], call=call), DemoSheet(wb["KPI matrix"])


def test_demo_recalculated_through_office_js_equals_the_direct_call(lite_sheet):
    lite, direct = lite_sheet
    refs = [f"{c}{r}" for r in range(8, 12) for c in "FGH"] + ["H12", "G16", "H16", "H17", "B24", "B28", "B30",
                                                                 "B46", "B49", "B51", "B67", "B68", "B70"]
    for ref in refs:
        assert lite.value(ref) == close(direct.value(ref)), ref
    assert (lite.value("H12"), lite.value("B51"), lite.value("B70")) == (20_800.0, 15_298.06, 95_298.06)
    assert [lite.value(f"F{r}") for r in (41, 42, 43)] == [error("#DIV/0!"), error("#N/A"), error("#VALUE!")]


# ---------------------------------------------------------------------------------------------
# Payout kinds (issue 15) through the dispatcher: scalars, tiers as ranges, text modes, spills, errors
# ---------------------------------------------------------------------------------------------

TIERS = [["From", "Rate"], [0, 0.03], [1_000_000, 0.05]]

PAYOUT_KINDS = [
    ("KPI_FIXED", [1.04, 1, 5000, None], 5000.0),
    ("KPI_FIXED", [0.999, 1, 5000, None], 0.0),
    ("KPI_PROPORTIONAL", [20000, 0.3, 0.875, None, None], 5250.0),
    ("KPI_PROPORTIONAL", [20000, 0.3, 0.875, 5000, None], 5000.0),
    ("KPI_PER_UNIT", [14, 10, 500, None, None, None], 2000.0),
    ("KPI_PER_UNIT", [14, 0, [["From", "Rate"], [0, 100], [10, 500]], None, "retroactive", None], 7000.0),
    ("KPI_SHARE", [1200000, 0.03, None, None, None], 36000.0),
    ("KPI_SHARE", [1200000, TIERS, None, None, None], 40000.0),
    ("KPI_SHARE", [1200000, TIERS, None, "Ретроактивная", None], 60000.0),
    ("KPI_SHARE", [1234567.89, 0.03, None, None, 0], 37037.0),
]


@pytest.mark.parametrize(("name", "args", "expected"), PAYOUT_KINDS, ids=[f"{n}{i}" for i, (n, _, _) in
                                                                          enumerate(PAYOUT_KINDS)])
def test_payout_kinds(officejs, name, args, expected):
    out = one(officejs.call(name, *args))
    assert out == expected
    assert out == getattr(udfs, name)(*args)  # the same as the direct call (and so the engine)


def test_payout_kind_spills_and_errors(officejs):
    out = officejs.call("KPI_SHARE", [[1200000], [900000], [None], [error("#REF!")]], TIERS, None, None, None)
    assert out == [[40000.0], [27000.0], [NA], [returned("#REF!")]]
    assert one(officejs.call("KPI_SHARE", 100, -0.03, None, None, None)) == NUM  # a negative rate
    assert one(officejs.call("KPI_SHARE", 100, TIERS, None, "progressive", None)) == VALUE
    assert one(officejs.call("KPI_FIXED", 1, None, 5000, None)) == NA


def test_payout_kinds_with_empty_cells_as_0(officejs):
    """Excel desktop: an empty max_payout cell arrives as 0, a cap of 0 that pays nothing. Leave it out."""
    assert one(officejs.call("KPI_SHARE", 1200000, 0.03, 0, None, None)) == 0.0
    assert one(officejs.call("KPI_SHARE", 1200000, 0.03, None, None, None)) == 36000.0
