"""The compiled source path: Ibis expressions on DuckDB, no user text pasted into SQL, lazy imports,
and a ``backend=`` through which another engine plugs in."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from xl_kpi.engine.period import Period
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


def test_a_term_met_again_is_queried_once_with_the_same_facts_and_problems() -> None:
    from xl_kpi.inputs.sources import Evaluator

    deals = table("deals", [["employee_id", "status", "amount", "closed"],
                            ["M1", "won", "100", "01.10.2026"], ["M1", "won", "abc", "02.10.2026"],
                            ["M2", "won", "50", ""], ["M2", "lost", "7", "03.10.2026"]])
    revenue = "sum deals.amount where status = won dated closed"
    share = "sum deals.amount where status = won and amount > 60 / sum deals.amount where status = won dated closed"
    backend, problems = CountingBackend(), Problems()
    ev = Evaluator([deals], problems, backend=backend)

    def run(source: str, row: int) -> dict[str, float]:
        return facts(ev.evaluate(source, period=Period.parse("2026-10"), employees=["M1", "M2"], at={"row": row}))

    assert run(revenue, 2) == {"M1": 100.0, "M2": 0.0}
    queries, reported = backend.queries, [str(p) for p in problems]
    assert len(reported) == 2  # "abc" and the row with no date
    assert run(revenue, 3) == {"M1": 100.0, "M2": 0.0}
    assert backend.queries == queries  # the same term again: no query
    assert [str(p) for p in problems] == reported  # and nothing reported twice
    shared = run(share, 4)
    alone = facts(evaluate(share, [deals], period="2026-10", employees=["M1", "M2"], problems=Problems()))
    assert shared["M1"] == alone["M1"] == 1.0 and pd.isna(shared["M2"]) and pd.isna(alone["M2"])  # M2: 0 / 0


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


# ------------------------------------------------------------------------ CSV read by pyarrow

CSV_CASES = {
    "bitrix": '"ID";"Ответственный";"Сумма";"Дата закрытия";"Комментарий"\r\n'
              '"1";"E1";"150 000,00";"03.10.2026 14:05:00";"две\r\nстроки"\r\n'
              '"2";"E2";"1\u00a0234,5";"31.10.2026 23:59:59";""\r\n'
              '"3";"E1";"12,5";"";"кавычка "" внутри"\r\n',
    "blank-lines": "employee_id;amount\n\nE1;5\n;\nE2;abc\n",
    "title-row": "Выгрузка сделок;;\nemployee_id;amount;closed\nE1;5;01.10.2026\n",
    "bom-comma": "\ufeffemployee_id,amount\nE1,\"1,5\"\nE2,7\n",
    # the first column often empty: rows kept by a later column, a row of spaces only left out
    "sparse-first-column": "note;employee_id;amount\n;E1;5\n  ; ;\n;;7\nx;;\n; \t;\n",
}


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_the_arrow_reader_gives_the_table_the_line_reader_gives(tmp_path, name: str) -> None:
    from xl_kpi.inputs.readers import read_csv_grid
    from xl_kpi.inputs.tables import ArrowTable, read_tables, table_from_grid

    path = tmp_path / "deals.csv"
    path.write_bytes(CSV_CASES[name].encode("utf-8" if name == "bom-comma" else "cp1251"))
    (fast,) = read_tables(path)
    assert isinstance(fast, ArrowTable)
    slow = table_from_grid(read_csv_grid(path), name="deals", file="deals.csv")
    assert fast.headers == list(slow.frame.columns)
    assert list(fast.rows) == list(slow.frame.index)
    assert fast.frame.astype(object).where(fast.frame.notna(), None).values.tolist() == \
        slow.frame.astype(object).where(slow.frame.notna(), None).values.tolist()
    assert fast.letters == slow.letters


def test_bad_cells_of_an_arrow_table_are_located_below_blank_and_multiline_rows(tmp_path) -> None:
    from xl_kpi.inputs.tables import read_tables

    path = tmp_path / "deals.csv"
    path.write_bytes(('"employee_id";"note";"amount";"closed"\r\n"E1";"a\r\nb";"150 000,00";"01.10.2026 10:00:00"\r\n'
                      '\r\n"E1";"";"1,234";"05.10.2026"\r\n"E1";"";"1";"31.02.2026"\r\n"E2";"";"7";"02.10.2026"\r\n')
                     .encode("cp1251"))
    problems = Problems()
    out = evaluate("sum deals.amount dated closed", read_tables(path), period="2026-10", problems=problems)
    assert facts(out) == {"E1": 150000.0, "E2": 7.0}
    located = sorted((p.row, p.column) for p in problems.errors)
    assert located == [(4, "C"), (5, "D")]  # the record after a two-line value and a blank line is row 4
    assert any("ambiguous" in p.message for p in problems.errors)
    assert any("31.02.2026" in p.message for p in problems.errors)


def test_a_data_file_beyond_source_cells_is_refused_and_cells_no_longer_bounds_data(tmp_path, monkeypatch) -> None:
    from xl_kpi.inputs.readers import FileReadError
    from xl_kpi.inputs.tables import read_tables

    path = tmp_path / "deals.csv"
    path.write_text("employee_id;amount\n" + "".join(f"E{i};{i}\n" for i in range(50)), encoding="utf-8")
    monkeypatch.setenv("XL_KPI_MAX_CELLS", "10")  # the plan's limit: raw data is not bound by it
    assert read_tables(path)[0].num_rows == 50
    monkeypatch.setenv("XL_KPI_MAX_SOURCE_CELLS", "60")
    with pytest.raises(FileReadError, match="102 cells, more than the 60 one data file may have") as e:
        read_tables(path)
    assert "XL_KPI_MAX_SOURCE_CELLS=102" in e.value.fix


# ------------------------------------------------------------------------ DuckDB's own API == Ibis on DuckDB

class IbisOnDuckDB:
    """The Ibis path on DuckDB (what the default engine ran before it built DuckDB relations itself): a
    backend without ``relation``, so the evaluator compiles through Ibis."""

    def __init__(self) -> None:
        self.duck = DuckDBBackend()

    def table(self, data):  # type: ignore[no-untyped-def]
        return self.duck.table(data)

    def execute(self, expr):  # type: ignore[no-untyped-def]
        return self.duck.execute(expr)


EVERY_KIND = table("deals", [
    ["employee_id", "status", "amount", "closed", "opened", "key", "score", "client"],
    ["M1", "won", "100", "03.10.2026 14:05:00", "01.10.2026 09:00:00", "да", "10", "K1"],
    ["M1", "Won ", "50,5", "31.10.2026", "30.10.2026 12:00", "нет", "9", "K1"],
    ["M1", "lost", "abc", "15.09.2026", "01.09.2026", "yes", "6", "K2"],
    ["M1", "won", "1 234,00", "", "01.10.2026", "maybe", "11", "K3"],
    ["M2", "open", None, "12.10.2026", "13.10.2026", "no", "3", None],
    ["M2", "won", "-7", "32.10.2026", "01.10.2026", "1", "7.5", "K4"],
    ["M2", "won", "20", "20.10.2026 08:00", "18.10.2026 08:00", "0", "8", "K4"],
    [None, "won", "5", "05.10.2026", "01.10.2026", "да", "10", "K5"],
    ["M3", "lost", "0", "2026-10-07", "2026-10-01", "", "", "K6"],
])

EVERY_SOURCE = [
    "count deals", "count deals where status = won dated closed", "sum deals.amount where status = won",
    "sum deals.amount where amount >= 50 and not (status in (lost, open)) dated closed",
    "mean deals.amount dated closed", "min deals.amount", "max deals.amount where key = yes",
    "median deals.amount", "median deals.amount where key != да or status is empty",
    "distinct deals.client where client is not empty",
    "count distinct deals.client dated closed", "nps deals.score", "nps deals.score dated closed",
    "mean hours deals.opened to closed", "sum days from deals.opened to closed where status = won",
    "count deals where closed >= 2026-10-10 and closed < 2026-10-21", "count deals where amount < 1000",
    "count deals where status = won / count deals * 100", "(sum deals.amount dated closed) / (count deals)",
]


@pytest.mark.parametrize("period", [None, "2026-10", "2026-Q3"])
def test_duckdb_relations_give_what_ibis_gives_with_the_same_problems(period: str | None) -> None:
    backends = (DuckDBBackend(), IbisOnDuckDB())
    for src in EVERY_SOURCE:
        got: list[tuple[pd.DataFrame, list[str]]] = []
        for backend in backends:
            problems = Problems()
            out = evaluate(src, [EVERY_KIND], period=period, employees=["M1", "M2", "M4"], problems=problems,
                           backend=backend)  # type: ignore[arg-type]
            got.append((out, [str(p) for p in problems]))
        (native, native_problems), (ibis_out, ibis_problems) = got
        pd.testing.assert_frame_equal(native, ibis_out, check_exact=False, rtol=1e-12, obj=src)
        assert native_problems == ibis_problems, src
        assert native["fact"].notna().any() or period == "2026-Q3", src  # the sources do find rows


def test_the_default_engine_runs_sources_without_importing_ibis() -> None:
    code = textwrap.dedent("""
        import sys
        import pandas as pd
        from xl_kpi.inputs.sources import evaluate
        from xl_kpi.inputs.tables import Table
        frame = pd.DataFrame([["M1", "won", "100", "03.10.2026"]], columns=["employee_id", "s", "a", "d"],
                             dtype=object)
        frame.index = pd.RangeIndex(2, 3)
        out = evaluate("sum t.a where s = won dated d", [Table("t", "t.csv", frame, {})], period="2026-10")
        print(out["fact"].tolist(), "ibis" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "[100.0] False", done.stderr


@pytest.mark.parametrize("convert", ["_fast_dates", "_fast_numbers", "_fast_flags"])
def test_a_column_that_repeats_its_values_converts_as_cell_by_cell(convert: str) -> None:
    import pyarrow as pa

    from xl_kpi.inputs.sources import columns

    cells = ["03.10.2026 14:05:00", "31.02.2026", None, "2026-10-31", "x", "150 000,50", "1,234", "да", "No", "-0,5"]
    for n in (50, 300):  # few cells: converted whole; many (3,000): once per distinct value, then spread
        values = pa.array(cells * n, pa.string())
        fast = getattr(columns, convert)
        assert columns._per_distinct(values, fast).equals(fast(values))


@pytest.mark.parametrize("kind", ["ids", "text", "numbers", "dates", "flags"])
def test_a_long_column_converted_in_parts_is_the_column_converted_whole(monkeypatch, kind: str) -> None:
    import pyarrow as pa

    from xl_kpi.inputs.sources import columns
    from xl_kpi.inputs.tables import ArrowTable

    cells = [" 03.10.2026 14:05:00", "31.02.2026", None, "2026-10-31 ", "x", "150 000,50", "1,234", "Да", "No", "-0,5",
             "", "  ", "Ёлка"]
    data = pa.table({"c": pa.array([cells[(i * 7) % len(cells)] for i in range(1000)], pa.string())})
    table = ArrowTable("t", "t.csv", None, {"c": "A"}, header_row=1, data=data,
                       rows=__import__("numpy").arange(2, 1002))
    monkeypatch.setattr(columns, "_cores", lambda: 1)
    whole = columns.Columns(table).get("c", kind)
    monkeypatch.setattr(columns, "_cores", lambda: 3)
    monkeypatch.setattr(columns, "PART_ROWS", 300)  # three parts of 334, 334 and 332 cells
    parts: list[int] = []
    real = columns._per_distinct if kind not in ("ids", "text") else None
    if real is not None:
        monkeypatch.setattr(columns, "_per_distinct", lambda part, f: parts.append(len(part)) or real(part, f))
    split = columns.Columns(table).get("c", kind)
    assert split.values.equals(whole.values)
    assert (split.errors is None and whole.errors is None) or split.errors.equals(whole.errors)
    if real is not None:
        assert sorted(parts) == [332, 334, 334]
