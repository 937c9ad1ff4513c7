"""Cell values as xl_kpi's outputs write them: blanks, plain numbers (16 significant digits), clean text.

The summary workbook and the CSVs (manifest, errors) share these, so a value reads the same in both.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

ILLEGAL_CHARACTERS = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
"""Control characters XML 1.0 cannot hold: dropped from text cells."""


def stored(x: float) -> float:
    """The float as the file holds it (16 significant digits): caches are computed from these."""
    return float(f"{x:.16g}")


def is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    return False


def number(v: Any) -> float | None:
    if is_missing(v):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return stored(x) if math.isfinite(x) else None


def cell_value(v: Any) -> Any:
    """A pandas/NumPy value as a plain Python value for a cell (None = blank)."""
    if is_missing(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return number(v)
    text = ILLEGAL_CHARACTERS.sub("", str(v))
    return text if text != "" else None


def text(v: Any) -> str:
    value = cell_value(v)
    return "" if value is None else str(value)
