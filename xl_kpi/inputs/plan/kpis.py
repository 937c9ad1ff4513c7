"""The KPIs sheet: KPI ids and names, and each ``source`` parsed (see :mod:`xl_kpi.inputs.sources`)."""

from __future__ import annotations

import pandas as pd

from xl_kpi.i18n import Msg
from xl_kpi.inputs.plan.columns import _col, _duplicates, _optional_text, _required_text
from xl_kpi.inputs.plan.model import Plan
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.sources import Source, SourceSyntaxError, parse


def _kpis(plan: Plan, problems: Problems) -> tuple[pd.DataFrame, dict[str, Source]]:
    t = plan.tables["KPIs"]
    f = t.frame
    ids = _required_text(plan, "KPIs", "kpi_id", problems)
    first = _duplicates(plan, "KPIs", "kpi_id", ids, problems, "kpi_id")
    out = pd.DataFrame(index=f.index)
    out["kpi_id"] = ids
    out["name"] = _required_text(plan, "KPIs", "name", problems)
    for name in ("unit", "source", "description"):
        out[name] = _optional_text(plan, "KPIs", name)
    out["row"] = f.index.astype(int)
    out = out[((ids != "") & first).to_numpy()]
    sources: dict[str, Source] = {}
    _, header = _col(plan, "KPIs", "source")
    for r, kpi_id, text in zip(out["row"], out["kpi_id"], out["source"], strict=True):
        if not text:
            continue
        try:
            sources[kpi_id] = parse(text)
        except SourceSyntaxError as e:
            problems.error(Msg("KPI {kpi_id}: the source cannot be read: {e}", kpi_id=kpi_id, e=e),
                           Msg("correct the source (see the source syntax in docs/plan.md), or leave it empty "
                               "and give the facts in a facts file"), **t.at(r, header))
    return out.reset_index(drop=True), sources
