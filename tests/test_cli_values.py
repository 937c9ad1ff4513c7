"""The command line's values coerced without pydantic (xl_kpi/cli_values.py) give what typer's own coercion gives:
the same value, or the same error message, for every option of every command and a spread of values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer._click import Context
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param

from xl_kpi.cli import app
from xl_kpi.cli_values import PlainValue, plain_values

ROOT = Path(__file__).resolve().parents[1]


def _params() -> list[tuple[Any, Any]]:
    group = typer.main.get_command(app)
    found = [(group, p) for p in group.params]
    for command in group.commands.values():
        found += [(command, p) for p in command.get_params(Context(command))]
    return [(c, p) for c, p in found if hasattr(p, "type_descriptor")]


def _values(tmp: Path) -> list[Any]:
    folder = tmp / "a folder"
    folder.mkdir()
    (folder / "plan.xlsx").write_bytes(b"x")
    (tmp / "unreadable.xlsx").write_bytes(b"x")
    (tmp / "unreadable.xlsx").chmod(0)
    return [None, (), "", "x", "ru", "2026-10", "--", "-", "план.xlsx", str(folder), str(folder) + "/",
            str(folder / "plan.xlsx"), "./" + str(folder / "plan.xlsx"), str(tmp / "missing.xlsx"),
            str(tmp / "unreadable.xlsx"), Path("kpi-out"), folder, "0", "1", "2", "64", "65", "007", "+2", " 2",
            "2.0", "1e1", "1_0", "abc", "٣", 3, 0, 99, True, False, ("a", "b"), [str(folder)], b"bytes"]


def _outcome(runtime: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        out = runtime.coerce(value, param=param, ctx=ctx)
    except BadParameter as e:
        return "error", e.message
    return type(out).__name__, out


def test_every_value_of_every_option_coerces_as_typer_does(tmp_path: Path) -> None:
    values = _values(tmp_path)
    checked = 0
    for command, param in _params():
        ctx = Context(command)
        d = param.type_descriptor
        ours = PlainValue(parameter_info=d.parameter_info, annotation=d.annotation, descriptor=d)
        typers = build_runtime_param(d)
        for value in values:
            if param.multiple or param.nargs == -1:
                value = value if isinstance(value, (tuple, list)) or value is None else (value,)
            assert _outcome(ours, value, param, ctx) == _outcome(typers, value, param, ctx), (
                command.name, param.name, value)
            checked += 1
    assert checked > 1000


def test_plain_values_leaves_a_built_coercion_alone() -> None:
    _, param = next((c, p) for c, p in _params() if p.name == "jobs")
    built = build_runtime_param(param.type_descriptor)
    param._runtime_param = built
    plain_values([param])
    assert param._runtime_param is built


def test_a_command_runs_without_importing_pydantic(sample_company: Any) -> None:
    """The point of the module: ``xl-kpi validate`` of the sample company (a checked path, texts, repeated
    options) parses its command line and runs to its end without importing pydantic."""
    script = ("import atexit, sys\nfrom xl_kpi.__main__ import main\n"
              "atexit.register(lambda: print('pydantic imported:', 'pydantic' in sys.modules))\nmain()\n")
    run = subprocess.run([sys.executable, "-c", script, "validate", *sample_company.args(), "--period", "2026-10",
                          "--lang", "en"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().splitlines()[-1] == "pydantic imported: False", run.stdout + run.stderr


@pytest.mark.parametrize("jobs", ["0", "65", "x"])
def test_a_bad_number_still_gets_typers_message(runner: Any, jobs: str) -> None:
    result = runner.invoke(app, ["demo", "--jobs", jobs, "--lang", "en"])
    assert result.exit_code == 2
    assert "Invalid value for '--jobs'" in result.output
