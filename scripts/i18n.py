"""Keep the Russian catalog of xl-kpi's messages up to date (needs Babel, a test dependency).

    python scripts/i18n.py          # extract every marked message, merge into xl_kpi.po, compile xl_kpi.mo

Marked messages are the first arguments of ``tr``/``Msg``/``N_`` and the first two of ``ntr``/``Plural``
(xl_kpi/i18n.py). New messages get an empty translation (tests/test_i18n.py fails until it is written);
messages no longer in the code are dropped. The .mo is what the package reads at run time.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "xl_kpi"
PO = PACKAGE / "locale" / "ru" / "LC_MESSAGES" / "xl_kpi.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {"tr": None, "Msg": None, "KpiText": None, "N_": None, "ntr": (1, 2), "Plural": (1, 2)}


def extract() -> Catalog:
    """Every marked message of the package, with where it is used."""
    catalog = Catalog(project="xl_kpi", locale="ru", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
            PACKAGE, method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=("i18n:",),
            strip_comment_tags=True):
        catalog.add(message, None, [(f"xl_kpi/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def read() -> Catalog:
    """The Russian catalog as it is in the repository."""
    with PO.open("rb") as f:
        return read_po(f, locale="ru", domain="xl_kpi")


def mo_bytes(catalog: Catalog) -> bytes:
    """The compiled catalog, as ``gettext`` reads it (fuzzy entries left out)."""
    buf = io.BytesIO()
    write_mo(buf, catalog)
    return buf.getvalue()


def po_bytes(catalog: Catalog) -> bytes:
    buf = io.BytesIO()
    write_po(buf, catalog, width=120, omit_header=False, sort_output=False, include_lineno=False)
    return buf.getvalue()


def update() -> tuple[int, int]:
    """Merge the extracted messages into the .po, write it and the .mo; (messages, untranslated)."""
    template = extract()
    catalog = read() if PO.exists() else Catalog(locale="ru", project="xl_kpi", charset="utf-8")
    created = catalog.creation_date
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    catalog.creation_date = catalog.revision_date = created  # a run that changes no message changes no byte
    catalog.fuzzy = False
    catalog.last_translator = catalog.language_team = "xl_kpi developers"
    catalog.msgid_bugs_address = ""
    PO.parent.mkdir(parents=True, exist_ok=True)
    PO.write_bytes(po_bytes(catalog))
    catalog = read()
    MO.write_bytes(mo_bytes(catalog))
    untranslated = [m for m in catalog if m.id and not (all(m.string) if m.pluralizable else m.string)]
    return len([m for m in catalog if m.id]), len(untranslated)


if __name__ == "__main__":
    total, missing = update()
    print(f"{PO.relative_to(ROOT)}: {total} messages, {missing} without a Russian translation")
    sys.exit(1 if missing else 0)
