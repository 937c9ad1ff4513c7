"""A card template, read and checked: its card sheet, markers, KPI row, scale block and related parts
(compiling it per card shape is :mod:`xl_kpi.outputs.cards.expand`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from xl_kpi.inputs.resources import workbooks_dir
from xl_kpi.outputs.cards.expand import (
    _Compiled,
    _Compiler,
    _Key,
)
from xl_kpi.outputs.cards.markup import (
    _MARKER,
    _SHEET_RE,
    _SI_RE,
    HEADER_FIELDS,
    KPI_FIELDS,
    KPI_REQUIRED,
    REL_COMMENTS,
    REL_DRAWING,
    REL_TABLE,
    REL_VML,
    SCALE_POINT_FIELDS,
    SCALE_TITLE_FIELDS,
    TemplateError,
    _marker_fields,
    _marker_of,
    _parse_rows,
    _split_sheet,
)
from xl_kpi.outputs.cards.texts import TEXTS
from xl_kpi.outputs.numlang import tag_styles
from xl_kpi.outputs.ooxml import (
    col_letters,
    parse_attrs,
    read_parts,
    read_rels,
    string_item_text,
    xml_unescape,
)

TEMPLATE_DIR = workbooks_dir()
"""Where the bundled templates live (<repo>/workbooks, or the installed copy)."""



class CardTemplate(_Compiler):
    """A card template, parsed once; compiled forms are cached per card shape.

    Load it with :meth:`load`. Picklable (it is sent to worker processes as its source bytes).
    """

    def __init__(self, source: bytes, lang: str = "en", path: Path | None = None) -> None:
        if lang not in TEXTS:
            raise TemplateError(f"language must be one of {sorted(TEXTS)}, not {lang!r}")
        self.source = source
        self.lang = lang
        self.path = path
        self._compiled: dict[_Key, _Compiled] = {}
        self._parse()

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, lang: str = "en") -> CardTemplate:
        """Read a template (``None`` = the bundled ``workbooks/kpi_card_<lang>.xlsx``)."""
        p = Path(path) if path is not None else TEMPLATE_DIR / f"kpi_card_{lang}.xlsx"
        if path is not None:  # a user's file: the same size, zip-bomb and XML-bomb checks as a plan
            from xl_kpi.inputs.readers import FileReadError, check_file, limits, scan_xlsx

            try:
                check_file(p, limits().plan_bytes, "card template")
                scan_xlsx(p)
            except FileReadError as exc:
                raise TemplateError(f"card template {exc}") from None
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise TemplateError(f"cannot read the card template {p}: {exc.strerror or exc}") from None
        return cls(data, lang, p)

    def __reduce__(self) -> tuple[Any, ...]:
        return (CardTemplate, (self.source, self.lang, self.path))

    # -- parse ---------------------------------------------------------------------------------

    def _parse(self) -> None:
        try:
            parts = read_parts(self.source)
        except Exception as exc:
            raise TemplateError(f"the card template is not an xlsx file: {exc}") from None
        if "xl/workbook.xml" not in parts:
            raise TemplateError("the card template has no xl/workbook.xml; is it an xlsx workbook?")
        if "xl/styles.xml" in parts:  # numbers in the card's language on any machine (LibreOffice, PDFs)
            parts["xl/styles.xml"] = tag_styles(parts["xl/styles.xml"].decode("utf-8"), self.lang).encode("utf-8")
        self.parts = parts
        self.names = list(parts)
        wb_rels = {r["Id"]: r for r in read_rels(parts, "xl/workbook.xml")}
        self.strings_part = next((r["path"] for r in wb_rels.values() if r["Type"].endswith("/sharedStrings")),
                                 None)
        self.strings_xml: list[str] = []
        strings: list[str] = []
        if self.strings_part and self.strings_part in parts:
            for m in _SI_RE.finditer(parts[self.strings_part].decode("utf-8")):
                self.strings_xml.append(m.group(0))
                strings.append(string_item_text(m.group(1) or ""))
        wb_xml = parts["xl/workbook.xml"].decode("utf-8")
        self.sheets: list[tuple[str, str]] = []  # (name, part)
        for m in _SHEET_RE.finditer(wb_xml):
            a = dict(parse_attrs(m.group(1)))
            rid = next((v for k, v in a.items() if k.endswith(":id")), None)
            rel = wb_rels.get(rid or "")
            if rel and rel["Type"].endswith("/worksheet"):
                self.sheets.append((xml_unescape(a.get("name", "")), rel["path"]))
        card = None
        for name, part in self.sheets:
            head, data, tail = _split_sheet(parts[part].decode("utf-8"))
            rows = _parse_rows(data, strings)
            if any(c.text and "{{" in c.text and _MARKER.search(c.text) for r in rows for c in r.cells):
                card = (name, part, head, rows, tail)
                break
        if card is None:
            raise TemplateError("no sheet of the template holds markers such as {{name}} or {{kpi.fact}}")
        self.sheet_name, self.sheet_part, self.head, rows, self.tail = card
        self.rows = {r.r: r for r in rows}
        self.max_row = max(self.rows, default=1)
        self._find_markers()
        self._related()

    def _find_markers(self) -> None:
        kpi_rows: set[int] = set()
        title_rows: set[int] = set()
        point_rows: set[int] = set()
        self.kpi_cols: dict[str, str] = {}
        self.scale_cols: dict[str, str] = {}
        self.field_cells: dict[str, tuple[str, int]] = {}  # first whole-cell occurrence (column, row)
        self.hide_rows: dict[str, int] = {}
        problems: list[str] = []
        for row in self.rows.values():
            for cell in row.cells:
                if cell.text is None or cell.formula is not None:
                    continue
                marker = _marker_of(cell.text)
                if marker is None:
                    continue
                cell.marker = marker
                ref = f"{col_letters(cell.col)}{row.r}"
                for name in _marker_fields(marker):
                    ns, _, fld = name.rpartition(".")
                    if ns == "kpi":
                        if fld not in KPI_FIELDS:
                            problems.append(f"{ref}: unknown marker {{{{{name}}}}}")
                        kpi_rows.add(row.r)
                        if marker[0] == "v":
                            self.kpi_cols.setdefault(fld, col_letters(cell.col))
                    elif ns == "scale":
                        if fld in SCALE_POINT_FIELDS:
                            point_rows.add(row.r)
                            if marker[0] == "v":
                                self.scale_cols.setdefault(fld, col_letters(cell.col))
                        elif fld in SCALE_TITLE_FIELDS:
                            title_rows.add(row.r)
                        else:
                            problems.append(f"{ref}: unknown marker {{{{{name}}}}}")
                    elif ns:
                        problems.append(f"{ref}: unknown marker {{{{{name}}}}} (namespaces are kpi. and scale.)")
                    elif name not in HEADER_FIELDS:
                        problems.append(f"{ref}: unknown marker {{{{{name}}}}}")
                    elif marker[0] == "v":
                        self.field_cells.setdefault(name, (col_letters(cell.col), row.r))
                        if name in ("multiplier", "proration", "adjustment"):
                            self.hide_rows.setdefault(name, row.r)
        if len(kpi_rows) != 1:
            problems.append(
                "the KPI row is missing: put {{kpi.name}}, {{kpi.fact}}, {{kpi.score}}, {{kpi.coefficient}} and "
                "{{kpi.bonus}} in one row" if not kpi_rows else
                f"{{{{kpi.*}}}} markers must all be in one row (the KPI row), found rows {sorted(kpi_rows)}"
            )
        else:
            missing = [f for f in KPI_REQUIRED if f not in self.kpi_cols]
            if missing:
                problems.append("the KPI row lacks " + ", ".join(f"{{{{kpi.{f}}}}}" for f in missing))
        if len(point_rows) > 1:
            problems.append(f"{{{{scale.band/threshold/coefficient}}}} must be in one row, found {sorted(point_rows)}")
        if title_rows and not point_rows:
            problems.append("{{scale.title}}-type markers need a point row with {{scale.threshold}}")
        self.kpi_row = next(iter(kpi_rows), 0)
        self.point_row = next(iter(point_rows), None)
        self.scale_start = min(title_rows | point_rows) if point_rows else None
        if self.point_row is not None:
            if any(r > self.point_row for r in title_rows):
                problems.append("scale title markers must be above the scale point row")
            if point_rows and not {"threshold", "coefficient"} <= set(self.scale_cols):
                problems.append("the scale point row needs whole-cell {{scale.threshold}} and {{scale.coefficient}}")
            if self.scale_start <= self.kpi_row <= self.point_row:
                problems.append("the KPI row must not be inside the scale block")
        if problems:
            raise TemplateError("card template: " + "; ".join(problems))

    def _related(self) -> None:
        self.sheet_rels = read_rels(self.parts, self.sheet_part)
        self.drawing_part = next((r["path"] for r in self.sheet_rels if r["Type"].endswith(REL_DRAWING)), None)
        self.comment_parts = [r["path"] for r in self.sheet_rels if r["Type"].endswith(REL_COMMENTS)]
        self.vml_parts = [r["path"] for r in self.sheet_rels if r["Type"].endswith(REL_VML)]
        self.table_parts = [r["path"] for r in self.sheet_rels if r["Type"].endswith(REL_TABLE)]
        self.chart_parts = [n for n in self.names if n.startswith("xl/charts/chart") and n.endswith(".xml")]
        self.other_sheets = [p for _, p in self.sheets if p != self.sheet_part]
