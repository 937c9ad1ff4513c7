"""Shared fixtures and markers of the xl_kpi test suite.

Helper modules live next to the tests and are imported as ordinary modules of the ``tests``
package (the repository root is on ``sys.path`` through pytest's ``pythonpath = ["."]``)::

    from tests import _plan_helpers as ph      # tiny plans, facts CSVs and workbooks in tmp_path
    from tests import _bad_files as bf         # malformed input files (zip bombs, broken XML, …)
    from tests import _results_fixture as rf   # a Results computed with the engine (cards, isolation)
    from tests import _summary_fixture as sf   # a Results-like company for the summary workbook
    from tests import lo                       # LibreOffice headless: recalc, to_pdf, compare

The fixtures below are the things many tests build again and again: the bundled sample company
(read in place or copied), one ``generate`` run of it shared by the whole session, a CLI runner
and the LibreOffice recalculation (skipped when ``soffice`` is missing, failed when ``CI=true``).

Markers (registered in pyproject.toml): ``slow`` for anything over about two seconds (SIGKILL and
resume runs, msoffcrypto key derivation, big fuzz runs, whole-company runs) and ``libreoffice``
for tests that start soffice. ``make test-fast`` deselects both; ``make test`` and CI run all.
A test that asks for the ``soffice`` or ``recalc`` fixture is marked ``libreoffice`` here, so it
never runs in the fast set by accident.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import _officejs, lo

ROOT = Path(__file__).resolve().parent.parent
"""The repository root (README.md, workbooks/, scripts/)."""

LO_FIXTURES = frozenset({"soffice", "recalc"})
SPARK_FIXTURES = frozenset({"spark"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses LibreOffice through a fixture, so ``-m "not libreoffice"`` leaves it out."""
    for item in items:
        if LO_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("libreoffice") is None:
            item.add_marker(pytest.mark.libreoffice)
        if SPARK_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("spark") is None:
            item.add_marker(pytest.mark.spark)


# ------------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    """A Typer CLI runner: ``runner.invoke(app, ["generate", ...])``."""
    return CliRunner()


# ------------------------------------------------------------------------------------ the sample company


@dataclass(frozen=True)
class Sample:
    """The bundled sample company: its plan workbook and its raw data and facts files."""

    plan: Path
    data: list[Path]

    @property
    def folder(self) -> Path:
        """The folder that holds the plan and the data (what ``--data <folder>`` reads)."""
        return self.plan.parent

    def args(self) -> list[str]:
        """``--plan … --data …`` for the CLI."""
        return ["--plan", str(self.plan), *[a for d in self.data for a in ("--data", str(d))]]


@pytest.fixture(scope="session")
def sample_company() -> Sample:
    """The sample company as bundled in workbooks/sample (read it, never write next to it)."""
    from xl_kpi.inputs.plan import sample_inputs

    plan, data = sample_inputs()
    return Sample(plan, list(data))


@pytest.fixture
def sample_copy(sample_company: Sample, tmp_path: Path) -> Sample:
    """A private copy of the sample plan and data folder in ``tmp_path / "sample"``: change it freely."""
    folder = tmp_path / "sample"
    folder.mkdir()
    plan = Path(shutil.copy2(sample_company.plan, folder / sample_company.plan.name))
    return Sample(plan, [Path(shutil.copy2(d, folder / d.name)) for d in sample_company.data])


def _tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


_GENERATED: dict[Path, dict[str, str]] = {}
"""The shared ``generated`` folder → the sha256 of each file in it, as ``generate`` left it."""


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one ``generate`` run of the sample company, shared by the whole session.

    Read it only (copy it with ``generated_copy`` to change anything): a test after which a file
    in it was added, removed or changed fails in its teardown, naming the files.
    """
    from xl_kpi.batch import generate
    from xl_kpi.inputs.plan import sample_inputs

    out = tmp_path_factory.mktemp("generated") / "out"
    generate(*sample_inputs(), out)
    _GENERATED[out] = _tree_digest(out)
    return out


@pytest.fixture(autouse=True)
def _generated_is_left_as_it_was(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used ``generated``: fail it if the shared folder changed."""
    yield
    if "generated" not in request.fixturenames:
        return
    out = request.getfixturevalue("generated")
    before, after = _GENERATED[out], _tree_digest(out)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        _GENERATED[out] = after  # report it once, at the test that did it
        pytest.fail(f"this test (or a fixture it uses) changed the shared `generated` folder; use generated_copy "
                    f"to change files: {changed[:10]}", pytrace=False)


@pytest.fixture
def generated_copy(generated: Path, tmp_path: Path) -> Path:
    """A private copy of the shared ``generated`` output folder, in ``tmp_path / "out"``."""
    out = tmp_path / "out"
    shutil.copytree(generated, out, symlinks=True)
    return out


# ------------------------------------------------------------------------------------ LibreOffice


@pytest.fixture(scope="session")
def soffice() -> str:
    """The LibreOffice binary; skips the test when it is missing (fails instead when CI=true)."""
    return lo.require_soffice()


@pytest.fixture(scope="session")
def recalc(soffice: str) -> Callable[[Sequence[str | Path], str | Path], list[Path]]:
    """``recalc(paths, out_dir)``: recalculated copies of the workbooks, all in one soffice call (see tests/lo.py)."""
    return lo.recalc


# ------------------------------------------------------------------------------------ Spark


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One local SparkSession for the whole run (2 threads, 1 shuffle partition, no adaptive plans nor
    whole-stage code generation: tiny tables run faster without them; no UI, UTC), shared with xl_kpi's
    Spark engine. Skips without pyspark or Java locally; fails instead when CI=true."""
    import os

    try:
        from pyspark.sql import SparkSession
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("pyspark is not installed (pip install -e '.[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if os.environ.get("CI"):
            pytest.fail("CI needs Java 17 for the Spark tests (.ci/run installs it)")
        pytest.skip("no Java for Spark")
    session = (SparkSession.builder.master("local[2]").appName("xl-kpi-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "1")
               .config("spark.sql.adaptive.enabled", "false")
               .config("spark.sql.codegen.wholeStage", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.default.parallelism", "2")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.memory", "1g")
               .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()

# ------------------------------------------------------------------------------------ xlwings Lite / Server


@pytest.fixture(scope="session")
def officejs() -> Iterator[_officejs.OfficeJs]:
    """udfs.py behind xlwings' Office.js dispatcher, in a child Python (tests/_officejs.py)."""
    driver = _officejs.OfficeJs()
    try:
        yield driver
    finally:
        driver.close()
