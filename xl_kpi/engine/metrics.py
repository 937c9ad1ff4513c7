"""Indicator formulas of docs/domain.md §5, arguments in the order the formula reads.

Rates and shares are fractions (0.32 means 32%); NPS is in points (−100..100).
Division by zero gives NaN in arrays and raises :class:`DivisionByZeroError` for scalars.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xl_kpi.engine.arrays import as_float_array, as_floats
from xl_kpi.engine.errors import DivisionByZeroError, KpiError, KpiText


def ratio(part: Any, whole: Any) -> Any:
    """part / whole, the shape of every share and rate below. 480 of 1 500 → 0.32."""
    (p, w), shape = as_floats(part=part, whole=whole)
    if shape.scalar and w == 0:
        raise DivisionByZeroError(KpiText("cannot divide {part:g} by zero: the denominator (whole) is 0",
                                          part=float(p)))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(w == 0, np.nan, p / np.where(w == 0, 1.0, w))
    return shape.restore(out)


def complaint_rate(complained: Any, requests: Any) -> Any:
    """Complaint rate (количество рекламаций): clients who complained / all client requests."""
    return ratio(complained, requests)


def key_client_revenue_share(key_revenue: Any, total_revenue: Any) -> Any:
    """Share of key-client revenue: revenue from key clients / total revenue."""
    return ratio(key_revenue, total_revenue)


def regular_client_share(regular: Any, clients: Any) -> Any:
    """Share of regular clients (доля постоянных клиентов): regular clients / all clients."""
    return ratio(regular, clients)


def dropout_rate(lost: Any, clients: Any) -> Any:
    """Client drop-out rate (коэффициент отсева): clients lost / all clients."""
    return ratio(lost, clients)


def churn_rate(lost: Any, at_start: Any) -> Any:
    """Churn rate: clients lost during the period / clients at the start of the period."""
    return ratio(lost, at_start)


def conversion_rate(new_clients: Any, prospects: Any) -> Any:
    """Acquisition (conversion) rate: new clients / prospects; 480 of 1 500 → 0.32."""
    return ratio(new_clients, prospects)


def close_ratio(closed_deals: Any, prospects: Any) -> Any:
    """Close ratio: closed deals / prospects worked in the period."""
    return ratio(closed_deals, prospects)


def positive_reply_rate(positive_replies: Any, contacted: Any) -> Any:
    """Positive reply rate: positive replies / prospects contacted; 3 of 50 → 0.06."""
    return ratio(positive_replies, contacted)


def meeting_acceptance_rate(meetings: Any, replies: Any) -> Any:
    """Meeting acceptance rate: meetings scheduled / replies received."""
    return ratio(meetings, replies)


def retention_rate(at_end: Any, new: Any, at_start: Any) -> Any:
    """Retention rate: (clients at end − new clients) / clients at start."""
    (e, n, s), shape = as_floats(at_end=at_end, new=new, at_start=at_start)
    return _same_shape(ratio(e - n, s), shape)


def clv(spend_per_visit: Any, visits_per_year: Any, years: Any) -> Any:
    """Customer lifetime value: average spend per visit × visits per year × years of relationship."""
    (a, v, y), shape = as_floats(spend_per_visit=spend_per_visit, visits_per_year=visits_per_year, years=years)
    with np.errstate(over="ignore", invalid="ignore"):
        return shape.restore(a * v * y)


def cost_per_lead(budget: Any, leads: Any) -> Any:
    """Cost per lead: campaign budget / leads from the campaign."""
    return ratio(budget, leads)


def cac(spend: Any, customers: Any) -> Any:
    """Customer acquisition cost: acquisition spend / customers acquired."""
    return ratio(spend, customers)


def cac_to_clv(cac_value: Any, clv_value: Any) -> Any:
    """CAC:CLV ratio: CAC / CLV (below 1 means a customer earns more than it costs)."""
    return ratio(cac_value, clv_value)


def average_deal_size(revenue: Any, deals_won: Any) -> Any:
    """Average deal size: revenue / deals won."""
    return ratio(revenue, deals_won)


def win_rate(won: Any, lost: Any) -> Any:
    """Win rate: deals won / deals closed, where closed = won + lost."""
    (w, lo), shape = as_floats(won=won, lost=lost)
    return _same_shape(ratio(w, w + lo), shape)


def employee_turnover(leavers: Any, average_headcount: Any) -> Any:
    """Employee turnover: leavers in the period / average headcount."""
    return ratio(leavers, average_headcount)


def nps(answers: Any) -> float:
    """Net Promoter Score from raw 0–10 answers: % promoters (9–10) − % detractors (0–6).

    Passives (7–8) count in the total only. Missing answers (None/NaN, empty cells) are skipped.
    Result in points, −100..100. No answers → :class:`DivisionByZeroError`; an answer that is not
    a whole number 0–10 → :class:`KpiError`.

    >>> nps([10, 9, 8, 7, 6, 3])
    0.0
    """
    a = as_float_array(answers, "answers").ravel()
    a = a[~np.isnan(a)]
    if a.size == 0:
        raise DivisionByZeroError(KpiText("NPS needs at least one answer; none were given"))
    bad = (a < 0) | (a > 10) | (a != np.floor(a))
    if bad.any():
        raise KpiError(KpiText("NPS answers must be whole numbers from 0 to 10; got {answer:g}",
                               answer=float(a[bad][0])))
    promoters = np.count_nonzero(a >= 9)
    detractors = np.count_nonzero(a <= 6)
    return float((promoters - detractors) * 100.0 / a.size)


def nps_from_counts(promoters: Any, passives: Any, detractors: Any) -> Any:
    """NPS from counts of promoters, passives and detractors (vectorised, e.g. per employee)."""
    (p, q, d), shape = as_floats(promoters=promoters, passives=passives, detractors=detractors)
    return _same_shape(ratio((p - d) * 100.0, p + q + d), shape)


def mean_duration(start: Any, end: Any, unit: str = "h") -> float:
    """Mean time from start to end (time to resolution, response time), in ``unit`` ('s','min','h','D').

    Lower is better: score it with base above norm. Pairs with a missing end are skipped, and so are
    ends after 11.04.2262 (HR's 31.12.9999 for "no end"); a start outside 1677–2262 is an error.
    """
    s = _instants(start, "start")
    e = _instants(end, "end")
    d = (e - s)[~(np.isnat(s) | np.isnat(e))]
    if d.size == 0:
        raise DivisionByZeroError(KpiText("no complete start/end pairs to average"))
    if np.any(d < np.timedelta64(0, "ns")):
        raise KpiError(KpiText("an end time is before its start time"))
    if unit not in _UNITS_NS:
        raise KpiError(KpiText("unit must be one of {units}, not {unit}", units=", ".join(_UNITS_NS), unit=repr(unit)))
    return float(d.astype("int64").mean() / _UNITS_NS[unit])


_FIRST, _LAST = np.datetime64("1677-09-22", "us"), np.datetime64("2262-04-11", "us")


def _instants(values: Any, what: str) -> np.ndarray:
    """Times as datetime64[ns] without silent wrap-around: read in microseconds (years 1–9999 fit), then a
    far-future end is a missing end and anything else outside the nanosecond range is an error."""
    wide = np.asarray(values, dtype="datetime64[us]")
    late = ~np.isnat(wide) & (wide > _LAST)
    if what == "end":
        wide = np.where(late, np.datetime64("NaT", "us"), wide)
        late = np.zeros(wide.shape, dtype=bool)
    if np.any(late | (~np.isnat(wide) & (wide < _FIRST))):
        text = (KpiText("a start time outside 22.09.1677–11.04.2262 cannot be used; leave the cell empty if there "
                        "is none") if what == "start" else
                KpiText("an end time outside 22.09.1677–11.04.2262 cannot be used; leave the cell empty if there is "
                        "none"))
        raise KpiError(text)
    return wide.astype("datetime64[ns]")


_UNITS_NS = {"s": 1e9, "min": 60e9, "h": 3600e9, "D": 86400e9}


def touches_to_resolution(calls: Any, emails: Any) -> float:
    """Mean touches to resolution: mean of calls + emails per request (lower is better)."""
    (c, e), _ = as_floats(calls=calls, emails=emails)
    t = np.ravel(c + e)
    t = t[~np.isnan(t)]
    if t.size == 0:
        raise DivisionByZeroError(KpiText("no requests to average"))
    return float(t.mean())


def _same_shape(result: Any, shape: Any) -> Any:
    """Re-wrap a ratio computed on bare arrays in the caller's original form."""
    return shape.restore(np.asarray(result))
