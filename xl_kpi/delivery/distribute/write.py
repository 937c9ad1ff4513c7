"""Writing ``OUT/distribution``: the bundles (folders or deterministic zips), ``index.csv`` and
``passwords.csv``, all staged in a folder of their own and then swapped in for the previous ones."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from xl_kpi.delivery.distribute.bundles import _natural
from xl_kpi.delivery.distribute.model import Bundle, DistributionReport
from xl_kpi.outputs import outdir
from xl_kpi.outputs.atomic import AtomicBatch
from xl_kpi.outputs.csvsafe import csv_bytes
from xl_kpi.outputs.layout import BINDING, FOLDER, INDEX, PASSWORDS
from xl_kpi.outputs.ooxml import write_zip

INDEX_COLUMNS = ("bundle", "recipient", "recipient_email", "employee_id", "file", "sha256", "kind", "recipient_id",
                 "source_sha256")
PASSWORD_COLUMNS = ("bundle", "recipient", "employee_id", "password")
BINDING_COLUMNS = ("bundle", "file", "sha256", "source_sha256")
STAGING_PREFIX = ".xl-kpi-distribute-"


def zip_bytes(files: Iterable[tuple[str, bytes]]) -> bytes:
    """A deterministic zip: entries sorted by name, fixed timestamps and permissions, deflated."""
    return write_zip(files)


def _index_rows(bundles: Sequence[Bundle], zipped: bool) -> list[list[str]]:
    rows = []
    for b in bundles:
        if b.failed:
            continue
        bundle = f"{b.key}.zip" if zipped else b.key
        for f in b.files:
            rows.append([bundle, b.recipient, b.recipient_email, f.employee_id, f.name, f.sha256, f.kind,
                         b.recipient_id, f.source_sha256])
    rows.sort(key=lambda r: (_natural(r[0]), r[6] != "summary", _natural(r[4])))
    return rows


def _bound_files(bundles: Sequence[Bundle], zipped: bool) -> set[tuple[str, str]]:
    return {(f"{b.key}.zip" if zipped else b.key, f.name) for b in bundles if not b.failed for f in b.files if f.bound}


def _write(out: Path, report: DistributionReport) -> None:
    """Stage the whole distribution, then swap it in for the previous one."""
    opts = report.options
    for p in out.glob(f"{STAGING_PREFIX}*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
    outdir.refuse_symlink(out / FOLDER)
    staging = out / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    staging.mkdir(mode=0o700)
    target = staging / FOLDER
    try:
        with AtomicBatch() as batch:
            for b in report.bundles:
                if b.failed:
                    continue
                if opts.zip:
                    batch.write(target / b.by / f"{b.name}.zip", zip_bytes((f.name, f.content()) for f in b.files))
                else:
                    for f in b.files:
                        batch.write(target / b.by / b.name / f.name, f.content())
            batch.write(target / INDEX, csv_bytes(INDEX_COLUMNS, _index_rows(report.bundles, opts.zip)))
            if opts.encrypt:
                rows = [[b.key, b.recipient, b.recipient_id, b.password or ""] for b in report.bundles if not b.failed]
                rows.sort(key=lambda r: _natural(r[0]))
                batch.write(target / PASSWORDS, csv_bytes(PASSWORD_COLUMNS, rows))
                proved = _bound_files(report.bundles, opts.zip)
                bound = [[r[0], r[4], r[5], r[8]] for r in _index_rows(report.bundles, opts.zip)
                         if (r[0], r[4]) in proved]
                batch.write(target / BINDING, csv_bytes(BINDING_COLUMNS, bound))
        if opts.encrypt:
            os.chmod(target / PASSWORDS, 0o600)
        target.mkdir(exist_ok=True)
        old = staging / ".previous"
        final = out / FOLDER
        if final.exists():
            os.replace(final, old)
        os.replace(target, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.index_file = final / INDEX
    report.passwords_file = final / PASSWORDS if opts.encrypt else None
    for b in report.bundles:
        if not b.failed:
            b.path = final / b.by / (f"{b.name}.zip" if opts.zip else b.name)
