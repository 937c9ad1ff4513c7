"""Spark and native tables (issue 11 §6): the compiled sources give the same facts on Spark as on the
embedded engine; Parquet files and folders and ``spark:db.table`` bound to a source's table name; the
errors of a missing table, a bad name or a missing Spark, each located with a fix.

Tests that ask for the ``spark`` fixture (one local session for the run) are marked ``spark``:
``make test-fast`` leaves them out, CI runs them and never skips them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from xl_kpi.engine.errors import KpiError
from xl_kpi.inputs.facts import load_facts
from xl_kpi.inputs.plan import read_plan
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.sources.engines import ENV, engine_name
from xl_kpi.inputs.sources.native import NativeError, location
from xl_kpi.inputs.tables import read_tables

KEY = ["employee_id", "kpi_id"]


def _facts(values: pd.DataFrame) -> pd.DataFrame:
    """employee × KPI → fact, sorted, for comparing two runs."""
    out = values[[*KEY, "fact"]].astype({"employee_id": object, "kpi_id": object, "fact": float})
    return out.sort_values(KEY).reset_index(drop=True)


def _write_parquet(table_path: Path, folder: Path, parts: int = 2) -> Path:
    """The raw table of ``table_path`` as a folder of ``parts`` Parquet files, cells as text (as exported)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = read_tables(table_path)[0].frame.reset_index(drop=True)
    frame = frame.astype(object).where(frame.notna(), None).map(lambda v: None if v is None else str(v))
    folder.mkdir(parents=True)
    step = -(-len(frame) // parts)
    for i in range(parts):
        chunk = frame.iloc[i * step:(i + 1) * step]
        pq.write_table(pa.Table.from_pandas(chunk, preserve_index=False), folder / f"part-{i:05d}.parquet")
    return folder


@pytest.fixture(scope="module")
def sample_plan(sample_company):
    return read_plan(sample_company.plan)


@pytest.fixture(scope="module")
def duckdb_facts(sample_company, sample_plan) -> pd.DataFrame:
    return _facts(load_facts(sample_plan, sample_company.data, engine="duckdb").values)


# ------------------------------------------------------------------------------------ locations, no Spark


def test_locations_are_told_apart(tmp_path):
    (tmp_path / "deals").mkdir()
    (tmp_path / "deals" / "part-0.parquet").write_bytes(b"")
    (tmp_path / "csvs").mkdir()
    (tmp_path / "csvs" / "a.csv").write_text("x\n1\n")
    assert location("spark:sales.deals").kind == "spark"
    assert location("SPARK:deals").target == "deals"
    assert location(tmp_path / "deals").kind == "parquet"
    assert location(tmp_path / "deals").default_name == "deals"
    assert location("x/deals_2026.parquet").default_name == "deals_2026"
    assert location("deals", base=tmp_path).target == str((tmp_path / "deals").resolve())
    assert location(tmp_path / "csvs") is None
    assert location(tmp_path / "csvs" / "a.csv") is None


@pytest.mark.parametrize("bad", ["spark:", "spark:a.b.c", "spark:sales.deals; DROP TABLE x", "spark:`x`"])
def test_a_spark_name_that_is_not_plain_is_refused(bad):
    with pytest.raises(NativeError) as e:
        location(bad)
    assert "spark:database.table" in e.value.fix


def test_native_entries_are_told_from_file_bindings(tmp_path):
    from xl_kpi.inputs.sources.native import is_native

    odd = tmp_path / "a=b.csv"
    odd.write_text("x\n1\n")
    assert is_native("deals=spark:sales.deals") and is_native("tickets=data/t.parquet") and is_native("spark:x")
    assert not is_native("bitrix=exports/DEAL_1.csv") and not is_native(odd) and not is_native("plain.csv")


def test_engine_name_from_argument_or_environment(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert engine_name() == "duckdb"
    monkeypatch.setenv(ENV, "Spark")
    assert engine_name() == "spark"
    assert engine_name("duckdb") == "duckdb"
    with pytest.raises(KpiError, match=r"XL_KPI_ENGINE.*duckdb or spark"):
        monkeypatch.setenv(ENV, "polars")
        engine_name()
    with pytest.raises(KpiError, match="--engine"):
        engine_name("oracle")


def test_parquet_folder_gives_the_facts_of_the_csv(sample_company, sample_plan, duckdb_facts, tmp_path):
    deals = next(p for p in sample_company.data if p.stem == "deals")
    folder = _write_parquet(deals, tmp_path / "export" / "deals_2026")
    others = [p for p in sample_company.data if p != deals]
    got = load_facts(sample_plan, [*others, f"deals={folder}"], engine="duckdb")
    pd.testing.assert_frame_equal(_facts(got.values), duckdb_facts)
    assert got.tables["deals"].file == str(folder)


def test_a_plain_parquet_path_is_named_after_it(sample_company, sample_plan, duckdb_facts, tmp_path):
    deals = next(p for p in sample_company.data if p.stem == "deals")
    folder = _write_parquet(deals, tmp_path / "deals", parts=3)
    others = [p for p in sample_company.data if p != deals]
    got = load_facts(sample_plan, [*others, folder], engine="duckdb")
    pd.testing.assert_frame_equal(_facts(got.values), duckdb_facts)


def test_only_the_columns_sources_use_are_read(sample_company, sample_plan, tmp_path):
    deals = next(p for p in sample_company.data if p.stem == "deals")
    folder = _write_parquet(deals, tmp_path / "deals")
    got = load_facts(sample_plan, [*sample_company.data[1:], f"deals={folder}"], problems=Problems())
    assert set(got.tables["deals"].frame.columns) == {"closed_at", "manager_id", "status", "amount", "key_client"}


def test_parquet_instants_are_read_as_the_wall_clock_time_of_their_zone(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from xl_kpi.inputs.sources.native import read_native

    utc = pa.array([dt.datetime(2026, 10, 31, 22, 0), None], pa.timestamp("us", tz="UTC"))
    table = pa.table({"closed_at": utc.cast(pa.timestamp("us", tz="Europe/Moscow")), "amount": ["150 000,00", None],
                      "utc": utc, "n": pa.array([5, None], pa.int64())})
    pq.write_table(table, tmp_path / "deals.parquet")
    got = read_native("deals", location(tmp_path / "deals.parquet"), columns=["closed_at", "Amount", "utc", "n"])
    # 22:00 UTC on 31 October is 01:00 on 1 November in Moscow: it belongs to November there
    assert got.frame["closed_at"].tolist()[0] == pd.Timestamp("2026-11-01 01:00")
    assert got.frame["utc"].tolist()[0] == pd.Timestamp("2026-10-31 22:00")
    assert got.frame["amount"].tolist() == ["150 000,00", None] and got.frame.index.tolist() == [1, 2]
    assert got.frame["n"].iloc[0] == 5.0 and pd.isna(got.frame["n"].iloc[1])


def _with_sources(plan: Path, rows: list[list[str]]) -> Path:
    """The plan workbook with a Sources sheet (table, path) of ``rows``."""
    import openpyxl

    book = openpyxl.load_workbook(plan)
    sheet = book.create_sheet("Sources")
    for r in [["table", "path"], *rows]:
        sheet.append(r)
    book.save(plan)
    return plan


def test_a_sources_row_binds_a_parquet_folder_next_to_the_plan(sample_copy, duckdb_facts):
    deals = next(p for p in sample_copy.data if p.stem == "deals")
    _write_parquet(deals, sample_copy.folder / "warehouse" / "deals_2026")
    deals.unlink()
    plan = read_plan(_with_sources(sample_copy.plan, [["deals", "warehouse/deals_2026"]]))
    got = load_facts(plan, [p for p in sample_copy.data if p != deals], engine="duckdb")
    pd.testing.assert_frame_equal(_facts(got.values), duckdb_facts)


def test_a_sources_row_naming_a_spark_table_is_located_at_its_row(sample_copy):
    deals = next(p for p in sample_copy.data if p.stem == "deals")
    plan = read_plan(_with_sources(sample_copy.plan, [["deals", "spark:sales.deals"]]))
    problems = Problems()
    load_facts(plan, [p for p in sample_copy.data if p != deals], engine="duckdb", problems=problems)
    hits = [p for p in problems.errors if "sales.deals" in p.message]
    assert hits and (hits[0].sheet, hits[0].row) == ("Sources", 2) and "--engine spark" in hits[0].fix


def test_a_missing_parquet_folder_is_located_with_a_fix(sample_company, sample_plan, tmp_path):
    problems = Problems()
    others = [p for p in sample_company.data if p.stem != "deals"]
    load_facts(sample_plan, [*others, f"deals={tmp_path / 'nowhere.parquet'}"], problems=problems)
    hits = [p for p in problems.errors if "nowhere.parquet" in p.message]
    assert hits and hits[0].file.endswith("nowhere.parquet") and "correct the path" in hits[0].fix


def test_a_spark_table_on_duckdb_says_to_use_the_spark_engine(sample_company, sample_plan):
    problems = Problems()
    others = [p for p in sample_company.data if p.stem != "deals"]
    load_facts(sample_plan, [*others, "deals=spark:sales.deals"], problems=problems, engine="duckdb")
    hits = [p for p in problems.errors if "sales.deals" in p.message]
    assert hits and hits[0].file == "spark:sales.deals" and "--engine spark" in hits[0].fix


def test_without_pyspark_the_spark_engine_says_what_to_install(sample_company, sample_plan, monkeypatch):
    import sys

    from xl_kpi.inputs.sources import spark as spark_module

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # import fails as when pyspark is not installed
    monkeypatch.setattr(spark_module, "_session", None)
    problems = Problems()
    load_facts(sample_plan, sample_company.data, problems=problems, engine="spark")
    hits = [p for p in problems.errors if "pyspark" in p.message]
    assert hits and "xl_kpi[spark]" in hits[0].fix


def test_without_java_the_spark_engine_says_to_install_it(monkeypatch):
    pytest.importorskip("pyspark")
    from xl_kpi.inputs.sources import spark as spark_module

    monkeypatch.setattr(spark_module, "_session", None)
    monkeypatch.setattr(spark_module, "_java", lambda: None)
    monkeypatch.setattr("pyspark.sql.SparkSession.getActiveSession", classmethod(lambda cls: None))
    with pytest.raises(spark_module.SparkUnavailable) as e:
        spark_module.spark_session()
    assert "Java" in e.value.reason and "openjdk-17" in e.value.fix


# ------------------------------------------------------------------------------------ on Spark


def test_sample_company_facts_are_equal_on_spark_and_duckdb(spark, sample_company, sample_plan, duckdb_facts):
    got = load_facts(sample_plan, sample_company.data, engine="spark")
    assert not got.problems.has_errors
    pd.testing.assert_frame_equal(_facts(got.values), duckdb_facts)
    assert len(duckdb_facts) > 100 and duckdb_facts["fact"].notna().sum() > 100


def test_a_spark_table_and_a_parquet_folder_read_by_spark(spark, sample_company, sample_plan, duckdb_facts,
                                                          tmp_path):
    deals = next(p for p in sample_company.data if p.stem == "deals")
    surveys = next(p for p in sample_company.data if p.stem == "surveys")
    folder = _write_parquet(deals, tmp_path / "deals")
    spark.sql("CREATE DATABASE IF NOT EXISTS xl_kpi_test")
    spark.read.parquet(str(_write_parquet(surveys, tmp_path / "surveys"))).write.mode("overwrite").saveAsTable(
        "xl_kpi_test.surveys")
    problems = Problems()  # requests is not given (to keep Spark's work short): its KPIs fail, the others not
    got = load_facts(sample_plan, [f"deals={folder}", "surveys=spark:xl_kpi_test.surveys"], engine="spark",
                     problems=problems)
    assert all("requests" in p.message or "no fact" in p.message for p in problems.errors), problems.errors
    kpis = {k for k, s in sample_plan.sources.items() if set(s.tables) <= {"deals", "surveys"}}
    assert kpis == {"deals_won", "revenue", "key_share", "nps"}
    mine = _facts(got.values[got.values["kpi_id"].isin(kpis)])
    pd.testing.assert_frame_equal(mine, _facts(duckdb_facts[duckdb_facts["kpi_id"].isin(kpis)]))
    assert got.tables["surveys"].file == "spark:xl_kpi_test.surveys"


def _never_read_locally(monkeypatch) -> list[str]:
    """Make the local read of a Spark-reached table (rows onto this machine) fail the test; returns the calls."""
    import xl_kpi.inputs.sources.spark as spark_module

    calls: list[str] = []

    def refuse(where, *args, **kwargs):
        calls.append(where.text)
        raise AssertionError(f"{where.text} was read onto this machine")

    monkeypatch.setattr(spark_module, "read_spark_table", refuse)
    return calls


def test_native_tables_on_spark_stay_in_the_cluster(spark, sample_company, sample_plan, duckdb_facts, tmp_path,
                                                     monkeypatch):
    """Every raw table of the sample company in Parquet or the catalog: the typed casts, the bad-cell checks,
    the filters and the aggregation run in Spark (its job tracker sees the jobs), the local read path is never
    used, and the facts equal DuckDB's from the CSV files."""
    data = {p.stem: p for p in sample_company.data}
    spark.sql("CREATE DATABASE IF NOT EXISTS xl_kpi_test")
    spark.read.parquet(str(_write_parquet(data["surveys"], tmp_path / "surveys"))).write.mode("overwrite") \
        .saveAsTable("xl_kpi_test.surveys_cluster")
    entries = [f"deals={_write_parquet(data['deals'], tmp_path / 'deals')}",
               f"requests={_write_parquet(data['requests'], tmp_path / 'requests', parts=3)}",
               "surveys=spark:xl_kpi_test.surveys_cluster", str(data["facts"])]
    calls = _never_read_locally(monkeypatch)
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("xl_kpi_cluster_test", "facts in the cluster")
    try:
        got = load_facts(sample_plan, entries, engine="spark")
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert calls == []
    assert not got.problems.has_errors, got.problems.errors
    pd.testing.assert_frame_equal(_facts(got.values), duckdb_facts)
    assert len(tracker.getJobIdsForGroup("xl_kpi_cluster_test")) >= 9  # a query per term at least, run by Spark
    from xl_kpi.inputs.sources.cluster import ClusterTable

    assert {k for k, t in got.tables.items() if isinstance(t, ClusterTable)} == {"deals", "requests", "surveys"}


def test_bad_cells_of_a_table_in_the_cluster_are_located_as_on_duckdb(spark, sample_company, sample_plan, tmp_path,
                                                                       monkeypatch):
    """An unreadable amount, an impossible date and a junk yes/no in a Parquet file: Spark flags them in the
    cluster and the messages (record, column, wording) are those of the local DuckDB path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    deals = next(p for p in sample_company.data if p.stem == "deals")
    frame = read_tables(deals)[0].frame.reset_index(drop=True)
    frame = frame.astype(object).where(frame.notna(), None).map(lambda v: None if v is None else str(v))
    won = frame.index[(frame["status"] == "won") & frame["closed_at"].fillna("").str.contains(".10.2026")]
    frame.loc[won[0], "amount"] = "12abc"
    frame.loc[won[1], "closed_at"] = "31.02.2026"
    frame.loc[won[2], "key_client"] = "может быть"
    frame.loc[won[3], "amount"] = "1 234 руб."  # read by the slow path: a value, not an error
    path = tmp_path / "deals.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)

    def problems_on(engine: str) -> list[tuple]:
        sink = Problems()
        got = load_facts(sample_plan, [f"deals={path}"], engine=engine, problems=sink, period="2026-10")
        found = sorted((p.message, p.row, p.header) for p in sink.errors if p.header in frame.columns)
        revenue = got.values[got.values["kpi_id"] == "revenue"].set_index("employee_id")["fact"]
        return found, revenue.sort_index()

    local, local_revenue = problems_on("duckdb")
    assert len(local) == 3, local
    assert {h for _, _, h in local} == {"amount", "closed_at", "key_client"}
    calls = _never_read_locally(monkeypatch)
    cluster, cluster_revenue = problems_on("spark")
    assert calls == []
    assert cluster == local
    pd.testing.assert_series_equal(cluster_revenue, local_revenue)


def test_a_missing_spark_table_lists_the_tables_there(spark, sample_plan):
    spark.sql("CREATE DATABASE IF NOT EXISTS xl_kpi_test")
    spark.range(1).write.mode("overwrite").saveAsTable("xl_kpi_test.present")
    problems = Problems()
    load_facts(sample_plan, ["deals=spark:xl_kpi_test.absent"], problems=problems, engine="spark")
    hits = [p for p in problems.errors if "xl_kpi_test.absent" in p.message]
    assert hits, problems.errors
    assert "xl_kpi_test.present" in hits[0].message and hits[0].file == "spark:xl_kpi_test.absent"
    assert "spark:database.table" in hits[0].fix


# ------------------------------------------------------------------------------------ the command line


def test_cli_binds_a_parquet_folder_and_verify_recomputes(runner, sample_company, tmp_path):
    from xl_kpi.cli import app

    deals = next(p for p in sample_company.data if p.stem == "deals")
    folder = _write_parquet(deals, tmp_path / "deals_pq")
    others = [a for p in sample_company.data if p != deals for a in ("--data", str(p))]
    args = ["--plan", str(sample_company.plan), *others, "--data", f"deals={folder}", "--engine", "duckdb"]
    got = runner.invoke(app, ["validate", *args])
    assert got.exit_code == 0, got.output
    out = tmp_path / "out"
    got = runner.invoke(app, ["generate", *args, "--out", str(out)])
    assert got.exit_code == 0, got.output
    import json

    audit = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert audit["native"][0]["entry"] == f"deals={folder}" and len(audit["native"][0]["sha256"]) == 64
    assert audit["options"]["engine"] == "duckdb"
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0
    (folder / "part-00001.parquet").unlink()  # the data changed since the run: verify says so
    got = runner.invoke(app, ["verify", str(out)])
    assert got.exit_code == 1 and f"deals={folder} changed" in got.output


def test_a_parquet_folder_bound_by_a_sources_row_is_hashed_into_the_manifest(runner, sample_copy):
    """A Sources row (not --data) binding a Parquet folder: manifest.json records it under native with the
    sha256 of its files, verify recomputes, and says so when the files changed."""
    import json

    from xl_kpi.cli import app

    deals = next(p for p in sample_copy.data if p.stem == "deals")
    folder = _write_parquet(deals, sample_copy.folder / "warehouse" / "deals_2026")
    deals.unlink()
    plan = _with_sources(sample_copy.plan, [["deals", "warehouse/deals_2026"]])
    out = sample_copy.folder / "out"
    others = [a for p in sample_copy.data if p != deals for a in ("--data", str(p))]
    got = runner.invoke(app, ["generate", "--plan", str(plan), *others, "--engine", "duckdb", "--out", str(out)])
    assert got.exit_code == 0, got.output
    audit = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    [entry] = audit["native"]
    assert entry["entry"] == f"deals={folder.resolve()}" and entry["from"] == "Sources"
    assert len(entry["sha256"]) == 64 and "unhashable" not in entry
    checked = runner.invoke(app, ["verify", str(out)])
    assert checked.exit_code == 0, checked.output
    (folder / "part-00001.parquet").unlink()
    got = runner.invoke(app, ["verify", str(out)])
    assert got.exit_code == 1 and "deals=" in got.output and "changed" in got.output


def test_a_catalog_table_is_recorded_as_unhashable():
    from xl_kpi.batch import _native_record

    assert _native_record("deals=spark:sales.deals", "Sources") == {
        "entry": "deals=spark:sales.deals", "sha256": None, "from": "Sources", "unhashable": True}


def test_cli_refuses_an_unknown_engine_and_a_missing_path(runner, sample_company):
    from xl_kpi.cli import app

    got = runner.invoke(app, ["validate", "--plan", str(sample_company.plan), "--engine", "oracle"])
    assert got.exit_code == 2 and "duckdb or spark" in got.output
    got = runner.invoke(app, ["validate", "--plan", str(sample_company.plan), "--data", "no-such-file.csv"])
    assert got.exit_code == 2 and "does not exist" in got.output


def test_cli_spark_table_on_duckdb_is_an_input_error(runner, sample_company):
    from xl_kpi.cli import app

    others = [a for p in sample_company.data if p.stem != "deals" for a in ("--data", str(p))]
    got = runner.invoke(app, ["validate", "--plan", str(sample_company.plan), *others, "--data",
                              "deals=spark:sales.deals"])
    assert got.exit_code == 1 and "--engine spark" in got.output


def test_cli_generate_on_spark_from_a_catalog_table(spark, runner, tmp_path):
    import csv
    import datetime as dt

    from tests._plan_helpers import facts_rows, make_plan, plan_sheets, write_csv
    from xl_kpi.cli import app

    sheets = plan_sheets()
    sheets["KPIs"][1][3] = "count deals where status = won by manager_id dated closed_at"
    plan = make_plan(tmp_path, sheets)
    facts = write_csv(tmp_path / "facts.csv", [r for r in facts_rows() if r[1] != "deals"])
    day = dt.datetime
    # midday on the days next to the month's edges: the same day in any time zone Python may run in
    rows = [("E1", "won", day(2026, 10, 1, 12)), ("E1", "won", day(2026, 10, 15)), ("E1", "won", day(2026, 10, 31, 12)),
            ("E1", "lost", day(2026, 10, 2)), ("E1", "won", day(2026, 9, 30, 12)), ("E2", "won", day(2026, 10, 5)),
            ("E2", "WON", day(2026, 10, 6)), ("E2", "won", day(2026, 11, 1, 12)), ("admin", "won", day(2026, 10, 7))]
    spark.sql("CREATE DATABASE IF NOT EXISTS xl_kpi_test")
    spark.createDataFrame(rows, "manager_id string, status string, closed_at timestamp").write.mode(
        "overwrite").saveAsTable("xl_kpi_test.small_deals")
    out = tmp_path / "out"
    spark.sparkContext.setJobGroup("xl-kpi-cli", "generate --engine spark")
    try:
        got = runner.invoke(app, ["generate", "--plan", str(plan), "--data", str(facts), "--data",
                                  "deals=spark:xl_kpi_test.small_deals", "--engine", "spark", "--out", str(out)])
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert got.exit_code == 0, got.output
    assert spark.sparkContext.statusTracker().getJobIdsForGroup("xl-kpi-cli"), "Spark ran no query"
    with (out / "results" / "lines.csv").open(encoding="utf-8-sig", newline="") as f:
        lines = {(r["employee_id"], r["kpi_id"]): r["fact"] for r in csv.DictReader(f)}
    # by hand: E1 has 3 won deals closed in October (one lost, one in September); E2 has 2 ("WON" is won;
    # one in November)
    assert float(lines[("E1", "deals")]) == 3 and float(lines[("E2", "deals")]) == 2
