"""Every CSV xl_kpi writes neutralises formula-like text reversibly: ``=1`` and ``'=1`` come back distinct."""

from __future__ import annotations

import csv
import math
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._results_fixture import sample_results
from xl_kpi.delivery.crypto import read_passwords
from xl_kpi.inputs.problems import Problems
from xl_kpi.outputs.csvsafe import csv_bytes, neutralise, restore
from xl_kpi.outputs.csvsafe import read_rows as read_csv_rows
from xl_kpi.outputs.manifest import write_errors, write_manifest
from xl_kpi.outputs.results_files import float_texts, load_results, save_results

TRICKY = ["=1", "'=1", "''=1", "'", "''", "-5", "'-5", "+x", "@x", "\tx", "\rx", "'plain", "plain", ""]
text = st.text(alphabet=st.sampled_from("='+-@\t\r a1ü\"\n,;"), max_size=8) | st.text(max_size=8)


def _cells(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [c for row in csv.reader(f) for c in row]


@given(text)
def test_neutralise_restore_round_trip_and_never_a_formula(value):
    cell = neutralise(value)
    assert restore(cell) == value
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@given(text, text)
def test_neutralise_keeps_distinct_texts_distinct(a, b):
    if a != b:
        assert neutralise(a) != neutralise(b)


def test_manifest_keeps_formula_text_and_its_quoted_form_apart(tmp_path):
    recs = [{"employee_id": e, "path": f"cards/{i}.xlsx", "sha256": "0" * 64, "total_bonus": -5, "status": e}
            for i, e in enumerate(TRICKY)]
    cells = _cells(write_manifest(recs, tmp_path))
    assert "'=1" in cells and "''=1" in cells and "-5.00" in cells  # the number column is a number
    rows = read_csv_rows(tmp_path / "manifest.csv")
    assert sorted(r["employee_id"] for r in rows) == sorted(TRICKY)
    assert all(r["employee_id"] == r["status"] for r in rows)


def test_errors_csv_keeps_formula_text_and_its_quoted_form_apart(tmp_path):
    rows = [{"employee_id": e, "name": e, "reason": e} for e in TRICKY]
    back = read_csv_rows(write_errors(rows, tmp_path))
    assert [(r["employee_id"], r["name"], r["reason"]) for r in back] == [(e, e, e) for e in TRICKY]


def _with_names(names: list[str]):
    results = sample_results()
    emp = results.employees.copy()
    lines = results.lines.copy()
    n = len(emp)
    chosen = [names[i % len(names)] for i in range(n)]
    emp["name"] = chosen
    emp["department"] = list(reversed(chosen))
    lines["kpi_name"] = [names[i % len(names)] for i in range(len(lines))]
    return replace(results, employees=emp, lines=lines)


def test_results_csvs_neutralise_and_read_back_formula_text(tmp_path):
    results = _with_names(TRICKY)
    save_results(results, tmp_path)
    for name in ("employees.csv", "lines.csv"):
        cells = _cells(tmp_path / "results" / name)
        assert not [c for c in cells if c.startswith(("=", "+", "@", "\t", "\r"))], name
        assert "'=1" in cells and "''=1" in cells, name
    back = load_results(tmp_path)
    assert back.employees["name"].tolist() == results.employees["name"].tolist()
    assert back.employees["department"].tolist() == results.employees["department"].tolist()
    assert back.lines["kpi_name"].tolist() == results.lines["kpi_name"].tolist()
    assert back.employees["bonus"].tolist() == results.employees["bonus"].tolist()  # numbers stay numbers


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(st.lists(text.filter(lambda s: s.strip() == s and s != ""), min_size=1, max_size=4))
def test_results_round_trip_any_text(names):
    results = _with_names(names)
    with tempfile.TemporaryDirectory() as d:
        save_results(results, d)
        back = load_results(d)
    assert back.employees["name"].tolist() == results.employees["name"].tolist()
    assert back.lines["kpi_name"].tolist() == results.lines["kpi_name"].tolist()


def test_distribution_csv_and_passwords_read_back_as_written(tmp_path):
    data = csv_bytes(["employee_id", "password"], [["=1", "=secret-pw1"], ["'=1", "'=secret-pw2"]])
    (tmp_path / "passwords.csv").write_bytes(data)
    assert _cells(tmp_path / "passwords.csv")[2:] == ["'=1", "'=secret-pw1", "''=1", "''=secret-pw2"]
    assert [r["employee_id"] for r in read_csv_rows(tmp_path / "passwords.csv")] == ["=1", "'=1"]
    problems = Problems()
    by_id, _ = read_passwords(tmp_path / "passwords.csv", problems, ours=True)
    assert by_id == {"=1": "=secret-pw1", "'=1": "'=secret-pw2"}


def test_hr_passwords_file_is_read_exactly_as_typed(tmp_path):
    """Only xl_kpi's own passwords.csv carries the neutralising quote; HR's ``'secret-pw1`` is that password."""
    (tmp_path / "hr.csv").write_text("employee_id,password\n1001,'secret-pw1\n1002,=secret-pw2\n", encoding="utf-8")
    problems = Problems()
    by_id, _ = read_passwords(tmp_path / "hr.csv", problems)
    assert by_id == {"1001": "'secret-pw1", "1002": "=secret-pw2"} and not problems.errors


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 9])
def test_csv_chunks_join_to_the_bytes_of_csv_bytes(n):
    from xl_kpi.outputs.csvsafe import csv_chunks

    rows = [[f"=x{i}", i, "-5.00", "plain"] for i in range(n)]
    pieces = list(csv_chunks(["a", "b", "c", "d"], rows, plain=(2,), size=4))
    assert b"".join(pieces) == csv_bytes(["a", "b", "c", "d"], rows, plain=(2,))
    assert pieces[0].startswith(b"\xef\xbb\xbf") and not any(p.startswith(b"\xef\xbb\xbf") for p in pieces[1:])
    assert len(pieces) == max(1, -(-n // 4))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["E", "e", "", "AB", "x1y", "\u0663", "²", "Ж"]),
                          st.integers(0, 30) | st.none(), st.sampled_from(["", "a", "7"]),
                          st.sampled_from(["p/1.xlsx", "p/0.xlsx", "q.xlsx"])), max_size=12))
def test_manifest_rows_in_the_order_of_the_id_split_then_the_file(items):
    # the manifest orders rows by position and makes them as it writes (xl_kpi.outputs.manifest._manifest_chunks):
    # the same bytes as sorting whole rows by (natural id, file), ids with ties and ids the pair key cannot take
    from xl_kpi.outputs import manifest as m

    recs = [{"employee_id": f"{a}{'' if n is None else n}{b}", "path": p, "sha256": "f" * 64, "total_bonus": 1.005,
             "status": "ok"} for a, n, b, p in items]
    try:
        expected_rows = sorted(((r["employee_id"], r["path"], r["sha256"], "1.01", "ok") for r in recs),
                               key=lambda row: (m._natural(row[0]), row[1]))
    except ValueError:  # "²" is a digit to str.isdigit, not to int(): both orders refuse it alike
        with pytest.raises(ValueError):
            m.manifest_bytes(recs, "/o")
        return
    assert m.manifest_bytes(recs, "/o") == csv_bytes(m.MANIFEST_COLUMNS, expected_rows, plain=(3,))


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=30))
def test_results_float_text_is_what_to_csv_writes(values):
    """results/ formats floats itself (float_texts); the text must be pandas' own, NaN an empty field."""
    arr = np.array(values, dtype=np.float64)
    ours = pd.DataFrame({"x": float_texts(arr)}).to_csv(index=False, lineterminator="\n")
    assert ours == pd.DataFrame({"x": arr}).to_csv(index=False, lineterminator="\n")
    back = np.array([float(t) if t else math.nan for t in float_texts(arr)], dtype=np.float64)
    assert np.array_equal(back, arr, equal_nan=True)


def test_results_csvs_keep_every_float_exactly(tmp_path):
    results = _with_names(["a", "b"])
    odd = [0.1 + 0.2, 1e16, 1e-5, -0.0, 123456789.12345679, math.nan]
    results.employees["bonus"] = [odd[i % len(odd)] for i in range(len(results.employees))]
    save_results(results, tmp_path)
    back = load_results(tmp_path)
    assert np.array_equal(back.employees["bonus"].to_numpy(), results.employees["bonus"].to_numpy(), equal_nan=True)
    assert [math.copysign(1, v) for v in back.employees["bonus"]] == [math.copysign(1, v)
                                                                      for v in results.employees["bonus"]]
