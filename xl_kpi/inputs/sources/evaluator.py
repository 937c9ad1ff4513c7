"""Running a parsed source over raw tables: :func:`evaluate` and :class:`Evaluator` (tables and
columns looked up, each column converted once, ``where`` filters as pandas masks, the period's
rows, aggregations per employee and period, ratios); problems are reported at the cell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.period import Period, month_keys, period_of
from xl_kpi.inputs.cells import FAR_FUTURE, to_dates, to_flags_checked, to_ids, to_numbers
from xl_kpi.inputs.problems import Problems, row_ranges
from xl_kpi.inputs.rates import AUTO_CURRENCY_COLUMNS
from xl_kpi.inputs.sources.errors import SourceError, SourceSyntaxError
from xl_kpi.inputs.sources.parser import parse
from xl_kpi.inputs.sources.tokens import _DURATION_UNITS, CURRENCY_OFF, DEFAULT_BY, VALUE_FUNCS
from xl_kpi.inputs.sources.tree import Agg, BoolOp, Cond, IsEmpty, IsIn, Not, Source, Value, _cond_columns
from xl_kpi.inputs.tables import Table

UNEVALUATED = "the source could not be evaluated"
"""The note of every fact of a source that names a missing table or column."""


def evaluate(
    source: Source | str,
    tables: Mapping[str, Table] | Sequence[Table],
    *,
    period: Period | str | None = None,
    employees: Sequence[str] | None = None,
    problems: Problems | None = None,
    at: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Facts from raw tables: a DataFrame with columns employee_id, period, fact, note.

    ``period`` (a :class:`Period` or its text: ``2026-10``, ``2026-Q4``, ``2026-10-01..2026-12-31``)
    keeps only rows dated inside its bounds, both days included (for dated terms). Without it, dated
    sources give one row per employee and month found. ``employees`` completes the result with
    the employees that have no rows (0 for count, distinct and sum; NaN otherwise, with a note);
    employees found in the data but not listed are kept too, after the listed ones.
    Problems go to ``problems`` when given (located at ``at`` for the source itself); otherwise
    the first errors are raised as :class:`SourceError`.
    """
    own = problems is None
    sink = Problems() if own else problems
    out = Evaluator(tables, sink).evaluate(source, period=period_of(period), employees=employees, at=at)
    if own and sink.has_errors:
        raise SourceError("; ".join(str(p) for p in sink.errors[:5]))
    return out


class Evaluator:
    """Evaluates sources against a set of tables, converting each column once."""

    def __init__(self, tables: Mapping[str, Table] | Sequence[Table], problems: Problems | None = None, *,
                 people: Any = None, teams: Any = None, rates: Any = None) -> None:
        """``people``, ``teams``, ``rates``: the table-level transforms of :mod:`xl_kpi.inputs.people`
        (``by`` values → employee ids), :mod:`xl_kpi.inputs.team` (``for team``) and
        :mod:`xl_kpi.inputs.rates` (amounts in the plan's currency); None: not applied."""
        self.people, self.teams, self.rates = people, teams, rates
        items = tables.values() if isinstance(tables, Mapping) else tables
        self.tables: dict[str, Table] = {}
        for t in items:
            self.tables.setdefault(t.name.casefold(), t)
        self.problems = problems if problems is not None else Problems()
        self._cache: dict[tuple[str, str, str], Any] = {}
        self._reported: set[tuple[str, ...]] = set()

    # -- lookups
    def table(self, name: str, at: Mapping[str, Any]) -> Table | None:
        t = self.tables.get(name.casefold())
        if t is None and ":" not in name:
            t = self.tables.get(name.strip().casefold())
        if t is None:
            known = ", ".join(sorted(self.tables)) or "none"
            self.report_once(
                ("table", name, str(at)),
                "error",
                f'the source names table "{name}", but no data file or sheet is called that (tables: {known})',
                f"pass a file named {name}.csv or {name}.xlsx with --data, or correct the name in the source",
                at,
            )
        else:
            t.report(self.problems)  # what reading found about the whole table (hidden rows, stale formulas…)
        return t

    def column(self, table: Table, name: str, at: Mapping[str, Any], role: str) -> str | None:
        col = table.column(name)
        if col is None:
            cols = ", ".join(str(c) for c in table.frame.columns)
            hint = " (name the employee column with 'by ...')" if role == "employee" and name == DEFAULT_BY else ""
            self.report_once(
                ("column", table.name, name, str(at)),
                "error",
                f'table {table.name} ({table.file}) has no column "{name}"{hint}; its columns are: {cols}',
                "correct the column name in the source, or add the column to the file",
                at,
            )
        else:
            table.report(self.problems, [col])  # formulas without a saved value, merged cells… in this column
        return col

    def report_once(self, key: tuple[str, ...], severity: str, message: str, fix: str, at: Mapping[str, Any]) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        if severity == "error":
            self.problems.error(message, fix, **dict(at))
        else:
            self.problems.warning(message, fix, **dict(at))

    def _converted(self, table: Table, col: str, kind: str) -> Any:
        key = (table.name, col, kind)
        if key not in self._cache:
            s = table.frame[col]
            conv = {"numbers": to_numbers, "dates": to_dates, "flags": to_flags_checked}.get(kind)
            if conv is not None:
                self._cache[key] = _once_per_row(conv, s)
            elif kind == "ids":
                self._cache[key] = to_ids(s)
            elif kind == "text":
                self._cache[key] = to_ids(s).map(lambda v: v.casefold() if isinstance(v, str) else v)
            elif kind == "day":
                dates, _ = self._converted(table, col, "dates")
                self._cache[key] = dates.dt.normalize()
        return self._cache[key]

    def _bad_cells(self, table: Table, col: str, errors: pd.Series, mask: np.ndarray, what: str) -> None:
        bad = errors[mask & errors.notna().to_numpy()]
        bad = bad[~bad.index.duplicated()]  # a row given to several heads (for team) is one cell
        key = ("cells", table.file, str(table.sheet), col, what)
        if bad.empty or key in self._reported:
            return
        self._reported.add(key)
        self.problems.cells(
            "error", table, list(bad.index), col, [f"{what}: {m}" for m in bad],
            "correct the cell in the raw data (or filter the row out with 'where')",
        )

    # -- evaluation
    def evaluate(
        self,
        source: Source | str,
        *,
        period: Period | None = None,
        employees: Sequence[str] | None = None,
        at: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """See :func:`evaluate`."""
        at = dict(at or {})
        period = period_of(period)
        if isinstance(source, str):
            try:
                source = parse(source)
            except SourceSyntaxError as e:
                self.problems.error(f"source: {e}", "correct the source text (see docs/plan.md)", **at)
                return _empty_frame(employees, period)
        num = self.term(source.numerator, period, at)
        den = self.term(source.denominator, period, at) if source.denominator is not None else None
        if num is None or (source.denominator is not None and den is None):
            return _empty_frame(employees, period)
        result, note = self.combine(source, num, den, period, employees)
        result = result * source.factor
        frame = result.rename("fact").reset_index()
        frame["period"] = frame["period"].where(frame["period"] != "", np.nan).astype(object)
        frame["note"] = note.reindex(result.index).to_numpy()
        frame["note"] = frame["note"].where(frame["fact"].isna(), np.nan)
        return frame[["employee_id", "period", "fact", "note"]]

    def combine(
        self,
        source: Source,
        num: pd.Series,
        den: pd.Series | None,
        period: Period | None,
        employees: Sequence[str] | None,
    ) -> tuple[pd.Series, pd.Series]:
        """Align the terms on (employee_id, period), fill employees with no rows, divide."""
        index = num.index if den is None else num.index.union(den.index)
        periods = sorted(set(index.get_level_values("period")))
        if employees is not None:
            wanted_periods = [period.key] if period is not None and source.dated else (periods or [""])
            if not source.dated:
                wanted_periods = [""]
            wanted = pd.MultiIndex.from_product([list(employees), wanted_periods], names=["employee_id", "period"])
            index = wanted.append(index.difference(wanted)) if len(index) else wanted
        n = _align(num, index, source.numerator.empty_value)
        no_rows = f"no rows in {source.numerator.table} for this employee" + (f" in {period}" if period else "")
        if den is None:
            note = pd.Series(no_rows, index=index, dtype=object)
            return n, note
        d = _align(den, index, source.denominator.empty_value)  # type: ignore[union-attr]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = n / d.where(d != 0)
        note = pd.Series(no_rows, index=index, dtype=object)
        note[(d == 0).to_numpy()] = f"division by zero: {source.denominator} is 0"
        return value, note

    def term(self, agg: Agg, period: Period | None, at: Mapping[str, Any]) -> pd.Series | None:
        """One aggregation: a Series indexed by (employee_id, period) ('' period when undated)."""
        table = self.table(agg.table, at)
        if table is None:
            return None
        roles = [(agg.by or DEFAULT_BY, "employee"), (agg.dated, "date"), (agg.column, "value"),
                 (agg.end_column, "value")] + [(c, "filter") for c in _cond_columns(agg.where)]
        cols: dict[str, str] = {}
        for name, role in roles:
            if name:
                col = self.column(table, name, at, role)
                if col is None:
                    return None
                cols[name] = col
        table = self.transformed(table, agg, cols, at)
        if table is None:
            return None
        frame = table.frame
        mask = np.ones(len(frame), dtype=bool)
        if agg.where is not None:
            mask &= self.cond(table, agg.where, cols)
        emp = self._converted(table, cols[agg.by or DEFAULT_BY], "ids")
        if agg.dated:
            dcol = cols[agg.dated]
            dates, errors = self._converted(table, dcol, "dates")
            self._bad_cells(table, dcol, errors, mask, "date")
            no_date = mask & dates.isna().to_numpy() & errors.isna().to_numpy()
            if no_date.any():
                self.report_once(
                    ("nodate", table.name, dcol, str(agg.where)),
                    "warning",
                    f"{int(no_date.sum())} rows of {table.file} have no {dcol} date, so they belong to no period "
                    f"and are not counted (rows {row_ranges(list(frame.index[no_date]))})",
                    "fill in the date, or filter these rows out with 'where'",
                    table.at(None, dcol),
                )
            mask &= dates.notna().to_numpy()
            if period is None:
                periods = month_keys(dates)  # the period is found from the data: one per month
            else:
                periods = pd.Series(period.key, index=frame.index, dtype=object)
                in_period = period.contains(dates).to_numpy()
                if mask.any() and not (mask & in_period).any():
                    first, last = dates[mask].min(), dates[mask].max()
                    self.report_once(
                        ("period", table.name, dcol, period.key),
                        "error",
                        f"no row of {table.file} is dated in {period} ({period.start:%d.%m.%Y} – "
                        f"{period.end:%d.%m.%Y}): the {dcol} dates run from "
                        f"{first:%d.%m.%Y} to {last:%d.%m.%Y}",
                        "check the period (Settings or --period) or pass the export for this period",
                        table.at(None, dcol),
                    )
                mask &= in_period
        else:
            periods = pd.Series("", index=frame.index, dtype=object)
        no_emp = mask & emp.isna().to_numpy()
        if no_emp.any():
            ecol = cols[agg.by or DEFAULT_BY]
            self.report_once(
                ("noemp", table.name, ecol, str(agg.where), str(period)),
                "warning",
                f"{int(no_emp.sum())} rows of {table.file} have no {ecol}, so they count for nobody "
                f"(rows {row_ranges(list(frame.index[no_emp]))})",
                f"fill in {ecol}, or filter these rows out with 'where'",
                table.at(None, ecol),
            )
        mask &= emp.notna().to_numpy()
        keys = [emp[mask].rename("employee_id"), periods[mask].fillna("").rename("period")]
        return self.aggregate(agg, table, cols, mask, keys)

    def transformed(self, table: Table, agg: Agg, cols: dict[str, str], at: Mapping[str, Any]) -> Table | None:
        """The table as this aggregation sees it: people by employee id, amounts in the plan's currency,
        rows given to every head above their employee (``for team``)."""
        by = cols[agg.by or DEFAULT_BY]
        if self.people is not None:
            table = self.people.transform(table, by)
        if self.rates is not None and agg.func in VALUE_FUNCS and agg.unit is None and agg.currency != CURRENCY_OFF:
            ccol = self.column(table, agg.currency, at, "currency") if agg.currency else table.column(
                *AUTO_CURRENCY_COLUMNS)
            if agg.currency and ccol is None:
                return None
            if ccol is not None:
                table = self.rates.transform(table, cols[agg.column or ""], ccol, cols.get(agg.dated or ""),
                                             self.problems)
        if agg.team and self.teams is not None:
            table = self.teams.transform(table, by, self.problems)
        return table

    def unmatched_warnings(self, source: Source, at: Mapping[str, Any]) -> None:
        """The people of a source's tables who matched nobody: one warning per table and column."""
        if self.people is None:
            return
        for agg in source.terms:
            t = self.tables.get(agg.table.casefold())
            col = t.column(agg.by or DEFAULT_BY) if t is not None else None
            if col is not None:
                self.people.unmatched_warning(t, col, self.problems, at)

    def aggregate(
        self, agg: Agg, table: Table, cols: Mapping[str, str], mask: np.ndarray, keys: list[pd.Series]
    ) -> pd.Series:
        index = table.frame.index[mask]
        if agg.func == "count":
            return pd.Series(1.0, index=index).groupby(keys).sum().astype(float)
        col = cols[agg.column or ""]
        if agg.func == "distinct":
            return self._converted(table, col, "ids")[mask].groupby(keys).nunique().astype(float)
        if agg.unit:
            end = cols[agg.end_column or ""]
            start, e1 = self._converted(table, col, "dates")
            stop, e2 = self._converted(table, end, "dates")
            stop = stop.mask(stop >= FAR_FUTURE)  # an end of 31.12.9999 means "not yet": like an empty end
            self._bad_cells(table, col, e1, mask, "date")
            self._bad_cells(table, end, e2, mask, "date")
            values = (stop - start)[mask].dt.total_seconds() / _DURATION_UNITS[agg.unit]
            negative = values < 0
            if negative.any():
                self._bad_cells(
                    table, end, pd.Series(np.where(negative, f"{end} is before {col}", None), index=values.index)
                    .reindex(table.frame.index), mask, "time")
                values = values.where(~negative)
        else:
            numbers, errors = self._converted(table, col, "numbers")
            self._bad_cells(table, col, errors, mask, "number")
            values = numbers[mask]
        if agg.func == "nps":
            bad = values.notna() & ((values < 0) | (values > 10) | (values != np.floor(values)))
            if bad.any():
                msgs = pd.Series(np.nan, index=table.frame.index, dtype=object)
                msgs[values.index[bad]] = [f"NPS answers are whole numbers 0–10, not {v:g}" for v in values[bad]]
                self._bad_cells(table, col, msgs, mask, "answer")
                values = values.where(~bad)
            frame = pd.DataFrame({"p": (values >= 9).astype(float), "d": (values <= 6).astype(float),
                                  "n": values.notna().astype(float)})
            frame = frame[values.notna().to_numpy()]
            k = [key[values.notna().to_numpy()] for key in keys]
            g = frame.groupby(k).sum()
            return ((g["p"] - g["d"]) * 100.0 / g["n"]).astype(float)
        grouped = values.groupby(keys)
        if agg.func == "sum":
            return grouped.sum().astype(float)
        return getattr(grouped, agg.func)().astype(float)

    def cond(self, table: Table, cond: Cond, cols: Mapping[str, str]) -> np.ndarray:
        """Boolean mask of the rows satisfying a condition."""
        if isinstance(cond, BoolOp):
            left, right = self.cond(table, cond.left, cols), self.cond(table, cond.right, cols)
            return (left & right) if cond.op == "and" else (left | right)
        if isinstance(cond, Not):
            return ~self.cond(table, cond.cond, cols)
        col = cols[cond.column]
        if isinstance(cond, IsEmpty):
            empty = self._converted(table, col, "ids").isna().to_numpy()
            return ~empty if cond.negate else empty
        if isinstance(cond, IsIn):
            hit = np.zeros(len(table.frame), dtype=bool)
            for v in cond.values:
                hit |= self.equals(table, col, v)
            return ~hit if cond.negate else hit
        if cond.op == "=":
            return self.equals(table, col, cond.value)
        if cond.op == "!=":
            return ~self.equals(table, col, cond.value)
        left, right = self.operands(table, col, cond.value)
        with np.errstate(invalid="ignore"):
            out = {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[cond.op]
        return np.asarray(out, dtype=bool) & ~pd.isna(left)

    def operands(self, table: Table, col: str, value: Value) -> tuple[np.ndarray, Any]:
        if value.kind == "date":
            return self._converted(table, col, "day").to_numpy(), np.datetime64(value.value)
        numbers, _ = self._converted(table, col, "numbers")
        return numbers.to_numpy(), float(value.value)

    def equals(self, table: Table, col: str, value: Value) -> np.ndarray:
        if value.kind == "flag":
            flags, errors = self._converted(table, col, "flags")
            self._bad_cells(table, col, errors, np.ones(len(table.frame), dtype=bool), "yes/no")
            text = self._converted(table, col, "text")
            return (flags == value.value).fillna(False).to_numpy(dtype=bool) | (
                text == value.text.casefold()
            ).to_numpy(dtype=bool)
        if value.kind in ("number", "date"):
            left, right = self.operands(table, col, value)
            with np.errstate(invalid="ignore"):
                return np.asarray(left == right, dtype=bool)
        text = self._converted(table, col, "text")
        return (text == value.value.strip().casefold()).to_numpy(dtype=bool)


def _once_per_row(conv: Any, s: pd.Series) -> Any:
    """``conv(s)`` (a (values, errors) pair); rows repeated by ``for team`` (one per head, the same row
    number) are converted once and the results repeated with them."""
    if s.index.is_unique:
        return conv(s)
    values, errors = conv(s[~s.index.duplicated()])
    return values.reindex(s.index), errors.reindex(s.index)


def _align(values: pd.Series, index: pd.MultiIndex, empty: float) -> pd.Series:
    """Values on ``index``; (employee, period) pairs with no rows take the aggregation's empty value."""
    if values.index.nlevels != 2:
        values = values.copy()
        values.index = pd.MultiIndex.from_tuples([], names=["employee_id", "period"])
    return values.reindex(index, fill_value=empty).astype(float)


def _empty_frame(employees: Sequence[str] | None, period: Period | None) -> pd.DataFrame:
    ids = list(employees or [])
    key = period.key if period is not None else None
    return pd.DataFrame(
        {"employee_id": pd.Series(ids, dtype=object), "period": pd.Series([key] * len(ids), dtype=object),
         "fact": np.nan, "note": pd.Series([UNEVALUATED] * len(ids), dtype=object)}
    )
