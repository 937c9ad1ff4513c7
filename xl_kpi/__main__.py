"""``python -m xl_kpi`` and the ``xl-kpi`` command: the CLI, or a clear message when a batch package is missing.

The CLI needs typer, rich and the batch's readers and writers; an install made for the Excel
functions only (numpy, pandas, xlwings, as in xlwings Lite) lacks them. Then: exit code 1 and the
``pip install`` that fixes it (xl_kpi/dependencies.py), never a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the ``xl-kpi`` command (xl_kpi.cli.main); ``validate`` starts reading its CSV files first."""
    if sys.argv[1:2] == ["validate"]:  # the exports parse in the background while the CLI imports
        try:
            from xl_kpi.inputs.readers.ahead import read_early
        except ModuleNotFoundError:  # a missing package: the CLI's import below names it
            pass
        else:
            read_early(sys.argv[2:])
    try:
        from xl_kpi.cli import main as cli_main
    except ModuleNotFoundError as exc:
        from xl_kpi.dependencies import missing_batch_package

        message = missing_batch_package(exc)
        if message is None:
            raise
        print(f"xl-kpi: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    cli_main()


if __name__ == "__main__":
    main()
