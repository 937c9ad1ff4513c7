"""Errors raised by xl_kpi on bad input. Every one is a :class:`KpiError`."""

from __future__ import annotations


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
