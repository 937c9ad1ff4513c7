"""Drive udfs.py through xlwings' Office.js dispatcher, as xlwings Lite and xlwings Server do.

With ``XLWINGS_ON_SERVER=true`` xlwings maps ``xw.func`` / ``xw.arg`` to its Office.js decorators
(xlwings PRO code, PolyForm Noncommercial: ``XLWINGS_LICENSE_KEY=noncommercial`` is its key for that
use), and ``xlwings.server.custom_functions_meta`` / ``custom_functions_call`` are what Excel's
requests go through. Both variables must be set before xlwings is imported, so the module runs in a
child Python that answers one JSON request per line::

    {"op": "meta"}                                   → custom_functions_meta(udfs)
    {"op": "lite_meta"}                              → the same for a Lite main.py doing `from udfs import *`
    {"op": "call", "name": ..., "args": [...], "runtime": "1.4"} → custom_functions_call(payload, udfs)

Payloads are shaped as Excel sends them (xlwings' custom_functions_code.js): ``client: "Office.js"``,
every argument a 2-D matrix, an omitted optional argument as null.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, types
    import xlwings as xw
    import xlwings.server as server
    import udfs

    lite_main = types.ModuleType("main")  # xlwings Lite's main.py: `from udfs import *`
    exec("from udfs import *", lite_main.__dict__)

    def answer(request):
        if request["op"] == "meta":
            return server.custom_functions_meta(udfs)
        if request["op"] == "lite_meta":
            return server.custom_functions_meta(lite_main)
        payload = {
            "func_name": request["name"],
            "args": request["args"],
            "caller_address": "Sheet1!B2",
            "formula_name": request["name"],
            "version": xw.__version__,
            "runtime": request.get("runtime", "1.4"),
            "culture_info_name": "en-US",
            "date_format": "M/d/yyyy",
            "client": "Office.js",
        }
        return asyncio.run(server.custom_functions_call(payload, udfs))

    for line in sys.stdin:
        try:
            out = {"ok": answer(json.loads(line))}
        except Exception as exc:
            out = {"raised": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(out) + "\\n")
        sys.stdout.flush()
    """
)


def error(text: str) -> dict[str, str]:
    """An error cell as Excel sends it in a custom function argument."""
    kinds = {"#DIV/0!": "Div0", "#N/A": "NotAvailable", "#NAME?": "Name", "#NULL!": "Null", "#NUM!": "Num",
             "#REF!": "Ref", "#VALUE!": "Value", "#SPILL!": "Spill", "#CALC!": "Calc"}
    return {"type": "Error", "basicValue": text, "errorType": kinds[text]}


def returned(text: str) -> dict[str, str]:
    """An error value as xlwings returns it to Excel (runtime 1.4 and later)."""
    kinds = {"#DIV/0!": "Div0", "#N/A": "NotAvailable", "#NAME?": "Name", "#NULL!": "Null", "#NUM!": "Num",
             "#REF!": "Ref", "#VALUE!": "Value"}
    return {"type": "Error", "errorType": kinds[text]}


class OfficeJs:
    """One child Python with the Office.js dispatcher loaded; :meth:`call` sends one request."""

    def __init__(self) -> None:
        env = {**os.environ, "XLWINGS_ON_SERVER": "true", "XLWINGS_LICENSE_KEY": "noncommercial",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, encoding="utf-8")

    def request(self, **request: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the Office.js child Python died (see the captured stderr)"
        out = json.loads(line)
        if "raised" in out:
            raise AssertionError(f"custom_functions_call raised {out['raised']}")
        return out["ok"]

    def call(self, name: str, *args: Any, runtime: str = "1.4") -> Any:
        """``=NAME(args)`` as Excel sends it: every argument a matrix, None for an omitted optional one."""
        return self.request(op="call", name=name, args=[_matrix(a) for a in args], runtime=runtime)

    def meta(self) -> dict[str, Any]:
        return self.request(op="meta")

    def lite_meta(self) -> dict[str, Any]:
        return self.request(op="lite_meta")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _matrix(arg: Any) -> Any:
    """A cell value as the 1x1 matrix Excel sends; lists of rows stay as they are; None = omitted."""
    if arg is None or (isinstance(arg, list) and arg and isinstance(arg[0], list)):
        return arg
    return [[arg]]
