"""Where the bundled workbooks (card templates, the sample company, the UDF demo) are found.

In a source checkout or an editable install they are ``<repo>/workbooks``; a wheel installs them as
data files under ``<prefix>/share/xl_kpi/workbooks`` (see pyproject.toml).
"""

from __future__ import annotations

import sys
from pathlib import Path


def workbooks_dir() -> Path:
    """The folder of the bundled workbooks (the checkout's, else the installed copy)."""
    checkout = Path(__file__).resolve().parents[2] / "workbooks"
    if checkout.is_dir():
        return checkout
    for prefix in (sys.prefix, sys.base_prefix):
        installed = Path(prefix) / "share" / "xl_kpi" / "workbooks"
        if installed.is_dir():
            return installed
    return checkout  # missing: opening a file there names this path in the error
