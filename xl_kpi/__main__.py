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
            from xl_kpi.inputs.datafiles import read_early
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
    try:
        cli_main()
    except SystemExit as e:
        if e.code in (0, 1, None) and _finished():
            _end_now(e.code or 0)
        raise


def _finished() -> bool:
    """True when the command finished and printed its report (``xl_kpi.cli.finished``: generate, validate)."""
    from xl_kpi import cli

    return bool(getattr(cli, "finished", False))


def _end_now(code: int) -> None:
    """End the process at once, with exit ``code`` (0, or 1 for input problems reported): the atexit hooks run and
    stdout and stderr are flushed, but the interpreter's teardown (every module and object freed one by one:
    0.2-0.5 s after 10,000 cards, 0.1 s after validating a 1,000,000-row export, and nothing left to write) is
    skipped. Not while another thread runs (it would be cut off): then the usual exit."""
    import atexit
    import os
    import threading

    run_hooks = getattr(atexit, "_run_exitfuncs", None)
    if run_hooks is None or threading.active_count() > 1:
        return
    run_hooks()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            return  # a closed or broken stream: the usual exit reports it
    os._exit(code)


if __name__ == "__main__":
    main()
