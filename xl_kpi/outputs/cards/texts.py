"""The words a card prints, in its two languages: scale bands, gate notes, number punctuation."""

from __future__ import annotations

TEXTS = {
    "en": {
        "default_scale": "Default scale", "scale": "Scale “{}”",
        "steps": "steps", "linear": "linear between the points", "capped": "coefficient capped at {}",
        "used_by": "Applies to: {}",
        "below": "below {}", "band": "{} to below {}", "above": "{} and above",
        "at": "at {}", "at_low": "at {} and below", "at_high": "at {} and above", "cap": "coefficient cap",
        "gate": "Gate: “{}” must score at least {}, otherwise no bonus is paid.",
        "gated": "Not reached this period: the bonus is 0.",
        "decimal": ".", "group": ",",
    },
    "ru": {
        "default_scale": "Базовая шкала", "scale": "Шкала «{}»",
        "steps": "ступенчатая", "linear": "линейная между точками", "capped": "коэффициент не выше {}",
        "used_by": "Применяется к: {}",
        "below": "ниже {}", "band": "от {} до {} (не включая)", "above": "{} и выше",
        "at": "при {}", "at_low": "при {} и ниже", "at_high": "при {} и выше", "cap": "максимальный коэффициент",
        "gate": "Стоп-показатель: «{}» — не ниже {}, иначе премия не начисляется.",
        "gated": "В этом периоде порог не достигнут: премия 0.",
        "decimal": ",", "group": "\u00a0",
    },
}
