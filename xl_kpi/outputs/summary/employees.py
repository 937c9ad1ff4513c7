"""The Employees sheet: the employees table (weighted score, rank, one score column per KPI) and
:func:`_build`, which writes the sheet (rows, SUBTOTAL total row, traffic light, autofilter) and then the
Departments and Score bands sheets."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.formulas import group_key, group_rank_formula
from xl_kpi.outputs.summary.bands import _bands_sheet
from xl_kpi.outputs.summary.book import _Book, _escape, _Sheet, blank_body, number_bodies
from xl_kpi.outputs.summary.departments import _departments_sheet
from xl_kpi.outputs.summary.figures import PCT, _money_sum, money_format, weighted_scores
from xl_kpi.outputs.summary.layout import _Layout, _width, plain_texts
from xl_kpi.outputs.summary.light import TrafficLight
from xl_kpi.outputs.summary.payouts import LABELS as PAYOUT_LABELS
from xl_kpi.outputs.summary.payouts import _payouts_sheet, has_payout_kinds
from xl_kpi.outputs.summary.people import Column, Table, letter, people_sheet, subtotal
from xl_kpi.outputs.summary.texts import _LABELS, _period_label, sheet_names
from xl_kpi.outputs.values import ILLEGAL_CHARACTERS
from xl_kpi.outputs.values import text as _text


def _employees_table(results: Any) -> tuple[pd.DataFrame, list[tuple[Any, str]], pd.DataFrame]:
    """Employees in results order with weighted score and rank; the KPI columns; the score matrix."""
    emp = results.employees.reset_index(drop=True).copy()
    lines = results.lines
    kpi_order = list(pd.unique(lines["kpi_id"])) if len(lines) else []
    names: dict[Any, str] = {}
    if len(lines):
        first = lines.drop_duplicates("kpi_id").set_index("kpi_id")
        for k in kpi_order:
            nm = first.at[k, "kpi_name"] if "kpi_name" in first.columns else None
            names[k] = _text(nm) or _text(k)
    counts: dict[str, int] = {}
    for k in kpi_order:
        counts[names[k].casefold()] = counts.get(names[k].casefold(), 0) + 1
    kpis = [(k, names[k] if counts[names[k].casefold()] == 1 else f"{names[k]} ({_text(k)})") for k in kpi_order]

    if len(lines):
        matrix = (
            pd.Series(pd.to_numeric(lines["score"], errors="coerce").to_numpy(dtype=float),
                      index=pd.MultiIndex.from_arrays([lines["employee_id"], lines["kpi_id"]]))
            .groupby(level=[0, 1], sort=False).first()
            .unstack(level=1)
        )
        matrix = matrix.reindex(index=emp["employee_id"], columns=kpi_order)
    else:
        matrix = pd.DataFrame(index=emp["employee_id"], columns=[], dtype=float)
    ws_ = weighted_scores(lines).reindex(emp["employee_id"]).to_numpy(dtype=float) if len(lines) else np.full(
        len(emp), np.nan
    )
    emp["weighted_score"] = _stored_array(ws_)
    # RANK(x, range) = 1 + how many numbers in the range are greater (ties share the rank)
    emp["rank"] = emp["weighted_score"].rank(method="min", ascending=False)
    for col in ("bonus", "total_pay"):
        emp[col] = _stored_array(pd.to_numeric(emp[col], errors="coerce")) if col in emp else np.nan
    return emp, kpis, matrix


def _stored_array(values: Any) -> np.ndarray:
    """:func:`~xl_kpi.outputs.values.stored` of each number (as the file holds it); NaN for a missing or
    infinite one."""
    a = np.asarray(values, dtype=float)
    # 16 significant digits, as f"{x:.16g}" (a list comprehension: three times as quick as np.char.mod)
    return np.array([float(f"{x:.16g}") if math.isfinite(x) else math.nan for x in a.ravel().tolist()],
                    dtype=float).reshape(a.shape)


def _texts(values: list[Any]) -> list[str]:
    """:func:`~xl_kpi.outputs.values.text` of each value (a plain string as it is: the common case, quickly)."""
    if plain_texts(values):
        return list(values)
    return [v if type(v) is str and not ILLEGAL_CHARACTERS.search(v) else _text(v) for v in values]


def _adjustments(emp: pd.DataFrame) -> tuple[np.ndarray, list[str]] | None:
    """Each employee's adjustment (the results' amount) and its reason, or None when nobody has one."""
    if "adjustment" not in emp:
        return None
    amounts = pd.to_numeric(emp["adjustment"], errors="coerce").to_numpy(dtype=float)
    if not np.any(np.nan_to_num(amounts) != 0.0):
        return None
    reasons = _texts(emp["adjustment_reason"].tolist()) if "adjustment_reason" in emp else [""] * len(emp)
    return np.where(amounts == 0.0, np.nan, amounts), reasons


_GATED = '0"*"'
"""The number format of a gated employee's rank: the rank, marked with an asterisk (the legend explains it)."""


@dataclass
class _Data:
    """What the people sheets show, one entry per employee in results order."""

    text: dict[str, list[Any]]
    """employee_id, name, department (the no-department label for a blank one), position, manager."""
    kpis: list[tuple[Any, str]]
    scores: np.ndarray
    weighted: np.ndarray
    rank: np.ndarray
    rank_position: list[int]
    rank_department: list[int]
    position_keys: list[str]
    gated: np.ndarray
    bonus: np.ndarray
    total_pay: np.ndarray
    adjust: tuple[np.ndarray, list[str]] | None
    notes: list[str]
    widths: dict[str, float]


def _position_sets(data_keys: list[str], results: Any, kpis: list[tuple[Any, str]]) -> dict[str, list[int]]:
    """Each position's KPIs (indexes into ``kpis``, company order): those its employees have a line of."""
    lines = results.lines
    if not len(lines):
        return {}
    emp = results.employees.reset_index(drop=True)
    key_of = dict(zip(emp["employee_id"].tolist()[::-1], data_keys[::-1], strict=True))  # first row of an id wins
    at = {k: j for j, (k, _) in enumerate(kpis)}
    pairs = pd.DataFrame({"key": lines["employee_id"].map(key_of), "kpi": lines["kpi_id"].map(at)}).dropna()
    pairs = pairs.drop_duplicates()
    found: dict[str, set[int]] = {}
    for key, j in zip(pairs["key"].tolist(), pairs["kpi"].tolist(), strict=True):
        found.setdefault(str(key), set()).add(int(j))
    return {key: sorted(js) for key, js in found.items()}


def _data(results: Any, t: dict[str, str]) -> _Data:
    emp, kpis, matrix = _employees_table(results)
    n = len(emp)
    notes = _texts(emp["reason"].tolist()) if "reason" in emp else [""] * n
    if "bonus_note" in emp:  # why a bonus is zero or reduced: computed with the results (xl_kpi.bonus_notes)
        notes = [r or b for r, b in zip(notes, _texts(emp["bonus_note"].tolist()), strict=True)]
    fixed = ("employee_id", "name", "department", "position", "manager")
    text = {c: (emp[c].tolist() if c in emp else [None] * n) for c in fixed}
    no_dept = t["no_department"]
    text["department"] = [d or no_dept for d in _texts(text["department"])]
    weighted = emp["weighted_score"].to_numpy(dtype=float)
    position_keys = _group_keys(_texts(text["position"]))
    gated = emp["gated"].fillna(False).astype(bool).to_numpy() if "gated" in emp else np.zeros(n, dtype=bool)
    widths = {c: _width(text[c], t[c], lo, hi) for c, lo, hi in (("employee_id", 8, 16), ("name", 18, 40),
                                                                   ("department", 12, 30), ("position", 12, 30),
                                                                   ("manager", 12, 28))}
    adjust = _adjustments(emp)
    if adjust:
        widths["adjustment_reason"] = _width(adjust[1], t["adjustment_reason"], 14, 45)
    widths["note"] = _width(notes, t["note"], 14, 45)
    return _Data(text=text, kpis=kpis, scores=matrix.to_numpy(dtype=float) if kpis else np.empty((n, 0)),
                 weighted=weighted, rank=emp["rank"].to_numpy(dtype=float),
                 rank_position=group_ranks(weighted, position_keys),
                 rank_department=group_ranks(weighted, _group_keys(text["department"])),
                 position_keys=position_keys, gated=gated, bonus=emp["bonus"].to_numpy(dtype=float),
                 total_pay=emp["total_pay"].to_numpy(dtype=float), adjust=adjust, notes=notes, widths=widths)


def _group_keys(values: list[Any]) -> list[str]:
    """:func:`~xl_kpi.engine.formulas.group_key` of each value, made once per distinct value and shared (a new
    lower-cased string a row: 100,000 employees' positions held 12 MB for four keys)."""
    made: dict[Any, str] = {}
    out = []
    for v in values:
        k = made.get(v)
        if k is None:
            k = made[v] = group_key(v)
        out.append(k)
    return out


def _kpi_width(name: str) -> float:
    return float(min(max(max((len(w) for w in name.split()), default=0) + 3, 12), 20))


def _table(sheet: _Sheet, data: _Data, t: dict[str, str], money: str, digits: int, rows: np.ndarray | None,
           kpi_idx: list[int], *, position_sheet: bool) -> tuple[Table, dict[str, int]]:
    """The columns of the Employees sheet (``rows`` None: everyone) or of one position's sheet (its rows, its
    KPIs, its rank only), and where the weighted score, bonus, total pay and department columns are.

    Every column's cell bodies are made a block of rows at a time, as they are written: none is held for all
    employees (kept for everyone so that position sheets could reuse them, the bodies of 100,000 employees held
    ~140 MB at the summary's peak, for ~1 s of work saved)."""
    def pick(values: Any) -> Any:
        if rows is None:
            return values
        if isinstance(values, np.ndarray):
            return values[rows]
        return [values[i] for i in rows]

    styles = sheet.styles
    pct, count, cash = styles.get("number", PCT), styles.get("number", "0"), styles.get("number", money)
    marked = styles.get("number", _GATED)
    n = data.weighted.size if rows is None else rows.size
    gated = pick(data.gated)
    weighted = pick(data.weighted)
    cols: list[Column] = []
    at: dict[str, int] = {}

    def add(key: str, col: Column) -> None:
        cols.append(col)
        at[key] = len(cols)

    def prepared(everyone: Any, make: Callable[[Any], list[str]]) -> Callable[[int, int], list[str]]:
        """The bodies of rows a..b of a column whose values for everyone are ``everyone``."""
        values = pick(everyone)
        return lambda a, b: make(values[a:b])

    def text_col(c: str, header: str, width: float, values: list[Any]) -> None:
        made: dict[tuple[type, Any], str] = {}
        add(c, Column(header, width, prepared(values, lambda v: sheet.bodies(v, made))))

    def score_col(key: str, header: str, width: float, values: np.ndarray) -> None:
        """A KPI's scores and their average in the total row, from the numbers as written."""
        blocks: list[np.ndarray] = []  # the numbers written, a float array a block (not a Python float each)
        col = len(cols) + 1

        def bodies(a: int, b: int) -> list[str]:
            stored: list[float] = []
            out = number_bodies(values[a:b], pct, stored)
            blocks.append(np.array(stored, dtype=float))
            return out

        def total() -> tuple[str, Any, str] | None:
            stored = np.concatenate(blocks).tolist() if blocks else []
            return (subtotal(101, col, n), math.fsum(stored) / len(stored), PCT) if stored else None
        add(key, Column(header, width, bodies, total))

    def number_col(key: str, header: str, width: float, everyone: np.ndarray, fmt: Any,
                          total: tuple | None) -> None:
        add(key, Column(header, width, prepared(everyone, lambda v: number_bodies(v, fmt)), total))

    def average(values: np.ndarray) -> tuple[str, Any, str] | None:
        """The average of numbers already as the file holds them (:func:`_stored_array`)."""
        vals = values[np.isfinite(values)].tolist()
        return (subtotal(101, len(cols) + 1, n), math.fsum(vals) / len(vals), PCT) if vals else None

    def money_sum(values: np.ndarray) -> tuple[str, Any, str]:
        total = _money_sum(values[~np.isnan(values)].tolist(), digits)
        return (subtotal(109, len(cols) + 1, n), total, money) if n else ("", 0.0, money)

    def rank_col(key: str, header: str, width: float, formula: str, ranked: list[bool], cached: list[int]) -> None:
        flags = gated.tolist()
        add(key, Column(header, width, lambda a, b: _rank_bodies(formula, ranked[a:b], cached[a:b], flags[a:b],
                                                                 count, marked, first=a + 2)))

    for c in ("employee_id", "name", "department") if position_sheet else ("employee_id", "name", "department",
                                                                            "position"):
        text_col(c, t[c], data.widths[c], data.text[c])
    text_col("manager", t["manager"], data.widths["manager"], data.text["manager"])
    first_kpi = len(cols) + 1
    for j in kpi_idx:
        column = pick(data.scores[:, j])
        name = data.kpis[j][1]
        score_col(f"kpi{j}", name, _kpi_width(name), column)
    number_col("weighted", t["weighted"], 13.0, data.weighted, pct, average(weighted))
    wcol = letter(at["weighted"])
    w_rng = f"${wcol}$2:${wcol}${n + 1}"
    has_score = [math.isfinite(w) for w in weighted.tolist()]
    if position_sheet:
        ranked = [ok and bool(k) for ok, k in zip(has_score, pick(data.position_keys), strict=True)]
        rank_col("rank_position", t["rank_position"], 11.0, f"RANK({wcol}{{0}},{w_rng})", ranked,
                 pick(data.rank_position))
    else:
        rank_col("rank", t["rank"], 8.0, f"RANK({wcol}{{0}},{w_rng})", has_score,
                 [int(x) if ok else 0 for x, ok in zip(data.rank.tolist(), has_score, strict=True)])
        for key, group, cached in (("rank_position", "position", data.rank_position),
                                   ("rank_department", "department", data.rank_department)):
            gcol = letter(at[group])
            g_rng = f"${gcol}$2:${gcol}${n + 1}"
            rank_col(key, t[key], 11.0, group_rank_formula(g_rng, f"{gcol}{{0}}", w_rng, f"{wcol}{{0}}"),
                     [ok and k > 0 for k, ok in zip(cached, has_score, strict=True)], cached)
    number_col("bonus", t["bonus"], 15.0, data.bonus, cash, money_sum(pick(data.bonus)))
    if data.adjust:
        amounts = pick(data.adjust[0])
        if rows is None or np.isfinite(amounts).any():
            number_col("adjustment", t["adjustment"], 15.0, data.adjust[0], cash, money_sum(amounts))
    number_col("total_pay", t["total_pay"], 16.0, data.total_pay, cash, money_sum(pick(data.total_pay)))
    if "adjustment" in at and data.adjust:
        text_col("adjustment_reason", t["adjustment_reason"], data.widths["adjustment_reason"], data.adjust[1])
    if any(pick(data.notes)):
        text_col("note", t["note"], data.widths["note"], data.notes)
    legend = (t["legend_gated"],) if bool(np.any(gated & np.isfinite(weighted))) else ()
    return Table(cols, n, (first_kpi, at["weighted"]), legend), at


def _rank_bodies(formula: str, ranked: list[bool], cached: list[int], gated: list[bool], plain: Any,
                 marked: Any, first: int = 2) -> list[str]:
    """The cell bodies of a block of a rank column (:func:`~xl_kpi.outputs.summary.book.formula_body`, made in one
    go): ``formula`` with ``{0}`` for the sheet row (``first``: the block's first row), a blank cell where a row is
    not ``ranked``, the gated employees' ranks in the marked format."""
    blank = blank_body(plain)
    parts = _escape(formula).split("{0}")  # the row number joins them
    head = {g: f' s="{fmt._get_xf_index()}"><f>' for g, fmt in ((False, plain), (True, marked))}
    return [f"{head[g]}{r.join(parts)}</f><v>{k}</v></c>" if ok else blank
            for r, ok, k, g in zip(map(str, range(first, first + len(ranked))), ranked, cached, gated, strict=True)]


def group_ranks(weighted: np.ndarray, keys: list[str]) -> list[int]:
    """Each row's rank within its group (:func:`group_key` of its position or department), as
    :func:`group_rank_formula` computes it: 1 + how many of the group have a higher weighted score, so ties
    share a rank (pandas ``rank(method="min", ascending=False)``). 0 for a row with no weighted score or no
    group (a blank cell)."""
    w = np.asarray(weighted, dtype=float)
    k = np.asarray(keys, dtype=object)
    out = np.zeros(w.size, dtype=np.int64)
    ok = np.isfinite(w) & (k != "")
    if ok.any():
        ranks = pd.Series(w[ok]).groupby(k[ok], sort=False).rank(method="min", ascending=False)
        out[ok] = ranks.to_numpy(dtype=np.int64)
    return out.tolist()


def _position_sheets(data: _Data, results: Any, t: dict[str, str]) -> list[tuple[str, np.ndarray, list[int]]]:
    """(sheet name, rows, KPI indexes) of each position when positions have different KPI sets, else []."""
    sets = _position_sets(data.position_keys, results, data.kpis)
    if len({tuple(v) for v in sets.values() if v}) < 2:
        return []
    rows: dict[str, list[int]] = {}
    label: dict[str, str] = {}
    for i, (k, v) in enumerate(zip(data.position_keys, data.text["position"], strict=True)):
        if k not in rows:
            rows[k], label[k] = [], _text(v) or t["no_position"]
        rows[k].append(i)
    keys = sorted(rows, key=lambda k: (k == "", k, label[k]))
    taken = [t["sheet_employees"], t["sheet_departments"], t["sheet_bands"], PAYOUT_LABELS.get(
        t.get("language", "en"), PAYOUT_LABELS["en"])["sheet"]]
    names = sheet_names([label[k] for k in keys], taken)
    return [(name, np.asarray(rows[k]), sets.get(k, [])) for name, k in zip(names, keys, strict=True)]


def _common(data: _Data, positions: list[tuple[str, np.ndarray, list[int]]]) -> list[int]:
    """The KPIs every position has (all KPIs when there are no position sheets)."""
    if not positions:
        return list(range(len(data.kpis)))
    sets = [set(k) for _, _, k in positions if k]
    common = set.intersection(*sets) if sets else set()
    return sorted(common)


def _build(book: _Book, results: Any, traffic_light: TrafficLight, bands: tuple[float, ...]) -> None:
    language = str(getattr(results, "language", "en") or "en").lower()
    t = {**_LABELS.get(language, _LABELS["en"]), "language": language}
    money = money_format(getattr(results, "currency", None))
    company = _text(getattr(results, "company", ""))
    period = _period_label(getattr(results, "period", ""), language)
    digits = int(getattr(results, "digits", 2) or 0)

    data = _data(results, t)
    positions = _position_sheets(data, results, t)
    sheet = book.sheet(t["sheet_employees"])
    table, at = _table(sheet, data, t, money, digits, None, _common(data, positions), position_sheet=False)
    people_sheet(book, sheet, table, t["total"], traffic_light, t["title"], company, period)
    for name, rows, kpi_idx in positions:
        psheet = book.sheet(name)
        ptable, _ = _table(psheet, data, t, money, digits, rows, kpi_idx, position_sheet=True)
        people_sheet(book, psheet, ptable, t["total"], traffic_light, f"{t['title']}: {name}", company, period)

    lay = _Layout(n=table.n, kpi_cols=[], col_dept=at["department"], col_weighted=at["weighted"],
                  col_rank=at["rank"], col_bonus=at["bonus"], col_total=at["total_pay"], ncols=len(table.columns),
                  digits=digits, col_adjust=at.get("adjustment"))
    emp = pd.DataFrame({"bonus": data.bonus, "total_pay": data.total_pay, "weighted_score": data.weighted})
    _departments_sheet(book, t, lay, emp, data.text["department"], money, company, period)
    _bands_sheet(book, t, lay, emp, bands, traffic_light, company, period)
    if has_payout_kinds(results):
        _payouts_sheet(book, results, language, t, money, digits, company, period)
