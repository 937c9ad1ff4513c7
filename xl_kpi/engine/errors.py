"""Errors raised by xl_kpi on bad input. Every one is a :class:`KpiError`.

The engine imports nothing of the package's languages: a message meant for users is a :class:`KpiText`,
the English text that keeps its template and parameters; :mod:`xl_kpi.i18n` renders it in Russian where
the error becomes a problem (the template is in the catalog like every ``Msg``).
"""

from __future__ import annotations

from typing import Any


class KpiText(str):
    """English text (``msgid.format(**params)``) that keeps ``msgid`` and ``params`` for translation.

    >>> t = KpiText("there is no month {month}", month=13)
    >>> t, t.msgid, t.params
    ('there is no month 13', 'there is no month {month}', {'month': 13})
    """

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, /, **params: Any) -> KpiText:
        self = super().__new__(cls, msgid.format(**params) if params else msgid)
        self.msgid, self.params = msgid, params
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return _text, (self.msgid, self.params)


def _text(msgid: str, params: dict[str, Any]) -> KpiText:
    return KpiText(msgid, **params)


class KpiError(ValueError):
    """Base class of every error the package raises on bad input."""


class ZeroRangeError(KpiError, ZeroDivisionError):
    """Norm equals base: the KPI has no range to score against (Excel: #DIV/0!)."""


class DivisionByZeroError(KpiError, ZeroDivisionError):
    """A metric's denominator is zero (Excel: #DIV/0!)."""


class NotANumberError(KpiError, TypeError):
    """An input is text or another value that is not a number (Excel: #VALUE!)."""


class ScaleError(KpiError):
    """A coefficient scale is empty, unsorted, or has negative coefficients."""


class WeightError(KpiError):
    """An employee's KPI weights are negative or do not sum to 1 (100%)."""
