"""The data of a mail run: what to send (:class:`Delivery`), what happened (:class:`SendReport`), its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import English, Join, Msg

KINDS = ("employee", "manager", "department")
LANGUAGES = ("en", "ru")


class MailError(KpiError):
    """Sending cannot go on: bad SMTP settings, refused login, untrusted certificate, a held lock."""


class SmtpDownError(MailError):
    """The SMTP server went away mid-run. What was sent is in the send log; ``report`` has the details."""

    def __init__(self, message: str, report: SendReport) -> None:
        super().__init__(message)
        self.report = report




# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Delivery:
    """One message to send: who gets it and which files are attached."""

    key: str
    """Stable unique id of this message, e.g. ``"employee:1001"``, ``"manager:1003"`` (the send log's key)."""
    to_address: str
    """The recipient's address as given (validated, never corrected)."""
    to_name: str
    """The recipient's name (any script)."""
    kind: str
    """``"employee"``, ``"manager"`` or ``"department"``."""
    attachments: tuple[Path, ...]
    """Files to attach (xlsx, pdf, zip, ...)."""
    period: str
    """The period's key: ``"2026-10"``, ``"2026-Q4"`` (see :class:`~xl_kpi.engine.period.Period`)."""
    language: str
    """``"en"`` or ``"ru"``."""
    team: str = ""
    """Manager's or department's name, for team bundles."""



@dataclass
class SendReport:
    """What :func:`send_all` did, by delivery key."""

    sent: list[str] = field(default_factory=list)
    """Sent in this run."""
    skipped_already_sent: list[str] = field(default_factory=list)
    """Not sent: the send log shows the same content already went to the same address."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): refused by the server or unreadable attachment; a rerun tries them again."""
    invalid: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): missing or malformed address; fix the plan, then rerun."""
    written: list[Path] = field(default_factory=list)
    """Dry run: the ``.eml`` files written."""
    uncertain: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason): the connection broke after the message was handed over and before the server
    confirmed it, so it may have been delivered. Not resent automatically (``retry_uncertain=True``)."""
    remaining: list[str] = field(default_factory=list)
    """Not attempted because the run stopped (server down); a rerun sends them."""

    @property
    def ok(self) -> bool:
        """True when every delivery was sent now or before (or written, in a dry run)."""
        return not (self.failed or self.invalid or self.uncertain or self.remaining)

    def summary(self) -> str:
        """One line for the terminal, e.g. ``sent 40, already sent 2, failed 1, invalid address 1`` (English text
        that :func:`xl_kpi.i18n.render` shows in the reader's language)."""
        parts = [
            Msg("written {n}", n=len(self.written)),
            Msg("sent {n}", n=len(self.sent)),
            Msg("already sent {n}", n=len(self.skipped_already_sent)),
            Msg("failed {n}", n=len(self.failed)),
            Msg("invalid address {n}", n=len(self.invalid)),
            Msg("maybe delivered (not resent) {n}", n=len(self.uncertain)),
            Msg("not attempted {n}", n=len(self.remaining)),
        ]
        shown = [p for p in parts if p.params["n"]]
        return English(Join(", ", shown) if shown else Msg("nothing to send"))
