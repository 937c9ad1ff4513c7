"""The isolation check's company tables held as NumPy arrays give exactly what the per-employee Python sets and dicts
gave: every number of each employee's own data, everyone's distinctive amounts, each audience's allowed numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xl_kpi.delivery.isolation.audience import _cents_array, _Company, _distinctive
from xl_kpi.delivery.isolation.model import _MONEY, AMOUNT_FIELDS
from xl_kpi.delivery.isolation.text import _cents
from xl_kpi.engine.money import round_money
from xl_kpi.outputs.results_files import load_results

FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10**12, 10**12).map(lambda n: n / 1000),  # halves of a cent: 0.125, 1.005 …
    st.integers(-10**9, 10**9).map(lambda n: n / 100),
    st.sampled_from([0.125, 1.005, 2.675, -0.005, 0.015, 1e9 + 0.005, 9e16, 1e300, -1e20, 5e-324]),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(FLOATS, max_size=40))
def test_cents_of_an_array_are_the_cents_of_each_value(values: list[float]) -> None:
    cents, finite = _cents_array(np.array(values, dtype=float))
    for v, c, f in zip(values, cents.tolist(), finite.tolist(), strict=True):
        assert f == math.isfinite(v)
        if f and abs(v) < 9e16:
            assert c == _cents(float(v)), v


@pytest.fixture
def results(generated):
    r = load_results(generated)  # the sample company
    # an id that is also a number, a value on a half cent, one too large for int64 cents, a missing salary
    r.employees.loc[0, "salary"] = 1234.565
    r.employees.loc[1, "salary"] = np.nan
    r.lines.loc[2, "fact"] = 3e20
    return r


def _reference_numbers(results) -> dict[str, set[int]]:
    """The per-employee sets as the check built them before (every column of both tables, parsed as numbers)."""
    emp = results.employees
    out: dict[str, set[int]] = {str(e).strip(): set() for e in emp["employee_id"]}
    for frame in (emp, results.lines):
        ids = frame["employee_id"].astype(str).str.strip().to_numpy()
        for c in frame.columns:
            col = pd.to_numeric(frame[c], errors="coerce").to_numpy(float)
            for eid, v in zip(ids, col, strict=True):
                if np.isfinite(v) and eid in out:
                    out[eid].add(_cents(v))
    return out


def test_each_employees_own_numbers_are_every_number_of_their_data(results) -> None:
    company = _Company(results)
    reference = _reference_numbers(results)
    assert set(company.people) == set(reference)
    for eid, numbers in reference.items():
        assert company.own_numbers(eid) == numbers, eid
    assert any(n >= 2**63 for n in reference[str(results.lines.loc[2, "employee_id"]).strip()])


def test_amount_owners_are_everyones_distinctive_amounts_in_the_order_of_the_people(results) -> None:
    company = _Company(results)
    expected: dict[int, list[tuple[str, str]]] = {}
    for row in results.employees.to_dict("records"):
        for f in AMOUNT_FIELDS:
            v = row.get(f)
            if v is not None and np.isfinite(float(v)):
                c = _cents(v)
                if _distinctive(c):
                    expected.setdefault(c, []).append((str(row["employee_id"]).strip(), f))
    probe = set(expected) | {c + 1 for c in expected} | {0, 99_999, -5}
    assert company.owners(probe) == dict(sorted(expected.items()))
    assert company.owners(set()) == {}


def test_an_audiences_numbers_hold_its_own_and_its_teams_sums_and_averages(results) -> None:
    company = _Company(results)
    reference = _reference_numbers(results)
    emp = results.employees.assign(employee_id=results.employees["employee_id"].astype(str).str.strip())
    for audience in (emp["employee_id"].iloc[:1], emp["employee_id"].iloc[3:9], emp["employee_id"]):
        members = frozenset(audience)
        allowed = company.allowed(members)
        expected = set(company._period_numbers).union(*(reference[m] for m in members))
        team = emp[emp["employee_id"].isin(members)]
        sums: set[float] = set()
        for _, group in [("", team), *team.groupby(team["department"].map(lambda v: str(v or "")))]:
            for c in _MONEY:
                vals = [float(v) for v in group[c] if np.isfinite(float(v))]
                if vals:
                    sums.update((math.fsum(vals), math.fsum(vals) / len(vals)))
        expected.update(_cents(float(v)) or 0 for v in round_money(np.array(sorted(sums)), 2))
        assert allowed.numbers == expected
