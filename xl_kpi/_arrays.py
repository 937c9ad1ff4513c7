"""Input/output shaping shared by the engine: scalars, NumPy arrays and pandas Series.

Every public function converts its inputs with :func:`as_floats`, computes on float arrays
(broadcasting), and returns through :func:`restore`, so the caller gets back what it gave:
a Python float for scalars, an ndarray for arrays, a Series (first Series' index) for Series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import KpiError, NotANumberError

Number = float | int
ArrayLike = Number | np.ndarray | pd.Series | list | tuple


def as_float_array(value: Any, name: str) -> np.ndarray:
    """One input as a float ndarray; None/NA become NaN, text raises NotANumberError."""
    if isinstance(value, (pd.Series, pd.Index)):
        value = value.to_numpy(dtype=float, na_value=np.nan) if value.dtype != object else value.to_numpy()
    if isinstance(value, pd.DataFrame):
        value = value.to_numpy()
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        arr = np.asarray(value, dtype=object)
        flat = [_to_float(v, name) for v in arr.ravel()]
        arr = np.asarray(flat, dtype=float).reshape(arr.shape)
    return arr


def _to_float(v: Any, name: str) -> float:
    if v is None or v is pd.NA or v is pd.NaT:
        return np.nan
    if isinstance(v, (bool, np.bool_)):
        raise NotANumberError(f"{name}: {v!r} is not a number")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise NotANumberError(f"{name}: {v!r} is not a number") from None


def as_floats(**named: Any) -> tuple[list[np.ndarray], Shape]:
    """Convert named inputs to float arrays and remember how to shape the result."""
    arrays = [as_float_array(v, k) for k, v in named.items()]
    return arrays, Shape(named.values())


class Shape:
    """Remembers whether the inputs were all scalars and which pandas index they carried."""

    def __init__(self, values: Any) -> None:
        values = list(values)
        self.scalar = all(np.ndim(v) == 0 and not isinstance(v, (pd.Series, pd.DataFrame)) for v in values)
        self.index: pd.Index | None = None
        for v in values:
            if isinstance(v, pd.Series):
                if self.index is None:
                    self.index = v.index
                elif not v.index.equals(self.index):
                    raise KpiError(
                        "pandas Series arguments have different indexes; align them first "
                        "(e.g. with DataFrame columns)"
                    )

    def restore(self, result: np.ndarray, name: Any = None) -> Any:
        """Give the result back in the caller's form."""
        if self.scalar:
            return float(np.asarray(result).reshape(()))
        if self.index is not None and np.ndim(result) == 1 and len(result) == len(self.index):
            return pd.Series(result, index=self.index, name=name)
        return np.asarray(result)
