"""Premium-coefficient scales: score → coefficient (docs/domain.md §3).

A scale is a plan setting, not a constant. Two kinds:

* ``steps``: half-open bands [threshold, next threshold); a score exactly on a threshold takes
  the higher band; below the first threshold the coefficient is ``below`` (usually 0).
* ``linear``: straight lines between the points, flat outside them.

Either may carry a ``cap`` on the coefficient. Scores are compared with thresholds after rounding
to 12 decimal places with Excel's ROUND (:func:`~xl_kpi.engine.money.round_score`), so a score that
is 110% on paper but 1.0999999999999999 in binary (3.3/3) still reaches the 110% band; the card
formulas do the same (``ROUND(score, 12)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from xl_kpi.engine.arrays import as_floats
from xl_kpi.engine.errors import KpiText, ScaleError
from xl_kpi.engine.money import round_score

COMPARE_DECIMALS = 12
"""Decimal places a score is rounded to before it is compared with band thresholds."""

Kind = Literal["steps", "linear"]


@dataclass(frozen=True)
class Scale:
    """A coefficient scale. Build it with :meth:`steps` or :meth:`linear`; call it on scores."""

    kind: Kind
    thresholds: tuple[float, ...]
    coefficients: tuple[float, ...]
    below: float = 0.0
    cap: float | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        label = _label(self.name)
        if self.kind not in ("steps", "linear"):
            raise ScaleError(KpiText("{label}: kind must be 'steps' or 'linear', not {kind}", label=label,
                                     kind=repr(self.kind)))
        if not self.thresholds:
            raise ScaleError(KpiText("{label}: has no points; give at least one (threshold, coefficient) pair",
                                     label=label))
        if len(self.thresholds) != len(self.coefficients):
            raise ScaleError(KpiText("{label}: {thresholds} thresholds but {coefficients} coefficients", label=label,
                                     thresholds=len(self.thresholds), coefficients=len(self.coefficients)))
        if self.kind == "linear" and len(self.thresholds) < 2:
            raise ScaleError(KpiText("{label}: a linear scale needs at least two points", label=label))
        for t in self.thresholds:
            if not math.isfinite(t):
                raise ScaleError(KpiText("{label}: threshold {threshold} is not a finite number", label=label,
                                         threshold=repr(t)))
        for a, b in zip(self.thresholds, self.thresholds[1:], strict=False):
            if b == a:
                raise ScaleError(KpiText("{label}: threshold {threshold} appears twice; each threshold must be unique",
                                         label=label, threshold=_pct(a)))
            if b < a:
                raise ScaleError(
                    KpiText("{label}: thresholds must be sorted ascending, but {later} comes after {earlier}",
                            label=label, later=_pct(b), earlier=_pct(a))
                )
        for c in (*self.coefficients, self.below):
            if not math.isfinite(c) or c < 0:
                raise ScaleError(KpiText("{label}: coefficient {coefficient} must be a finite number >= 0", label=label,
                                         coefficient=repr(c)))
        if self.cap is not None and (not math.isfinite(self.cap) or self.cap < 0):
            raise ScaleError(KpiText("{label}: cap {cap} must be a finite number >= 0", label=label,
                                     cap=repr(self.cap)))

    @classmethod
    def steps(
        cls,
        points: Iterable[tuple[float, float]],
        below: float = 0.0,
        *,
        cap: float | None = None,
        name: str | None = None,
    ) -> Scale:
        """Step scale from (score threshold, coefficient) pairs, bands [t_i, t_{i+1})."""
        thresholds, coefficients = _split(points, name)
        return cls("steps", thresholds, coefficients, float(below), _opt(cap), name)

    @classmethod
    def linear(
        cls,
        points: Iterable[tuple[float, float]],
        *,
        cap: float | None = None,
        name: str | None = None,
    ) -> Scale:
        """Linear scale through (score, coefficient) points, flat before the first and after the last."""
        thresholds, coefficients = _split(points, name)
        return cls("linear", thresholds, coefficients, coefficients[0] if coefficients else 0.0, _opt(cap), name)

    @property
    def points(self) -> list[tuple[float, float]]:
        """The (threshold, coefficient) pairs."""
        return list(zip(self.thresholds, self.coefficients, strict=False))

    def __call__(self, score: Any) -> Any:
        """Coefficient for each score (NaN score → NaN coefficient)."""
        (s,), shape = as_floats(score=score)
        t = np.asarray(self.thresholds)
        c = np.asarray(self.coefficients)
        if self.kind == "steps":
            with np.errstate(over="ignore", invalid="ignore"):
                key = round_score(s, COMPARE_DECIMALS)  # Excel's ROUND(score, 12)
            idx = np.searchsorted(t, key, side="right") - 1
            out = np.where(idx < 0, self.below, c[np.clip(idx, 0, None)])
        else:
            out = np.interp(s, t, c)
        if self.cap is not None:
            out = np.minimum(out, self.cap)
        out = np.where(np.isnan(s), np.nan, out)
        return shape.restore(out, name="coefficient")

    def describe(self) -> list[str]:
        """Human-readable bands, e.g. ['below 70%: 0', '70% to below 100%: 0.9', ...]."""
        if self.kind == "linear":
            lines = [f"{_pct(t)}: {c:g}" for t, c in self.points]
            lines.insert(0, "linear between the points, flat outside them")
        else:
            lines = [f"below {_pct(self.thresholds[0])}: {self.below:g}"]
            bounds = [*list(self.thresholds[1:]), None]
            for (t, c), nxt in zip(self.points, bounds, strict=False):
                band = f"{_pct(t)} to below {_pct(nxt)}" if nxt is not None else f"{_pct(t)} and above"
                lines.append(f"{band}: {c:g}")
        if self.cap is not None:
            lines.append(f"coefficient capped at {self.cap:g}")
        return lines


def _split(points: Iterable[tuple[float, float]], name: str | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    label = _label(name)
    thresholds: list[float] = []
    coefficients: list[float] = []
    for p in points:
        try:
            t, c = p
            thresholds.append(float(t))
            coefficients.append(float(c))
        except (TypeError, ValueError):
            raise ScaleError(KpiText("{label}: point {point} is not a (threshold, coefficient) pair of numbers",
                                     label=label, point=repr(p))) from None
    return tuple(thresholds), tuple(coefficients)


def _label(name: str | None) -> KpiText:
    """How a message names the scale: ``scale 'bonus'`` (or just ``scale``)."""
    return KpiText("scale {name}", name=repr(name)) if name else KpiText("scale")


def _opt(x: float | None) -> float | None:
    return None if x is None else float(x)


def _pct(x: float) -> str:
    return f"{x * 100:.10g}%"


DEFAULT_SCALE = Scale.steps([(0.70, 0.9), (1.00, 1.0), (1.10, 1.1)], below=0.0, name="default")
"""The source's table: below 70% → 0, [70%, 100%) → 0.9, [100%, 110%) → 1.0, 110% and above → 1.1."""
