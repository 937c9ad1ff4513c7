"""Input/output shaping shared by the engine: scalars, NumPy arrays and pandas Series.

Every public function converts its inputs with :func:`as_floats`, computes on float arrays
(broadcasting), and returns through :func:`restore`, so the caller gets back what it gave:
a Python float for scalars, an ndarray for arrays, a Series (first Series' index) for Series.
"""

from __future__ import annotations

import numbers
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from xl_kpi.engine.errors import KpiError, KpiText, NotANumberError

Number = float | int
ArrayLike = Number | np.ndarray | pd.Series | list | tuple


def as_float_array(value: Any, name: str) -> np.ndarray:
    """One input as a float ndarray; None/NA become NaN.

    Text (even "160") and booleans raise NotANumberError: the engine takes numbers only; text that
    an accountant typed is parsed at the edges (plan and facts readers), never guessed here.
    """
    if isinstance(value, (pd.Series, pd.Index, pd.DataFrame)):
        value = value.to_numpy()
    arr = np.asarray(value)
    if arr.dtype.kind in "fiu":
        return arr.astype(float, copy=False)
    if arr.dtype.kind == "b":
        raise NotANumberError(KpiText("{name}: TRUE/FALSE is not a number", name=name))
    flat = [_to_float(v, name) for v in arr.ravel()]
    return np.asarray(flat, dtype=float).reshape(arr.shape)


def _to_float(v: Any, name: str) -> float:
    if v is None or v is pd.NA or v is pd.NaT:
        return np.nan
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (numbers.Real, Decimal)):
        raise NotANumberError(KpiText("{name}: {value} is not a number", name=name, value=repr(v)))
    return float(v)


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
                    raise KpiError(KpiText(
                        "pandas Series arguments have different indexes; align them first "
                        "(e.g. with DataFrame columns)"
                    ))

    def restore(self, result: np.ndarray, name: Any = None) -> Any:
        """Give the result back in the caller's form."""
        if self.scalar:
            return float(np.asarray(result).reshape(()))
        if self.index is not None and np.ndim(result) == 1 and len(result) == len(self.index):
            return pd.Series(result, index=self.index, name=name)
        return np.asarray(result)
