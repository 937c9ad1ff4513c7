"""The run: :func:`send_all` checks, writes a dry run's ``.eml`` files or sends, once, with the send log."""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from xl_kpi.delivery.mail.addresses import _envelope, check_address
from xl_kpi.delivery.mail.compose import (
    Template,
    _check_templates,
    _compose_bytes,
    _digest,
    _read_attachments,
    _validate_delivery,
)
from xl_kpi.delivery.mail.log import _fingerprint, _Lock, _Log, _read_log
from xl_kpi.delivery.mail.model import Delivery, SendReport, SmtpDownError
from xl_kpi.delivery.mail.smtp import SmtpConfig, _Attempt, _data_payload, _deadline_of, _Dropped, _open, _transact
from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import English, Msg
from xl_kpi.outputs.atomic import AtomicBatch
from xl_kpi.outputs.names import safe_component

DRY_RUN_BATCH = 500
"""A dry run's .eml files are flushed to disk this many at a time (each is complete or absent after a crash)."""
QUIT_DEADLINE = 10.0
"""Seconds for the goodbye (QUIT) at the end of a run: everything is sent by then."""


# --------------------------------------------------------------------------------------------
# The run


def _eml_names(deliveries: Sequence[Delivery]) -> dict[str, str]:
    names: dict[str, str] = {}
    used: set[str] = set()
    for d in deliveries:
        stem = safe_component(d.key.replace(":", "_"), max_len=90)
        if stem.casefold() in used:
            stem = f"{stem[:80]}-{hashlib.sha256(d.key.encode()).hexdigest()[:8]}"
        used.add(stem.casefold())
        names[d.key] = stem + ".eml"
    return names


def send_all(
    deliveries: Sequence[Delivery],
    config: SmtpConfig | None,
    log_path: Path,
    *,
    dry_run_dir: Path | None = None,
    on_progress: Callable[[int], None] | None = None,
    subject_template: Template = None,
    body_template: Template = None,
    date: datetime | None = None,
    retry_uncertain: bool = False,
    jobs: int = 1,
) -> SendReport:
    """Send every delivery once (or, with ``dry_run_dir``, write each as ``<key>.eml`` there).

    Addresses are checked first: bad ones go to ``report.invalid`` and are not sent. A real run
    takes a lock next to ``log_path``, skips what the send log shows as sent (same key, address
    and attachment contents), and appends a line to the log, fsync'ed, around every message. A
    message the server refuses goes to ``report.failed`` and the run goes on; if the server goes
    away (the connection is retried once) :class:`SmtpDownError` is raised with the partial report,
    and a rerun sends the rest. ``on_progress(n)`` is called with the number of deliveries handled
    so far (1 … ``len(deliveries)``). A dry run sends nothing and neither reads nor writes the log; its
    messages are made by ``jobs`` worker processes, in batches, each batch flushed to disk once.
    """
    report = SendReport()
    seen: set[str] = set()
    for d in deliveries:
        _validate_delivery(d)
        if d.key in seen:
            raise KpiError(Msg("two deliveries have the same key {key!r}; keys must be unique", key=d.key))
        seen.add(d.key)
    _check_templates(subject_template, body_template)
    if dry_run_dir is None and config is None:
        raise KpiError(Msg("no SMTP settings: give --smtp HOST:PORT and --from, or use --dry-run"))
    sender = config.sender if config is not None else "xl-kpi@example.invalid"
    if config is not None and check_address(sender):
        raise KpiError(Msg("sender address {sender!r}: {why}", sender=sender, why=check_address(sender)))

    done = 0

    def progress() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done)

    todo: list[Delivery] = []
    for d in deliveries:
        reason = check_address(d.to_address)
        if reason is None and not d.attachments:
            report.failed.append((d.key, English(Msg("nothing to attach"))))
        elif reason is None:
            missing = [str(p) for p in d.attachments if not Path(p).is_file()]
            if missing:
                report.failed.append((d.key, English(Msg("attachment missing: {path}", path=missing[0]))))
            else:
                todo.append(d)
                continue
        else:
            report.invalid.append((d.key, reason))
        progress()

    if dry_run_dir is not None:
        _dry_run(todo, sender, Path(dry_run_dir), report, progress, (subject_template, body_template, date), jobs)
        return report

    assert config is not None
    log_path = Path(log_path)
    with _Lock(log_path.with_name(log_path.name + ".lock")):
        sent_before, last = _read_log(log_path)
        log = _Log(log_path)
        try:
            _Run(config, sender, log, log_path, sent_before, last, report, progress,
                 subject_template, body_template, date, retry_uncertain).run(todo)
        finally:
            log.close()
    return report


_DryJob = tuple[list[tuple[Delivery, Path]], str, tuple[Template, Template, datetime | None]]


def _dry_batch(job: _DryJob) -> list[tuple[str, str]]:
    """Compose and stage one batch of .eml files (not yet in place): [(temporary file, target)]."""
    items, sender, (subject_template, body_template, date) = job
    staged = AtomicBatch()
    try:
        for d, path in items:  # streamed: one message in memory at a time
            files = _read_attachments(d)
            raw, _ = _compose_bytes(d, sender, files, _digest(files), subject_template, body_template, date)
            staged.write(path, raw)
    except BaseException:
        staged.discard()
        raise
    return [(str(tmp), str(target)) for tmp, target in staged.staged()]


def _dry_run(todo: Sequence[Delivery], sender: str, folder: Path, report: SendReport, progress: Callable[[], None],
             texts: tuple[Template, Template, datetime | None], jobs: int) -> None:
    """Write the .eml of every delivery into ``folder``: batches of :data:`DRY_RUN_BATCH`, made by ``jobs``
    workers, each batch flushed to disk once and then renamed into place (an .eml is complete or absent)."""
    names = _eml_names(todo)
    items = [(d, folder / names[d.key]) for d in todo]
    size = max(1, min(DRY_RUN_BATCH, -(-len(items) // max(1, jobs * 4))))
    work: list[_DryJob] = [(items[i:i + size], sender, texts) for i in range(0, len(items), size)]
    batch = AtomicBatch()

    def commit(staged: list[tuple[str, str]]) -> None:
        batch.adopt([(Path(t), Path(p)) for t, p in staged])
        batch.commit()  # one flush to disk per batch, not per message
        for _, target in staged:
            report.written.append(Path(target))
            progress()

    import multiprocessing as mp

    if jobs > 1 and len(work) > 1 and "fork" in mp.get_all_start_methods():
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("fork"))
        results = pool.map(_dry_batch, work)
    else:
        pool, results = None, map(_dry_batch, work)
    try:
        for staged in results:
            commit(staged)
    except BaseException:
        batch.discard()
        for p in folder.glob(".*.tmp"):  # staged by a worker whose batch was never committed
            p.unlink(missing_ok=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


@dataclass
class _Run:
    """One real sending run over the deliveries whose addresses and files were checked."""

    config: SmtpConfig
    sender: str
    log: _Log
    log_path: Path
    sent_before: set[tuple[str, str, str]]
    last: Mapping[tuple[str, str, str], Mapping[str, str]]
    report: SendReport
    progress: Callable[[], None]
    subject_template: Template
    body_template: Template
    date: datetime | None
    retry_uncertain: bool
    smtp: smtplib.SMTP | None = None
    to_send: int = 0

    def _needs_sending(self, fp: tuple[str, str, str]) -> bool:
        if fp in self.sent_before:
            return False
        return self.retry_uncertain or self.last.get(fp, {}).get("status") not in ("sending", "uncertain")

    def run(self, todo: Sequence[Delivery]) -> None:
        # A first pass hashes the files, so that "down after N of M" counts only what needs sending.
        pending: list[Delivery] = []
        for d in todo:
            try:
                digest = _digest(_read_attachments(d))
            except OSError as e:
                self.report.failed.append((d.key, _unreadable(e)))
                self.progress()
                continue
            pending.append(d)
            self.to_send += self._needs_sending(_fingerprint(d.key, d.to_address, digest))
        try:
            for index, d in enumerate(pending):
                self._one(d, pending, index)
                self.progress()
        finally:
            if self.smtp is not None:
                _deadline_of(self.smtp).start(QUIT_DEADLINE, Msg("to QUIT"))  # a trickling server cannot hold the exit
                with contextlib.suppress(Exception):
                    self.smtp.quit()
                _deadline_of(self.smtp).cancel()
                with contextlib.suppress(Exception):
                    self.smtp.close()

    def _down(self, reason: str, pending: Sequence[Delivery], index: int) -> SmtpDownError:
        self.report.remaining.extend(d.key for d in pending[index:])
        where = f"{self.config.host}:{self.config.port}"
        return SmtpDownError(Msg(
            "SMTP server {where} down after {sent} of {total} messages ({reason}); the send log {log} records what "
            "was sent: rerun the same command to send the rest", where=where, sent=len(self.report.sent),
            total=self.to_send, reason=reason, log=str(self.log_path)), self.report)

    def _one(self, d: Delivery, pending: Sequence[Delivery], index: int) -> None:
        report = self.report
        try:
            files = _read_attachments(d)  # read again: what is hashed below is exactly what is sent
        except OSError as e:
            report.failed.append((d.key, _unreadable(e)))
            return
        digest = _digest(files)
        fp = _fingerprint(d.key, d.to_address, digest)
        if fp in self.sent_before:
            report.skipped_already_sent.append(d.key)
            return
        if not self._needs_sending(fp):
            report.uncertain.append((d.key, English(Msg(
                "an earlier run lost the connection while sending it; it may have been delivered, so it is not "
                "sent again"))))
            return
        raw, message_id = _compose_bytes(d, self.sender, files, digest, self.subject_template, self.body_template,
                                          self.date)
        payload = _data_payload(raw)
        del files, raw
        rcpt = "@".join(_envelope(d.to_address))
        envelope_from = "@".join(_envelope(self.sender))
        record = {"key": d.key, "to": d.to_address, "sha256": digest, "message_id": message_id}
        for attempt in (1, 2):
            if self.smtp is None:
                try:
                    self.smtp = _open(self.config)
                except OSError as e:  # MailError (settings, certificate, login) passes through
                    why = str(e.strerror or e)
                    down = English(Msg("stopped answering: {why}", why=why) if report.sent or attempt == 2
                                   else Msg("could not be reached: {why}", why=why))
                    raise self._down(down, pending, index) from None
            state = _Attempt()
            self.log.write(**record, status="sending")
            try:
                refused = _transact(self.smtp, envelope_from, rcpt, payload, state, self.config.message_deadline)
            except _Dropped as e:
                with contextlib.suppress(Exception):
                    self.smtp.close()
                self.smtp = None
                if e.maybe_delivered:
                    self.log.write(**record, status="uncertain", reason=e.reason)
                    report.uncertain.append((d.key, English(Msg(
                        "connection lost before the server confirmed it ({reason}); it may have been delivered, so "
                        "it is not sent again", reason=e.reason))))
                    return
                self.log.write(**record, status="not_sent", reason=e.reason)
                if attempt == 2:
                    down = English(Msg("connection lost: {reason}", reason=e.reason))
                    raise self._down(down, pending, index) from None
                continue
            except BaseException:
                # Interrupted (Ctrl-C): before the data went out nothing was delivered; after, the
                # "sending" line stays and a rerun reports the message as maybe delivered.
                if not state.handed_over:
                    with contextlib.suppress(Exception):
                        self.log.write(**record, status="not_sent", reason="interrupted")
                raise
            if refused is None:
                self.log.write(**record, status="sent")
                report.sent.append(d.key)
                self.sent_before.add(fp)
            else:
                self.log.write(**record, status="failed", reason=refused)
                report.failed.append((d.key, refused))
            return


def _unreadable(e: OSError) -> str:
    """Why an attachment could not be read (English text, shown in the reader's language)."""
    return English(Msg("cannot read the attachment: {error}", error=str(e.strerror or e)))
