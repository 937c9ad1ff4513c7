"""The ``--encrypt`` step: one password per bundle (given, reused or generated), and every workbook
encrypted with it (:mod:`xl_kpi.delivery.crypto`), in worker processes with ``--jobs``."""

from __future__ import annotations

from xl_kpi.delivery.distribute.existing import _Previous
from xl_kpi.delivery.distribute.model import Bundle, DistributionReport, Progress, ShippedFile


def _assign_passwords(bundles: list[Bundle], given_id: dict[str, str], given_bundle: dict[str, str],
                      prev: _Previous, report: DistributionReport) -> None:
    """One password per bundle: the recipient's own (given, else the previous run's, else generated)."""
    from xl_kpi.delivery.crypto import generate_password

    counts = {"given": 0, "reused": 0, "generated": 0}
    made: dict[str, str] = {}
    for b in bundles:
        if b.recipient_id:
            options = [("given", given_id.get(b.recipient_id)), ("reused", prev.by_id.get(b.recipient_id))]
            key = "id:" + b.recipient_id
        else:
            options = [("given", given_bundle.get(b.key)), ("reused", prev.by_bundle.get(b.key))]
            key = "bundle:" + b.key
        for how, pw in options:
            if pw:
                b.password = pw
                counts[how] += 1
                break
        else:
            if key not in made:
                made[key] = generate_password()
            b.password = made[key]
            counts["generated"] += 1
    report.passwords = counts


def _encrypt_one(args: tuple[bytes, str]) -> bytes:
    from xl_kpi.delivery.crypto import encrypt_xlsx

    return encrypt_xlsx(*args)


def _encrypt_all(todo: list[tuple[ShippedFile, str]], plain: dict[str, bytes], jobs: int,
                 on_progress: Progress | None) -> None:
    total = len(todo)
    work = [(plain[f.source_sha256], pw) for f, pw in todo]
    if jobs > 1 and total > 8:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context(method)) as pool:
            for i, data in enumerate(pool.map(_encrypt_one, work, chunksize=4), start=1):
                todo[i - 1][0].data, todo[i - 1][0].encrypted = data, True
                if on_progress:
                    on_progress("encrypt", i, total)
        return
    for i, ((f, _), args) in enumerate(zip(todo, work, strict=True), start=1):
        f.data, f.encrypted = _encrypt_one(args), True
        if on_progress:
            on_progress("encrypt", i, total)
