"""The Tiers sheet (ru «Ступени»): named sets of tiered rates for ``share`` and ``per_unit`` lines, checked row by row.

One row per tier: the set's name, where the tier starts (``from``), optionally where it ends (``to``: then it must be
the next tier's ``from``), its rate, and the set's mode (marginal, the default, or retroactive). The first tier
starts at 0, the last one has no end; tiers that overlap or leave a gap, negative rates and mixed modes are located
errors with a fix.
"""

from __future__ import annotations

from itertools import pairwise

from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.payout import TIER_MODE_WORDS, Tiers
from xl_kpi.i18n import Msg
from xl_kpi.inputs.plan.columns import _col, _numbers, _optional_text, _required_text
from xl_kpi.inputs.plan.model import Plan
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.tables import header_key


def _tiers(plan: Plan, problems: Problems) -> dict[str, Tiers]:
    """Every well-formed tier set of the Tiers sheet by name (a set with an error is reported and left out)."""
    t = plan.tables.get("Tiers")
    if t is None or t.frame.empty:
        return {}
    names = _required_text(plan, "Tiers", "tiers", problems)
    starts = _numbers(plan, "Tiers", "from", problems, required=True, what=Msg("start of the tier"))
    ends = _numbers(plan, "Tiers", "to", problems, what=Msg("end of the tier"))
    rates = _numbers(plan, "Tiers", "rate", problems, required=True, minimum=0.0, what=Msg("rate"))
    modes = _optional_text(plan, "Tiers", "mode").map(header_key)
    _, from_col = _col(plan, "Tiers", "from")
    _, to_col = _col(plan, "Tiers", "to")
    _, mode_col = _col(plan, "Tiers", "mode")
    out: dict[str, Tiers] = {}
    for name in dict.fromkeys(n for n in names if n):
        rows = list(t.frame.index[(names == name).to_numpy()])
        label = Msg('tier set "{name}"', name=name)
        bad = False
        for r in rows:
            if modes[r] and modes[r] not in TIER_MODE_WORDS:
                problems.error(Msg("{label}: unknown mode \"{mode}\"", label=label, mode=modes[r]),
                               Msg("write marginal or retroactive (or leave it empty for marginal)"),
                               **t.at(r, mode_col))
                bad = True
        kinds = {TIER_MODE_WORDS[modes[r]] for r in rows if modes[r] in TIER_MODE_WORDS}
        if len(kinds) > 1:
            problems.error(Msg("{label}: its rows mix marginal and retroactive", label=label),
                           Msg("give every row of a tier set the same mode"), **t.at(rows[0], mode_col))
            bad = True
        if bad or starts[rows].isna().any() or rates[rows].isna().any():
            continue  # already reported
        rows.sort(key=lambda r: (starts[r], r))
        if starts[rows[0]] != 0:
            problems.error(Msg("{label}: the first tier starts at {start:g}, not at 0 (row {row})",
                               label=label, start=starts[rows[0]], row=rows[0]),
                           Msg("add a tier from 0 (with rate 0 if nothing is paid below it)"),
                           **t.at(rows[0], from_col))
            continue
        for a, b in pairwise(rows):
            if starts[b] == starts[a]:
                problems.error(Msg("{label}: two tiers start at {start:g} (rows {a} and {b}); they overlap",
                                   label=label, start=starts[b], a=a, b=b),
                               Msg("keep one tier per start"), **t.at(b, from_col))
                bad = True
            elif ends[a] == ends[a] and ends[a] != starts[b]:
                how = Msg("overlap") if ends[a] > starts[b] else Msg("leave a gap")
                problems.error(Msg("{label}: the tier of row {a} ends at {end:g} but the next one (row {b}) starts "
                                   "at {start:g}; the tiers {how}", label=label, a=a, end=ends[a], b=b,
                                   start=starts[b], how=how),
                               Msg("make the end of row {a} the start of row {b} (or leave the end empty)",
                                   a=a, b=b),
                               **t.at(a, to_col))
                bad = True
        last = rows[-1]
        if ends[last] == ends[last]:
            problems.error(Msg("{label}: the last tier (row {last}) ends at {end:g}; above it nothing would say "
                               "what is paid", label=label, last=last, end=ends[last]),
                           Msg("leave the end of the last tier empty (limit the pay with the Plan's max_payout "
                               "instead)"), **t.at(last, to_col))
            bad = True
        if bad:
            continue
        try:
            out[name] = Tiers(tuple(starts[rows]), tuple(rates[rows]), kinds.pop() if kinds else "marginal")
        except KpiError as e:
            problems.error(Msg("{label}: {e}", label=label, e=e), Msg("correct the tier set's rows"), **t.at(rows[0]))
    return out
