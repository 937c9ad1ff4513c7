"""Money rounding with Excel's ROUND semantics.

Excel rounds half away from zero, and it rounds the number *as it shows it* (15 significant
digits): ROUND(2.675, 2) is 2.68 although the binary double is 2.67499999999999982…
Python's round() gives 2.67 (banker's rounding on the binary value), so it is never used here.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from xl_kpi.engine.arrays import as_floats

CURRENCY_SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€", "GBP": "£", "KZT": "₸", "BYN": "Br", "UAH": "₴",
                    "CNY": "¥", "JPY": "¥", "INR": "₹", "TRY": "₺", "AMD": "֏", "GEL": "₾", "UZS": "сўм"}
"""Currency code → the sign printed after (or before) amounts on cards and in the terminal."""

MAX_MONEY = 1e13
"""Every amount (salary, bonus pool, each line bonus, totals, salary + bonus) must be below this: Excel keeps
15 significant digits, so kopecks of larger amounts are lost (and 1e308 overflows)."""


def over_limit(x: Any) -> np.ndarray:
    """Where an amount is not below :data:`MAX_MONEY` in size (infinity included; NaN, a missing amount, is not).

    >>> over_limit([1e12, 1e13, float("inf"), float("nan")]).tolist()
    [False, True, True, False]
    """
    a = np.asarray(x, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isinf(a) | (np.abs(a) >= MAX_MONEY)


def format_amount(x: float) -> str:
    """An amount for a message: '19 980 000 000 000', '1.5e+20', 'infinity' (never 'inf')."""
    if np.isnan(x):
        return "empty"
    if np.isinf(x):
        return "infinity" if x > 0 else "minus infinity"
    if abs(x) >= 1e16:
        return f"{x:.3g}"
    return f"{x:,.2f}".replace(",", " ").removesuffix(".00")


_TIE_WINDOW = 1e-6  # fractions this close to .5 are decided exactly, with decimal
_DIGITS_WINDOW = 1e-13  # ...and those a 15-significant-digit reading could move onto a tie
_MAX_EXACT = 2.0**52  # beyond this a double has no fractional part left to round


def _excel_round_one(x: float, digits: int) -> float:
    """One value, exactly as Excel: 15 significant digits, then half away from zero."""
    quantum = Decimal(1).scaleb(-digits)
    return float(Decimal(format(x, ".15g")).quantize(quantum, rounding=ROUND_HALF_UP))


_SPLIT = 134217729.0  # 2**27 + 1: Veltkamp's split of a double into two 26-bit halves


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p, e with p = fl(a × b) and p + e = a × b exactly (Dekker), elementwise."""
    p = a * b
    ca, cb = _SPLIT * a, _SPLIT * b
    ah, bh = ca - (ca - a), cb - (cb - b)
    al, bl = a - ah, b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _digits15(mag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, d): ``mag`` read at 15 significant digits is m × 10^-d with 10^14 <= m < 10^15, as ``format(x, '.15g')``
    reads it (the exact binary value, ties to even), for finite 1e-300 < mag < 1e300."""
    d = 14 - np.floor(np.log10(mag))
    for _ in range(3):  # log10 can be one off next to a power of ten
        scale = np.where(d >= 0, 10.0 ** np.abs(d), 1.0)
        div = np.where(d < 0, 10.0 ** np.abs(d), 1.0)
        p, err = _two_product(mag, scale)
        p, err = p / div, err / div  # d < 0 (mag >= 1e15) has no fraction left to read
        m = np.rint(p)
        r = (p - m) + err
        m = m + (r > 0.5) - (r < -0.5)
        m = np.where((r == 0.5) & (m % 2 == 1), m + 1, m)
        m = np.where((r == -0.5) & (m % 2 == 1), m - 1, m)
        low, high = m < 1e14, m >= 1e15
        if not (low.any() or high.any()):
            break
        d = d + low - high
    return m, d


def round_score(x: Any, decimals: int = 12) -> np.ndarray:
    """``ROUND(x, decimals)`` as Excel computes it, the same numbers as :func:`round_money`, vectorised with no
    :mod:`decimal`: fast for the many decimals of scores, where values near a tie are common.

    Excel reads x at 15 significant digits, then rounds half away from zero: ROUND(0.7000000000005, 12)
    is 0.700000000001 where ``np.round`` gives 0.7. NaN, infinity, and values with no fraction left at
    ``decimals`` (|x| × 10^decimals >= 2^52) stay as they are.

    >>> round_score([0.7000000000005, 3.3 / 3, -2.5e-12]).tolist()
    [0.700000000001, 1.1, -3e-12]
    """
    a = np.asarray(x, dtype=float)
    factor = 10.0**decimals
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.abs(a) * factor
        out = np.copysign(np.floor(scaled + 0.5) / factor, a)
        frac = scaled - np.floor(scaled)
        # the 15-digit reading moves scaled by at most scaled × 5e-15: only values that close to a tie are read
        near = (np.abs(frac - 0.5) <= np.maximum(1e-6, scaled * 2e-14)) & (scaled < _MAX_EXACT) & (scaled > 0)
        out = np.where(scaled < _MAX_EXACT, out, a)  # also NaN and infinity
    if near.any():
        mag = np.abs(a[near])
        m, d = _digits15(mag)
        extra = d - decimals  # digits of the 15-digit reading beyond `decimals` (>= 1 here)
        q = 10.0**extra
        units = np.floor(m / q)
        units = units + (2 * (m - units * q) >= q)
        out[near] = np.copysign(units / factor, a[near])
    return out + 0.0  # -0.0 → 0.0


def round_formula(expr: str, digits: int = 2) -> str:
    """Excel formula text rounding ``expr`` as :func:`round_money` rounds: ``ROUND(expr,digits)``.

    The cards spell every money rounding with it, so the Settings' ``digits`` reaches each ROUND
    and a recalculating spreadsheet shows the very amounts the engine cached.

    >>> round_formula("B2*C2", 0)
    'ROUND(B2*C2,0)'
    """
    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool):
        raise TypeError(f"digits must be a whole number, not {digits!r}")
    return f"ROUND({expr},{int(digits)})"


def round_money(x: Any, digits: int = 2) -> Any:
    """Round like Excel's ROUND: 2.675 → 2.68, −0.5 → −1, 0.125 → 0.13 (half away from zero).

    Vectorised: values whose scaled fraction is clearly not a tie are rounded with NumPy;
    the few near a tie (within 1e-6, or within what reading the value at 15 significant
    digits could move) are decided exactly with :mod:`decimal`. NaN stays NaN.
    """
    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool):
        raise TypeError(f"digits must be a whole number, not {digits!r}")
    digits = int(digits)
    (arr,), shape = as_floats(x=x)
    arr = np.atleast_1d(arr)
    with np.errstate(invalid="ignore", over="ignore"):
        if digits >= 0:
            factor = 10.0**digits
            scaled = np.abs(arr) * factor
            whole = np.floor(scaled + 0.5)
            out = np.copysign(whole / factor, arr)
        else:
            factor = 10.0 ** (-digits)
            scaled = np.abs(arr) / factor
            whole = np.floor(scaled + 0.5)
            out = np.copysign(whole * factor, arr)
        frac = scaled - np.floor(scaled)
        near_tie = np.abs(frac - 0.5) <= np.maximum(_TIE_WINDOW, scaled * _DIGITS_WINDOW)
        huge = ~(scaled < _MAX_EXACT)  # also NaN/inf
    out = np.where(huge, arr, out)
    for i in np.flatnonzero(near_tie & ~huge):
        out.flat[i] = _excel_round_one(float(arr.flat[i]), digits)
    out = out + 0.0  # -0.0 → 0.0, as Excel shows it
    return shape.restore(out, name=getattr(x, "name", None))
