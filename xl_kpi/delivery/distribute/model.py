"""What ``xl-kpi distribute`` works with: its :class:`Options` (checked as they are made), a
:class:`Bundle` and its :class:`ShippedFile` s, the :class:`DistributionReport` it returns."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import Msg
from xl_kpi.inputs.problems import Problems
from xl_kpi.results import Results

if TYPE_CHECKING:
    from xl_kpi.delivery.distribute.existing import ZipMember

BY_MODES = ("employee", "manager", "department")


Progress = Callable[[str, int, int], None]
"""``on_progress(stage, done, total)``; stages: ``"pdf"``, ``"encrypt"``."""


class UsageError(KpiError):
    """Options that do not go together (the command line exits with 2)."""


@dataclass(frozen=True)
class Options:
    """What to build: bundle modes, zip, encryption, PDF."""

    by: tuple[str, ...] = ("employee",)
    zip: bool = False
    encrypt: bool = False
    passwords: Path | None = None
    """HR's passwords CSV (employee_id,password[,bundle]); the rest are reused or generated."""
    new_passwords: bool = False
    """Do not reuse the previous run's passwords.csv: generate fresh passwords."""
    pdf: bool = False
    pdf_only: bool = False
    allow_plain_pdf: bool = False
    """With --encrypt: ship the PDFs unencrypted (PDFs cannot be encrypted here); refused otherwise."""
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Worker processes for encrypting and LibreOffice processes for the PDFs (default: the machine's cores)."""
    pdf_timeout: float = 900.0

    def __post_init__(self) -> None:
        if not self.by:
            raise UsageError(Msg("choose at least one of --by employee, manager, department"))
        bad = [b for b in self.by if b not in BY_MODES]
        if bad:
            raise UsageError(Msg("--by {mode}: use one of {modes}", mode=bad[0], modes=", ".join(BY_MODES)))
        if len(set(self.by)) != len(self.by):
            raise UsageError(Msg("each --by mode once"))
        if self.passwords is not None and not self.encrypt:
            raise UsageError(Msg("--passwords only makes sense with --encrypt"))
        if self.new_passwords and not self.encrypt:
            raise UsageError(Msg("--new-passwords only makes sense with --encrypt"))
        if self.encrypt and self.with_pdf and not self.allow_plain_pdf:
            raise UsageError(Msg(
                "--encrypt with --pdf/--pdf-only: PDFs cannot be encrypted by xl-kpi, and shipping them in "
                "plain text would defeat --encrypt. Drop --pdf, or add --allow-plain-pdf to ship the PDFs "
                "unencrypted knowingly"))
        if self.allow_plain_pdf and not (self.encrypt and self.with_pdf):
            raise UsageError(Msg("--allow-plain-pdf only makes sense with --encrypt and --pdf or --pdf-only"))
        if self.jobs < 1:
            raise UsageError(Msg("--jobs must be at least 1"))

    @property
    def with_pdf(self) -> bool:
        return self.pdf or self.pdf_only

    @property
    def with_xlsx(self) -> bool:
        return not self.pdf_only


@dataclass
class ShippedFile:
    """One file of a bundle, as shipped."""

    name: str
    kind: str
    """``card`` or ``summary``."""
    employee_id: str
    """Whose card ('' for a team summary)."""
    source_sha256: str
    """sha256 of the plain workbook the file was made from."""
    data: bytes = b""
    sha256: str = ""
    encrypted: bool = False
    path: Path | ZipMember | None = None
    """Where the bytes are when ``data`` is empty (a card in OUT/cards, a journal entry, a member of the previous
    run's zip): read when written."""
    own: bool = False
    """``path`` is a file this run made for itself (a PDF just converted) that nothing else writes: staged by a
    hard link, not copied."""
    bound: bool = False
    """Encrypted, and proved (by reading it back with the key derived once) to open to the plain workbook."""

    def content(self) -> bytes:
        """The file's bytes (from ``data``, else read from ``path``)."""
        if self.data or self.path is None:
            return self.data
        return self.path.read_bytes()


@dataclass
class Bundle:
    """What one recipient gets: the cards of ``members`` (and a team summary for teams)."""

    by: str
    name: str
    """Folder (or zip stem) name, safe for every file system."""
    team: str
    """Employee name, manager name or department, as in the plan."""
    recipient: str
    recipient_id: str = ""
    """The recipient's employee id ('' when the recipient is not an employee)."""
    recipient_email: str = ""
    """A checked address, or '' (then ``note`` says why)."""
    members: list[str] = field(default_factory=list)
    note: str = ""
    """Why this bundle cannot be mailed ('' when it can)."""
    password: str | None = None
    files: list[ShippedFile] = field(default_factory=list)
    path: Path | None = None
    """Where it was written (folder or .zip), after :func:`distribute`."""
    failed: str = ""
    """Why it was not written (a PDF failed), '' when it was."""

    @property
    def key(self) -> str:
        """``<by>/<name>``: the bundle's id in index.csv (without .zip) and passwords.csv."""
        return f"{self.by}/{self.name}"

    @property
    def delivery_key(self) -> str:
        """The send log's key: ``employee:1001``, ``manager:1031``, ``department:<name>``."""
        return f"{self.by}:{self.recipient_id or self.name}"

    @property
    def mailable(self) -> bool:
        return bool(self.recipient_email) and not self.note and not self.failed and self.path is not None


@dataclass
class DistributionReport:
    """What :func:`distribute` built."""

    out_dir: Path
    folder: Path
    options: Options
    bundles: list[Bundle]
    problems: Problems
    results: Results
    index_file: Path | None = None
    passwords_file: Path | None = None
    passwords: dict[str, int] = field(default_factory=dict)
    """How many bundle passwords were ``given`` (--passwords), ``reused`` (previous run), ``generated``."""
    pdf_converted: int = 0
    pdf_reused: int = 0
    pdf_seconds: float = 0.0
    pdf_processes: int = 0
    """LibreOffice processes run at once for the PDFs."""
    encrypted: int = 0
    resumed: int = 0
    """Encrypted workbooks taken from the journal of an interrupted run."""
    reused: int = 0
    zips_kept: int = 0
    """Zip bundles byte for byte the previous run's, kept as they were (same file, same mtime)."""
    elapsed: float = 0.0

    @property
    def files(self) -> int:
        return sum(len(b.files) for b in self.bundles if not b.failed)
