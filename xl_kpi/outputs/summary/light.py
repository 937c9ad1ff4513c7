"""The score traffic light (:class:`TrafficLight`: thresholds and colours) and the default weighted-score
bands of the Score bands sheet."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import numpy as np

from xl_kpi.engine.money import round_score


@dataclass(frozen=True)
class TrafficLight:
    """Colours of the score "traffic light": ``len(thresholds) + 1`` half-open bands.

    With the defaults: below 70% red, 70% to below 100% amber, 100% and above green.
    Colours are RGB hex strings: ``fills`` for the cell background, ``fonts`` for the text,
    ``bars`` for the bars of the score-band chart.
    """

    thresholds: tuple[float, ...] = (0.70, 1.00)
    fills: tuple[str, ...] = ("FFC7CE", "FFEB9C", "C6EFCE")
    fonts: tuple[str, ...] = ("9C0006", "9C5700", "006100")
    bars: tuple[str, ...] = ("E06666", "F1C232", "6AA84F")

    def __post_init__(self) -> None:
        n = len(self.thresholds) + 1
        if not self.thresholds:
            raise ValueError("traffic light: give at least one threshold")
        if any(b <= a for a, b in itertools.pairwise(self.thresholds)):
            raise ValueError(f"traffic light: thresholds must be strictly ascending, not {self.thresholds}")
        if any(not math.isfinite(t) for t in self.thresholds):
            raise ValueError(f"traffic light: thresholds must be finite numbers, not {self.thresholds}")
        for name in ("fills", "fonts", "bars"):
            colours = getattr(self, name)
            if len(colours) != n:
                raise ValueError(
                    f"traffic light: {len(self.thresholds)} thresholds need {n} {name}, not {len(colours)}"
                )
            for c in colours:
                if not re.fullmatch(r"[0-9A-Fa-f]{6}", c):
                    raise ValueError(f"traffic light: colour {c!r} is not an RGB hex string like 'FFC7CE'")

    def band(self, score: float) -> int:
        """Index of the band (colour) of ``score``: 0 = lowest."""
        return int(np.searchsorted(np.asarray(self.thresholds), round_score(score), side="right"))


DEFAULT_TRAFFIC_LIGHT = TrafficLight()
DEFAULT_BANDS: tuple[float, ...] = (0.5, 0.7, 0.9, 1.0, 1.1, 1.2, 1.5)
"""Bounds of the weighted-score bands of the distribution chart: <50%, 50–<70%, …, ≥150%."""
