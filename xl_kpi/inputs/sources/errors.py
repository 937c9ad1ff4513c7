"""The errors of the source language: :class:`SourceError` (cannot be evaluated) and
:class:`SourceSyntaxError` (cannot be parsed, with the text and position).
"""

from __future__ import annotations

from xl_kpi.engine.errors import KpiError


class SourceError(KpiError):
    """A raw-data source cannot be evaluated (missing table or column, bad data)."""


class SourceSyntaxError(SourceError):
    """A ``KPIs.source`` text does not follow the source language."""

    def __init__(self, message: str, text: str = "", position: int | None = None) -> None:
        self.text = text
        self.position = position
        super().__init__(message)
