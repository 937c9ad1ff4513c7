"""The docs' catalogues name the test that shows each case (``tests/x.py::test_name``): every one must exist,
so a renamed or deleted test cannot leave a table row that points at nothing."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CITE = re.compile(r"(tests/[A-Za-z0-9_/]+\.py)::([A-Za-z0-9_]+)")


@cache
def _tests_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def _citations() -> list[tuple[str, str, str]]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [(d.name, f, t) for d in docs for f, t in CITE.findall(d.read_text(encoding="utf-8"))]


def test_the_docs_cite_tests() -> None:
    assert len(_citations()) > 50  # the catalogues are there: the pattern still finds them


def test_every_cited_test_exists() -> None:
    missing = [f"{doc}: {file}::{name}" for doc, file, name in _citations()
               if not (ROOT / file).is_file() or name not in _tests_in(ROOT / file)]
    assert not missing, "cited tests that do not exist:\n" + "\n".join(missing)
