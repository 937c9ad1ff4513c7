"""Running a parsed source over raw tables: :func:`evaluate` and :class:`Evaluator` (tables and
columns looked up, each column converted once into Arrow, the source compiled into Ibis expressions
(DuckDB's own on the default engine) by :mod:`~xl_kpi.inputs.sources.compile` and run on a
:class:`~xl_kpi.inputs.sources.backend.Backend`
(DuckDB by default), ratios of the per-employee results); problems are reported at the cell.
No raw row passes through Python: filters, periods and aggregations run in the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.period import Period, period_of
from xl_kpi.i18n import English, Msg, Plural, english
from xl_kpi.inputs.problems import Problems, row_ranges
from xl_kpi.inputs.rates import AUTO_CURRENCY_COLUMNS
from xl_kpi.inputs.sources.backend import Backend, default_backend
from xl_kpi.inputs.sources.cluster import ClusterColumn, ClusterColumns, ClusterTable, TooManySlowValues
from xl_kpi.inputs.sources.columns import ROW, Columns, Kind
from xl_kpi.inputs.sources.compile import EMPLOYEE, FACT, PERIOD, Term
from xl_kpi.inputs.sources.errors import SourceError, SourceSyntaxError
from xl_kpi.inputs.sources.parser import parse
from xl_kpi.inputs.sources.tokens import CURRENCY_OFF, DEFAULT_BY, VALUE_FUNCS
from xl_kpi.inputs.sources.tree import Agg, Source, _cond_columns
from xl_kpi.inputs.tables import Table

UNEVALUATED = English(Msg("the source could not be evaluated"))
"""The note of every fact of a source that names a missing table or column."""


def evaluate(
    source: Source | str,
    tables: Mapping[str, Table] | Sequence[Table],
    *,
    period: Period | str | None = None,
    employees: Sequence[str] | None = None,
    problems: Problems | None = None,
    at: Mapping[str, Any] | None = None,
    backend: Backend | None = None,
) -> pd.DataFrame:
    """Facts from raw tables: a DataFrame with columns employee_id, period, fact, note.

    ``period`` (a :class:`Period` or its text: ``2026-10``, ``2026-Q4``, ``2026-10-01..2026-12-31``)
    keeps only rows dated inside its bounds, both days included (for dated terms). Without it, dated
    sources give one row per employee and month found. ``employees`` completes the result with
    the employees that have no rows (0 for count, distinct and sum; NaN otherwise, with a note);
    employees found in the data but not listed are kept too, after the listed ones.
    Problems go to ``problems`` when given (located at ``at`` for the source itself); otherwise
    the first errors are raised as :class:`SourceError`. ``backend`` runs the compiled queries
    (default: a new embedded DuckDB).
    """
    own = problems is None
    sink = Problems() if own else problems
    evaluator = Evaluator(tables, sink, backend=backend)
    out = evaluator.evaluate(source, period=period_of(period), employees=employees, at=at)
    if own and sink.has_errors:
        raise SourceError("; ".join(str(p) for p in sink.errors[:5]))
    return out


class Evaluator:
    """Evaluates sources against a set of tables, converting each column once."""

    def __init__(
        self,
        tables: Mapping[str, Table] | Sequence[Table],
        problems: Problems | None = None,
        *,
        people: Any = None,
        teams: Any = None,
        rates: Any = None,
        backend: Backend | None = None,
    ) -> None:
        """``people``, ``teams``, ``rates``: the table-level transforms of :mod:`xl_kpi.inputs.people`
        (``by`` values → employee ids), :mod:`xl_kpi.inputs.team` (``for team``) and
        :mod:`xl_kpi.inputs.rates` (amounts in the plan's currency); None: not applied. ``backend`` runs
        the compiled queries (default: a new embedded DuckDB)."""
        self.people, self.teams, self.rates = people, teams, rates
        items = tables.values() if isinstance(tables, Mapping) else tables
        self.tables: dict[str, Table] = {}
        for t in items:
            self.tables.setdefault(t.name.casefold(), t)
        self.problems = problems if problems is not None else Problems()
        self._backend: Backend | None = backend
        self._columns: dict[int, Columns] = {}
        self._reported: set[tuple[str, ...]] = set()
        self._terms: dict[tuple[Agg, Period | None], pd.Series] = {}

    @property
    def backend(self) -> Backend:
        """The query engine, made on first use: a plan without sources never imports Ibis and DuckDB (~1.5 s)."""
        if self._backend is None:
            self._backend = default_backend()
        return self._backend

    def kit(self, table: Table) -> Any:
        """The expression language of ``table``'s queries: the backend's own (DuckDB's, without Ibis) when
        it has one, else None (Ibis: Spark, and a table that stays in Spark)."""
        if isinstance(table, ClusterTable):
            return None
        return getattr(self.backend, "kit", None) if hasattr(self.backend, "relation") else None

    # -- lookups
    def table(self, name: str, at: Mapping[str, Any]) -> Table | None:
        t = self.tables.get(name.casefold())
        if t is None and ":" not in name:
            t = self.tables.get(name.strip().casefold())
        if t is None:
            known = ", ".join(sorted(self.tables)) or Msg("none")
            self.report_once(
                ("table", name, str(at)),
                "error",
                Msg('the source names table "{name}", but no data file or sheet is called that (tables: {known})',
                    name=name, known=known),
                Msg("pass a file named {name}.csv or {name}.xlsx with --data, or correct the name in the source",
                    name=name),
                at,
            )
        else:
            t.report(self.problems)  # what reading found about the whole table (hidden rows, stale formulas…)
        return t

    def column(self, table: Table, name: str, at: Mapping[str, Any], role: str) -> str | None:
        col = table.column(name)
        if col is None:
            cols = ", ".join(str(c) for c in table.headers)
            if role == "employee" and name == DEFAULT_BY:
                message = Msg('table {table} ({file}) has no column "{name}" (name the employee column with '
                              "'by ...'); its columns are: {cols}", table=table.name, file=table.file, name=name,
                              cols=cols)
            else:
                message = Msg('table {table} ({file}) has no column "{name}"; its columns are: {cols}',
                              table=table.name, file=table.file, name=name, cols=cols)
            self.report_once(
                ("column", table.name, name, str(at)),
                "error",
                message,
                Msg("correct the column name in the source, or add the column to the file"),
                at,
            )
        else:
            table.report(self.problems, [col])  # formulas without a saved value, merged cells… in this column
        return col

    def report_once(self, key: tuple[str, ...], severity: str, message: Msg, fix: Msg, at: Mapping[str, Any]) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        if severity == "error":
            self.problems.error(message, fix, **dict(at))
        else:
            self.problems.warning(message, fix, **dict(at))

    def _bad_cells(self, table: Table, col: str, errors: pd.Series | None, rows: Any, what: str) -> None:
        """Report the messages of ``errors`` (indexed by Excel row) on ``rows`` (None: all of them), once."""
        if errors is None:
            return
        bad = errors if rows is None else errors[errors.index.isin(rows)]
        bad = bad[~bad.index.duplicated()]  # a row given to several heads (for team) is one cell
        key = ("cells", table.file, str(table.sheet), col, what)
        if bad.empty or key in self._reported:
            return
        self._reported.add(key)
        self.problems.cells(
            "error", table, list(bad.index), col,
            [Msg("{column}: {error}", column=_ROLES.get(what, what), error=m) for m in bad],
            Msg("correct the cell in the raw data (or filter the row out with 'where')"),
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
                self.problems.error(Msg("source: {e}", e=e), Msg("correct the source text (see docs/plan.md)"), **at)
                return _empty_frame(employees, period)
        num = self.term(source.numerator, period, at)
        den = self.term(source.denominator, period, at) if source.denominator is not None else None
        if num is None or (source.denominator is not None and den is None):
            return _empty_frame(employees, period)
        result, note = self.combine(source, num, den, period, employees)
        result = result * source.factor
        frame = result.rename("fact").reset_index()
        frame["period"] = frame["period"].where(frame["period"] != "", np.nan).astype(object)
        # object dtype: pandas 3 would infer its str dtype and drop the English(Msg) of each note (its translation)
        frame["note"] = pd.Series(note.reindex(result.index).to_numpy(), index=frame.index, dtype=object).where(
            frame["fact"].isna(), np.nan)
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
        no_rows = english(Msg("no rows in {table} for this employee in {period}", table=source.numerator.table,
                              period=str(period)) if period else
                          Msg("no rows in {table} for this employee", table=source.numerator.table))
        if den is None:
            note = pd.Series(no_rows, index=index, dtype=object)
            return n, note
        d = _align(den, index, source.denominator.empty_value)  # type: ignore[union-attr]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = n / d.where(d != 0)
        note = pd.Series(no_rows, index=index, dtype=object)
        note[(d == 0).to_numpy()] = english(Msg("division by zero: {denominator} is 0",
                                                denominator=str(source.denominator)))
        return value, note

    def term(self, agg: Agg, period: Period | None, at: Mapping[str, Any]) -> pd.Series | None:
        """One aggregation: a Series indexed by (employee_id, period) ('' period when undated).

        Compiled into one Ibis expression and run on the backend; the few row queries that locate
        bad cells run only when the typed columns say such cells exist. A table that stays in Spark
        whose column needs too much per-value work there is read locally instead.

        A term met again (``revenue``'s ``sum deals.amount where status = won`` as the denominator of
        ``key_share``) is computed once: every problem it finds is reported once anyway (file, column and
        condition are its keys, not the KPI), so only the queries are saved. A term that could not be computed
        is looked at again, so that its missing table or column is reported at each KPI that names it."""
        key = (agg, period)
        done = self._terms.get(key)
        if done is not None:
            return done.copy()
        table = self.table(agg.table, at)
        if table is None:
            return None
        if isinstance(table, ClusterTable):
            try:
                found = self._term(agg, period, at, table)
            except TooManySlowValues:
                found = self._term(agg, period, at, table.local())
        else:
            found = self._term(agg, period, at, table)
        if found is not None:
            self._terms[key] = found.copy()
        return found

    def _term(self, agg: Agg, period: Period | None, at: Mapping[str, Any], table: Table) -> pd.Series | None:
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
        term = Term(agg, cols, kit=self.kit(table))
        emp, date = term.employee, term.date
        value = term.value() if agg.func not in ("count", "distinct") else None
        if agg.func == "distinct":
            value = term.source_col(agg.column or "", "ids")
        key = term.period_key(period)
        in_period = term.in_period(period) if (agg.dated and period is not None) else None
        columns = self.columns(table)
        t = term.bind(columns, self.backend)
        where = term.where
        for (header, kind), _flag in term.bad.items():
            if kind == "flags":  # a yes/no cell that is neither: reported wherever the filter looks at it
                self._bad_cells(table, header, columns.get(header, kind).errors, None, "yes/no")
        ecol = cols[agg.by or DEFAULT_BY]
        if agg.dated:
            dcol = cols[agg.dated]
            self._located(table, t, term, where, dcol, "dates", "date")
            dates = columns.get(dcol, "dates")
            nodate_key = ("nodate", table.name, dcol, str(agg.where))
            if nodate_key not in self._reported and _empty_cells(dates):
                flag = term.bad_flag(dcol, "dates")
                empty = date.isnull() if flag is None else date.isnull() & ~flag
                no_date = self._rows(t.filter(where & empty))
                if len(no_date):
                    self.report_once(
                        nodate_key,
                        "warning",
                        Plural("{n} row of {file} has no {column} date, so it belongs to no period and is not "
                               "counted (rows {rows})",
                               "{n} rows of {file} have no {column} date, so they belong to no period and are not "
                               "counted (rows {rows})", len(no_date), file=table.file, column=dcol,
                               rows=row_ranges(list(no_date))),
                        Msg("fill in the date, or filter these rows out with 'where'"),
                        table.at(None, dcol),
                    )
            where = where & date.notnull()
            dated_rows = where
            if in_period is not None:
                where = where & in_period
        if _empty_cells(columns.get(ecol, "ids"), ids=True):
            no_emp = self._rows(t.filter(where & emp.isnull()))
            if len(no_emp):
                self.report_once(
                    ("noemp", table.name, ecol, str(agg.where), str(period)),
                    "warning",
                    Plural("{n} row of {file} has no {column}, so it counts for nobody (rows {rows})",
                           "{n} rows of {file} have no {column}, so they count for nobody (rows {rows})",
                           len(no_emp), file=table.file, column=ecol, rows=row_ranges(list(no_emp))),
                    Msg("fill in {column}, or filter these rows out with 'where'", column=ecol),
                    table.at(None, ecol),
                )
        where = where & emp.notnull()
        if agg.unit:
            for c in (cols[agg.column or ""], cols[agg.end_column or ""]):
                self._located(table, t, term, where, c, "dates", "date")
            end = cols[agg.end_column or ""]
            negative = self._rows(t.filter(where & (value < 0).fill_null(False)))
            if len(negative):
                before = english(Msg("{end} is before {start}", end=end, start=cols[agg.column or ""]))
                self._bad_cells(table, end, pd.Series(before, index=negative, dtype=object), None, "time")
                value = ibis_ifelse(value < 0, None, value, kit=term.kit)
        elif value is not None and agg.func != "distinct":
            self._located(table, t, term, where, cols[agg.column or ""], "numbers", "number")
        if agg.func == "nps":
            bad = (value.notnull() & ((value < 0) | (value > 10) | (value != value.floor()))).fill_null(False)
            found = self.backend.execute(t.filter(where & bad).select(ROW, v=value))
            if found.num_rows:
                rows = found.column(ROW).to_numpy()
                msgs = [english(Msg("NPS answers are whole numbers 0–10, not {answer:g}", answer=v))
                        for v in found.column("v").to_pylist()]
                self._bad_cells(table, cols[agg.column or ""], pd.Series(msgs, index=rows, dtype=object), None,
                                "answer")
                where = where & ~bad
            where = where & value.notnull()
        picked = t.filter(where).select(employee_id=emp, period=key, **({"v": value} if value is not None else {}))
        out = self.backend.execute(term.aggregate(picked, value)).to_pandas()
        if in_period is not None and out.empty:  # no row in the period: a wrong export, or the wrong period?
            self._check_period(t, dated_rows, in_period, date, table, cols[agg.dated or ""], period)  # type: ignore

        return _series(out)

    def transformed(self, table: Table, agg: Agg, cols: dict[str, str], at: Mapping[str, Any], *,
                    quiet: bool = False, team: bool = True) -> Table | None:
        """The table as this aggregation sees it: people by employee id, amounts in the plan's currency,
        rows given to every head above their employee (``for team``; ``team=False`` skips that step).
        ``quiet``: problems go nowhere (a second look at rows :meth:`term` already reported on)."""
        sink = Problems() if quiet else self.problems
        by = cols[agg.by or DEFAULT_BY]
        needs_rows = (agg.team and self.teams is not None) or bool(self.currency_column(table, agg, at, quiet=True))
        if isinstance(table, ClusterTable) and needs_rows:
            table = table.local()  # these transforms need the rows here (see the cluster module)
        if self.people is not None:
            table = self.people.transform(table, by)
        ccol = self.currency_column(table, agg, at, quiet=quiet)
        if ccol is False:
            return None
        if ccol and self.rates is not None:
            table = self.rates.transform(table, cols[agg.column or ""], ccol, cols.get(agg.dated or ""), sink)
        if team and agg.team and self.teams is not None:
            table = self.teams.transform(table, by, sink)
        return table

    def currency_column(self, table: Table, agg: Agg, at: Mapping[str, Any], *, quiet: bool = False
                        ) -> str | bool | None:
        """The header of the column whose currency converts ``agg``'s amounts (None: no conversion; False:
        the source names a currency column the table does not have, reported unless ``quiet``)."""
        if self.rates is None or agg.func not in VALUE_FUNCS or agg.unit is not None or agg.currency == CURRENCY_OFF:
            return None
        if not agg.currency:
            return table.column(*AUTO_CURRENCY_COLUMNS)
        ccol = table.column(agg.currency) if quiet else self.column(table, agg.currency, at, "currency")
        return False if ccol is None else ccol

    def unmatched_warnings(self, source: Source, at: Mapping[str, Any]) -> None:
        """The people of a source's tables who matched nobody: one warning per table and column."""
        if self.people is None:
            return
        for agg in source.terms:
            t = self.tables.get(agg.table.casefold())
            col = t.column(agg.by or DEFAULT_BY) if t is not None else None
            if col is not None:
                self.people.unmatched_warning(t, col, self.problems, at)

    def columns(self, table: Table) -> Columns:
        """The typed columns of ``table`` (each converted once per evaluator): Arrow arrays, or Ibis
        expressions over a table that stays in Spark."""
        key = id(table.identity)
        if key not in self._columns:
            made = ClusterColumns(table) if isinstance(table, ClusterTable) else Columns(table)
            self._columns[key] = made  # type: ignore[assignment]
        return self._columns[key]

    def _rows(self, expr: Any) -> np.ndarray:
        """The Excel row numbers of the rows of ``expr`` (each once: ``for team`` repeats rows)."""
        return np.unique(self.backend.execute(expr.select(ROW)).column(ROW).to_numpy())

    def _located(self, table: Table, t: Any, term: Term, where: Any, col: str, kind: Kind, what: str) -> None:
        """Report the unreadable cells of ``col`` among the rows ``where`` keeps."""
        flag = term.bad_flag(col, kind)
        if flag is None or ("cells", table.file, str(table.sheet), col, what) in self._reported:
            return
        rows = self._rows(t.filter(where & flag))
        self._bad_cells(table, col, self.columns(table).get(col, kind).errors, rows, what)

    def _check_period(self, t: Any, where: Any, in_period: Any, date: Any, table: Table, dcol: str,
                      period: Period) -> None:
        """An error when rows are kept but none is dated in the period (a wrong export or period)."""
        found = self.backend.execute(t.filter(where).aggregate(
            n=date.count(), inside=in_period.ifelse(1, 0).sum(), first=date.min(), last=date.max())).to_pylist()[0]
        if found["n"] and not found["inside"]:
            first, last = found["first"], found["last"]
            self.report_once(
                ("period", table.name, dcol, period.key),
                "error",
                Msg("no row of {file} is dated in {period} ({start:%d.%m.%Y} – {end:%d.%m.%Y}): the {column} "
                    "dates run from {first:%d.%m.%Y} to {last:%d.%m.%Y}", file=table.file, period=str(period),
                    start=period.start, end=period.end, column=dcol, first=first, last=last),
                Msg("check the period (Settings or --period) or pass the export for this period"),
                table.at(None, dcol),
            )


_ROLES = {"yes/no": Msg("yes/no"), "date": Msg("date"), "number": Msg("number"), "time": Msg("time"),
          "answer": Msg("answer")}
"""The column roles named before a raw-data cell's message ("yes/no: …"), in the reader's language."""


def _empty_cells(column: Any, ids: bool = False) -> bool:
    """Whether ``column`` may hold empty cells (besides its unreadable ones): decides whether the query
    that finds them runs. Unknown for a table in Spark without a job: then it runs."""
    if isinstance(column, ClusterColumn):
        return True
    errors = 0 if ids or column.errors is None else len(column.errors)
    return column.values.null_count > errors


def _series(frame: pd.DataFrame) -> pd.Series:
    """The engine's (employee_id, period, fact) rows as a Series on (employee_id, period), sorted."""
    index = pd.MultiIndex.from_arrays(
        [frame[EMPLOYEE].astype(object), frame[PERIOD].astype(object)], names=["employee_id", "period"])
    return pd.Series(frame[FACT].to_numpy(dtype=float), index=index, name=FACT).sort_index()


def ibis_ifelse(cond: Any, yes: Any, no: Any, kit: Any = None) -> Any:
    """``yes`` where ``cond`` holds, else ``no`` (a None ``yes`` is a typed NULL of ``no``); ``kit``: the
    expression language (None: Ibis)."""
    if kit is None:
        import ibis as kit

    if yes is None:
        yes = kit.null("float64")
    return kit.ifelse(cond.fill_null(False), yes, no)


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
