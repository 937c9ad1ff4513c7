"""Which query engine runs the compiled sources: ``duckdb`` (embedded, the default) or ``spark``
(:mod:`xl_kpi.inputs.sources.spark`), chosen by ``--engine``, the ``engine=`` argument of
:func:`xl_kpi.inputs.facts.load_facts`, or the ``XL_KPI_ENGINE`` variable.
"""

from __future__ import annotations

import os
from typing import Any

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import Msg, english

__all__ = ["ENGINES", "ENV", "engine_name", "make_backend"]

ENGINES = ("duckdb", "spark")
ENV = "XL_KPI_ENGINE"


def engine_name(engine: str | None = None) -> str:
    """``engine``, else ``XL_KPI_ENGINE``, else duckdb; anything else is a :class:`KpiError` with the fix."""
    given = engine if engine is not None else os.environ.get(ENV) or "duckdb"
    name = given.strip().casefold()
    if name not in ENGINES:
        origin = "--engine" if engine is not None else ENV
        raise KpiError(english(Msg('{origin}: unknown query engine "{given}"; use duckdb or spark', origin=origin,
                                   given=given)))
    return name


def make_backend(engine: str | None = None, session: Any = None) -> Any:
    """A backend object for the evaluator: None for DuckDB (the evaluator's default), else a SparkBackend."""
    if engine_name(engine) == "duckdb":
        return None
    from xl_kpi.inputs.sources.spark import SparkBackend

    return SparkBackend(session)
