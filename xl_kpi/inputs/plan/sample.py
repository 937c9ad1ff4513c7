"""The bundled sample company: :data:`SAMPLE_DIR` and :func:`sample_inputs`."""

from __future__ import annotations

from pathlib import Path

from xl_kpi.engine.errors import KpiError
from xl_kpi.inputs.resources import workbooks_dir

SAMPLE_DIR = workbooks_dir() / "sample"
"""The bundled sample company (plan.xlsx and its raw data for 2026-10)."""


def sample_inputs() -> tuple[Path, list[Path]]:
    """The bundled sample company: (plan workbook, [raw data and facts files])."""
    plan = SAMPLE_DIR / "plan.xlsx"
    if not plan.exists():
        raise KpiError(f"the sample company is missing ({plan}); regenerate it with: python scripts/make_sample.py")
    data = sorted(p for p in SAMPLE_DIR.iterdir() if p.is_file() and p != plan
                  and p.suffix.casefold() in (".csv", ".xlsx") and not p.name.startswith(("~$", ".")))
    return plan, data
