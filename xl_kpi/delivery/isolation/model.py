"""What the isolation check finds (:class:`Leak`) and reports (:class:`IsolationReport`), and its thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field

from xl_kpi.i18n import Msg

KINDS = ("name", "id", "amount", "plaintext", "unlisted", "modified", "missing", "unreadable", "recipients")
AMOUNT_FIELDS = ("bonus", "total_pay", "salary")
_MONEY = ("salary", "bonus_pool", "kpi_bonus", "bonus", "total_pay")
MIN_AMOUNT = 1000
"""Amounts below this (in currency units) count as evidence only when they have kopecks/cents."""
SHORT_ID = 4
"""Numeric ids shorter than this are matched only as a whole text cell or a file-name prefix."""
AXIS_STEP = 250_00
"""In a PDF, whole multiples of 250 are not evidence: chart axes print such ticks (5,000 … 45,000)."""
RAW_MIN_DIGITS = 5
"""In encrypted bytes, numbers are looked for only when at least this long (shorter ones occur by chance)."""

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LAYOUT_TAGS = {"col", "colOff", "row", "rowOff", "idx", "order", "x", "y", "cx", "cy"}
_TEXT_ATTRS = {"name", "title", "descr", "tooltip", "display"}


@dataclass(frozen=True, order=True)
class Leak:
    """One finding: ``kind`` of evidence that ``employee_id``'s data is in ``file``, meant for ``audience``."""

    file: str
    kind: str
    employee_id: str = ""
    name: str = ""
    evidence: str = ""
    audience: str = ""

    def __str__(self) -> str:
        return self.message().render()

    def message(self) -> Msg:
        """The finding as a :class:`~xl_kpi.i18n.Msg` (rendered in the reader's language)."""
        who = f"{self.employee_id} {self.name}".strip()
        kind = _KIND_LABELS.get(self.kind, self.kind)
        audience = self.audience or Msg("nobody")
        if who:
            return Msg("{file}: {kind} of {who}: {evidence} (meant for {audience})", file=self.file, kind=kind,
                       who=who, evidence=self.evidence, audience=audience)
        return Msg("{file}: {kind}: {evidence} (meant for {audience})", file=self.file, kind=kind,
                   evidence=self.evidence, audience=audience)


_KIND_LABELS = {"name": Msg("name"), "id": Msg("id"), "amount": Msg("amount"), "plaintext": Msg("plaintext"),
                "unlisted": Msg("unlisted"), "modified": Msg("modified"), "missing": Msg("missing"),
                "unreadable": Msg("unreadable"), "recipients": Msg("recipients"), "row": Msg("row")}
"""How a finding's kind reads in a report (the kind itself stays the English code word)."""


@dataclass
class IsolationReport:
    """What :func:`check` looked at and found."""

    leaks: list[Leak] = field(default_factory=list)
    files: int = 0
    """Files opened (an archive's members and a message's attachments each count)."""
    decrypted: int = 0
    """Encrypted workbooks opened with their password."""
    bound: int = 0
    """Encrypted files checked through the plain workbook ``binding.csv`` binds them to (no key derived)."""
    skipped_ambiguous: int = 0
    """Matches not counted as evidence because the value is also the audience's own (see the module doc)."""

    @property
    def ok(self) -> bool:
        return not self.leaks
