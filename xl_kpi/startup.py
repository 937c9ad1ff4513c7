"""What the ``xl-kpi`` command settles before NumPy loads: one OpenBLAS thread.

NumPy's OpenBLAS starts a thread per core when it loads. xl_kpi does no linear algebra worth a thread, and on the
small machines it runs on those threads only take CPU from the work (about 3% of a ``validate`` of a 1,000,000-row
export, measured with farm-bench). The command's worker processes inherit the setting. A program that imports
xl_kpi as a library keeps its own: nothing is set unless this process is the ``xl-kpi`` command itself.
Importing this module settles it; the package imports it first of all.
"""

from __future__ import annotations

import itertools
import ntpath
import os
import sys

COMMAND_NAMES = frozenset({"xl-kpi", "xl-kpi.exe", "xl-kpi-script.py"})
"""The names the console script is started under (pip's launcher on Windows runs ``xl-kpi.exe``)."""


def is_command_line(argv: list[str], orig_argv: list[str]) -> bool:
    """True when the process is ``xl-kpi …`` or ``python -m xl_kpi …`` (``sys.argv``, ``sys.orig_argv``)."""
    if argv and ntpath.basename(argv[0]) in COMMAND_NAMES:  # either slash
        return True
    return any(a == "-m" and b in ("xl_kpi", "xl_kpi.__main__") for a, b in itertools.pairwise(orig_argv))


def settle_threads() -> None:
    """One OpenBLAS thread for the command (a value the user set is kept); nothing for a library import."""
    if is_command_line(sys.argv, getattr(sys, "orig_argv", [])):
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


settle_threads()
