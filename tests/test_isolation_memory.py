"""The isolation check's company tables held as NumPy arrays give exactly what the per-employee Python sets and dicts
gave: every number of each employee's own data, everyone's distinctive amounts, each audience's allowed numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
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


NAME_WORDS = st.lists(st.sampled_from(["b12", "ab", "a", "1", "ив", "иван", "x-1", "aa_b", "3"]), min_size=1,
                      max_size=3)


@settings(max_examples=400, deadline=None)
@given(st.lists(NAME_WORDS.map(" ".join), min_size=1, max_size=5),
       st.lists(NAME_WORDS.map(" ".join), max_size=2),
       st.lists(st.sampled_from(["b12", "B12", "3", "FF00", "ab", "A", "ив", "иван", " ", "x-1", "aa_b", ",", "Ab c",
                                 "12", "1"]), max_size=14))
@example(["ab"], ["ab 3"], ["ab", "3"])  # "3" is a word of no name but of one the file may show: it is kept
def test_leaving_out_the_chunks_no_name_touches_finds_the_same_names(names: list[str], shown: list[str],
                                                                      chunks: list[str]) -> None:
    from types import SimpleNamespace

    from xl_kpi.delivery.isolation.audience import _WORD, _Allowed, _alternation
    from xl_kpi.delivery.isolation.scan import _nameless
    from xl_kpi.delivery.isolation.text import norm_name

    company = SimpleNamespace(_name_words=frozenset(w for n in names for w in _WORD.findall(n)))
    allowed = _Allowed(frozenset(), set(shown), set(), _alternation(sorted(set(shown), key=len, reverse=True)))
    pattern = _alternation(sorted(set(names), key=len, reverse=True))
    assert pattern is not None

    def found(parts: list[str]) -> list[str]:
        blob = norm_name(" \n ".join(parts))
        if allowed.mask is not None:
            blob = allowed.mask.sub("\x00", blob)
        return [m.group(1) for m in pattern.finditer(blob)]

    assert found(_nameless(chunks, company, allowed)) == found(chunks)


MASK_WORDS = st.lists(st.text(alphabet="абвa _.1ё\u0301", min_size=1, max_size=6), min_size=1, max_size=8)


@settings(max_examples=500, deadline=None)
@given(MASK_WORDS, st.text(alphabet="абвa _.1,\nё\u0301\x00", max_size=80))
@example(["иван", "иван петров"], "иван петрова, иван петров, иваны")
@example(["aa", "a"], "aaa a aa_a")
def test_a_few_names_are_masked_by_find_exactly_as_the_pattern_masks_them(words: list[str], text: str) -> None:
    from xl_kpi.delivery.isolation.audience import _alternation, _Mask

    pattern = _alternation(sorted(set(words), key=len, reverse=True))
    mask = _Mask(words)
    assert pattern is not None
    assert mask.sub("\x00", text) == pattern.sub("\x00", text)
    assert [(m.span(1), m.group(1)) for m in mask.finditer(text)] == \
        [(m.span(1), m.group(1)) for m in pattern.finditer(text)]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="0123456789١٢", min_size=1, max_size=25), st.text(alphabet="0123456789", max_size=20))
def test_plain_numbers_read_in_whole_numbers_give_the_decimal_cents(whole: str, frac: str) -> None:
    from decimal import ROUND_HALF_UP, Decimal

    from xl_kpi.delivery.isolation.text import numbers_in

    tok = f"{whole}.{frac}" if frac else whole
    cents = int((Decimal(tok.translate(str.maketrans("١٢", "12"))) * 100).quantize(Decimal(1), ROUND_HALF_UP))
    expected = {cents} | ({int(whole.translate(str.maketrans("١٢", "12")) + frac) * 100} if len(frac) == 3 else set())
    assert numbers_in(f"x {tok} y") == expected


def test_numbers_of_any_size_are_read_without_an_error() -> None:
    from xl_kpi.delivery.isolation.text import numbers_in

    assert numbers_in("12345678901234567890123456789") == {1234567890123456789012345678900}
    assert numbers_in("1e30 2.5E-3") == {10**32, 0}
    assert numbers_in("9e999999999 0e999") == {0}  # beyond any float: nobody's amount; zero is zero
