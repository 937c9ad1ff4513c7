"""The compiled source path: Ibis expressions on DuckDB, no user text pasted into SQL, lazy imports,
and a ``backend=`` through which another engine plugs in."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.sources import evaluate
from xl_kpi.inputs.sources.backend import DuckDBBackend
from xl_kpi.inputs.tables import Table


def table(name: str, rows: list[list]) -> Table:
    header, *data = rows
    frame = pd.DataFrame(data, columns=header, dtype=object)
    frame.index = pd.RangeIndex(2, 2 + len(frame))
    return Table(name, f"{name}.csv", frame, {h: chr(ord("A") + i) for i, h in enumerate(header)})


HOSTILE = table("deals", [
    ['emp"; DROP TABLE x; --', "status'", "amount"],
    ["M1", "won'; DROP TABLE deals; --", "100"],
    ["M1", "won", "50"],
    ["M2", "won'; DROP TABLE deals; --", None],
])


def facts(frame: pd.DataFrame) -> dict[str, float]:
    return dict(zip(frame["employee_id"], frame["fact"], strict=True))


def test_names_and_values_with_quotes_are_data_not_sql() -> None:
    src = """sum deals.amount where "status'" = «won'; DROP TABLE deals; --» by 'emp"; DROP TABLE x; --'"""
    out = evaluate(src, [HOSTILE])
    assert facts(out) == {"M1": 100.0, "M2": 0.0}


def test_a_comparison_with_an_empty_cell_is_false_also_under_not() -> None:
    out = evaluate("count deals where not (amount > 60) by 'emp\"; DROP TABLE x; --'", [HOSTILE])
    assert facts(out) == {"M1": 1.0, "M2": 1.0}  # M2's empty amount is not > 60, so "not" keeps it


class CountingBackend(DuckDBBackend):
    """The real DuckDB backend, counting the queries it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.queries = 0

    def execute(self, expr):  # type: ignore[no-untyped-def]
        self.queries += 1
        return super().execute(expr)


def test_a_given_backend_runs_the_queries() -> None:
    backend = CountingBackend()
    out = evaluate("sum deals.amount by 'emp\"; DROP TABLE x; --'", [HOSTILE], backend=backend)
    assert facts(out) == {"M1": 150.0, "M2": 0.0}
    assert backend.queries >= 1


def test_bad_numbers_outside_the_filter_are_not_reported_inside_are() -> None:
    deals = table("deals", [["employee_id", "status", "amount"], ["M1", "won", "12,5"], ["M1", "lost", "abc"],
                            ["M2", "won", "1,234"]])
    problems = Problems()
    out = evaluate("sum deals.amount where status = won", [deals], problems=problems)
    assert facts(out)["M1"] == 12.5
    cells = [(p.row, p.column) for p in problems.errors]
    assert cells == [(4, "C")]  # row 3 ("abc") is filtered out, row 4 ("1,234", ambiguous) is counted


def test_engine_and_udfs_import_without_the_query_engine() -> None:
    code = textwrap.dedent("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("ibis", "duckdb", "pyarrow", "sqlglot"):
                    raise ImportError("blocked " + name)
        sys.meta_path.insert(0, Block())
        import xl_kpi, udfs, xl_kpi.inputs.sources, xl_kpi.inputs.facts
        from xl_kpi.inputs.sources import parse
        parse("sum deals.amount where status = won by manager")
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("func,expected", [("mean", 75.0), ("min", 50.0), ("max", 100.0), ("median", 75.0)])
def test_value_aggregations(func: str, expected: float) -> None:
    out = evaluate(f"{func} deals.amount by 'emp\"; DROP TABLE x; --'", [HOSTILE])
    assert facts(out)["M1"] == expected
    assert pd.isna(facts(out)["M2"])
