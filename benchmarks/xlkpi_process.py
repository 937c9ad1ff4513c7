"""Run one ``xl-kpi`` command as a whole process and measure it: wall seconds, peak RSS of the process and its
workers, CPU seconds of all of them (shared by bench_batch.py and bench_distribute.py)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_WRAPPER = (  # an atexit hook, not a finally: a finished generate ends by os._exit after the hooks (xl_kpi/__main__.py)
    "import atexit, resource, runpy, sys\n"
    "sys.argv = ['xl-kpi'] + sys.argv[1:]\n"
    "def rss():\n"
    "    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "    print(f'RSS {own} {kids}', file=sys.stderr)\n"
    "atexit.register(rss)\n"
    "runpy.run_module('xl_kpi', run_name='__main__')\n"
)


@dataclass(frozen=True)
class Run:
    """One measured process: wall seconds, peak RSS in MB (the largest of the process and any worker), CPU
    seconds of the process and its workers, and the finished process (stdout, stderr, returncode)."""

    seconds: float
    rss_mb: float
    cpu: float
    proc: subprocess.CompletedProcess[str]
    user: float = 0.0
    """CPU seconds in Python and the libraries (all processes)."""
    system: float = 0.0
    """CPU seconds in the kernel (all processes): file creation, writes, flushes; it varies with what else the
    machine's file system is doing (e.g. ext4 skipping inodes other processes freed moments ago)."""


def run_xl_kpi(*args: str, env: dict[str, str] | None = None, code: Path = ROOT) -> Run:
    """``python -m xl_kpi ARGS`` with the xl_kpi of the folder ``code`` (default: this one), measured; exits with its
    output when it fails."""
    env = {**os.environ, **(env or {})}
    if code != ROOT:  # the other version first on the path, and as the working folder (-c looks there first)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *args], capture_output=True, text=True, cwd=code, env=env)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    if proc.returncode != 0:
        sys.exit(f"xl-kpi {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    rss = [line for line in proc.stderr.splitlines() if line.startswith("RSS ")][-1].split()
    return Run(dt, max(int(rss[1]), int(rss[2])) / 1024, user + system, proc, user, system)
