"""xl_kpi and udfs.py with only numpy, pandas and xlwings installed: what Pyodide (xlwings Lite) has.

A fresh virtual environment gets exactly those three (versions from constraints.txt) and xl_kpi
itself installed with ``--no-deps``. There the engine, the library and the Excel functions must
import and compute, none of the batch's packages may be imported on the way, and the ``xl-kpi``
command must stop with exit code 1 and the ``pip install`` that fixes it, not a traceback.
The dependency markers in pyproject.toml are checked too: in Pyodide (``sys_platform ==
'emscripten'``) only numpy, pandas and xlwings are required.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from xl_kpi.dependencies import BATCH_PACKAGES

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = {"numpy", "pandas", "xlwings"}

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, encoding="utf-8", timeout=600)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture(scope="module")
def minimal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding numpy, pandas, xlwings and xl_kpi (no dependencies); returns its bin folder."""
    root = tmp_path_factory.mktemp("minimal")
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "-c", str(ROOT / "constraints.txt"), *sorted(MINIMAL)], cwd=root)
    # from an sdist, so that no build/ folder of the work tree (stale files) reaches the installed copy
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", str(root / "dist"), str(ROOT)], cwd=root)
    (sdist,) = (root / "dist").glob("*.tar.gz")
    _run([*pip, "--no-deps", str(sdist)], cwd=root)
    return bin_dir


_PROGRAM = """
import sys
import udfs
import xl_kpi
from xl_kpi import metrics

assert udfs.KPI_BONUS(20000, 0.4, 1.2) == 8800.0
assert udfs.KPI_TOTAL_BONUS(20000, [[0.4], [0.6]], [[1.2], [1.0]]) == 20800.0
assert udfs.KPI_SCORE(160, 100, 100) == udfs.ERR_DIV0
assert udfs.KPI_TOTAL_PAY(80000, udfs.KPI_PERIOD_BONUS(20800, 1.2, 0.5)) == 92480.0
assert udfs.KPI_SHARE(1200000, [["From", "Rate"], [0, 0.03], [1000000, 0.05]]) == 40000.0
assert xl_kpi.period_bonus(20800, 1.2, 0.5) == 12480.0
assert xl_kpi.total_bonus(20000, [0.4, 0.6], [1.2, 1.0]) == 20800.0
assert metrics.nps([10, 9, 9, 8, 7, 10, 6, 3, 9, 10]) == 40.0
batch = {BATCH!r}
print(sorted(m for m in sys.modules if m.split(".")[0] in batch))
"""


def test_the_venv_holds_only_the_three(minimal):
    listed = _run([str(minimal / "python"), "-m", "pip", "list", "--format=freeze"], cwd=minimal).stdout
    names = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert not names & {n.lower() for n in BATCH_PACKAGES.values()}, names
    assert MINIMAL | {"xl_kpi"} <= {n.replace("-", "_") if n == "xl-kpi" else n for n in names}


def test_engine_library_and_udfs_import_and_compute(minimal, tmp_path):
    program = _PROGRAM.replace("{BATCH!r}", repr(set(BATCH_PACKAGES)))
    out = _run([str(minimal / "python"), "-c", program], cwd=tmp_path)  # not the repo: the installed copy
    assert out.stdout.strip() == "[]"  # no batch package was even tried


@pytest.mark.parametrize("how", ["console script", "python -m"])
def test_the_command_without_its_packages_says_how_to_fix_it(minimal, tmp_path, how):
    cmd = [str(minimal / "xl-kpi")] if how == "console script" else [str(minimal / "python"), "-m", "xl_kpi"]
    out = _run([*cmd, "--version"], cwd=tmp_path, check=False)
    assert out.returncode == 1, out
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("xl-kpi: error: the xl-kpi command needs the package typer")
    assert "fix: " in out.stderr and 'pip install "typer"' in out.stderr


def test_pyodide_needs_only_numpy_pandas_xlwings():
    """The batch's requirements carry `sys_platform != 'emscripten'`: micropip would find no wheels for them."""
    deps = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    pyodide = {"sys_platform": "emscripten", "platform_system": "Emscripten", "python_version": "3.12"}
    needed = {d.name for d in deps if d.marker is None or d.marker.evaluate(pyodide)}
    assert needed == MINIMAL
    batch_only = {d.name.lower() for d in deps} - needed
    assert batch_only == {dist.lower() for dist in BATCH_PACKAGES.values()}  # every one named in the fix message
