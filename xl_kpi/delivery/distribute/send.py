"""The ``--mail`` step: the isolation check first, then one message per mailable bundle
(:mod:`xl_kpi.delivery.mail`), or ``.eml`` files in ``OUT/outbox`` with ``--dry-run``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xl_kpi.delivery.distribute.model import Bundle, DistributionReport
from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import English, Join, Msg, Plural
from xl_kpi.outputs import outdir
from xl_kpi.outputs.layout import MAIL_LOG, OUTBOX


@dataclass
class MailOutcome:
    """What :func:`send` did: the mail report, the bundles not mailed and why, the dry-run folder."""

    report: Any
    not_mailed: list[tuple[Bundle, str]]
    outbox: Path | None = None


class LeakError(KpiError):
    """The isolation check found leaks: nothing is sent."""

    def __init__(self, leaks: list[Any]) -> None:
        self.leaks = leaks
        head = Join("; ", [x.message() if hasattr(x, "message") else x for x in leaks[:3]])
        super().__init__(Plural("the isolation check found {n} problem, nothing was sent: {head}",
                                "the isolation check found {n} problems, nothing was sent: {head}", len(leaks),
                                head=head))


def deliveries(report: DistributionReport) -> tuple[list[Any], list[tuple[Bundle, str]]]:
    """The messages to send (one per mailable bundle) and the bundles that cannot be mailed, with why."""
    from xl_kpi.delivery.mail import Delivery

    out, skipped = [], []
    lang = report.results.language if report.results.language in ("en", "ru") else "en"
    for b in report.bundles:
        if b.failed:
            skipped.append((b, b.failed))
            continue
        if b.note or not b.recipient_email:
            skipped.append((b, b.note or English(Msg("no e-mail address"))))
            continue
        assert b.path is not None
        attachments = (b.path,) if b.path.suffix == ".zip" and b.path.is_file() else \
            tuple(b.path / f.name for f in b.files)
        out.append(Delivery(key=b.delivery_key, to_address=b.recipient_email, to_name=b.recipient, kind=b.by,
                            attachments=attachments, period=report.results.period, language=lang,
                            team="" if b.by == "employee" else b.team))
    return out, skipped


def send(
    report: DistributionReport,
    config: Any,
    *,
    dry_run: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    on_check: Callable[[int, int], None] | None = None,
) -> MailOutcome:
    """Mail every mailable bundle (``config``: :class:`xl_kpi.delivery.mail.SmtpConfig`; None with ``dry_run``).

    First the isolation check runs over the distribution: any leak raises :class:`LeakError`
    and nothing is sent. A dry run writes the messages as ``.eml`` into ``OUT/outbox/`` (emptied
    first) and sends nothing; a real run appends to the send log ``OUT/send-log.jsonl``, which
    makes a rerun send only what was not sent (:func:`xl_kpi.delivery.mail.send_all`).
    ``on_progress(sent, total)`` follows the messages, ``on_check(done, total)`` the isolation check before them.
    """
    from xl_kpi.delivery.isolation import check_report
    from xl_kpi.delivery.mail import send_all

    with outdir.lock(report.out_dir):  # distribute cannot rebuild the bundles while they are sent
        iso = check_report(report.out_dir, cards=False, outbox=False, jobs=report.options.jobs, on_progress=on_check,
                           results=report.results)  # the results the bundles were made from, not a second copy
        if iso.leaks:
            raise LeakError(iso.leaks)
        todo, skipped = deliveries(report)
        total = len(todo)
        progress = (lambda n: on_progress(n, total)) if on_progress else None
        outbox = None
        if dry_run:
            outbox = report.out_dir / OUTBOX
            outdir.refuse_symlink(outbox)
            if outbox.exists():
                shutil.rmtree(outbox)
            outbox.mkdir(mode=0o700)
        result = send_all(todo, config, report.out_dir / MAIL_LOG, dry_run_dir=outbox, on_progress=progress,
                          jobs=report.options.jobs)
    return MailOutcome(result, skipped, outbox)
