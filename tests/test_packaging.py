"""`python -m build` gives a wheel and an sdist that install into a clean venv and run `xl-kpi demo`.

Each artefact goes into its own fresh virtual environment (dependencies from the package index,
versions from constraints.txt), where ``xl-kpi --version`` names the version and ``xl-kpi demo``
runs the whole batch on the sample company shipped as data files. The build itself must print no
setuptools deprecation warning (the licence is an SPDX string, issue 12 §3).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import xl_kpi

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, encoding="utf-8", timeout=900)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel and the sdist of this tree, and what the build printed."""
    out = tmp_path_factory.mktemp("dist")
    built = _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)
    return out, built.stdout + built.stderr


def test_build_prints_no_deprecation_warning(dist):
    _, log = dist
    assert "Deprecat" not in log, [line for line in log.splitlines() if "Deprecat" in line]
    # "byte-compiling is disabled" only echoes PYTHONDONTWRITEBYTECODE of the environment running the tests
    warnings = [line for line in log.splitlines() if "warning" in line.lower() and "byte-compiling" not in line]
    assert not warnings


def test_the_wheel_holds_the_package_the_functions_the_workbooks_and_the_licence(dist):
    folder, _ = dist
    (wheel,) = folder.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    version = xl_kpi.__version__
    assert {"udfs.py", "xl_kpi/__init__.py", "xl_kpi/__main__.py", "xl_kpi/py.typed"} <= names
    assert "xl_kpi/locale/ru/LC_MESSAGES/xl_kpi.mo" in names  # the Russian messages (gettext reads the .mo)
    data = f"xl_kpi-{version}.data/data/share/xl_kpi/workbooks"
    assert {f"{data}/kpi_card_en.xlsx", f"{data}/kpi_card_ru.xlsx", f"{data}/udf_demo.xlsx",
            f"{data}/sample/plan.xlsx"} <= names
    assert f"xl_kpi-{version}.dist-info/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"xl_kpi-{version}.dist-info/METADATA").decode()
    assert "License-Expression: MIT" in metadata
    assert "Requires-Dist: python-calamine>=0.2; sys_platform != \"emscripten\"" in metadata


def test_the_sdist_holds_what_rebuilds_and_tests_it(dist):
    folder, _ = dist
    (sdist,) = folder.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "udfs.py", "constraints.txt", "docs/excel.md",
            "workbooks/sample/plan.xlsx", "tests/conftest.py", "scripts/make_udf_demo.py"} <= names


@pytest.mark.parametrize("kind", ["whl", "tar.gz"])
def test_installs_into_a_clean_venv_and_runs_the_demo(dist, tmp_path, kind):
    folder, _ = dist
    (artefact,) = folder.glob(f"*.{kind}")
    venv.create(tmp_path / "venv", with_pip=True)
    bin_dir = tmp_path / "venv" / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "-c", str(ROOT / "constraints.txt"), str(artefact)], cwd=tmp_path)
    version = _run([str(bin_dir / "xl-kpi"), "--version"], cwd=tmp_path)
    assert version.stdout.strip() == f"xl-kpi {xl_kpi.__version__}"
    _run([str(bin_dir / "xl-kpi"), "demo", "--out", "demo-out"], cwd=tmp_path)
    out = tmp_path / "demo-out"
    assert (out / "summary.xlsx").is_file() and (out / "manifest.json").is_file()
    assert len(list((out / "cards").rglob("*.xlsx"))) == 44
