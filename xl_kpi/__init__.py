"""xl_kpi: KPI scores, premium coefficients and weighted bonuses, for Excel and pandas.

One engine behind the Excel functions (``udfs.py``), the ``xl-kpi`` command and this library.
"""

from __future__ import annotations

from xl_kpi import startup  # noqa: F401  (first, before NumPy loads: the xl-kpi command runs one OpenBLAS thread)

# isort: split
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
