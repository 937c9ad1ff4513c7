"""xl_kpi: KPI scores, premium coefficients and weighted bonuses, for Excel and pandas.

One engine behind the Excel functions (``udfs.py``), the ``xl-kpi`` command and this library.
"""

from __future__ import annotations

from xl_kpi import startup  # noqa: F401  (first, before NumPy loads: the xl-kpi command runs one OpenBLAS thread)

# isort: split
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xl_kpi import metrics
    from xl_kpi.engine.errors import (
        DivisionByZeroError,
        KpiError,
        NotANumberError,
        ScaleError,
        WeightError,
        ZeroRangeError,
    )
    from xl_kpi.engine.money import round_money
    from xl_kpi.engine.payout import (
        gate_failed,
        kpi_bonus,
        line_bonus,
        period_bonus,
        prorate,
        total_pay,
        weighted_score,
    )
    from xl_kpi.engine.period import Period, PeriodError
    from xl_kpi.engine.scales import DEFAULT_SCALE, Scale
    from xl_kpi.engine.scoring import bonus, clamp, coefficient, score, total_bonus

__version__ = "0.1.0"

_HOMES = {
    **dict.fromkeys(["DivisionByZeroError", "KpiError", "NotANumberError", "ScaleError", "WeightError",
                     "ZeroRangeError"], "xl_kpi.engine.errors"),
    "round_money": "xl_kpi.engine.money",
    **dict.fromkeys(["gate_failed", "kpi_bonus", "line_bonus", "period_bonus", "prorate", "total_pay",
                     "weighted_score"], "xl_kpi.engine.payout"),
    **dict.fromkeys(["Period", "PeriodError"], "xl_kpi.engine.period"),
    **dict.fromkeys(["DEFAULT_SCALE", "Scale"], "xl_kpi.engine.scales"),
    **dict.fromkeys(["bonus", "clamp", "coefficient", "score", "total_bonus"], "xl_kpi.engine.scoring"),
}
"""Where each public name lives. They are imported on first use (PEP 562), not with the package: a program that
needs one part (the command line's early read of the data files, ``python -m xl_kpi validate``) does not wait for
NumPy and pandas first."""


def __getattr__(name: str) -> Any:
    if name == "metrics":
        value: Any = import_module("xl_kpi.metrics")
    elif name in _HOMES:
        value = getattr(import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'xl_kpi' has no attribute {name!r}")
    globals()[name] = value  # once: the next look-up is a plain one
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

__all__ = [
    "DEFAULT_SCALE",
    "DivisionByZeroError",
    "KpiError",
    "NotANumberError",
    "Period",
    "PeriodError",
    "Scale",
    "ScaleError",
    "WeightError",
    "ZeroRangeError",
    "__version__",
    "bonus",
    "clamp",
    "coefficient",
    "gate_failed",
    "kpi_bonus",
    "line_bonus",
    "metrics",
    "period_bonus",
    "prorate",
    "round_money",
    "score",
    "total_bonus",
    "total_pay",
    "weighted_score",
]
