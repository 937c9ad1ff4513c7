"""The Plan sheet's payout columns (issue 15): ``payout`` (the kind, ru «Вид выплаты»), rate, threshold, amount,
max_payout and tiers, each line checked for what its kind needs (located errors with a fix)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from xl_kpi.engine.money import CURRENCY_SYMBOLS, MAX_MONEY
from xl_kpi.i18n import Msg
from xl_kpi.inputs.plan.columns import _col, _numbers, _optional_text
from xl_kpi.inputs.plan.model import Plan
from xl_kpi.inputs.plan.schema import PAYOUT_KIND_WORDS
from xl_kpi.inputs.problems import Problems
from xl_kpi.inputs.tables import header_key

PAYOUT_COLUMNS = ("payout", "rate", "threshold", "amount", "max_payout", "tiers")

_MONEY_WORDS = ("руб", "₽", "rub", "rur", "usd", "eur", "доллар", "dollar", "евро", "euro", "тенге", "money",
                "деньги", "сумма", "выручка")


def is_money_unit(unit: Any) -> bool:
    """The KPIs sheet's unit names money: a currency code or sign, or a word such as руб./₽/тыс. руб.

    >>> is_money_unit("тыс. руб."), is_money_unit("₽"), is_money_unit("USD"), is_money_unit("%"), is_money_unit("шт")
    (True, True, True, False, False)
    """
    u = str(unit or "").casefold()
    if not u.strip():
        return False
    signs = {c.casefold() for c in CURRENCY_SYMBOLS} | {s.casefold() for s in CURRENCY_SYMBOLS.values()}
    words = [w for w in header_key(u).split(" ") if w]
    return any(w in signs for w in words) or any(c in u for c in ("₽", "$", "€", "£", "₸")) or any(
        m in u for m in _MONEY_WORDS)


def _payout_columns(plan: Plan, out: pd.DataFrame, problems: Problems) -> None:
    """Add the payout columns to ``out`` (the Plan rows being read), reporting every cell that cannot be paid."""
    t = plan.tables["Plan"]
    f = t.frame
    words = _optional_text(plan, "Plan", "payout").map(header_key)
    kind = words.map(lambda w: PAYOUT_KIND_WORDS.get(w, "coefficient" if w == "" else ""))
    out["rate"] = _numbers(plan, "Plan", "rate", problems, minimum=0.0, what=Msg("rate"))
    out["threshold"] = _numbers(plan, "Plan", "threshold", problems, what=Msg("payout threshold (a score, e.g. 100%)"))
    out["amount"] = _numbers(plan, "Plan", "amount", problems, minimum=0.0, maximum=MAX_MONEY, what=Msg("fixed amount"))
    out["max_payout"] = _numbers(plan, "Plan", "max_payout", problems, minimum=0.0, maximum=MAX_MONEY,
                                 what=Msg("largest payout of the line"))
    out["tiers"] = _optional_text(plan, "Plan", "tiers")

    def cells(mask: pd.Series, column: str, messages: Any, fix: str, severity: str = "error") -> None:
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            _, header = _col(plan, "Plan", column)
            problems.cells(severity, t, list(f.index[mask.to_numpy()]), header or column,  # type: ignore[arg-type]
                           messages if isinstance(messages, str) else list(messages), fix)

    unknown = kind == ""
    cells(unknown, "payout", [f'unknown payout kind "{v}"' for v in _optional_text(plan, "Plan", "payout")[unknown]],
          "write one of coefficient, fixed, proportional, per_unit, share (or коэффициент, фиксированная, "
          "пропорциональная, за единицу, доля), or leave it empty for coefficient")
    k = kind
    has_tiers = out["tiers"] != ""
    cells((k == "fixed") & out["threshold"].isna(), "threshold", "a fixed payout needs its threshold (the score "
          "from which the amount is paid)", "fill in the threshold, e.g. 100%")
    cells((k == "fixed") & out["amount"].isna(), "amount", "a fixed payout needs its amount",
          "fill in the amount paid when the score reaches the threshold")
    rated = k.isin(["per_unit", "share"])
    cells(rated & out["rate"].isna() & ~has_tiers, "rate", "a per_unit or share payout needs a rate or a tier set",
          "fill in the rate (e.g. 500 per unit, or 3% of the amount) or name a tier set of the Tiers sheet")
    cells(rated & out["rate"].notna() & has_tiers, "rate", "the line gives both a rate and a tier set",
          "keep one of them: the rate (one rate for all) or the tiers (rates by tier)")
    cells(has_tiers & ~rated & ~unknown, "tiers", "tiers apply to per_unit and share payouts only",
          "set the payout to per_unit or share, or clear the tiers cell")
    tiers_sheet = plan.tables.get("Tiers")
    named = set(_optional_text(plan, "Tiers", "tiers")) if tiers_sheet is not None else set()
    missing = has_tiers & rated & ~out["tiers"].isin(set(plan.tiers) | named)
    cells(missing, "tiers", [f'unknown tier set "{v}": not in the Tiers sheet' + ("" if tiers_sheet is not None
                             else " (the workbook has no Tiers sheet)") for v in out["tiers"][missing]],
          "correct the name, or add its tiers to the Tiers sheet (ru «Ступени»): tiers, from, to, rate, mode")
    broken = has_tiers & rated & out["tiers"].isin(named - set(plan.tiers))
    cells(broken, "tiers", [f'tier set "{v}" has errors in the Tiers sheet (reported there), so this line cannot '
                            "be paid" for v in out["tiers"][broken]], "correct the tier set's rows in the Tiers sheet")
    cells((k == "coefficient") & out["max_payout"].notna(), "max_payout", "max_payout is not used by a coefficient "
          "payout", "limit a coefficient payout with the scale's cap (Scales sheet), or clear the cell", "warning")
    share = (k == "share").to_numpy()
    if share.any():
        units = out["kpi_id"].map(plan.kpis.set_index("kpi_id")["unit"] if len(plan.kpis) else {}).fillna("")
        known = out["kpi_id"].isin(set(plan.kpis["kpi_id"]))
        bad = pd.Series(share, index=out.index) & known & ~units.map(is_money_unit)
        cells(bad, "payout", [f'a share is paid on an amount of money, but KPI {kid} is measured in "{u}"'
                              if u else f"a share is paid on an amount of money, but KPI {kid} has no unit"
                              for kid, u in zip(out["kpi_id"][bad], units[bad], strict=True)],
              "use per_unit for counts (deals, calls), or write the currency (₽, руб., RUB) as the KPI's unit "
              "in the KPIs sheet if its fact is money")
    out["payout"] = kind  # "" for an unknown kind (reported): the engine pays nothing for it (NaN)
