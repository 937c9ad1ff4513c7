"""The period a KPI run covers: a month, quarter, half-year, year or a custom range of dates.

One value type, :class:`Period`, parses every form people write (``2026-10``, ``10.2026``,
``2026-Q4``, ``4 кв. 2026``, ``IV квартал 2026``, ``2026-H2``, ``2 полугодие 2026``, ``2026``,
``2026-10-01..2026-12-31``), knows its bounds (both days inclusive) and length in days, names
itself in Russian and English, and steps to the next or previous period of the same kind. The
month names of the package live here and nowhere else. Pure: no I/O, only numpy and pandas.

>>> p = Period.parse("4 кв. 2026")
>>> p.key, p.start, p.end, p.days
('2026-Q4', datetime.date(2026, 10, 1), datetime.date(2026, 12, 31), 92)
>>> p.label("ru"), p.label("en"), p.next().key
('IV квартал 2026', 'Q4 2026', '2027-Q1')
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd

from xl_kpi.engine.errors import KpiError, KpiText

__all__ = [
    "ACCEPTED_FORMS", "MONTHS", "PERIOD_YEARS", "Period", "PeriodError", "month_keys", "period_of",
]

Kind = Literal["month", "quarter", "half", "year", "range"]

#: Years a period may lie in: far enough for any real KPI, inside pandas' date range.
PERIOD_YEARS = (1900, 2200)

#: The accepted forms, as every error message shows them.
ACCEPTED_FORMS = KpiText("a month (2026-10 or 10.2026), a quarter (2026-Q4, 4 кв. 2026 or IV квартал 2026), "
                         "a half-year (2026-H2 or 2 полугодие 2026), a year (2026) or a range of dates "
                         "(2026-10-01..2026-12-31)")

#: Month names by language and grammatical case: ``nominative`` (October 2026 / октябрь 2026),
#: ``genitive`` (1 October 2026 / 1 октября 2026), ``prepositional`` (в октябре 2026), ``short``.
MONTHS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "nominative": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                       "October", "November", "December"),
        "short": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    },
    "ru": {
        "nominative": ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь",
                       "октябрь", "ноябрь", "декабрь"),
        "genitive": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября",
                     "октября", "ноября", "декабря"),
        "prepositional": ("январе", "феврале", "марте", "апреле", "мае", "июне", "июле", "августе", "сентябре",
                          "октябре", "ноябре", "декабре"),
        "short": ("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"),
    },
}
MONTHS["en"]["genitive"] = MONTHS["en"]["prepositional"] = MONTHS["en"]["nominative"]

_ROMAN = ("I", "II", "III", "IV")
_CASES = ("nominative", "prepositional")


class PeriodError(KpiError):
    """Text that is not a period in one of the accepted forms (the message lists them)."""


def _month_number(word: str) -> int | None:
    """1–12 for a month name or abbreviation in either language, any case ("окт.", "October")."""
    w = word.casefold().rstrip(".").replace("ё", "е")
    if len(w) < 3:
        return None
    for names in (MONTHS["en"]["nominative"], MONTHS["ru"]["nominative"], MONTHS["ru"]["genitive"],
                  MONTHS["ru"]["prepositional"]):
        for i, name in enumerate(names):
            if w == name.casefold() or (name.casefold().startswith(w) and len(w) >= 3):
                return i + 1
    if w in ("sept", "сент"):
        return 9
    return None


def _ordinal(token: str, top: int) -> int | None:
    """1..top from an arabic (4, 4-й, 4th) or roman (IV) number."""
    t = token.casefold()
    t = re.sub(r"(-?(й|е|ое|ий|ый|го))$|(st|nd|rd|th)$", "", t)
    if t.isdigit():
        n = int(t)
    else:
        roman = {r.casefold(): i + 1 for i, r in enumerate(_ROMAN)}
        n = roman.get(t, 0)
    return n if 1 <= n <= top else None


_YEAR_TAIL = r"(?:\s*(?:г\.?|гг\.?|год|года|году|y\.?))?"
_NUM = r"([0-9]{1,2}(?:-?(?:й|е|ое|ий|ый|го)|st|nd|rd|th)?|iv|i{1,3})"
_QUARTER_WORD = r"(?:q|кв\.?|квартал[аеу]?|quarter)"
_HALF_WORD = r"(?:h|пг|п/г|полугоди[еяюи]|half(?:-year)?|half year)"


def _word_period_patterns(word: str) -> list[re.Pattern[str]]:
    return [
        re.compile(rf"^(\d{{4}}){_YEAR_TAIL}\s*[-/ ]?\s*{word}\s*{_NUM}$"),  # 2026-Q4, 2026 Q4, 2026 кв 4
        re.compile(rf"^{word}\s*{_NUM}\s*[-/ ]?\s*(\d{{4}}){_YEAR_TAIL}$"),  # Q4 2026, Q4-2026
        re.compile(rf"^{_NUM}\s*{word}\s*[-/ ]?\s*(\d{{4}}){_YEAR_TAIL}$"),  # 4 кв. 2026, IV квартал 2026, 4Q2026
    ]


_QUARTER = _word_period_patterns(_QUARTER_WORD)
_HALF = _word_period_patterns(_HALF_WORD)
_YEAR = re.compile(rf"^(\d{{4}}){_YEAR_TAIL}$")
_MONTH_NUMERIC = (re.compile(r"^(\d{4})\s*[-./]\s*(\d{1,2})$"), re.compile(r"^(\d{1,2})\s*[-./]\s*(\d{4})$"))
_MONTH_NAMED = (re.compile(rf"^([^\W\d_]+\.?)\s*(\d{{4}}){_YEAR_TAIL}$"),
                re.compile(rf"^(\d{{4}}){_YEAR_TAIL}\s*([^\W\d_]+\.?)$"))
_RANGE_SEPARATORS = re.compile(r"\s*\.\.\s*|\s+[-–—]\s+|\s*[–—]\s*|\s+(?:по|to|until|till)\s+")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_DOTTED_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})(?:\s+\d{1,2}:\d{2}(?::\d{2})?)?$")
_NAMED_DATE = re.compile(r"^(\d{1,2})\s+([^\W\d_]+\.?)\s+(\d{4})(?:\s*г\.?)?$")


@dataclass(frozen=True, order=True)
class Period:
    """A run's period: the days from ``start`` to ``end``, both included.

    A range that covers exactly a calendar month, quarter, half-year or year *is* that period
    (``2026-10-01..2026-10-31`` equals ``2026-10``), so periods compare by their bounds.
    """

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            v = getattr(self, name)
            if isinstance(v, dt.datetime) or not isinstance(v, dt.date):
                raise TypeError(f"Period.{name} must be a datetime.date, not {type(v).__name__}")
        if self.end < self.start:
            raise PeriodError(KpiText("the period ends ({end}) before it starts ({start})", end=f"{self.end:%d.%m.%Y}",
                                      start=f"{self.start:%d.%m.%Y}"))
        for d in (self.start, self.end):
            if not PERIOD_YEARS[0] <= d.year <= PERIOD_YEARS[1]:
                raise PeriodError(_implausible(f"{d:%d.%m.%Y}"))

    # -- constructors
    @classmethod
    def month(cls, year: int, month: int) -> Period:
        """The calendar month ``month`` (1–12) of ``year``."""
        _check_year(year, f"{year}-{month}")
        if not 1 <= month <= 12:
            raise PeriodError(KpiText("there is no month {month}; write {forms}", month=month, forms=ACCEPTED_FORMS))
        return cls(dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1]))

    @classmethod
    def quarter(cls, year: int, quarter: int) -> Period:
        """Quarter 1–4 of ``year`` (Q4 = October to December)."""
        if not 1 <= quarter <= 4:
            raise PeriodError(KpiText("there is no quarter {quarter}; write {forms}", quarter=quarter,
                                      forms=ACCEPTED_FORMS))
        first = cls.month(year, 3 * quarter - 2)
        return cls(first.start, cls.month(year, 3 * quarter).end)

    @classmethod
    def half(cls, year: int, half: int) -> Period:
        """Half-year 1 (January–June) or 2 (July–December) of ``year``."""
        if half not in (1, 2):
            raise PeriodError(KpiText("there is no half-year {half}; write {forms}", half=half, forms=ACCEPTED_FORMS))
        return cls(cls.month(year, 6 * half - 5).start, cls.month(year, 6 * half).end)

    @classmethod
    def year(cls, year: int) -> Period:
        """The calendar year."""
        _check_year(year, str(year))
        return cls(dt.date(year, 1, 1), dt.date(year, 12, 31))

    @classmethod
    def range(cls, start: dt.date, end: dt.date) -> Period:
        """The days from ``start`` to ``end`` (both included)."""
        return cls(_as_date(start), _as_date(end))

    @classmethod
    def parse(cls, value: Any) -> Period:
        """A period from text or a cell; raises :class:`PeriodError` listing the accepted forms.

        Accepts a :class:`Period`, a date (its month), a year number, and text: a month (``2026-10``,
        ``10.2026``, ``10/2026``, ``октябрь 2026``, ``Oct 2026``, a date in the month), a quarter
        (``2026-Q4``, ``Q4 2026``, ``4 кв. 2026``, ``IV квартал 2026``), a half-year (``2026-H2``,
        ``H2 2026``, ``2 полугодие 2026``), a year (``2026``, ``2026 год``) or a range of dates
        (``2026-10-01..2026-12-31``, ``01.10.2026 – 31.12.2026``). Every :meth:`key` and
        :meth:`label` parses back to the same period.

        >>> Period.parse("10.2026").key, Period.parse("2026-H2").label("ru")
        ('2026-10', '2 полугодие 2026')
        """
        if isinstance(value, Period):
            return value
        if value is None or value is pd.NaT or (isinstance(value, np.datetime64) and np.isnat(value)):
            raise PeriodError(KpiText("the period is empty; write {forms}", forms=ACCEPTED_FORMS))
        if isinstance(value, (dt.date, np.datetime64)):
            d = _as_date(value)
            return cls.month(d.year, d.month)
        if isinstance(value, (bool, np.bool_)):
            raise PeriodError(KpiText("{value} is not a period; write {forms}", value=repr(value),
                                      forms=ACCEPTED_FORMS))
        if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating))
                                                    and math.isfinite(value) and float(value).is_integer()):
            return cls.year(int(_check_year(int(value), str(value))))
        text = str(value).strip()
        if not text:
            raise PeriodError(KpiText("the period is empty; write {forms}", forms=ACCEPTED_FORMS))
        return _parse_text(text)

    # -- what it is
    @property
    def days(self) -> int:
        """Calendar days in the period, both ends included."""
        return (self.end - self.start).days + 1

    @property
    def kind(self) -> Kind:
        """'month', 'quarter', 'half', 'year' or 'range' (any other span of days)."""
        return _kind(self.start, self.end)

    @property
    def key(self) -> str:
        """The canonical text: ``2026-10``, ``2026-Q4``, ``2026-H2``, ``2026`` or ``2026-10-01..2026-12-31``."""
        y, kind = self.start.year, self.kind
        if kind == "month":
            return f"{y:04d}-{self.start.month:02d}"
        if kind == "quarter":
            return f"{y:04d}-Q{(self.start.month + 2) // 3}"
        if kind == "half":
            return f"{y:04d}-H{(self.start.month + 5) // 6}"
        if kind == "year":
            return f"{y:04d}"
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def __str__(self) -> str:
        return self.key

    def label(self, lang: str = "en", case: str = "nominative") -> str:
        """The period's name for people: ru «октябрь 2026», «IV квартал 2026», «2 полугодие 2026»,
        «2026 год», «01.10.2026 – 31.12.2026»; en "October 2026", "Q4 2026", "H2 2026", "2026",
        "1 Oct 2026 – 31 Dec 2026". ``case="prepositional"`` gives the Russian form after «в»
        («в октябре 2026», «в IV квартале 2026»); English has one form. Unknown languages get English.
        """
        if case not in _CASES:
            raise ValueError(f"case must be one of {_CASES}, not {case!r}")
        ru = str(lang or "").lower().startswith("ru")
        y, kind, s, e = self.start.year, self.kind, self.start, self.end
        inside = ru and case == "prepositional"
        if kind == "month":
            names = MONTHS["ru"]["prepositional" if inside else "nominative"] if ru else MONTHS["en"]["nominative"]
            return f"{names[s.month - 1]} {y}"
        if kind == "quarter":
            q = (s.month + 2) // 3
            return f"{_ROMAN[q - 1]} {'квартале' if inside else 'квартал'} {y}" if ru else f"Q{q} {y}"
        if kind == "half":
            h = (s.month + 5) // 6
            return f"{h} {'полугодии' if inside else 'полугодие'} {y}" if ru else f"H{h} {y}"
        if kind == "year":
            return f"{y} {'году' if inside else 'год'}" if ru else f"{y}"
        if ru:
            return f"{'период ' if inside else ''}{s:%d.%m.%Y} – {e:%d.%m.%Y}"
        short = MONTHS["en"]["short"]
        return f"{s.day} {short[s.month - 1]} {s.year} – {e.day} {short[e.month - 1]} {e.year}"

    # -- neighbours
    def next(self) -> Period:
        """The period of the same kind that follows (a range: the same number of days after it)."""
        return self._step(1)

    def previous(self) -> Period:
        """The period of the same kind before this one (a range: the same number of days before it)."""
        return self._step(-1)

    def _step(self, n: int) -> Period:
        kind = self.kind
        if kind == "range":
            shift = dt.timedelta(days=self.days * n)
            return Period(self.start + shift, self.end + shift)
        months = {"month": 1, "quarter": 3, "half": 6, "year": 12}[kind]
        index = self.start.year * 12 + self.start.month - 1 + n * months
        first = Period.month(index // 12, index % 12 + 1)
        last_index = index + months - 1
        return Period(first.start, Period.month(last_index // 12, last_index % 12 + 1).end)

    def overlaps(self, other: Period) -> bool:
        """Whether the two periods share at least one day."""
        return self.start <= other.end and other.start <= self.end

    def counts_toward_year_to_date(self, earlier: Period) -> bool:
        """Whether ``earlier``'s pay belongs to this period's year-to-date total: it ends before this period
        starts and lies wholly inside the calendar year in which this period ends (a month, quarter or
        half-year of that year; a range that crosses in from the year before does not count).

        >>> Period.parse("2026-10").counts_toward_year_to_date(Period.parse("2026-Q2"))
        True
        >>> Period.parse("2027-01").counts_toward_year_to_date(Period.parse("2026-12"))
        False
        """
        year = self.end.year
        return earlier.end < self.start and earlier.start.year == year and earlier.end.year == year

    def months(self) -> list[Period]:
        """The calendar months the period touches, in order (a month: itself)."""
        out = [Period.month(self.start.year, self.start.month)]
        while out[-1].end < self.end:
            out.append(out[-1].next())
        return out

    # -- days inside
    def contains(self, when: Any) -> Any:
        """Whether a date (or each date of an array / Series; a time of day is ignored) lies inside.
        Empty dates (None, NaT) are outside."""
        days = _days(when)
        lo, hi = _day_number(self.start), _day_number(self.end)
        inside = (days >= lo) & (days <= hi)  # NaN compares False
        return _like(when, inside, bool)

    def overlap_days(self, start: Any = None, end: Any = None) -> Any:
        """Days of the period inside [``start``, ``end``] (both included; an empty bound is open),
        for proration: an employee hired on ``start`` and leaving on ``end``. Scalars or arrays.

        >>> Period.parse("2026-10").overlap_days(dt.date(2026, 10, 13), None)
        19
        """
        lo = np.fmax(_days(start), _day_number(self.start))  # fmax/fmin: an empty (NaN) bound is open
        hi = np.fmin(_days(end), _day_number(self.end))
        days = np.clip(hi - lo + 1, 0, None).astype(np.int64)
        series = next((x for x in (start, end) if isinstance(x, pd.Series)), None)
        if series is not None:
            return pd.Series(days, index=series.index)
        return int(days) if np.ndim(days) == 0 else days

def period_of(value: Any) -> Period | None:
    """``value`` as a :class:`Period`; ``None`` (or empty text / NaN) stays ``None``."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return Period.parse(value)


def month_keys(dates: pd.Series) -> pd.Series:
    """The month key ('2026-10') of each date of a datetime Series (NaN for NaT)."""
    out = dates.dt.strftime("%Y-%m")
    return out.astype(object).where(dates.notna(), np.nan)


# ----------------------------------------------------------------------------------- internals


def _check_year(year: int, shown: str) -> int:
    if not PERIOD_YEARS[0] <= year <= PERIOD_YEARS[1]:
        raise PeriodError(_implausible(shown))
    return year


def _implausible(shown: str) -> KpiText:
    return KpiText('"{shown}" is not a plausible period: the year must lie between {first} and {last}; write {forms}',
                   shown=shown, first=PERIOD_YEARS[0], last=PERIOD_YEARS[1], forms=ACCEPTED_FORMS)


def _kind(start: dt.date, end: dt.date) -> Kind:
    if start.day != 1 or start.year != end.year:
        return "range"
    if end.day != calendar.monthrange(end.year, end.month)[1]:
        return "range"
    months = end.month - start.month + 1
    if months == 1:
        return "month"
    if months == 3 and start.month % 3 == 1:
        return "quarter"
    if months == 6 and start.month in (1, 7):
        return "half"
    if months == 12:
        return "year"
    return "range"


@lru_cache(maxsize=1024)
def _parse_text(text: str) -> Period:
    t = re.sub(r"\s+", " ", text.strip().casefold().replace("ё", "е"))
    t = re.sub(r"^(?:за|в|во)\s+", "", t)
    for patterns, make, top in ((_QUARTER, Period.quarter, 4), (_HALF, Period.half, 2)):
        for i, pat in enumerate(patterns):
            m = pat.match(t)
            if m:
                year, num = (m.group(1), m.group(2)) if i == 0 else (m.group(2), m.group(1))
                n = _ordinal(num, top)
                if n is None:
                    raise PeriodError(
                        KpiText('"{text}" is not a period: there is no quarter {num}; write {forms}', text=text,
                                num=num, forms=ACCEPTED_FORMS) if top == 4 else
                        KpiText('"{text}" is not a period: there is no half-year {num}; write {forms}', text=text,
                                num=num, forms=ACCEPTED_FORMS))
                return make(_check_year(int(year), text), n)
    m = _YEAR.match(t)
    if m:
        return Period.year(_check_year(int(m.group(1)), text))
    for i, pat in enumerate(_MONTH_NUMERIC):
        m = pat.match(t)
        if m:
            year, month = (int(m.group(1)), int(m.group(2))) if i == 0 else (int(m.group(2)), int(m.group(1)))
            _check_year(year, text)
            if not 1 <= month <= 12:
                raise PeriodError(KpiText('"{text}" is not a period: there is no month {month}; write {forms}',
                                          text=text, month=month, forms=ACCEPTED_FORMS))
            return Period.month(year, month)
    for i, pat in enumerate(_MONTH_NAMED):
        m = pat.match(t)
        if m:
            word, year = (m.group(1), m.group(2)) if i == 0 else (m.group(2), m.group(1))
            month = _month_number(word)
            if month is not None:
                return Period.month(_check_year(int(year), text), month)
    parts = [p for p in _RANGE_SEPARATORS.split(re.sub(r"^(?:период|с|from)\s+", "", t)) if p]
    if len(parts) == 2:
        a, b = _parse_date(parts[0], text), _parse_date(parts[1], text)
        if a is not None and b is not None:
            if b < a:
                raise PeriodError(KpiText('"{text}" is not a period: it ends before it starts; write {forms}',
                                          text=text, forms=ACCEPTED_FORMS))
            return Period(_check_date(a, text), _check_date(b, text))
    d = _parse_date(t, text)
    if d is not None:
        return Period.month(_check_year(d.year, text), d.month)
    raise PeriodError(KpiText('"{text}" is not a period; write {forms}', text=text, forms=ACCEPTED_FORMS))


def _check_date(d: dt.date, shown: str) -> dt.date:
    _check_year(d.year, shown)
    return d


def _parse_date(t: str, shown: str) -> dt.date | None:
    """A date in a period's text (2026-10-01, 01.10.2026, 1 Oct 2026, 1 октября 2026), else None."""
    t = t.strip()
    m = _ISO_DATE.match(t)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        m = _DOTTED_DATE.match(t)
        if m:
            d, mo, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if len(m.group(3)) == 2:
                y += 2000 if y < 70 else 1900
        else:
            m = _NAMED_DATE.match(t)
            if not m:
                return None
            month = _month_number(m.group(2))
            if month is None:
                return None
            d, mo, y = int(m.group(1)), month, int(m.group(3))
    try:
        return dt.date(y, mo, d)
    except ValueError:
        raise PeriodError(KpiText('"{shown}" is not a period: {date} is not a date; write {forms}', shown=shown,
                                  date=t, forms=ACCEPTED_FORMS)) from None


def _as_date(v: Any) -> dt.date:
    if isinstance(v, np.datetime64):
        v = pd.Timestamp(v)
    if isinstance(v, pd.Timestamp):
        if v is pd.NaT:
            raise PeriodError(KpiText("an empty date is not a period; write {forms}", forms=ACCEPTED_FORMS))
        return v.date()
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    raise TypeError(f"not a date: {v!r}")


_EPOCH = dt.date(1970, 1, 1)


def _day_number(d: dt.date) -> float:
    return float((d - _EPOCH).days)


def _days(when: Any) -> Any:
    """Days since 1970-01-01 (float, NaN for an empty date) of a date, a datetime or an array of them."""
    if when is None or when is pd.NaT or (isinstance(when, float) and math.isnan(when)):
        return np.float64(np.nan)
    if isinstance(when, (dt.date, pd.Timestamp, np.datetime64)) and not isinstance(when, (pd.Series, np.ndarray)):
        return np.float64(_day_number(_as_date(when)))
    if isinstance(when, pd.Series):
        values = pd.to_datetime(when)
    elif isinstance(when, np.ndarray) and np.issubdtype(when.dtype, np.datetime64):
        values = pd.Series(when)
    else:
        values = pd.to_datetime(pd.Series(list(when), dtype=object))
    day = values.dt.floor("D").to_numpy(dtype="datetime64[D]")
    out = day.astype(np.int64).astype(float)
    out[np.isnat(day)] = np.nan
    return out


def _like(when: Any, values: Any, dtype: type) -> Any:
    """``values`` shaped like ``when``: a Series keeps its index, an array stays one, a scalar a scalar."""
    if isinstance(when, pd.Series):
        return pd.Series(np.asarray(values, dtype=dtype), index=when.index)
    if np.ndim(values) == 0:
        return dtype(values)
    return np.asarray(values, dtype=dtype)
