"""The ``--encrypt`` step: one password per bundle (given, reused or generated), and every workbook
encrypted with it in worker processes (``--jobs``), each one proved to open to its plain workbook
(:func:`xl_kpi.delivery.crypto.encrypt_bound`) and kept in a journal, so an interrupted run resumes.

The journal (``OUT/.xl-kpi-encrypt-journal/``, private to the user) holds the passwords of the
run (written before any file is encrypted, so a resumed run uses the same ones) and one file per
encrypted workbook, named after what it was made from (bundle, file, plain sha256, password) and
its own sha256: an entry exists only once its read-back proof held, and is taken back only when its
bytes still hash to its name. It is removed once the distribution is in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from xl_kpi.delivery.distribute.existing import _Previous
from xl_kpi.delivery.distribute.model import Bundle, DistributionReport, Progress, ShippedFile
from xl_kpi.i18n import Msg
from xl_kpi.outputs.atomic import write_atomic

JOURNAL = ".xl-kpi-encrypt-journal"
_PASSWORDS = "passwords.json"


def _assign_passwords(bundles: list[Bundle], given_id: dict[str, str], given_bundle: dict[str, str],
                      prev: _Previous, report: DistributionReport, journal: dict[str, str] | None = None
                      ) -> dict[str, str]:
    """One password per bundle: the recipient's own (given, else the previous run's, else the interrupted run's,
    else generated). Returns them by recipient (``id:<employee id>`` or ``bundle:<key>``) for the journal."""
    from xl_kpi.delivery.crypto import generate_password

    journal = journal or {}
    counts = {"given": 0, "reused": 0, "generated": 0}
    made: dict[str, str] = {}
    for b in bundles:
        if b.recipient_id:
            key = "id:" + b.recipient_id
            options = [("given", given_id.get(b.recipient_id)), ("reused", prev.by_id.get(b.recipient_id))]
        else:
            key = "bundle:" + b.key
            options = [("given", given_bundle.get(b.key)), ("reused", prev.by_bundle.get(b.key))]
        options.append(("generated", journal.get(key)))  # made by the interrupted run: still "generated"
        for how, pw in options:
            if pw:
                b.password = pw
                made.setdefault(key, pw)
                counts[how] += 1
                break
        else:
            if key not in made:
                made[key] = generate_password()
            b.password = made[key]
            counts["generated"] += 1
    report.passwords = counts
    return made


class Journal:
    """The encryption journal of one output folder (see the module doc)."""

    def __init__(self, out: Path) -> None:
        self.root = out / JOURNAL

    def passwords(self) -> dict[str, str]:
        """The passwords of the interrupted run ({} when there is none or it cannot be read)."""
        try:
            data = json.loads((self.root / _PASSWORDS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def open(self, passwords: dict[str, str]) -> None:
        """Create the journal (0700) and record the run's passwords (0600) before anything is encrypted."""
        if self.root.is_symlink():
            raise OSError(f"{self.root} is a symbolic link; remove it")
        self.root.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)
        old = self.passwords()
        if old != passwords:
            write_atomic(self.root / _PASSWORDS, json.dumps(passwords, sort_keys=True).encode("utf-8"))
            os.chmod(self.root / _PASSWORDS, 0o600)

    def entry(self, bundle: str, name: str, source_sha: str, password: str) -> str:
        """The journal key of one encrypted workbook: what it is made from, hashed."""
        h = hashlib.sha256()
        for part in (bundle, name, source_sha, password):
            h.update(part.encode("utf-8") + b"\0")
        return h.hexdigest()

    def done(self) -> dict[str, tuple[str, Path]]:
        """key → (sha256, path) of every finished entry whose bytes still hash to its name."""
        out: dict[str, tuple[str, Path]] = {}
        if not self.root.is_dir():
            return out
        for p in self.root.iterdir():
            key, _, sha = p.name.partition(".")
            if len(key) != 64 or len(sha) != 64 or not p.is_file() or p.is_symlink():
                continue
            if hashlib.sha256(p.read_bytes()).hexdigest() == sha:
                out[key] = (sha, p)
        return out

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


_Job = tuple[int, "Path | bytes", str, str, str]
"""(position, plain workbook (its path, or its bytes), its sha256, password, journal path without the sha)."""


def _encrypt_one(job: _Job) -> tuple[int, str, str]:
    """Encrypt one workbook, prove it opens to its plain workbook, write the journal entry: (position, sha, path)."""
    from xl_kpi.delivery.crypto import encrypt_bound
    from xl_kpi.engine.errors import KpiError

    pos, src, source_sha, password, stem = job
    data = src.read_bytes() if isinstance(src, Path) else src
    if hashlib.sha256(data).hexdigest() != source_sha:
        raise KpiError(Msg("{src}: changed while it was being distributed; run again", src=str(src)))
    enc = encrypt_bound(data, password)
    sha = hashlib.sha256(enc).hexdigest()
    path = f"{stem}.{sha}"
    write_atomic(path, enc, fsync=False)  # durable with the batch: the distribution itself is fsync'ed
    return pos, sha, path


def _encrypt_all(todo: list[tuple[ShippedFile, str, str]], plain: Callable[[str], Path | bytes], journal: Journal,
                 jobs: int, on_progress: Progress | None) -> int:
    """Encrypt ``todo`` (file, bundle key, password), resuming from the journal; returns how many were resumed.

    Each file's ``path`` is set to its journal entry, ``sha256`` to the encrypted bytes' hash and ``bound`` to
    True (proved by read-back, now or in the interrupted run).
    """
    total = len(todo)
    finished = journal.done()
    work: list[_Job] = []
    resumed = 0
    for pos, (f, bundle, pw) in enumerate(todo):
        key = journal.entry(bundle, f.name, f.source_sha256, pw)
        if key in finished:
            f.sha256, f.path = finished[key][0], finished[key][1]
            f.encrypted = f.bound = True
            resumed += 1
        else:
            work.append((pos, plain(f.source_sha256), f.source_sha256, pw, str(journal.root / key)))
    done = resumed
    if on_progress:
        on_progress("encrypt", done, total)

    def take(result: tuple[int, str, str]) -> None:
        nonlocal done
        pos, sha, path = result
        f = todo[pos][0]
        f.sha256, f.path, f.encrypted, f.bound = sha, Path(path), True, True
        done += 1
        if on_progress:
            on_progress("encrypt", done, total)

    if jobs > 1 and len(work) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=mp.get_context(method)) as pool:
            for result in pool.map(_encrypt_one, work, chunksize=max(1, min(8, len(work) // (4 * jobs)))):
                take(result)
    else:
        for job in work:
            take(_encrypt_one(job))
    return resumed
