"""LibreOffice workers fed from a queue folder, for ``xl-kpi distribute --pdf``: up to ``--jobs`` ``soffice``
processes started before the files are known, each in its own private profile holding a small Basic macro
(:data:`_BASIC`) that takes the next workbook from a shared queue and writes its PDF, until the queue is closed.

Why not one ``soffice --convert-to`` call per batch (:func:`xl_kpi.delivery.office.convert`): the start of a
process (about a second under load) overlaps the reading of the results instead of following it, and the
processes share the work as they go (the one that finishes a file takes the next one), so they end together
whatever the sizes are. Each file is taken by an atomic rename (never by two processes), its PDF is written
under a temporary name and renamed when complete (a PDF seen is a whole PDF), and every PDF is checked as
:func:`~xl_kpi.delivery.office.convert` checks it. A process that dies is replaced while files wait; a run past
its timeout is killed (each process's whole group) and what it had not finished is reported as failed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from xl_kpi.delivery.office import _installed, _kill, _problem, _xcu, require_soffice
from xl_kpi.i18n import English, Msg

__all__ = ["OfficeWorkers"]

_BASIC = """Sub Work
    Dim sQueue As String, sMine As String, sOut As String, sClosed As String
    sQueue = Environ("XL_KPI_QUEUE") : sMine = Environ("XL_KPI_MINE") : sOut = Environ("XL_KPI_OUT")
    sClosed = Environ("XL_KPI_CLOSED")
    Dim sParent As String, nIdle As Long, tIdle As Date
    sParent = Environ("XL_KPI_PARENT") : nIdle = CLng(Environ("XL_KPI_IDLE")) : tIdle = Now()
    Dim sName As String, sNext As String, bClosed As Boolean
    Do
        If sParent <> "" And Not FileExists(sParent) Then Exit Do
        If DateDiff("s", tIdle, Now()) > nIdle Then Exit Do
        bClosed = FileExists(sClosed)
        sNext = ""
        sName = Dir(sQueue & "/*.xlsx", 0)
        Do While sName <> ""
            If sNext = "" Or sName < sNext Then sNext = sName
            sName = Dir()
        Loop
        If sNext = "" Then
            If bClosed Then Exit Do
            Wait 20
        ElseIf Claim(sQueue & "/" & sNext, sMine & "/" & sNext) Then
            ConvertOne(sMine & "/" & sNext, sOut & "/" & Left(sNext, Len(sNext) - 5))
            tIdle = Now()
        End If
    Loop
    StarDesktop.terminate()
End Sub

Function Claim(sFrom As String, sTo As String) As Boolean
    On Error GoTo Taken
    Name sFrom As sTo
    Claim = True
    Exit Function
Taken:
    Claim = False
End Function

Sub ConvertOne(sIn As String, sOut As String)
    Dim aLoad(2) As New com.sun.star.beans.PropertyValue
    aLoad(0).Name = "Hidden" : aLoad(0).Value = True
    aLoad(1).Name = "ReadOnly" : aLoad(1).Value = True
    aLoad(2).Name = "UpdateDocMode" : aLoad(2).Value = 0
    Dim aStore(1) As New com.sun.star.beans.PropertyValue
    aStore(0).Name = "FilterName" : aStore(0).Value = "calc_pdf_Export"
    aStore(1).Name = "Overwrite" : aStore(1).Value = True
    Dim oDoc As Object, sWhy As String
    sWhy = "open"
    On Error GoTo Failed
    oDoc = StarDesktop.loadComponentFromURL(ConvertToURL(sIn), "_blank", 0, aLoad())
    If IsNull(oDoc) Then GoTo Failed
    sWhy = ""
    oDoc.storeToURL(ConvertToURL(sOut & ".part"), aStore())
    oDoc.close(True)
    Name sOut & ".part" As sOut & ".pdf"
    Exit Sub
Failed:
    On Error Resume Next
    If sWhy = "" Then sWhy = Error$
    If Not IsNull(oDoc) Then oDoc.close(True)
    Dim n As Integer
    n = FreeFile()
    Open sOut & ".err" For Output As #n
    Print #n, sWhy
    Close #n
End Sub
"""
"""The worker: until the queue is closed and empty (or the Python process that started it is gone, or nothing
came for the run's timeout: never an orphan left waiting), take the first file (by name) of the queue by renaming it
into its own folder, load it hidden and read-only, store it as PDF under ``.part``, rename that to ``.pdf``;
a file it cannot convert gets ``.err`` (``open``: LibreOffice could not open it; else Basic's message)."""

_DTD = '<!DOCTYPE library:{kind} PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "{dtd}">\n'
_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
_LIBS = _HEAD + _DTD.format(kind="libraries", dtd="libraries.dtd") + (
    '<library:libraries xmlns:library="http://openoffice.org/2000/library" '
    'xmlns:xlink="http://www.w3.org/1999/xlink">\n <library:library library:name="Standard" library:link="false"/>\n'
    "</library:libraries>\n")
_LIB = _HEAD + _DTD.format(kind="library", dtd="library.dtd") + (
    '<library:library xmlns:library="http://openoffice.org/2000/library" library:name="Standard" '
    'library:readonly="false" library:passwordprotected="false">\n{elements}</library:library>\n')
_MODULE = _HEAD + (
    '<!DOCTYPE script:module PUBLIC "-//OpenOffice.org//DTD OfficeDocument 1.0//EN" "module.dtd">\n'
    '<script:module xmlns:script="http://openoffice.org/2000/script" script:name="XlKpi" '
    'script:language="StarBasic">' + xml_escape(_BASIC) + "</script:module>\n")
_MACRO = "macro:///Standard.XlKpi.Work"
_POLL = 0.1


def _profile(root: Path, recalc: bool, exe: str) -> str:
    """A private profile holding the worker macro; its URL. It says its first start is done (else LibreOffice
    would copy its default Basic library over the macro) and which version last ran there."""
    user = root / "user"
    (user / "basic" / "Standard").mkdir(parents=True)
    (user / "registrymodifications.xcu").write_text(_xcu(recalc, _installed(exe), set_up=True), encoding="utf-8")
    (user / "basic" / "script.xlc").write_text(_LIBS, encoding="utf-8")
    (user / "basic" / "dialog.xlc").write_text(_LIBS, encoding="utf-8")
    (user / "basic" / "Standard" / "script.xlb").write_text(
        _LIB.format(elements=' <library:element library:name="XlKpi"/>\n'), encoding="utf-8")
    (user / "basic" / "Standard" / "dialog.xlb").write_text(_LIB.format(elements=""), encoding="utf-8")
    (user / "basic" / "Standard" / "XlKpi.xba").write_text(_MODULE, encoding="utf-8")
    return root.resolve().as_uri()


class OfficeWorkers:
    """Up to ``n`` LibreOffice processes converting to PDF the workbooks :meth:`put` into their queue.

    Start them as early as possible; :meth:`keep` stops those not needed (before anything is queued), :meth:`put`
    queues a file, :meth:`close` says nothing more comes, :meth:`wait` collects the PDFs. Used as a context
    manager, every process still running is killed on the way out (an error, Ctrl-C)."""

    def __init__(self, n: int, *, timeout: float = 900.0, recalc: bool = False) -> None:
        self.exe = require_soffice()
        self.timeout = timeout
        self.recalc = recalc
        self._tmp = tempfile.TemporaryDirectory(prefix="xl-kpi-office-")
        self.root = Path(self._tmp.name)
        self.queue, self.out = self.root / "queue", self.root / "out"
        self.queue.mkdir()
        self.out.mkdir()
        self.closed = self.root / "closed"
        self.names: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = time.perf_counter()
        self.restarts = 0
        for _ in range(max(1, n)):
            self._start()

    def _start(self) -> None:
        k = len(self.procs)
        prof, mine = self.root / f"profile{k}", self.root / f"worker{k}"
        mine.mkdir()
        env = {**os.environ, "XL_KPI_QUEUE": str(self.queue), "XL_KPI_MINE": str(mine), "XL_KPI_OUT": str(self.out),
               "XL_KPI_CLOSED": str(self.closed), "XL_KPI_IDLE": str(max(1, int(self.timeout))),
               "XL_KPI_PARENT": f"/proc/{os.getpid()}" if Path("/proc/self").exists() else ""}
        cmd = [self.exe, f"-env:UserInstallation={_profile(prof, self.recalc, self.exe)}", "--headless", "--invisible",
               "--norestore", "--nolockcheck", "--nodefault", "--nologo", _MACRO]
        self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           stdin=subprocess.DEVNULL, env=env, start_new_session=True))

    @property
    def processes(self) -> int:
        """How many processes at once (not those stopped by :meth:`keep`, nor the replacements of dead ones)."""
        return len(self.procs) - self.restarts

    def keep(self, n: int) -> None:
        """Stop the processes beyond the first ``n`` (at least one): fewer files than are worth a start each.
        Only before anything is queued (a stopped process has taken nothing)."""
        assert not self.names, "keep() after put()"
        for proc in self.procs[max(1, n):]:
            _kill(proc)
        del self.procs[max(1, n):]

    def put(self, name: str, stage: Callable[[Path], int]) -> int:
        """Queue one workbook as ``name`` (plain, unique: ``00001``; the queue is taken in name order):
        ``stage(path)`` puts it at a temporary path of the queue and returns its size, then it is renamed in (a
        process never sees half a file). Returns the size."""
        tmp = self.queue / f".{name}.tmp"
        size = stage(tmp)
        os.replace(tmp, self.queue / f"{name}.xlsx")
        self.names.append(name)
        return size

    def close(self) -> None:
        """Nothing more will be queued: each process exits when the queue is empty."""
        self.closed.write_bytes(b"")

    def _count(self) -> tuple[int, int]:
        """(PDFs made, files done: made or given up)."""
        names = [e.name for e in os.scandir(self.out)]
        made = sum(1 for n in names if n.endswith(".pdf"))
        return made, made + sum(1 for n in names if n.endswith(".err"))

    def wait(self, on_progress: Callable[[int], None] | None = None) -> tuple[dict[str, Path], dict[str, str]]:
        """After :meth:`close`: (PDF of each name converted, why for each name not), once every file is done, every
        process has exited or the timeout is over (then all are killed). ``on_progress(n_done)`` as PDFs appear."""
        total, done, timed_out = len(self.names), -1, False
        while True:
            made, n = self._count()
            if on_progress and made != done:
                on_progress(made)
            done = made
            if n >= total:
                break
            if time.perf_counter() - self.started > self.timeout:
                timed_out = True
                break
            if all(p.poll() is not None for p in self.procs):
                if self._count()[1] >= total:
                    continue
                if not any(self.queue.glob("*.xlsx")) or self.restarts >= self.processes:
                    break
                self.restarts += 1  # a process died (a file that crashes LibreOffice): the rest go on
                self._start()
            time.sleep(_POLL)
        grace = time.perf_counter() + (0.0 if timed_out else 2.0)  # done: they exit by themselves
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.0, grace - time.perf_counter()))
            except subprocess.TimeoutExpired:
                _kill(proc)
        for part in self.out.glob("*.part"):
            part.unlink()  # a PDF cut off by the kill: never taken for one
        outputs: dict[str, Path] = {}
        failed: dict[str, str] = {}
        for name in self.names:
            pdf, err = self.out / f"{name}.pdf", self.out / f"{name}.err"
            why = _problem(pdf, "pdf")
            if why is None:
                outputs[name] = pdf
                continue
            if err.exists():
                text = err.read_text(encoding="utf-8", errors="replace").strip()
                why = English(Msg("LibreOffice could not open it")) if text == "open" else English(
                    Msg("LibreOffice could not convert it: {why}", why=text[:300]))
            elif timed_out:
                why = English(Msg("LibreOffice did not finish within {timeout:.0f} s ({why})", timeout=self.timeout,
                                  why=why))
            failed[name] = why
            pdf.unlink(missing_ok=True)
        if on_progress:
            on_progress(len(outputs))
        return outputs, failed

    def stop(self) -> None:
        """Kill every process still running and remove the queue, the profiles and what is left in ``out``."""
        for proc in self.procs:
            if proc.poll() is None:
                _kill(proc)
        shutil.rmtree(self.root, ignore_errors=True)
        self._tmp.cleanup()

    def __enter__(self) -> OfficeWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
