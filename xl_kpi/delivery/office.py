"""LibreOffice headless, for turning KPI cards and summaries into PDFs (``xl-kpi distribute --pdf``).

Each ``soffice`` start costs seconds, so :func:`convert` hands many files to one call. Things
that bite when running ``soffice`` from a program, and what this module does about them:

* a user's running LibreOffice (or a parallel run) shares the default profile and makes the
  call a no-op: every call gets a private, throw-away profile (``-env:UserInstallation``);
* outputs are named after the inputs and written to ``--outdir``: the input names must be
  unique, and the output folder must differ from every input folder (else a same-format
  conversion overwrites the input);
* ``soffice`` exits 0 even when a conversion failed: every expected output is checked (exists,
  not empty, starts like the format it claims) and failures are returned, never ignored;
* a hung ``soffice`` never hangs the caller: a timeout kills its whole process group;
* a fresh profile makes every start run LibreOffice's graphics self-tests (about 0.8 s of CPU, more than the
  rest of a start): the profile says this version already ran (:func:`_installed`), so they are skipped.

Workbooks are rendered with the values they hold (no recalculation on load), so a PDF shows
exactly the numbers xl_kpi computed.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import English, Msg

__all__ = ["ConversionResult", "OfficeError", "convert", "pdf_page_count", "soffice_path"]

INSTALL_HINT = Msg("install LibreOffice: apt-get install libreoffice-calc-nogui")

_ITEM = '<item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse"><value>{value}</value></prop></item>'


def _xcu(recalc: bool, installed: tuple[str, str] | None = None, *, set_up: bool = False) -> str:
    """The profile's settings: recalculation on load, no first-run steps; with ``installed`` (version, build id,
    see :func:`_installed`) also "this version already ran here", which skips the graphics self-tests and the
    extension check a fresh profile would run at every start. ``set_up``: the profile's first start is done
    (LibreOffice copies nothing into it: a Basic library put there stays)."""
    mode = 0 if recalc else 1  # 0 = always recalculate on load, 1 = never, 2 = ask
    items = [("/org.openoffice.Office.Calc/Formula/Load", "OOXMLRecalcMode", mode),
             ("/org.openoffice.Office.Calc/Formula/Load", "ODFRecalcMode", mode),
             ("/org.openoffice.Office.Common/Misc", "FirstRun", "false")]
    if installed is not None:
        version, build = installed
        items.append(("/org.openoffice.Setup/Product", "ooSetupLastVersion", version))
        if build:
            items.append(("/org.openoffice.Setup/Office", "LastCompatibilityCheckID", xml_escape(build)))
    if set_up:
        items.append(("/org.openoffice.Setup/Office", "ooSetupInstCompleted", "true"))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
        + "".join(_ITEM.format(path=path, name=name, value=value) + "\n" for path, name, value in items)
        + "</oor:items>\n"
    )


_VERSION = re.compile(rb'<prop oor:name="ooSetupVersion">\s*<value>(\d+\.\d+)</value>')
_BUILD = re.compile(r"^buildid=(.+)$", re.MULTILINE)


@functools.lru_cache(maxsize=8)
def _installed(exe: str) -> tuple[str, str] | None:
    """(version such as ``7.4``, build id) of the LibreOffice at ``exe``, read from its installation
    (``share/registry/main.xcd`` and ``program/versionrc``), or None when they are not where Linux packages
    put them: the profile then says nothing and LibreOffice runs its first-start checks (slower, same PDFs)."""
    program = Path(os.path.realpath(exe)).parent
    version = None
    for reg in (program.parent / "share" / name / "main.xcd" for name in ("registry", ".registry")):
        try:
            m = _VERSION.search(reg.read_bytes())
        except OSError:
            continue
        if m:
            version = m.group(1).decode("ascii")
            break
    if version is None:
        return None
    try:
        b = _BUILD.search((program / "versionrc").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        b = None
    return version, b.group(1).strip() if b else ""


FILTERS = {"pdf": "pdf:calc_pdf_Export", "xlsx": "xlsx:Calc MS Excel 2007 XML"}
_MAGIC = {"pdf": b"%PDF-", "xlsx": b"PK\x03\x04"}


class OfficeError(KpiError):
    """LibreOffice is missing, or cannot be run as asked."""


@dataclass
class ConversionResult:
    """What one :func:`convert` call produced: ``outputs[input] = output``; ``failed[input] = why``."""

    outputs: dict[Path, Path] = field(default_factory=dict)
    failed: dict[Path, str] = field(default_factory=dict)
    elapsed: float = 0.0
    returncode: int | None = None
    log: str = ""

    @property
    def ok(self) -> bool:
        """True when every input was converted."""
        return not self.failed


def soffice_path() -> str | None:
    """Path of the LibreOffice program (``soffice`` or ``libreoffice``), or None."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def require_soffice() -> str:
    """The LibreOffice program; :class:`OfficeError` with the install command when it is missing."""
    exe = soffice_path()
    if exe is None:
        raise OfficeError(Msg("LibreOffice (soffice) is not installed; {hint}", hint=INSTALL_HINT))
    return exe


def _profile(root: Path, recalc: bool, exe: str) -> str:
    """A private profile for one ``soffice`` at ``root`` (its settings: :func:`_xcu`); its URL."""
    user = root / "user"
    user.mkdir(parents=True, exist_ok=True)
    (user / "registrymodifications.xcu").write_text(_xcu(recalc, _installed(exe)), encoding="utf-8")
    return root.resolve().as_uri()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def convert(
    paths: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    fmt: str = "pdf",
    *,
    timeout: float = 600.0,
    recalc: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ConversionResult:
    """Convert ``paths`` to ``fmt`` (pdf or xlsx) into ``out_dir`` with ONE soffice call.

    Outputs are named ``<input stem>.<fmt>``; input stems must be unique (case-insensitively)
    and ``out_dir`` must differ from every input folder (:class:`OfficeError` otherwise).
    ``recalc``: recalculate formulas on load (default: keep the values in the file).
    ``on_progress(n_done)`` is called as outputs appear. Every missing, empty or malformed
    output is listed in ``failed`` (soffice exits 0 even when a conversion fails); a call that
    exceeds ``timeout`` seconds is killed and what it had not finished is listed as failed.
    """
    if fmt not in FILTERS:
        raise OfficeError(Msg("cannot convert to {fmt!r}; use one of {formats}", fmt=fmt, formats=", ".join(FILTERS)))
    srcs = [Path(p).resolve() for p in paths]
    out = Path(out_dir).resolve()
    if any(p.parent == out for p in srcs):
        raise OfficeError(Msg("{out}: the output folder must differ from the input folders "
                              "(LibreOffice would overwrite the inputs)", out=str(out)))
    stems = [p.stem.casefold() for p in srcs]
    if len(set(stems)) != len(stems):
        dupes = sorted({p.stem for p in srcs if stems.count(p.stem.casefold()) > 1})
        raise OfficeError(Msg("input file names must be unique (the outputs are named after them): {names}",
                                  names=str(dupes[:5])))
    result = ConversionResult()
    if not srcs:
        return result
    missing = [p for p in srcs if not p.is_file()]
    if missing:
        raise OfficeError(Msg("not found: {paths}", paths=", ".join(map(str, missing[:5]))))
    exe = require_soffice()
    out.mkdir(parents=True, exist_ok=True)
    expected = {p: out / f"{p.stem}.{fmt}" for p in srcs}
    for e in expected.values():
        e.unlink(missing_ok=True)
    started = time.perf_counter()
    timed_out = False
    with tempfile.TemporaryDirectory(prefix="xl-kpi-office-") as prof:
        cmd = [exe, f"-env:UserInstallation={_profile(Path(prof), recalc, exe)}", "--headless", "--invisible",
               "--norestore", "--nolockcheck", "--nodefault", "--nologo", "--convert-to", FILTERS[fmt],
               "--outdir", str(out), *map(str, srcs)]
        with tempfile.TemporaryFile() as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            done = -1
            while True:
                try:
                    proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    if time.perf_counter() - started > timeout:
                        timed_out = True
                        _kill(proc)
                        break
                if on_progress:
                    n = sum(1 for e in expected.values() if e.exists())
                    if n != done:
                        done = n
                        on_progress(n)
            log.seek(0)
            result.log = log.read()[-4000:].decode("utf-8", "replace")
    result.returncode = proc.returncode
    for src, dst in expected.items():
        why = _problem(dst, fmt)
        if why is None:
            result.outputs[src] = dst
        else:
            if timed_out:
                why = English(Msg("LibreOffice did not finish within {timeout:.0f} s ({why})", timeout=timeout,
                                  why=why))
            result.failed[src] = why
            dst.unlink(missing_ok=True)
    result.elapsed = time.perf_counter() - started
    if on_progress:
        on_progress(len(result.outputs))
    return result


def _problem(path: Path, fmt: str) -> str | None:
    """Why ``path`` is not a good ``fmt`` output, or None."""
    if not path.exists():
        return English(Msg("LibreOffice wrote no output"))
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return English(Msg("LibreOffice wrote an empty file"))
    if not head.startswith(_MAGIC[fmt]):
        return English(Msg("the output is not a {fmt} file", fmt=fmt.upper()))
    return None


_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def pdf_page_count(data: bytes) -> int:
    """Number of pages of a PDF written by LibreOffice (page objects; no object streams there)."""
    return len(_PAGE.findall(data))
