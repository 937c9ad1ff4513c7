"""KPI cards: one workbook per employee, with live Excel formulas and cached results.

A card template (``workbooks/kpi_card_<lang>.xlsx`` or a user's restyled copy) holds markers
(``{{name}}``, a KPI row with ``{{kpi.*}}``, a scale block with ``{{scale.*}}``; see
docs/templates.md). Filling it is split in two, so that 10,000 cards take seconds:

* **compile** (once per card shape: number of KPI rows, scales used, hidden rows, currency):
  the template's XML is expanded at the XML level (rows copied, every row reference moved:
  formulas, merged cells, conditional formats, charts, drawings, defined names, print area)
  and cut into literal chunks with slots; unchanged zip parts are compressed once.
* **stamp** (per employee): each slot gets the employee's value, or a formula plus the value
  xl_kpi computed (``results``), and the zip is written directly.

The package, one job a module: ``markup`` (markers, reading the template's XML), ``template``
(:class:`CardTemplate`: the card sheet and its markers), ``expand`` (compiling a card shape: rows
expanded, references moved), ``data`` (results cut into per-card data), ``cells`` (cell values and
their XML), ``stamp`` (one card's values, formulas and bytes), ``write`` (files, worker processes,
the resume journal).

The formulas are native Excel (no UDFs): the card is a what-if calculator that mirrors the
engine exactly. Their text comes from :mod:`xl_kpi.engine.formulas` (the engine's rules as formulas:
``ROUND(score, 12)`` before comparing with thresholds and gates, ``LOOKUP`` for half-open bands,
straight-line interpolation for linear scales, ``ROUND(…, digits)`` for money with the Settings'
digits); every cached value comes from ``results`` (no number is computed here). A card whose
results lack a total (an employee in error) is marked to be recalculated when opened.
"""

from __future__ import annotations

from xl_kpi.outputs.atomic import write_atomic
from xl_kpi.outputs.cards.expand import FIXED_TIMESTAMP
from xl_kpi.outputs.cards.markup import TemplateError
from xl_kpi.outputs.cards.stamp import CARD_COMPRESS_LEVEL
from xl_kpi.outputs.cards.template import TEMPLATE_DIR, CardTemplate
from xl_kpi.outputs.cards.write import (
    CardRecord,
    _chunks,
    card_path,
    iter_cards,
    read_journal,
    render_card,
    write_cards,
)

__all__ = [
    "CARD_COMPRESS_LEVEL",
    "FIXED_TIMESTAMP",
    "TEMPLATE_DIR",
    "CardRecord",
    "CardTemplate",
    "TemplateError",
    "_chunks",
    "card_path",
    "iter_cards",
    "read_journal",
    "render_card",
    "write_atomic",
    "write_cards",
]
