"""A newcomer's tour of the README, top to bottom: every shell command it shows after `make demo` runs.

The README's Python examples are doctests (tests/test_readme.py). Here the shell blocks: each line
that calls ``.venv/bin/xl-kpi`` is run in order, as written (continuation lines joined, comments
dropped), in a scratch folder holding a copy of ``workbooks/`` as in a clean clone, with
``.venv/bin/xl-kpi`` being this environment's command. Every one must exit 0, and a command whose
comment shows its output (``# xl-kpi 0.1.0``) must print it. The Makefile's ``demo`` target must be the
README's first command, so `make demo` and the tour agree. The slow clean-clone test does it all as a
newcomer does: `git clone`, `make demo` (a fresh .venv), then the tour with the clone's own command.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
COMMAND = ".venv/bin/xl-kpi"


def tour_commands(text: str) -> list[tuple[list[str], str]]:
    """(argv, the comment after it) for every `.venv/bin/xl-kpi` line of the README's bash blocks."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            code, _, comment = line.partition("#")
            if code.strip().startswith(COMMAND):
                commands.append((shlex.split(code), comment.strip()))
    return commands


def test_the_tour_calls_the_command_where_make_demo_put_it():
    text = README.read_text(encoding="utf-8")
    commands = tour_commands(text)
    assert [argv[1] for argv, _ in commands] == ["--version", "demo", "validate", "generate", "verify"]
    # a bare `xl-kpi …` line in a bash block would fail on a clean clone: it is not on PATH
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            assert not line.strip().startswith("xl-kpi "), f"README: {line.strip()!r} is not on PATH after make demo"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(VENV)/bin/xl-kpi demo --out $(OUT)" in makefile and "OUT    ?= demo-out" in makefile
    assert commands[1][0][1:] == ["demo", "--out", "demo-out"]


@pytest.mark.slow
def test_the_tour_runs_top_to_bottom(tmp_path):
    shutil.copytree(ROOT / "workbooks", tmp_path / "workbooks")
    exe = Path(sys.executable).parent / "xl-kpi"
    assert exe.is_file(), f"{exe}: install xl_kpi into this environment (make .venv/.installed)"
    for argv, comment in tour_commands(README.read_text(encoding="utf-8")):
        out = subprocess.run([str(exe), *argv[1:]], cwd=tmp_path, capture_output=True, text=True,
                             encoding="utf-8", timeout=600)
        said = out.stdout[-2000:] + out.stderr[-2000:]
        assert out.returncode == 0, f"{' '.join(argv)} → exit {out.returncode}\n{said}"
        if comment.startswith("xl-kpi "):  # the output the README promises
            assert out.stdout.strip() == comment
    assert len(list((tmp_path / "out" / "cards").rglob("*.xlsx"))) == 44
    assert (tmp_path / "demo-out" / "summary.xlsx").is_file()


@pytest.mark.slow
def test_a_clean_clone_top_to_bottom(tmp_path):
    """What a newcomer does: clone, `make demo` (it makes .venv and installs), then the tour's commands."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an unpacked sdist): nothing to clone")
    clone = tmp_path / "xl_kpi"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=300)
    make = subprocess.run(["make", "demo", f"PYTHON={sys.executable}"], cwd=clone, capture_output=True, text=True,
                          encoding="utf-8", timeout=1200)
    assert make.returncode == 0, make.stdout[-2000:] + make.stderr[-2000:]
    assert "Deprecat" not in make.stdout + make.stderr  # the SPDX licence string: no setuptools warnings
    assert (clone / "demo-out" / "summary.xlsx").is_file()
    for argv, comment in tour_commands((clone / "README.md").read_text(encoding="utf-8")):
        out = subprocess.run(argv, cwd=clone, capture_output=True, text=True, encoding="utf-8", timeout=600)
        said = out.stdout[-2000:] + out.stderr[-2000:]
        assert out.returncode == 0, f"{' '.join(argv)} → exit {out.returncode}\n{said}"
        if comment.startswith("xl-kpi "):
            assert out.stdout.strip() == comment
