"""The errors of the source language: :class:`SourceError` (cannot be evaluated) and
:class:`SourceSyntaxError` (cannot be parsed, with the text and position).
"""

from __future__ import annotations

from typing import Any

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import english


class SourceError(KpiError):
    """A raw-data source cannot be evaluated (missing table or column, bad data)."""

    def __init__(self, message: Any = "") -> None:
        super().__init__(english(message))  # str() is the English text; i18n.render shows it in Russian


class SourceSyntaxError(SourceError):
    """A ``KPIs.source`` text does not follow the source language (``message``: a text or a ``Msg``)."""

    def __init__(self, message: Any, text: str = "", position: int | None = None) -> None:
        self.text = text
        self.position = position
        super().__init__(message)
