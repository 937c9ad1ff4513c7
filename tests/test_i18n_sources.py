"""The source language's errors, the rarer reader refusals and the engine's errors in Russian: ``validate
--lang ru`` speaks Russian and still names file, sheet, row and column; English stays word for word; a
library caller renders an engine error in Russian with ``i18n.render``."""

from __future__ import annotations

from xl_kpi.i18n import render


def test_a_single_bad_cell_keeps_its_message_for_translation():
    """One bad cell among good ones (assigned through a boolean mask) is still English text that remembers its
    Msg: the yes/no, infinity and too-early-date messages reach a Russian reader in Russian."""
    import numpy as np
    import pandas as pd

    from xl_kpi.inputs.cells import to_dates, to_flags_checked, to_numbers

    flag = to_flags_checked(pd.Series(["да", "может"], dtype=object))[1][1]
    assert render(flag, "ru").startswith("«может» — ни да, ни нет"), render(flag, "ru")
    inf = to_numbers(pd.Series([1.0, np.inf]))[1][1]
    assert render(inf, "ru") == "inf (бесконечность) — не число, пригодное для KPI"
    early = to_dates(pd.Series(["01.10.2026", "01.01.0001"], dtype=object))[1][1]
    assert early.startswith('"01.01.0001" is before') and render(early, "ru").startswith("«01.01.0001»"), early
