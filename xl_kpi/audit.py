"""What ``xl-kpi verify`` checks beyond the recorded hashes: manifest.csv and errors.csv recomputed,
and nothing in OUT that no run recorded (no extra file, no symlink).

A hash recorded in manifest.json proves nothing once someone edits manifest.csv and re-hashes it:
so the two CSVs are derived again from a fresh computation (the same engine call ``generate``
makes) and compared byte for byte, naming the first differing row and column.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xl_kpi.engine.money import round_money
from xl_kpi.outputs.cards import _chunks
from xl_kpi.outputs.layout import FOLDER, MAIL_LOG, MAIL_LOG_LOCK, OUTBOX
from xl_kpi.outputs.manifest import errors_bytes, manifest_bytes
from xl_kpi.outputs.outdir import LOCK
from xl_kpi.results import Results

NOT_AUDITED = (FOLDER, OUTBOX, MAIL_LOG, MAIL_LOG_LOCK, LOCK)
"""Top-level entries of OUT that ``xl-kpi distribute`` / ``send`` own and check themselves, and the
lock file of the runs (:data:`xl_kpi.outputs.outdir.LOCK`, kept empty between runs)."""
STAGING_PREFIXES = (".xl-kpi-staging-", ".xl-kpi-distribute-")
"""Top-level folders of an interrupted generate / distribute: removed or resumed by the next run."""


def adjustments_record(results: Results) -> dict[str, Any]:
    """What manifest.json records of the Adjustments sheet: per adjusted employee the amount (the engine's rounded
    sum) and the reasons, and their total; ``verify`` compares it with a fresh computation."""
    emp = results.employees
    hit = emp[emp["adjustment"].fillna(0.0).astype(float) != 0.0]
    by = {str(e["employee_id"]): {"amount": float(e["adjustment"]), "reason": str(e["adjustment_reason"])}
          for _, e in hit.iterrows()}
    return {"employees": len(by), "total": float(round_money(math.fsum(x["amount"] for x in by.values()),
                                                              results.digits)), "by_employee": by}


def expected_manifest(ok: Results, out: Path, digests: Sequence[tuple[Any, str]]) -> bytes:
    """manifest.csv as ``generate`` writes it for ``ok`` (the employees carded), given each card's sha256
    in the order of ``ok.employees`` (``digests``: (employee_id, sha256))."""
    records = []
    pairs = [pair for chunk in _chunks(ok, out, 1 << 30) for pair in chunk]
    for (card, path), (eid, digest) in zip(pairs, digests, strict=True):
        e = card.emp
        if str(e["employee_id"]) != str(eid):
            raise AssertionError(f"card order differs: {e['employee_id']} / {eid}")
        records.append({"employee_id": e["employee_id"], "path": path, "sha256": digest, "total_bonus": e["bonus"],
                        "status": e["status"]})
    return manifest_bytes(records, out)


def compare_csvs(out: Path, ok: Results, errors: Iterable[Any], digests: Sequence[tuple[Any, str]]
                 ) -> list[tuple[str, str]]:
    """(file, message) for manifest.csv and errors.csv where they differ from what the run must have written."""
    found = []
    for name, want in (("manifest.csv", expected_manifest(ok, out, digests)), ("errors.csv", errors_bytes(errors))):
        p = out / name
        have = p.read_bytes() if p.is_file() and not p.is_symlink() else None
        if have == want:
            continue
        if want is None:
            found.append((name, "the run had no errors, yet the file is there (not written by xl-kpi)"))
        elif have is None:
            found.append((name, "missing: a fresh computation writes it"))
        else:
            found.append((name, "differs from a fresh computation: " + first_difference(have, want)))
    return found


def first_difference(have: bytes, want: bytes) -> str:
    """``row N, column C: 'x' in the file, 'y' recomputed`` for the first cell that differs."""
    def rows(data: bytes) -> list[list[str]]:
        try:
            return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        except (UnicodeDecodeError, csv.Error) as e:
            return [[f"<unreadable: {e}>"]]

    a, b = rows(have), rows(want)
    header = b[0] if b else []
    for n in range(max(len(a), len(b))):
        ra = a[n] if n < len(a) else None
        rb = b[n] if n < len(b) else None
        if ra is None:
            return f"row {n + 1} is missing"
        if rb is None:
            return f"row {n + 1} is not one the run wrote"
        for c in range(max(len(ra), len(rb))):
            va = ra[c] if c < len(ra) else None
            vb = rb[c] if c < len(rb) else None
            if va != vb:
                col = header[c] if c < len(header) else f"#{c + 1}"
                return f"row {n + 1}, column {col}: {va!r} in the file, {vb!r} recomputed"
    return "the bytes differ (quoting, line ends or encoding)"


def unrecorded(out: Path, recorded: Iterable[str]) -> list[tuple[str, str]]:
    """(path relative to OUT, message) for every symlink in OUT and every file that no run recorded.

    ``recorded``: paths relative to OUT, ``/``-separated. Walks without following links; the folders
    of :data:`NOT_AUDITED` are left to distribute's own checks, staging folders of an interrupted run to
the next run (symlinks in them are still reported).
    """
    known = {r.casefold() if os.name == "nt" else r for r in recorded}
    found = []
    for root, dirs, files in os.walk(out, followlinks=False):
        rel_root = Path(root).relative_to(out)
        top = rel_root.parts[0] if rel_root.parts else None
        for name in sorted(dirs + files):
            p = Path(root) / name
            rel = (rel_root / name).as_posix()
            if p.is_symlink():
                found.append((rel, "a symbolic link: xl-kpi never writes one; remove it"))
                continue
            first = top or name
            if name in dirs or first in NOT_AUDITED or first.startswith(STAGING_PREFIXES):
                continue
            if (rel.casefold() if os.name == "nt" else rel) not in known:
                found.append((rel, "not written by any recorded run (added after it); remove it or move it out"))
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
    return found
