"""Cell values as people type them in spreadsheets: numbers, percentages, dates, ids (periods: engine/period.py).

An accountant types ``1 234,5`` (a space or non-breaking space between thousands, a decimal
comma), ``1.234,5``, ``40%``, ``(1 200)`` for a negative amount or ``−5`` with a typographic minus;
Excel hands us floats, ints and dates. All of that is accepted. What cannot be read one way only is
rejected with a message saying how to write it: ``1,234`` could be one thousand two hundred and
thirty-four or 1.234, so it is refused.

Rules for text numbers (spaces, non-breaking and thin spaces and apostrophes group thousands):

* a dot alone is a decimal point (``1.5``); several dots group thousands (``1.234.567``);
* a comma alone is a decimal comma (``1234,5``), except ``d,ddd`` with one to three digits before
  it and nothing else, which is ambiguous (``1,234``) unless the integer part is 0 or the
  thousands are already grouped with spaces (``1 234,567`` is 1234.567);
* when both appear, the last one is the decimal separator (``1.234,5`` and ``1,234.5``);
* ``%`` divides by 100; a currency sign or ``руб.`` is ignored; ``(…)`` means negative.

The vectorised helpers parse each distinct value once, so a large export costs one Python call per
distinct value, not per row.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.errors import KpiError, NotANumberError
from xl_kpi.engine.period import MONTHS
from xl_kpi.i18n import Msg, current, english


class NumberFormatError(NotANumberError):
    """Text that is not a number, or a number that can be read two ways (``1,234``)."""


class DateFormatError(KpiError):
    """Text that is not a date in one of the accepted forms."""


_SPACES = "\u0020\u00a0\u202f\u2009\u2007'\u2019"
_MINUS = "\u2212\u2012\u2013"  # typographic minus, figure dash, en dash typed as minus
_CURRENCY = re.compile(r"^(?:₽|\$|€|£|rub\.?|руб\.?|р\.|usd|eur)\s*|\s*(?:₽|\$|€|£|rub\.?|руб\.?|р\.|usd|eur)$", re.I)
_EXPONENT = re.compile(r"[eE][+-]?\d+$")
_BODY = re.compile(r"^\d[\d.,]*$|^[.,]\d+$")
_SPACED = re.compile(rf"^\d{{1,3}}(?:[{_SPACES}]\d{{3}})+(?:[.,]\d+)?$")
# ASCII digits only and at most 15 before the point: pd.to_numeric refuses Arabic or full-width digits
# and gives Python ints (no float) for 309 digits; such cells take the slow path, which reads them.
_PLAIN = re.compile(r"\s*-?[0-9]{1,15}(?:\.[0-9]+)?\s*$")
_HOW = Msg("write it as 1234.5, 1234,5 or 1 234,5")
#: Text that means "no value" to people (and to pandas' default NA strings); it is kept as text and
#: refused where a number or date is needed, with a hint to leave the cell empty.
NA_WORDS = frozenset({"n/a", "na", "#n/a", "null", "none", "nan", "-nan", "#na", "n.a.", "н/д", "нет данных"})


def parse_number(value: Any) -> float | None:
    """One cell as a float; ``None`` for an empty cell. Raises :class:`NumberFormatError`.

    >>> parse_number("1 234,5"), parse_number("40%"), parse_number("1.234,5"), parse_number(" ")
    (1234.5, 0.4, 1234.5, None)
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise NumberFormatError(Msg("{value} is a yes/no value, not a number", value=repr(value)))
    if isinstance(value, (int, np.integer)):
        try:
            return float(value)
        except OverflowError:
            digits = int(abs(int(value)).bit_length() * 0.30103) + 1  # str() of a huge int is refused
            raise NumberFormatError(Msg("a number of about {digits} digits is too large", digits=digits)) from None
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise NumberFormatError(_infinity(value))
        return float(value)
    if isinstance(value, (dt.date, dt.time, dt.timedelta, np.datetime64)):
        raise NumberFormatError(Msg("{value} is a date or time, not a number", value=str(value)))
    if not isinstance(value, str):
        raise NumberFormatError(Msg("{value} is not a number", value=repr(value)))
    return _parse_text(value)


def _parse_text(text: str) -> float | None:
    s = text.strip()
    if not s:
        return None
    shown = s if len(s) <= 40 else f"{s[:20]}…{s[-10:]} ({len(s)} characters)"
    if not s.isascii():  # Arabic-Indic, full-width… digits are digits: read them as 0-9
        s = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in s)
    for ch in _MINUS:
        s = s.replace(ch, "-")
    negative = parens = False
    if s.startswith("(") and s.endswith(")"):
        negative, parens, s = True, True, s[1:-1].strip()
    percent = s.endswith("%")
    if percent:
        s = s[:-1].strip()
    s = _CURRENCY.sub("", s).strip()
    if s[:1] in "+-" and s[:1]:
        if parens:
            raise NumberFormatError(
                Msg('"{shown}" is contradictory: (…) already means negative; write (5) or -5, not (-5)', shown=shown))
        negative, s = (s[0] == "-"), s[1:].strip()
    if not s:
        raise NumberFormatError(Msg('"{shown}" holds no digits, it is not a number; {how} (or leave the cell empty)',
                                      shown=shown, how=_HOW))
    exponent = ""
    m = _EXPONENT.search(s)
    if m and m.start() > 0:
        exponent, s = m.group(0), s[: m.start()]
    spaced = any(ch in s for ch in _SPACES)
    if spaced:
        s = _ungroup(s, text)
    if not _BODY.match(s):
        if s.casefold() in NA_WORDS:
            raise NumberFormatError(Msg('"{shown}" is not a number; leave the cell empty if there is no value, '
                                        "or {how}", shown=shown, how=_HOW))
        raise NumberFormatError(_not_a_number(text.strip()))
    digits = _normalise(s, text.strip(), spaced)
    try:
        exact = Decimal(("-" if negative else "") + digits + exponent)
        if percent:
            exact = exact / 100
        out = float(exact)
    except InvalidOperation:
        raise NumberFormatError(_not_a_number(shown)) from None
    except ArithmeticError:  # decimal.Overflow / Underflow: 1e9999999%
        raise NumberFormatError(Msg('"{shown}" is too large or too small to be a number', shown=shown)) from None
    if not math.isfinite(out):
        raise NumberFormatError(Msg('"{shown}" is too large to be a number', shown=shown))
    if out == 0 and exact != 0:
        raise NumberFormatError(Msg('"{shown}" is too small to be a number (it would be read as 0); write 0 if 0 '
                                      "is meant", shown=shown))
    return out


def _ungroup(s: str, original: str) -> str:
    """Remove thousands spaces; the integer part's groups must be three digits each."""
    if not _SPACED.match(s):
        raise NumberFormatError(
            Msg('"{shown}": spaces may only separate groups of three digits (1 234 567,5); {how}',
                shown=original.strip(), how=_HOW))
    return re.sub(f"[{_SPACES}]", "", s)


def _normalise(s: str, original: str, spaced: bool) -> str:
    """Digits with at most one '.' decimal point, from the separators rules in the module doc."""
    dots, commas = s.count("."), s.count(",")
    if dots and commas:
        dec = "." if s.rfind(".") > s.rfind(",") else ","
        grp = "," if dec == "." else "."
        if s.count(dec) != 1 or s.rfind(grp) > s.find(dec):
            raise NumberFormatError(Msg('"{shown}" mixes "." and "," in a way that is not a number; {how}',
                                          shown=original, how=_HOW))
        whole, frac = s.split(dec)
        return _grouped(whole, grp, original) + "." + frac
    if commas > 1 or dots > 1:
        sep = "," if commas else "."
        if spaced:
            raise NumberFormatError(Msg('"{shown}" groups thousands two ways; {how}', shown=original, how=_HOW))
        return _grouped(s, sep, original)
    if commas == 1:
        whole, frac = s.split(",")
        if len(frac) == 3 and whole.lstrip("0") and not spaced:
            raise NumberFormatError(Msg(
                '"{shown}" is ambiguous: {whole}{frac} (a thousands comma) or {whole}.{frac} (a decimal comma)? '
                "Write {whole}{frac} or {whole} {frac} for the thousands, {whole}.{frac} for the fraction",
                shown=original, whole=whole, frac=frac))
        return (whole or "0") + "." + frac
    return s if not s.startswith(".") else "0" + s


def _grouped(whole: str, sep: str, original: str) -> str:
    head, *groups = whole.split(sep)
    if not (head.isdigit() and 1 <= len(head) <= 3 and groups and all(len(g) == 3 and g.isdigit() for g in groups)):
        raise NumberFormatError(Msg('"{shown}" is not a number: thousands groups must have three digits; {how}',
                                      shown=original, how=_HOW))
    return head + "".join(groups)


def to_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse a column: (floats with NaN for empty or bad cells, error message per bad cell or NaN).

    Numeric columns pass straight through; text is parsed once per distinct value.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        bad = pd.Series(english(Msg("a yes/no value is not a number")), index=values.index, dtype=object)
        return pd.Series(np.nan, index=values.index, dtype=float), bad
    if pd.api.types.is_numeric_dtype(values.dtype):
        nums = values.astype(float)
        errs = pd.Series(np.nan, index=values.index, dtype=object)
        inf = np.isinf(nums.to_numpy())
        if inf.any():  # a crafted workbook can store inf; it must never reach a score
            _put(errs, inf, [english(_infinity(v)) for v in nums[inf]])
            nums = nums.where(~inf, np.nan)
        return nums, errs
    arr = values.to_numpy(dtype=object)
    plain = np.fromiter((isinstance(v, str) and _PLAIN.match(v) is not None for v in arr), bool, len(arr))
    if plain.all():  # the usual export: every cell is plain digits with a dot, parse them in C
        return pd.to_numeric(values.astype(object).str.strip()).astype(float), pd.Series(
            np.nan, index=values.index, dtype=object)
    cache: dict[Any, tuple[float, str | None]] = {}
    keys = [_key(v) for v in arr]
    for k, v in zip(keys, arr, strict=True):
        if k in cache:
            continue
        try:
            x = parse_number(v)
            cache[k] = (np.nan if x is None else x, None)
        except NumberFormatError as e:
            cache[k] = (np.nan, english(e))
    nums = pd.Series([cache[k][0] for k in keys], index=values.index, dtype=float)
    errs = pd.Series([cache[k][1] for k in keys], index=values.index, dtype=object)
    return nums, errs.where(errs.notna(), np.nan)


def _infinity(value: Any) -> Msg:
    return Msg("{value} (infinity) is not a number a KPI can use", value=str(value))


def _not_a_number(shown: str) -> Msg:
    return Msg('"{shown}" is not a number; {how}', shown=shown, how=_HOW)


def _key(v: Any) -> Any:
    """Hashable key for a cell: NaN → None (NaN is not equal to itself); the type is part of the key
    because True == 1 == 1.0 in Python, yet they are different cells."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return None
    return (type(v).__name__, v)


# ---------------------------------------------------------------------------------------- dates

_DATE_FORMATS = ("%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%y")
_ISO_LIKE = re.compile(r"^\d{4}-\d{1,2}(-\d{1,2})?([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?$")
_DATE_HOW = Msg("write dates as 31.10.2026 or 2026-10-31 (a time may follow: 31.10.2026 14:05)")

#: Dates are held as pandas' nanosecond datetimes, which end here. A later date (HR's 31.12.9999 for
#: "no end date") is read as FAR_FUTURE: after any period, so an open-ended "left" stays open.
FAR_FUTURE = pd.Timestamp("2262-04-11")
#: An earlier date (01.01.0001, a placeholder) is an error naming the cell.
EARLIEST = pd.Timestamp("1677-09-22")


def _fit(dates: pd.Series, shown: pd.Series | None = None) -> tuple[pd.Series, pd.Series]:
    """Wide-unit datetimes as datetime64[ns]: later than FAR_FUTURE → FAR_FUTURE, earlier than
    EARLIEST → NaT with a message (``shown`` gives the cells' text for it)."""
    errors = pd.Series(np.nan, index=dates.index, dtype=object)
    if dates.dtype == "datetime64[ns]":
        return dates, errors
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    wide = dates.astype("datetime64[us]")
    early = (wide < EARLIEST).to_numpy()
    if early.any():
        cells = (shown if shown is not None else wide)[early]
        _put(errors, early, [english(Msg('"{shown}" is before {earliest}, too early to be a date here (a '
                                         "placeholder? leave the cell empty); {how}", shown=_show(v),
                                         earliest=f"{EARLIEST:%d.%m.%Y}", how=_DATE_HOW)) for v in cells])
    wide = wide.mask(early, pd.NaT).mask((wide > FAR_FUTURE).to_numpy(), FAR_FUTURE)
    return wide.astype("datetime64[ns]"), errors


def _show(v: Any) -> str:
    """A date cell as the user would type it (year in four digits, also for year 1)."""
    if isinstance(v, np.datetime64):
        v = v.astype("datetime64[us]").item()
    if isinstance(v, dt.date):
        day = f"{v.day:02d}.{v.month:02d}.{v.year:04d}"
        if isinstance(v, dt.datetime) and (v.hour, v.minute, v.second) != (0, 0, 0):
            return f"{day} {v.hour:02d}:{v.minute:02d}"
        return day
    return str(v).strip()


def parse_date(value: Any) -> pd.Timestamp | None:
    """One cell as a Timestamp; ``None`` for an empty cell. Raises :class:`DateFormatError`.

    >>> parse_date("13.10.2026"), parse_date("2026-10-13 09:30")
    (Timestamp('2026-10-13 00:00:00'), Timestamp('2026-10-13 09:30:00'))
    """
    dates, errors = to_dates(pd.Series([value], dtype=object))
    if isinstance(errors.iloc[0], str):
        raise DateFormatError(getattr(errors.iloc[0], "msg", errors.iloc[0]))
    return None if pd.isna(dates.iloc[0]) else dates.iloc[0]


def to_dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse a column of dates: (datetime64 with NaT for empty/bad, error message per bad cell).

    Accepts Excel date cells, ISO text (2026-10-31, 2026-10-31 14:05) and Russian day-first
    text (31.10.2026, 31.10.2026 14:05). Slashes (10/11/2026) are refused: day or month first?
    """
    no_errors = pd.Series(np.nan, index=values.index, dtype=object)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _fit(values)
    obj = values.astype(object)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    errors = no_errors.copy()
    is_date = obj.map(lambda v: isinstance(v, (dt.date, pd.Timestamp, np.datetime64)) and not pd.isna(v))
    if is_date.any():
        out[is_date], errors[is_date] = _fit(pd.to_datetime(obj[is_date], format="mixed"), obj[is_date])
    empty = obj.map(_blank) | obj.map(lambda v: v is pd.NaT or v is pd.NA)
    text = obj[~is_date & ~empty].map(lambda v: v.strip() if isinstance(v, str) else v)
    is_str = text.map(lambda v: isinstance(v, str))
    strings = text[is_str]
    parsed = pd.Series(pd.NaT, index=strings.index, dtype="datetime64[us]")
    if len(strings):
        iso = strings.str.match(_ISO_LIKE)
        if iso.any():
            parsed[iso] = pd.to_datetime(strings[iso], format="ISO8601", errors="coerce").astype("datetime64[us]")
        for fmt in _DATE_FORMATS:
            todo = parsed.isna() & ~iso
            if not todo.any():
                break
            parsed[todo] = pd.to_datetime(strings[todo], format=fmt, errors="coerce").astype("datetime64[us]")
        bad_text = strings[parsed.isna()]
        errors[bad_text.index] = [english(_not_a_date(v)) for v in bad_text]
        good = parsed.notna()
        out[strings.index[good]], errors[strings.index[good]] = _fit(parsed[good], strings[good])
    other = text[~is_str]
    errors[other.index] = [english(_not_a_date_cell(v)) for v in other]
    return out, errors


def _not_a_date_cell(v: Any) -> Msg:
    """Why a non-text cell (a number, a time of day) is not a date; long numbers are shortened."""
    if isinstance(v, dt.time):
        return Msg("{time} is a time of day, not a date (a date cell before 1900?); {how}", time=f"{v:%H:%M}",
                   how=_DATE_HOW)
    text = repr(v)
    if len(text) > 40:
        text = f"{text[:20]}…({len(text)} characters)"
    return Msg("{value} is not a date; {how}", value=text, how=_DATE_HOW)


_SLASHED = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\b")


class _DayOfMonth(Msg):
    """'3 March' / '3 марта': a day and a month name in the reader's language."""

    __slots__ = ()

    def __init__(self, day: int, month: int) -> None:
        super().__init__("{day} {month}", day=day, month=month)

    def render(self, lang: str | None = None) -> str:
        names = MONTHS.get(lang or current(), MONTHS["en"])["genitive"]
        return f"{self.params['day']} {names[self.params['month'] - 1]}"

    def __reduce__(self) -> tuple[Any, ...]:
        return _DayOfMonth, (self.params["day"], self.params["month"])


def _not_a_date(text: str) -> Msg:
    """Why a text is not a date; a slashed date says why it is refused (day or month first?)."""
    m = _SLASHED.match(text)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        if 1 <= a <= 12 and 1 <= b <= 12 and a != b:
            return Msg('"{text}" is ambiguous: {one} or {other}? Dates with slashes are not accepted; {how}',
                       text=text, one=_DayOfMonth(a, b), other=_DayOfMonth(b, a), how=_DATE_HOW)
        return Msg('"{text}": dates with slashes are not accepted (day or month first?); {how}', text=text,
                   how=_DATE_HOW)
    if text.casefold() in NA_WORDS:
        return Msg('"{text}" is not a date; leave the cell empty if there is none, or {how}', text=text,
                   how=_DATE_HOW)
    return Msg('"{text}" is not a date; {how}', text=text, how=_DATE_HOW)


def _blank(v: Any) -> bool:
    """An empty cell: None, NaN or whitespace-only text."""
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


# ------------------------------------------------------------------------------------------ ids


def normalize_id(value: Any) -> str | None:
    """An identifier cell as text: 1001.0 (a number cell) → '1001', ' E-7 ' → 'E-7', empty → None.

    >>> normalize_id(1001.0), normalize_id(" 007 ")
    ('1001', '007')
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.strftime("%Y-%m-%d")
    s = str(value).strip()
    return s or None


def shared_objects(values: pd.Series, *, blank_as_nan: bool = False) -> pd.Series:
    """A text column as an object column holding one Python string per distinct value (empty → NaN, and
    ``blank_as_nan``: "" too). ``astype(object)`` makes a string per cell: 100,000 employees' facts held the
    same KPI id 100,000 times."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=object)
    table[:-1] = np.asarray(uniques, dtype=object)
    table[-1] = np.nan  # code -1: an empty cell
    if blank_as_nan:
        table[:-1][table[:-1] == ""] = np.nan
    return pd.Series(table[codes], index=values.index, dtype=object)


def to_ids(values: pd.Series) -> pd.Series:
    """Normalise a column of identifiers (see :func:`normalize_id`); empty → NaN."""
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(values.dtype):
        return shared_objects(values.str.strip(), blank_as_nan=True)
    cache: dict[Any, str | None] = {}
    out = []
    for v in values.to_numpy(dtype=object):
        k = _key(v)
        if k not in cache:
            cache[k] = normalize_id(v)
        out.append(cache[k])
    return pd.Series(out, index=values.index, dtype=object).where(lambda s: s.notna(), np.nan)


# ----------------------------------------------------------------------------------- yes / no

TRUE_WORDS = frozenset({"yes", "y", "true", "да", "д", "истина", "1", "+", "x", "х", "v", "✓", "✔"})
FALSE_WORDS = frozenset({"no", "n", "false", "нет", "н", "ложь", "0", "-"})


def to_flags_checked(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """:func:`to_flags` plus a message for each non-empty cell that is neither yes nor no
    (``maybe``, ``2``): such a cell must not silently count as "no"."""
    flags = to_flags(values)
    obj = values.astype(object)
    junk = (flags.isna() & ~obj.map(lambda v: _blank(v) or v is pd.NA or v is pd.NaT)).to_numpy()
    errors = pd.Series(np.nan, index=values.index, dtype=object)
    if junk.any():
        _put(errors, junk, [english(Msg('"{value}" is neither yes nor no; write yes/no, да/нет, true/false, '
                                        "1/0, or x for yes (an empty cell is no value)", value=_show(v)))
                            for v in obj[junk]])
    return flags, errors


def _put(series: pd.Series, mask: np.ndarray, items: list[Any]) -> None:
    """``series[mask] = items`` by position: assigned through a boolean mask, one English text would be
    stored as a plain ``str`` (losing the Msg that renders it in Russian)."""
    series.iloc[np.flatnonzero(mask)] = items


def to_flags(values: pd.Series) -> pd.Series:
    """Yes/no column as a nullable boolean: yes/да/true/1/x → True, no/нет/false/0 → False, else NA."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean")

    def one(v: Any) -> Any:
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, (int, float, np.integer, np.floating)) and not (isinstance(v, float) and math.isnan(v)):
            return True if v == 1 else (False if v == 0 else pd.NA)
        if isinstance(v, str):
            w = v.strip().casefold()
            return True if w in TRUE_WORDS else (False if w in FALSE_WORDS else pd.NA)
        return pd.NA

    cache: dict[Any, Any] = {}
    out = []
    for v in values.to_numpy(dtype=object):
        k = _key(v)
        if k not in cache:
            cache[k] = one(v)
        out.append(cache[k])
    return pd.Series(out, index=values.index, dtype="boolean")
