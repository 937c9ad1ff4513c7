"""The summary as bytes (:func:`summary_bytes`, also a team's subset of the results) and as a file written
atomically (:func:`write_summary`)."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from xl_kpi.memory import release_memory
from xl_kpi.outputs.atomic import open_atomic
from xl_kpi.outputs.summary.book import _Book
from xl_kpi.outputs.summary.employees import _build
from xl_kpi.outputs.summary.light import DEFAULT_BANDS, DEFAULT_TRAFFIC_LIGHT, TrafficLight
from xl_kpi.outputs.summary.texts import _LABELS, _period_label, _timestamp
from xl_kpi.outputs.values import text as _text


def summary_bytes(
    results: Any,
    *,
    traffic_light: TrafficLight = DEFAULT_TRAFFIC_LIGHT,
    bands: Iterable[float] = DEFAULT_BANDS,
    timestamp: datetime | None = None,
    members: Iterable[Any] | None = None,
) -> bytes:
    """The summary workbook as bytes (same input → same bytes).

    ``results`` has ``lines``, ``employees``, ``period``, ``currency``, ``company`` and
    ``language`` (see ``xl_kpi.results``). ``traffic_light`` sets the score colours and their
    intervals, ``bands`` the bounds of the weighted-score bands, ``timestamp`` the
    created/modified time recorded in the file (default: the first day of the period).
    ``members`` (employee ids) keeps only their rows: a manager's or a department's team summary
    (``xl-kpi distribute``), whose totals, departments and bands are theirs alone.
    """
    data = _book(results, traffic_light=traffic_light, bands=bands, timestamp=timestamp, members=members)
    assert data is not None
    return data


def _book(
    results: Any,
    *,
    traffic_light: TrafficLight = DEFAULT_TRAFFIC_LIGHT,
    bands: Iterable[float] = DEFAULT_BANDS,
    timestamp: datetime | None = None,
    members: Iterable[Any] | None = None,
    out: Any = None,
) -> bytes | None:
    """The summary workbook (see :func:`summary_bytes`) as bytes, or written to ``out`` (a binary file; None then)."""
    bounds = tuple(float(b) for b in bands)
    if not bounds or any(b <= a for a, b in itertools.pairwise(bounds)) or not all(map(math.isfinite, bounds)):
        raise ValueError(f"bands must be finite, strictly ascending bounds, not {bounds}")
    if members is not None:
        results = _only(results, members)
    language = str(getattr(results, "language", "en") or "en").lower()
    book = _Book(language, out)
    _build(book, results, traffic_light, bounds)
    t = _LABELS.get(language, _LABELS["en"])
    title = " ".join(
        x for x in (t["title"], _text(getattr(results, "company", "")),
                    _period_label(getattr(results, "period", ""), language)) if x
    )
    return book.close(timestamp or _timestamp(getattr(results, "period", None)), "xl_kpi", title)


def _only(results: Any, members: Iterable[Any]) -> Any:
    """A copy of ``results`` holding only the employees (and KPI lines) whose id is in ``members``."""
    ids = {str(m).strip() for m in members}
    emp = results.employees
    keep = emp["employee_id"].astype(str).str.strip().isin(ids)
    lines = results.lines
    lines = lines[lines["employee_id"].astype(str).str.strip().isin(ids)]
    changes = {"employees": emp[keep].reset_index(drop=True), "lines": lines.reset_index(drop=True)}
    if dataclasses.is_dataclass(results) and not isinstance(results, type):
        return dataclasses.replace(results, **changes)
    team = copy.copy(results)
    for name, value in changes.items():
        setattr(team, name, value)
    return team


def write_summary(results: Any, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write the summary workbook to ``path`` atomically and return the path.

    Options are those of :func:`summary_bytes`.
    """
    target = Path(path)
    try:  # through a temporary file in the same folder, then replaced: readers never see half a file
        with open_atomic(target) as f:  # the book is zipped straight into it (100,000 employees: ~27 MB never
            _book(results, out=f, **options)  # held, nor copied out of a buffer)
    except PermissionError as exc:
        raise PermissionError(f"cannot replace {target}: is it open in Excel? Close it and retry ({exc})") from exc
    release_memory(collect=False)  # the book's working set, dropped: given back while the cards go on
    return target
