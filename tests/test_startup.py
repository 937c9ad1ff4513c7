"""The xl-kpi command runs one OpenBLAS thread; a program importing xl_kpi as a library keeps its own setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xl_kpi.startup import is_command_line

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("argv", "orig_argv", "expected"), [
    (["/venv/bin/xl-kpi", "generate"], ["/venv/bin/python", "/venv/bin/xl-kpi", "generate"], True),
    (["C:\\venv\\Scripts\\xl-kpi.exe"], ["python.exe", "C:\\venv\\Scripts\\xl-kpi.exe"], True),
    (["-m"], ["python", "-m", "xl_kpi", "validate"], True),
    (["-m"], ["python", "-X", "importtime", "-m", "xl_kpi.__main__"], True),
    (["-m"], ["python", "-m", "xl_kpi_other"], False),
    (["-m"], ["python", "-m", "pytest", "xl_kpi"], False),
    (["-c"], ["python", "-c", "import xl_kpi"], False),
    (["report.py"], ["python", "report.py", "-m", "xl-kpi"], False),
    ([], [], False),
])
def test_the_command_is_told_from_a_library_import(argv, orig_argv, expected):
    assert is_command_line(argv, orig_argv) is expected


def _blas_threads(tmp_path: Path, args: list[str], **env_extra: str) -> str:
    """What OPENBLAS_NUM_THREADS is at the end of a process started as ``python ARGS`` (a sitecustomize hook)."""
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(
        "import atexit, os\n"
        "atexit.register(lambda: print('BLAS', os.environ.get('OPENBLAS_NUM_THREADS'), flush=True))\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env.update(env_extra, PYTHONPATH=os.pathsep.join([str(hook), str(ROOT)]))
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout.rstrip().splitlines()[-1]


def test_python_m_xl_kpi_runs_one_blas_thread(tmp_path):
    assert _blas_threads(tmp_path, ["-m", "xl_kpi", "--help"]) == "BLAS 1"


def test_a_value_the_user_set_is_kept(tmp_path):
    assert _blas_threads(tmp_path, ["-m", "xl_kpi", "--help"], OPENBLAS_NUM_THREADS="2") == "BLAS 2"


def test_a_library_import_sets_nothing(tmp_path):
    assert _blas_threads(tmp_path, ["-c", "import xl_kpi, numpy"]) == "BLAS None"


def test_importing_the_package_or_the_csv_reader_loads_no_pandas(tmp_path):
    """The early read of ``validate`` starts before pandas is imported: the package and the Arrow CSV reader do
    not import it; the public names still resolve (and load what they need)."""
    code = ("import sys; import xl_kpi, xl_kpi.inputs.datafiles, xl_kpi.inputs.readers.csvarrow\n"
            "assert 'pandas' not in sys.modules, 'pandas'\n"
            "from xl_kpi import score, total_bonus, metrics, KpiError\n"
            "from xl_kpi.inputs.readers import limits, sniff, read_csv_grid\n"
            "assert callable(limits) and callable(sniff) and callable(read_csv_grid)\n"
            "assert score(90, 0, 100) == 0.9 and issubclass(KpiError, Exception) and metrics.__name__\n"
            "assert set(xl_kpi.__all__) <= set(dir(xl_kpi))\n"
            "print('OK')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.stdout.strip() == "OK", done.stderr
