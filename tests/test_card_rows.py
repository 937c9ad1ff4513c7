"""The card's rows sheet (issue 13 §1): per derived KPI, the raw rows behind the fact, totals equal to the fact."""

from __future__ import annotations

import math
import re
import shutil
import warnings
from pathlib import Path

import openpyxl
import pytest

from tests import lo
from xl_kpi.inputs.plan import load_plan, sample_inputs
from xl_kpi.outputs.cards import rows as card_rows
from xl_kpi.outputs.csvsafe import read_rows
from xl_kpi.outputs.results_files import load_results

SHEETS = {t["sheet"] for t in card_rows.TEXTS.values()}


def rows_sheet(wb: openpyxl.Workbook) -> str | None:
    """The name of the workbook's rows sheet (either language), or None."""
    return next((n for n in wb.sheetnames if n in SHEETS), None)


def _load(path: Path, data_only: bool = False) -> openpyxl.Workbook:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return openpyxl.load_workbook(path, data_only=data_only)


def fact_rows(path: Path, data_only: bool = True) -> list[tuple[object, object, str]]:
    """(total in B, the card's fact in D, D's formula) of every section's fact row of the rows sheet."""
    wf, wv = _load(path), _load(path, data_only=data_only)
    sheet = rows_sheet(wf)
    card = wf.sheetnames[0]
    out = []
    for row in wf[sheet].iter_rows():
        d = row[3] if len(row) > 3 else None
        if d is not None and isinstance(d.value, str) and d.value.lstrip("=").lstrip("'").startswith(card):
            r = d.row
            out.append((wv[sheet][f"B{r}"].value, wv[sheet][f"D{r}"].value, d.value))
    return out


def _cards(out: Path) -> dict[str, Path]:
    return {r["employee_id"]: out / r["file"] for r in read_rows(out / "manifest.csv")}


def _derived_lines(out: Path) -> dict[str, list[str]]:
    """employee_id → the KPIs of their card whose fact comes from raw data."""
    plan = load_plan(sample_inputs()[0])
    lines = load_results(out).lines
    derived = lines[lines["kpi_id"].isin(set(plan.sources)) & lines["fact"].notna()]
    return {e: list(g["kpi_id"]) for e, g in derived.groupby("employee_id")}


def test_every_sample_card_lists_the_rows_of_each_derived_fact_and_the_totals_equal_it(generated):
    derived = _derived_lines(generated)
    cards = _cards(generated)
    assert derived, "the sample company derives facts from raw data"
    facts = load_results(generated).lines.set_index(["employee_id", "kpi_id"])["fact"]
    for eid, path in cards.items():
        if eid not in derived:
            assert rows_sheet(_load(path)) is None, eid
            continue
        found = fact_rows(path)
        assert len(found) == len(derived[eid]), (eid, found)
        for (total, fact, _), kpi in zip(found, derived[eid], strict=True):
            assert total == pytest.approx(fact, rel=1e-12, abs=1e-9), (eid, kpi)
            assert fact == pytest.approx(facts[(eid, kpi)], rel=1e-12), (eid, kpi)


@pytest.mark.libreoffice
def test_libreoffice_recalculates_the_rows_totals_to_the_facts(generated, tmp_path):
    lo.require_soffice()
    derived = _derived_lines(generated)
    cards = _cards(generated)
    picked = sorted(derived, key=lambda e: -len(derived[e]))[:3]
    flat = tmp_path / "in"
    flat.mkdir()
    inputs = [Path(shutil.copy(cards[e], flat / f"card_{i}.xlsx")) for i, e in enumerate(picked)]
    recalculated = lo.recalc(inputs, tmp_path / "lo")
    checked = 0
    for src, rec in zip(inputs, recalculated, strict=True):
        bad = lo.formula_cells_vs_cached(src, rec, sheets=[rows_sheet(_load(src))])
        assert not bad, f"{src}: {bad[:5]}"
        assert bad.compared
        for total, fact, formula in fact_rows(rec):
            assert isinstance(total, float | int) and total == pytest.approx(fact, rel=1e-9, abs=1e-9), formula
            checked += 1
    assert checked >= 6


def test_no_rows_sheet_without_derived_facts(tmp_path):
    from tests._results_fixture import sample_results
    from xl_kpi.outputs.cards import CardTemplate, iter_cards

    results = sample_results()
    assert not results.rows
    for eid, data in iter_cards(CardTemplate.load(None, "en"), results):
        (tmp_path / f"{eid}.xlsx").write_bytes(data)
        assert rows_sheet(_load(tmp_path / f"{eid}.xlsx")) is None


@pytest.mark.libreoffice
def test_rows_and_history_sheets_together_recalculate_clean(tmp_path):
    from xl_kpi.batch import generate

    lo.require_soffice()
    plan, data = sample_inputs()
    generate(plan, data, tmp_path / "sep", period="2026-09", skip_invalid=True)
    generate(plan, data, tmp_path / "oct", history=[tmp_path / "sep"])
    derived = _derived_lines(tmp_path / "oct")
    cards = _cards(tmp_path / "oct")
    eid = max(derived, key=lambda e: len(derived[e]))
    src = Path(shutil.copy(cards[eid], tmp_path / "card.xlsx"))
    wb = _load(src)
    assert len(wb.sheetnames) == 3 and rows_sheet(wb) == wb.sheetnames[2]  # the card, its history, its rows
    rec = lo.recalc([src], tmp_path / "lo")[0]
    bad = lo.formula_cells_vs_cached(src, rec)
    assert not bad and bad.compared, bad[:5]
    assert len(fact_rows(rec)) == len(derived[eid])


def test_a_long_list_is_capped_with_one_line_holding_the_rest_and_the_total_still_equals_the_fact(
        generated, tmp_path, monkeypatch):
    from xl_kpi.batch import generate

    monkeypatch.setattr(card_rows, "CAP", 2)
    out = tmp_path / "out"
    generate(*sample_inputs(), out)
    derived = _derived_lines(out)
    cards = _cards(out)
    checked = 0
    for eid in derived:
        ws = _load(cards[eid])[rows_sheet(_load(cards[eid]))]
        rows = [[c.value for c in r] for r in ws.iter_rows()]
        folded = [r for r in rows if r[0] == "…"]
        assert folded, eid  # every sample employee has more than two rows of a sum or count
        assert all("more rows" in r[2] or "ещё строк" in r[2] for r in folded)
        for r in rows:  # each SUM over the listed rows and the folded line adds up to its cached total
            m = re.fullmatch(r"=SUM\(B(\d+):B(\d+)\)", str(r[1]))
            if m:
                cached = _load(cards[eid], data_only=True)[ws.title].cell(rows.index(r) + 1, 2).value
                listed = [rows[i - 1][1] for i in range(int(m.group(1)), int(m.group(2)) + 1)]
                assert math.fsum(listed) == pytest.approx(cached, rel=1e-12), (eid, r)
                checked += 1
        for total, fact, _ in fact_rows(cards[eid]):
            assert total == pytest.approx(fact, rel=1e-12, abs=1e-9)
    assert checked
