"""The Scales sheet: named step and linear coefficient scales, checked row by row."""

from __future__ import annotations

from itertools import pairwise

from xl_kpi.engine.errors import ScaleError
from xl_kpi.engine.scales import DEFAULT_SCALE, Scale
from xl_kpi.i18n import Msg
from xl_kpi.inputs.plan.columns import _col, _numbers, _optional_text, _pct, _required_text
from xl_kpi.inputs.plan.model import Plan
from xl_kpi.inputs.plan.schema import DEFAULT_SCALE_NAME, SCALE_KINDS
from xl_kpi.inputs.problems import Problems


def _scales(plan: Plan, problems: Problems) -> dict[str, Scale]:
    scales: dict[str, Scale] = {DEFAULT_SCALE_NAME: DEFAULT_SCALE}
    t = plan.tables.get("Scales")
    if t is None or t.frame.empty:
        return scales
    f = t.frame
    names = _required_text(plan, "Scales", "scale", problems)
    thresholds = _numbers(plan, "Scales", "threshold", problems, required=True, what=Msg("score threshold"))
    coefficients = _numbers(plan, "Scales", "coefficient", problems, required=True, minimum=0.0,
                            what=Msg("coefficient"))
    below = _numbers(plan, "Scales", "below", problems, minimum=0.0, what=Msg("coefficient below the first threshold"))
    caps = _numbers(plan, "Scales", "cap", problems, minimum=0.0, what=Msg("coefficient cap"))
    kinds = _optional_text(plan, "Scales", "kind").map(lambda v: v.casefold())
    _, kind_col = _col(plan, "Scales", "kind")
    _, thr_col = _col(plan, "Scales", "threshold")
    for name in dict.fromkeys(n for n in names if n):
        rows = f.index[(names == name).to_numpy()]
        label = Msg('scale "{name}"', name=name)
        bad_kind = [r for r in rows if kinds[r] and kinds[r] not in SCALE_KINDS]
        for r in bad_kind:
            problems.error(Msg("{label}: unknown kind \"{kind}\"", label=label, kind=kinds[r]),
                           Msg("write steps or linear"), **t.at(r, kind_col))
        kind_set = {SCALE_KINDS[kinds[r]] for r in rows if kinds[r] in SCALE_KINDS}
        if len(kind_set) > 1:
            problems.error(Msg("{label}: its rows mix steps and linear", label=label),
                           Msg("give every row of a scale the same kind"),
                           **t.at(rows[0], kind_col))
            continue
        if bad_kind or thresholds[rows].isna().any() or coefficients[rows].isna().any():
            continue  # already reported
        unsorted = False
        for prev, r in pairwise(rows):
            a, b = thresholds[prev], thresholds[r]
            if b <= a:
                unsorted = True
                problems.error(
                    f"{label} is not sorted: threshold {_pct(b)} in row {r} comes after {_pct(a)} in row {prev}"
                    if b < a else f"{label}: threshold {_pct(b)} appears twice (rows {prev} and {r})",
                    "sort the rows of the scale by threshold, lowest first" if b < a
                    else "keep one row per threshold",
                    **t.at(r, thr_col),
                )
                break
        if unsorted:
            continue
        points = list(zip(thresholds[rows], coefficients[rows], strict=True))
        cap_vals = caps[rows].dropna().unique()
        below_vals = below[rows].dropna().unique()
        if len(cap_vals) > 1 or len(below_vals) > 1:
            problems.error(Msg("{label}: different cap or below values in its rows", label=label),
                           Msg("give the cap/below once (or the same in every row)"), **t.at(rows[0]))
            continue
        cap = float(cap_vals[0]) if len(cap_vals) else None
        try:
            if kind_set == {"linear"}:
                scales[name] = Scale.linear(points, cap=cap, name=name)
            else:
                scales[name] = Scale.steps(points, below=float(below_vals[0]) if len(below_vals) else 0.0,
                                           cap=cap, name=name)
        except ScaleError as e:
            problems.error(str(e), Msg("correct the scale's rows"), **t.at(rows[0]))
    return scales
