"""Validation: each problem triggered by a minimal bad input, located by file, sheet, row and column."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import _plan_helpers as ph
from xl_kpi.cli import app
from xl_kpi.inputs.plan import SAMPLE_DIR, sample_inputs
from xl_kpi.inputs.problems import Problem, Problems
from xl_kpi.validate import validate

runner = CliRunner()


def check(tmp_path: Path, sheets=None, facts=None, extra=(), **kw) -> Problems:
    """Validate a plan (plan_sheets() by default) with a facts file (facts_rows() by default)."""
    plan = ph.make_plan(tmp_path, sheets)
    data = [ph.make_facts(tmp_path, facts)] if facts is not False else []
    return validate(plan, [*data, *extra], **kw)


def where(p: Problem) -> tuple:
    return (p.file, p.sheet, p.row, p.column, p.header)


def test_the_good_plan_and_the_sample_are_clean(tmp_path):
    assert len(check(tmp_path)) == 0
    plan, data = sample_inputs()
    problems = validate(plan, data)
    assert not problems.has_errors, [str(p) for p in problems]
    assert len(problems.warnings) == 0, [str(p) for p in problems]


# ------------------------------------------------------------------------------------ plan


def test_missing_sheet(tmp_path):
    sheets = ph.plan_sheets()
    del sheets["Employees"]
    p = ph.only(check(tmp_path, sheets).errors, "missing sheet Employees")
    assert (p.file, p.sheet) == ("plan.xlsx", "Employees")
    assert "KPIs" in p.message and "Сотрудники" in p.fix and "bonus_pool" in p.fix


def test_missing_column(tmp_path):
    sheets = ph.plan_sheets()
    for r in sheets["Employees"]:
        del r[7]  # bonus_pool
    p = ph.only(check(tmp_path, sheets).errors, "missing column bonus_pool")
    assert (p.file, p.sheet, p.row, p.header) == ("plan.xlsx", "Employees", 1, "bonus_pool")
    assert "Премиальный фонд" not in p.fix or "bonus pool" in p.fix


def test_duplicate_employee_id(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Employees"][3][0] = "E1"
    p = ph.only(check(tmp_path, sheets).errors, 'duplicate employee_id "E1"')
    assert where(p) == ("plan.xlsx", "Employees", 4, "A", "employee_id")
    assert "first in row 2" in p.message


def test_employee_whose_position_has_no_plan(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Employees"].append(["E4", "Новиков Олег", "Courier", "Logistics", "", "", 30000, 5000])
    p = ph.only(check(tmp_path, sheets).errors, "has no KPIs")
    assert where(p) == ("plan.xlsx", "Employees", 5, "C", "position")
    assert '"Courier"' in p.message and "E4" in p.message


def test_weights_not_summing_to_100_show_the_sum(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 3, "weight", 0.5)  # account managers: 0.4 + 0.5
    problems = check(tmp_path, sheets)
    p = ph.only(problems.errors, "sum to 90%")
    assert where(p) == ("plan.xlsx", "Plan", 2, "D", "weight")
    assert '"Account manager"' in p.message and "2 employees" in p.message and "rows 2–3" in p.message


def test_weights_typed_as_whole_percent_get_a_hint(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 4, "weight", 50)
    ph.set_cell(sheets, "Plan", 5, "weight", 50)
    p = ph.only(check(tmp_path, sheets).errors, "sum to 10000%")
    assert "40 instead of 40%" in p.message and p.row == 4


def test_norm_equal_to_base(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 3, "norm", 10)
    p = ph.only(check(tmp_path, sheets).errors, "norm equals base")
    assert where(p) == ("plan.xlsx", "Plan", 3, "F", "norm")


def test_unknown_kpi_and_scale(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Plan", 2, "kpi_id", "deal")
    ph.set_cell(sheets, "Plan", 5, "scale", "linear2")
    problems = check(tmp_path, sheets)
    p = ph.only(problems.errors, 'unknown kpi_id "deal"')
    assert where(p) == ("plan.xlsx", "Plan", 2, "C", "kpi_id")
    p = ph.only(problems.errors, 'unknown scale "linear2"')
    assert where(p) == ("plan.xlsx", "Plan", 5, "I", "scale")


def test_unsorted_scale(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Scales"][2][1] = 0.4  # lin: 0.5, 0.4, 1.5
    p = ph.only(check(tmp_path, sheets).errors, "not sorted")
    assert where(p) == ("plan.xlsx", "Scales", 3, "B", "threshold")
    assert "40%" in p.message and "50%" in p.message and "lowest first" in p.fix


def test_personal_plan_for_unknown_employee_and_floor_above_cap(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Plan"].append([None, "E9", "deals", 0.4, 1, 2, None, None, None, None])
    ph.set_cell(sheets, "Plan", 2, "floor", 1.2)
    ph.set_cell(sheets, "Plan", 2, "cap", 1.0)
    problems = check(tmp_path, sheets)
    assert where(ph.only(problems.errors, 'unknown employee "E9"')) == ("plan.xlsx", "Plan", 6, "B", "employee_id")
    assert where(ph.only(problems.errors, "floor 120% is above cap 100%"))[2:4] == (2, "G")


def test_bad_cells_in_employees(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "Employees", 2, "bonus_pool", "twenty")
    ph.set_cell(sheets, "Employees", 3, "bonus_pool", None)
    ph.set_cell(sheets, "Employees", 4, "salary", -5)
    problems = check(tmp_path, sheets)
    assert where(ph.only(problems.errors, '"twenty"'))[2:4] == (2, "H")
    assert where(ph.only(problems.errors, "bonus_pool is empty"))[2:4] == (3, "H")
    assert where(ph.only(problems.errors, "salary -5 is below 0"))[2:4] == (4, "G")


def test_source_syntax_error_is_located_at_the_source_cell(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals where")
    p = ph.only(check(tmp_path, sheets).errors, "source cannot be read")
    assert where(p) == ("plan.xlsx", "KPIs", 2, "D", "source")


# ----------------------------------------------------------------------------------- facts


def test_facts_for_unknown_employees_or_kpis(tmp_path):
    problems = check(tmp_path, facts={("E7", "deals"): 1, ("E1", "sales"): 2})
    p = ph.only(problems.errors, 'unknown employee "E7"')
    assert where(p) == ("facts.csv", None, 8, "A", "employee_id")
    p = ph.only(problems.errors, 'unknown KPI "sales"')
    assert where(p) == ("facts.csv", None, 9, "B", "kpi_id")


def test_missing_facts_name_the_employee_and_kpi(tmp_path):
    problems = check(tmp_path, facts={("E2", "complaints"): ...})
    p = ph.only(problems.errors, "missing fact")
    assert "E2" in p.message and "Петров Пётр" in p.message and "complaints" in p.message
    assert where(p) == ("plan.xlsx", "Employees", 3, "A", "employee_id")


def test_many_missing_facts_are_summed_up(tmp_path):
    problems = check(tmp_path, facts=False)
    errors = ph.matching(problems.errors, "missing fact")
    assert len(errors) == 6  # 6 lines, below the listing limit: each one
    sheets = ph.plan_sheets()
    for i in range(4, 12):
        sheets["Employees"].append([f"E{i}", f"N{i}", "Support", "S", "", "", 1, 1])
    problems = check(tmp_path, sheets, facts=False)
    summary = ph.only(problems.errors, "KPI complaints for")
    assert "KPI complaints for 6 more employees" in summary.message


def test_non_numeric_and_empty_facts(tmp_path):
    problems = check(tmp_path, facts={("E1", "deals"): "сто", ("E2", "deals"): "1,234", ("E3", "nps"): ""})
    p = ph.only(problems.errors, '"сто"')
    assert where(p) == ("facts.csv", None, 2, "C", "fact")
    assert where(ph.only(problems.errors, "ambiguous"))[2] == 4
    assert where(ph.only(problems.errors, "fact is empty"))[2] == 7


def test_duplicate_facts(tmp_path):
    rows = [*ph.facts_rows(), ["E1", "deals", 170]]
    ph.make_plan(tmp_path)
    f = ph.write_csv(tmp_path / "facts.csv", rows)
    p = ph.only(validate(tmp_path / "plan.xlsx", [f]).errors, "second fact")
    assert where(p)[:4] == ("facts.csv", None, 8, "A") or where(p)[:3] == ("facts.csv", None, 8)


def test_facts_for_other_periods_are_ignored_with_a_warning(tmp_path):
    rows = [["employee_id", "kpi_id", "fact", "period"]] + [[*r, "2026-10"] for r in ph.facts_rows()[1:]]
    rows[1][3] = "2026-09"  # E1 deals
    ph.make_plan(tmp_path)
    f = ph.write_csv(tmp_path / "facts.csv", rows, sep=";")
    problems = validate(tmp_path / "plan.xlsx", [f])
    w = ph.only(problems.warnings, "another period")
    assert w.file == "facts.csv" and "2026-09" in w.message and "rows 2" in w.message and w.column == "D"
    assert "E1" in ph.only(problems.errors, "missing fact").message


def test_fact_far_outside_is_a_warning_only(tmp_path):
    problems = check(tmp_path, facts={("E1", "deals"): 1600})
    w = ph.only(problems.warnings, "far outside")
    assert where(w)[:4] == ("facts.csv", None, 2, "C") and "3000%" in w.message
    assert not problems.has_errors


def test_source_overridden_by_a_facts_file_row_is_a_warning(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals where status = won")
    deals = ph.write_csv(tmp_path / "deals.csv", [["employee_id", "status"]] + [["E1", "won"]] * 160
                         + [["E2", "won"]] * 130)
    problems = check(tmp_path, sheets, extra=[deals])
    w = ph.only(problems.warnings, "employee E1, KPI deals is given here and also derived from raw data")
    assert where(w)[:3] == ("facts.csv", None, 2)
    assert not problems.has_errors


# -------------------------------------------------------------------------------- raw data


def test_source_naming_a_missing_file_or_column(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals where status = won")
    ph.set_cell(sheets, "KPIs", 4, "source", "nps surveys.rating")
    surveys = ph.write_csv(tmp_path / "surveys.csv", [["employee_id", "score"], ["E3", 9]])
    problems = check(tmp_path, sheets, facts={("E1", "deals"): ..., ("E2", "deals"): ..., ("E3", "nps"): ...},
                     extra=[surveys])
    p = ph.only(problems.errors, 'names table "deals"')
    assert where(p) == ("plan.xlsx", "KPIs", 2, "D", "source") and "surveys" in p.message
    p = ph.only(problems.errors, 'no column "rating"')
    assert where(p) == ("plan.xlsx", "KPIs", 4, "D", "source") and "score" in p.message
    assert not ph.matching(problems.errors, "missing fact")  # not repeated for every employee


def test_raw_data_outside_the_period(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "count deals dated closed")
    deals = ph.write_csv(tmp_path / "deals.csv", [["employee_id", "closed"], ["E1", "30.09.2026"],
                                                   ["E2", "01.09.2026"]], sep=";")
    problems = check(tmp_path, sheets, facts={("E1", "deals"): ..., ("E2", "deals"): ...}, extra=[deals])
    p = ph.only(problems.errors, "dated in 2026-10")
    assert where(p) == ("deals.csv", None, None, "B", "closed")
    assert "01.09.2026" in p.message and "30.09.2026" in p.message


def test_unreadable_dates_and_numbers_in_raw_data(tmp_path):
    sheets = ph.plan_sheets()
    ph.set_cell(sheets, "KPIs", 2, "source", "sum deals.amount dated closed")
    deals = ph.write_csv(tmp_path / "deals.csv", [["employee_id", "closed", "amount"], ["E1", "1.10.2026", "160"],
                                                   ["E2", "10/12/2026", "1"], ["E2", "2.10.2026", "n/a"]])
    problems = check(tmp_path, sheets, facts={("E1", "deals"): ..., ("E2", "deals"): ...}, extra=[deals])
    assert where(ph.only(problems.errors, "10/12/2026"))[:4] == ("deals.csv", None, 3, "B")
    assert where(ph.only(problems.errors, '"n/a"'))[:4] == ("deals.csv", None, 4, "C")


def test_hired_after_the_period_is_a_warning_left_before_hired_an_error(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Employees"][0] += ["hired", "left"]
    sheets["Employees"][1] += ["2026-11-05", None]
    sheets["Employees"][2] += ["2026-10-20", "2026-10-10"]
    sheets["Employees"][3] += [None, None]
    problems = check(tmp_path, sheets)
    w = ph.only(problems.warnings, "hired after the period")
    assert where(w)[:4] == ("plan.xlsx", "Employees", 2, "I")
    e = ph.only(problems.errors, "is before hired")
    assert where(e)[:4] == ("plan.xlsx", "Employees", 3, "J")


def test_proration_without_a_period_is_an_error(tmp_path):
    sheets = ph.plan_sheets()
    del sheets["Settings"]
    sheets["Employees"][0].append("hired")
    sheets["Employees"][1].append("13.10.2026")
    p = ph.only(check(tmp_path, sheets).errors, "period is unknown")
    assert (p.file, p.sheet) == ("plan.xlsx", "Settings")
    assert not check(tmp_path, sheets, period="2026-10").has_errors


def test_every_problem_is_reported_at_once(tmp_path):
    sheets = ph.plan_sheets()
    sheets["Employees"][3][0] = "E1"
    ph.set_cell(sheets, "Plan", 3, "norm", 10)
    sheets["Scales"][2][1] = 0.4
    problems = check(tmp_path, sheets, facts={("E1", "deals"): "x"})
    texts = " | ".join(p.message for p in problems.errors)
    for part in ("duplicate employee_id", "norm equals base", "not sorted", '"x" is not a number'):
        assert part in texts


# ------------------------------------------------------------------------------------- CLI


def test_cli_exit_codes_and_output(tmp_path):
    plan = ph.make_plan(tmp_path)
    facts = ph.make_facts(tmp_path)
    ok = runner.invoke(app, ["validate", "--plan", str(plan), "--data", str(facts)])
    assert ok.exit_code == 0, ok.output
    assert "0 errors, 0 warnings" in ok.output
    bad = ph.make_facts(tmp_path, {("E1", "deals"): "x", ("E2", "deals"): 1600}, name="bad.csv")
    res = runner.invoke(app, ["validate", "--plan", str(plan), "--data", str(bad)])
    assert res.exit_code == 1
    out = res.output
    assert out.index("bad.csv") < out.index('"x" is not a number')
    assert "row 2, column C (fact)" in out and "fix:" in out
    assert out.strip().splitlines()[-1] == "1 error, 1 warning"
    assert runner.invoke(app, ["validate"]).exit_code == 2
    assert runner.invoke(app, ["validate", "--plan", str(tmp_path / "nope.xlsx")]).exit_code == 2
    assert runner.invoke(app, ["validate", "--plan", str(plan), "--period", "2026-13"]).exit_code == 2


@pytest.mark.slow
def test_cli_takes_several_files_after_one_data_option_and_folders(tmp_path):
    plan, data = sample_inputs()
    res = runner.invoke(app, ["validate", "--plan", str(plan), "--data", *map(str, data)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["validate", "--plan", str(plan), "--data", str(SAMPLE_DIR)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["validate", "--plan", str(plan), "--data", str(data[0])])
    assert res.exit_code == 1


def test_validate_writes_nothing(tmp_path):
    plan = ph.make_plan(tmp_path)
    facts = ph.make_facts(tmp_path, {("E1", "deals"): "x"})
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    runner.invoke(app, ["validate", "--plan", str(plan), "--data", str(facts)])
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


@pytest.mark.slow
@pytest.mark.parametrize("args, code", [([], 0), (["--period", "2026-11"], 1)])
def test_python_dash_m(tmp_path, args, code):
    plan, data = sample_inputs()
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"}
    res = subprocess.run([sys.executable, "-m", "xl_kpi", "validate", "--plan", str(plan), "--data",
                          *map(str, data), *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                         encoding="utf-8")
    assert res.returncode == code, res.stdout + res.stderr
    # the sample plan's Settings say ru: the report speaks Russian (docs: languages)
    assert res.stdout.strip().splitlines()[-1].endswith(("предупреждений", "предупреждение", "предупреждения"))


def test_validate_does_not_collect_the_drill_rows(monkeypatch):
    """validate reports the same problems without the cards' drill-down rows (a query per term saved)."""
    import xl_kpi.inputs.facts as facts_module
    from xl_kpi.inputs.plan import sample_inputs
    from xl_kpi.validate import inspect, validate

    plan, data = sample_inputs()
    expected = [str(p) for p in inspect(plan, data)[2]]
    calls: list[str] = []
    real = facts_module.rows_of_source
    monkeypatch.setattr(facts_module, "rows_of_source", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    got = [str(p) for p in validate(plan, data)]
    assert calls == [] and got == expected


def test_validate_imports_no_writer_and_no_ibis():
    """`xl-kpi validate` writes nothing, so it loads neither the workbook writers nor Ibis (their imports
    are a good part of a validation's fixed cost); a column's letters come from xl_kpi's own helper, and the
    XML entities of a sheet's text are decoded without xml.sax (which imports urllib, http and ssl)."""
    plan, data = sample_inputs()
    code = (  # a finished validate ends at once (os._exit after the atexit hooks): the check is an atexit hook
        "import atexit, contextlib, io, runpy, sys\n"
        f"sys.argv = ['xl-kpi', 'validate', '--plan', {str(plan)!r}, '--data', *{[str(p) for p in data]!r}]\n"
        "out = sys.stdout\n"
        "atexit.register(lambda: print(0, sorted({m.split('.')[0] for m in sys.modules} & {'openpyxl', "
        "'xlsxwriter', 'ibis'}), sorted(set(sys.modules) & {'xml.sax', 'ssl'}), file=out))\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    runpy.run_module('xl_kpi', run_name='__main__')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "0 [] []", done.stdout + done.stderr


def test_column_letters_are_openpyxls():
    from openpyxl.utils.cell import column_index_from_string, get_column_letter

    from xl_kpi.inputs.readers.letters import column_letter, column_number

    for n in (*range(1, 800), 18277, 18278):
        assert column_letter(n) == get_column_letter(n)
        assert column_number(get_column_letter(n)) == column_index_from_string(get_column_letter(n)) == n
    assert column_number("xfd") == 16384
    for bad in (0, 18279):
        with pytest.raises(ValueError):
            column_letter(bad)
    for text in ("", "AAAA", "A1", "Ж"):
        with pytest.raises(ValueError):
            column_number(text)


@pytest.mark.parametrize("chosen", [None, "system"])
def test_validate_has_pyarrow_allocate_with_jemalloc_unless_the_environment_chooses(chosen):
    code = (
        "import pyarrow as pa\n"
        "from xl_kpi.cli import _arrow_memory_pool\n"
        "try:\n"
        "    pa.jemalloc_memory_pool()\n"
        "    has = True\n"
        "except NotImplementedError:\n"
        "    has = False\n"
        "_arrow_memory_pool()\n"
        "print(has, pa.default_memory_pool().backend_name)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    has, backend = done.stdout.split()
    assert backend == (chosen or ("jemalloc" if has == "True" else backend)), done.stderr


def test_the_report_is_the_same_text_on_a_terminal_and_in_a_file_and_coloured_only_on_the_terminal():
    import io
    import re

    from rich.console import Console

    from xl_kpi.i18n import Msg
    from xl_kpi.inputs.problems import Problems
    from xl_kpi.validate import render

    problems = Problems()
    problems.warning(Msg("fact {fact:.6g} for {who}, KPI {kpi} is far outside base..norm ({base:.6g}..{norm:.6g}): "
                         "score {score}", fact=7.5e9, who="E1", kpi="revenue", base=2e6, norm=3.5e6, score="1500%"),
                     Msg("check the units (a percentage typed as 40 instead of 40% or 0.4?) and the data"),
                     file="deals.csv", row=12, column="C")
    problems.error(Msg("the file is empty"), Msg("remove it from --data or fill it in"), file="/data/x 'y'.csv")
    shown = {}
    for terminal in (True, False):
        out = io.StringIO()
        render(problems, Console(file=out, force_terminal=terminal, color_system="standard" if terminal else None,
                                 width=200), "en")
        shown[terminal] = out.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown[True])
    assert plain == shown[False] and "\x1b[" not in shown[False]
    assert re.search(r"fact \x1b\[[0-9;]+m7\.5e\+09\x1b\[0m", shown[True])  # a number of a message highlighted
    # on the terminal, as rich does
