"""The Score bands sheet: how many employees fall in each weighted-score band (COUNTIFS) and a column chart
coloured by the traffic light."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xl_kpi.outputs.summary.book import _CM_PX, _Book
from xl_kpi.outputs.summary.criteria import _criterion_number, _quote_sheet
from xl_kpi.outputs.summary.layout import _header, _Layout, _print_setup
from xl_kpi.outputs.summary.light import TrafficLight
from xl_kpi.outputs.summary.texts import _band_labels
from xl_kpi.outputs.values import stored as _stored


def _bands_sheet(book: _Book, t: dict[str, str], lay: _Layout, emp: pd.DataFrame, bands: tuple[float, ...],
                 light: TrafficLight, company: str, period: str) -> None:
    sheet = book.sheet(t["sheet_bands"])
    src = _quote_sheet(t["sheet_employees"])
    _header(sheet, [t["band"], t["band_from"], t["band_below"], t["band_count"]], [18.0, 9.0, 9.0, 14.0])
    w_rng = f"{src}{lay.rng(lay.col_weighted)}"
    scores = emp["weighted_score"].to_numpy(dtype=float)
    scores = scores[~np.isnan(scores)]
    labels = _band_labels(bands)
    lows: list[float | None] = [None, *bands]
    highs: list[float | None] = [*bands, None]
    counts: list[int] = []
    for i, (label, lo, hi) in enumerate(zip(labels, lows, highs, strict=True)):
        r = i + 2
        sheet.put(r, 1, label)
        sheet.put(r, 2, lo, "0%", numeric=True)
        sheet.put(r, 3, hi, "0%", numeric=True)
        mask = np.ones(len(scores), dtype=bool)
        parts = []
        if lo is not None:
            mask &= scores >= _criterion_number(_stored(lo))
            parts.append(f'{w_rng},">="&B{r}')
        if hi is not None:
            mask &= scores < _criterion_number(_stored(hi))
            parts.append(f'{w_rng},"<"&C{r}')
        counts.append(int(mask.sum()))
        if lay.n:
            fn = "COUNTIFS" if len(parts) > 1 else "COUNTIF"
            sheet.formula(r, 4, f"{fn}({','.join(parts)})", counts[-1], "0")
        else:
            sheet.put(r, 4, 0, "0")
    tr = len(labels) + 2
    sheet.put(tr, 1, t["total"], total=True)
    sheet.put(tr, 2, None, total=True)
    sheet.put(tr, 3, None, total=True)
    if lay.n:
        sheet.formula(tr, 4, f"SUM(D2:D{tr - 1})", sum(counts), "0", total=True)
    else:
        sheet.put(tr, 4, 0, "0", total=True)
    sheet.ws.freeze_panes(1, 0)
    _print_setup(sheet, t["title"], company, period, landscape=True)

    if lay.n:
        chart = book.wb.add_chart({"type": "column"})
        chart.set_style(10)
        chart.set_title({"name": t["chart_bands"]})
        chart.set_legend({"none": True})
        points = []
        for lo in lows:
            colour = "#" + light.bars[light.band(lo) if lo is not None else 0]
            points.append({"fill": {"color": colour}, "border": {"color": colour}})
        chart.add_series({
            "name": [sheet.title, 0, 3],
            "categories": [sheet.title, 1, 0, tr - 2, 0],
            "values": [sheet.title, 1, 3, tr - 2, 3],
            "points": points,
            "gap": 15,
            "data_labels": {"value": True, "position": "outside_end"},
        })
        chart.set_y_axis({"num_format": "0", "min": 0})
        chart.set_size({"width": round(18 * _CM_PX), "height": round(9 * _CM_PX)})
        sheet.ws.insert_chart("F2", chart)
