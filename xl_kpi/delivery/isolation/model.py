"""What the isolation check finds (:class:`Leak`) and reports (:class:`IsolationReport`), and its thresholds."""

from __future__ import annotations

from dataclasses import dataclass, field

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
        who = f"{self.employee_id} {self.name}".strip()
        about = f" of {who}" if who else ""
        return f"{self.file}: {self.kind}{about}: {self.evidence} (meant for {self.audience or 'nobody'})"


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
