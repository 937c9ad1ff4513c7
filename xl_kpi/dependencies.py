"""Which packages only the batch needs, and what to tell a user who lacks one.

``xl_kpi`` (engine, library) and ``udfs.py`` import with numpy, pandas and xlwings alone, as in
Pyodide (xlwings Lite), where pyproject.toml leaves the batch's packages out. The ``xl-kpi`` command
needs them all; without one it stops with exit code 1 and this message instead of a traceback.
"""

from __future__ import annotations

import sys

BATCH_PACKAGES: dict[str, str] = {
    "typer": "typer",
    "click": "typer",
    "rich": "rich",
    "openpyxl": "openpyxl",
    "xlsxwriter": "XlsxWriter",
    "python_calamine": "python-calamine",
    "msoffcrypto": "msoffcrypto-tool",
    "olefile": "olefile",
    "defusedxml": "defusedxml",
    "duckdb": "duckdb",
    "ibis": "ibis-framework",
    "pyarrow": "pyarrow",
    "sqlglot": "sqlglot",
}
"""Import name → the distribution to install (``pip install <it>``)."""


def missing_batch_package(exc: BaseException) -> str | None:
    """The message for a ModuleNotFoundError of a batch package, or None if ``exc`` is something else.

    >>> print(missing_batch_package(ModuleNotFoundError("No module named 'typer'", name="typer")))
    ... # doctest: +ELLIPSIS
    error: the xl-kpi command needs the package typer, which is not installed in ...; fix: ...
    """
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    dist = BATCH_PACKAGES.get(exc.name.split(".")[0])
    if dist is None:
        return None
    return (f"error: the xl-kpi command needs the package {dist}, which is not installed in {sys.executable} "
            f"(xl_kpi was installed without its dependencies, e.g. for Excel functions only); "
            f'fix: {sys.executable} -m pip install "{dist}", or reinstall with its dependencies: '
            f"pip install xl_kpi")
