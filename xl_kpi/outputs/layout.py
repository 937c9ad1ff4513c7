"""The names of what xl_kpi writes into the output folder (``--out``), in one place.

``generate`` writes the cards, the summary and the results; ``distribute`` adds the bundles and the
outbox; ``send`` adds the send log. The audit, the isolation check and the cleanup all read these.
"""

from __future__ import annotations

CARDS = "cards"
SUMMARY = "summary.xlsx"
MANIFEST_CSV = "manifest.csv"
ERRORS_CSV = "errors.csv"
RESULTS = "results"

FOLDER = "distribution"
"""``distribute`` writes its bundles here (``OUT/distribution``)."""
INDEX = "index.csv"
PASSWORDS = "passwords.csv"
BINDING = "binding.csv"
"""With --encrypt: each encrypted file's sha256 and the sha256 of the plain workbook it was proved to decrypt to."""
HR_FILES = frozenset({INDEX, PASSWORDS, BINDING})
"""Files of ``distribution/`` meant for HR only, never for an employee."""
OUTBOX = "outbox"
"""Where a mail dry run writes its .eml files."""
MAIL_LOG = "send-log.jsonl"
MAIL_LOG_LOCK = MAIL_LOG + ".lock"
