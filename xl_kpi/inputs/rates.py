"""Money in several currencies: the plan's ``Rates`` sheet (ru ``Курсы``: currency, rate to the plan's
currency, optional date the rate is valid from) and the table-level transform that converts an export's
amounts into the plan's currency at each row's date.

A sum or mean over money never mixes currencies silently: a source names its currency column
(``currency COLUMN``) or the table has a column named ``Currency``/``Валюта`` (switched off with
``currency none``). Amounts in the plan's currency (and rows with an empty currency cell) are taken as
they are; others are multiplied by the rate valid on the row's date (``dated`` column; without one, the
newest rate). A currency without a rate, or a row dated before its first rate, is an error at the cells.
Codes are normalised: руб, р., ₽, RUR → RUB; $ → USD; € → EUR; letter case ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.i18n import Msg, Plural
from xl_kpi.inputs.cells import to_dates, to_ids, to_numbers
from xl_kpi.inputs.problems import Problems, row_ranges
from xl_kpi.inputs.tables import Table

__all__ = ["AUTO_CURRENCY_COLUMNS", "Rates", "currency_code", "read_rates"]

AUTO_CURRENCY_COLUMNS = ("currency", "валюта", "код валюты", "currency code")
"""A table column with one of these headers is its currency column unless the source says ``currency none``."""
_SYNONYMS = {
    "руб": "RUB", "руб.": "RUB", "рубль": "RUB", "рубли": "RUB", "рублей": "RUB", "р": "RUB", "р.": "RUB",
    "₽": "RUB", "rur": "RUB", "rub": "RUB", "$": "USD", "us$": "USD", "доллар": "USD", "долл": "USD",
    "долл.": "USD", "€": "EUR", "евро": "EUR", "eur": "EUR", "usd": "USD", "¥": "CNY", "юань": "CNY",
    "тенге": "KZT", "₸": "KZT", "£": "GBP",
}


def currency_code(value: Any) -> str | None:
    """A currency as its ISO code (``руб``/``₽``/``RUR`` → ``RUB``, ``$`` → ``USD``, ``€`` → ``EUR``,
    other text upper-cased); None for an empty cell.

    >>> currency_code(" руб. "), currency_code("$"), currency_code("usd")
    ('RUB', 'USD', 'USD')
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = " ".join(str(value).split())
    if not text:
        return None
    return _SYNONYMS.get(text.casefold(), text.upper())


@dataclass
class Rates:
    """The Rates sheet: per currency, (valid-from date or NaT, rate) sorted by date."""

    currency: str = "RUB"
    by_currency: dict[str, pd.DataFrame] = field(default_factory=dict)
    _done: dict[tuple[str, ...], Table] = field(default_factory=dict, repr=False)
    _reported: set[tuple[str, ...]] = field(default_factory=set, repr=False)

    def fresh(self) -> Rates:
        """The same rates with nothing converted or reported yet (one per run over the data)."""
        return Rates(self.currency, self.by_currency)

    def transform(self, table: Table, column: str, currency_column: str, date_column: str | None,
                  problems: Problems) -> Table:
        """The table with ``column``'s amounts in the plan's currency (see module doc); unreadable amounts
        are kept as written, so that they are still reported at their cell."""
        key = (table.name, column, currency_column, date_column or "")
        if key in self._done:
            return self._done[key]
        frame = table.frame
        codes = frame[currency_column].map(currency_code)
        foreign = codes.notna() & (codes != self.currency)
        if not foreign.any():
            self._done[key] = table
            return table
        amounts, unreadable = to_numbers(frame[column])
        if date_column is not None:
            dates = to_dates(frame[date_column])[0]
        else:
            dates = pd.Series(pd.Timestamp.max.normalize(), index=frame.index)
        rate = pd.Series(np.nan, index=frame.index)
        for code in sorted(set(codes[foreign])):
            rows = (codes == code).to_numpy()
            table_rates = self.by_currency.get(code)
            if table_rates is None:
                self._error((*key, code), problems, table, currency_column, rows,
                            Plural("{n} row of {file} is in {code} (column {currency_column}), but the plan's "
                                   "Rates sheet has no rate from {code} to {currency}: the amounts in {column} "
                                   "cannot be added to those in {currency}",
                                   "{n} rows of {file} are in {code} (column {currency_column}), but the plan's "
                                   "Rates sheet has no rate from {code} to {currency}: the amounts in {column} "
                                   "cannot be added to those in {currency}", int(rows.sum()), file=table.file,
                                   code=code, currency_column=currency_column, currency=self.currency,
                                   column=column),
                            Msg("add a row to the Rates sheet (Курсы): currency {code}, rate = how many {currency} "
                                "one {code} is worth (and the date it is valid from, if it changes); or filter these "
                                "rows out with 'where'", code=code, currency=self.currency))
                continue
            found = _rate_at(table_rates, dates[rows])
            missing = rows.copy()
            missing[rows] = np.isnan(found) & dates[rows].notna().to_numpy()
            if missing.any():
                first = table_rates["date"].min()
                self._error((*key, code, "early"), problems, table, date_column or currency_column, missing,
                            Plural("{n} row of {file} in {code} is dated before the first {code} rate of the "
                                   "Rates sheet (valid from {first:%d.%m.%Y})",
                                   "{n} rows of {file} in {code} are dated before the first {code} rate of the "
                                   "Rates sheet (valid from {first:%d.%m.%Y})", int(missing.sum()),
                                   file=table.file, code=code, first=first),
                            Msg("add a {code} rate valid from an earlier date (or one without a date) to the Rates "
                                "sheet", code=code))
            rate[rows] = found
        converted = amounts.where(~foreign.to_numpy(), amounts * rate)  # numbers, read once (no rate: empty)
        readable = unreadable.isna().to_numpy()
        out = converted if readable.all() else converted.astype(object).where(readable, frame[column])  # bad text stays
        new = frame.copy(deep=False)
        new[column] = out
        self._done[key] = replace(table, name=f"{table.name} (in {self.currency})", frame=new)
        return self._done[key]

    def _error(self, key: tuple[str, ...], problems: Problems, table: Table, column: str, rows: np.ndarray,
               message: Msg, fix: Msg) -> None:
        if key in self._reported:
            return
        self._reported.add(key)
        numbers = list(table.frame.index[rows])
        problems.error(Msg("{message} (rows {row_ranges})", message=message,
                           row_ranges=row_ranges(sorted(set(numbers)))), fix,
                       **table.at(int(numbers[0]), column))



def _rate_at(rates: pd.DataFrame, dates: pd.Series) -> np.ndarray:
    """The rate valid on each date: the newest rate dated on or before it (an undated rate is valid always)."""
    valid_from = rates["date"].fillna(pd.Timestamp.min).to_numpy(dtype="datetime64[ns]")
    values = rates["rate"].to_numpy(dtype=float)
    d = dates.to_numpy(dtype="datetime64[ns]")
    pos = np.searchsorted(valid_from, d, side="right") - 1
    out = np.where(pos >= 0, values[np.clip(pos, 0, None)], np.nan)
    return np.where(pd.isna(d), values[-1] if len(values) else np.nan, out)


def read_rates(table: Table | None, columns: Mapping[str, str | None], currency: str, problems: Problems) -> Rates:
    """The Rates sheet checked row by row (``columns``: canonical name → header); ``currency`` is the plan's."""
    rates = Rates(currency=currency_code(currency) or "RUB")
    if table is None or table.frame.empty or not columns.get("currency") or not columns.get("rate"):
        return rates
    f = table.frame
    ccol, rcol, dcol = columns["currency"], columns["rate"], columns.get("date")
    codes = f[ccol].map(currency_code)
    values, errors = to_numbers(f[rcol])
    if dcol:
        dates, derrors = to_dates(f[dcol])
    else:
        dates, derrors = pd.Series(pd.NaT, index=f.index), pd.Series(np.nan, index=f.index, dtype=object)
    ok = pd.Series(True, index=f.index)
    blank = codes.isna() & to_ids(f[rcol]).isna()
    ok &= ~blank
    checks = [
        (codes.isna() & ~blank, ccol, Msg("the currency is empty"), Msg("type the currency code (USD, EUR, …)")),
        (errors.notna(), rcol, None, Msg("type the rate as a number, e.g. 92,5")),
        ((values <= 0) & errors.isna(), rcol, Msg("a rate must be above 0"),
         Msg("type how many units of the plan's currency one unit of this currency is worth")),
        (values.isna() & errors.isna() & ~blank, rcol, Msg("the rate is empty"), Msg("fill in the rate")),
        (derrors.notna(), dcol or rcol, None, Msg("type the date as 01.10.2026 or 2026-10-01")),
        (codes == rates.currency, ccol, Msg("a rate for the plan's own currency ({currency})",
                                            currency=rates.currency),
         Msg("delete the row: amounts in the plan's currency are taken as they are")),
    ]
    for mask, col, message, fix in checks:
        mask = mask.fillna(False).astype(bool) & ok
        if mask.any():
            msgs = message if message is not None else list((errors if col == rcol else derrors)[mask])
            problems.cells("error", table, list(f.index[mask]), col, msgs, fix)
            ok &= ~mask
    good = pd.DataFrame({"currency": codes, "rate": values, "date": dates.dt.normalize(), "row": f.index})[ok]
    twice = good.duplicated(["currency", "date"], keep="first")
    for r, code in zip(good.loc[twice, "row"], good.loc[twice, "currency"], strict=True):
        problems.error(Msg("a second {code} rate for the same date", code=code),
                       Msg("keep one rate per currency and date"),
                       **table.at(int(r), ccol))
    good = good[~twice]
    for code, group in good.groupby("currency", sort=True):
        rates.by_currency[str(code)] = group.sort_values("date", na_position="first").reset_index(drop=True)
    return rates
