"""Opening: workbooks (decrypted with their password), zip archives and e-mails with their attachments,
recursively, each reduced to text and handed to the scanner."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from xl_kpi.delivery.isolation.audience import _Allowed
from xl_kpi.delivery.isolation.model import _OLE, Leak
from xl_kpi.delivery.isolation.rows import check_rows, rows_parts
from xl_kpi.delivery.isolation.scan import _Scanner
from xl_kpi.delivery.isolation.text import (
    _DECRYPTED,
    _html_text,
    _office_text,
    _pdf_text,
    _recall,
    _remember,
    _sha,
    _Text,
)
from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import English, Msg

# ------------------------------------------------------------------------------- opening


_MEMO_SIZE = 4096
"""Files whose findings are remembered (least recently used dropped first): a card and its bundle are
checked one after the other, so a small memo replays them and memory stays flat in the headcount."""


class _Opener:
    """Turns bytes (xlsx, encrypted xlsx, pdf, zip, eml, text) into :class:`_Text`, recursing.

    ``bound``: encrypted sha256 → the sha256 of the plain workbook it was proved to decrypt to when it
    was made (``binding.csv``), and ``sources``: plain sha256 → a function giving those plain bytes
    (a card in ``cards/``, a team summary made again). A bound file is checked through its plain
    workbook, which must hash to the bound sha256, without deriving a key from a password.

    The same bytes scanned again for the same audience (a card in ``cards/`` and in its employee's
    bundle) give the same findings: they are replayed, not searched again.
    """

    def __init__(self, scanner: _Scanner, bound: dict[str, str] | None = None,
                 sources: dict[str, Callable[[], bytes | None]] | None = None) -> None:
        self.scanner = scanner
        self.bound = bound or {}
        self.sources = sources or {}
        self._memo: dict[tuple[Any, ...], tuple[list[Leak], int, int, int]] = {}

    def scan(self, label: str, data: bytes, allowed: _Allowed, audience_label: str, passwords: list[str],
             depth: int = 0) -> None:
        if data[:4] != b"PK\x03\x04" and data[:8] != _OLE:
            self._scan(label, data, allowed, audience_label, passwords, depth)
            return
        report = self.scanner.report
        # the passwords only matter for encrypted bytes (here or, rarely, stored inside a package)
        pw = tuple(passwords) if _OLE in data else ()
        key = (_sha(data), allowed.audience, frozenset(allowed.names), depth, pw, label.rsplit("/", 1)[-1])
        memo = _recall(self._memo, key)
        if memo is not None:
            leaks, files, decrypted, bound = memo
            report.leaks += [replace(lk, file=label + lk.file, audience=audience_label) for lk in leaks]
            report.files, report.decrypted, report.bound = (report.files + files, report.decrypted + decrypted,
                                                            report.bound + bound)
            return
        n, files, decrypted, bound = len(report.leaks), report.files, report.decrypted, report.bound
        self._scan(label, data, allowed, audience_label, passwords, depth)
        if all(lk.file.startswith(label) for lk in report.leaks[n:]):  # else (never expected): do not replay
            _remember(self._memo, key, ([replace(lk, file=lk.file[len(label):]) for lk in report.leaks[n:]],
                                        report.files - files, report.decrypted - decrypted, report.bound - bound),
                      _MEMO_SIZE)

    def _scan(self, label: str, data: bytes, allowed: _Allowed, audience_label: str, passwords: list[str],
              depth: int = 0) -> None:
        self.scanner.report.files += 1
        if depth > 4:
            self.scanner.leak(label, "unreadable", "", "nested too deeply to check", audience_label)
            return
        text = _Text()
        text.add_filename(label)
        if data[:8] == _OLE:
            self.scanner.raw(label, data, audience_label)
            plain = self._bound_plain(data)
            if plain is None:
                plain = self._decrypt(data, passwords)
                if plain is not None:
                    self.scanner.report.decrypted += 1
            else:
                self.scanner.report.bound += 1
            if plain is None:
                why = English(Msg("encrypted, and no password in passwords.csv opens it") if passwords else
                              Msg("encrypted, and there is no password for it in passwords.csv"))
                self.scanner.leak(label, "unreadable", "", why, audience_label)
                self.scanner.match(label, text, allowed, audience_label)
                return
            self.scanner.report.files -= 1  # the plain workbook is this file: counted once
            self.scan(label, plain, allowed, audience_label, passwords, depth)  # remembered: a card scanned once
            return
        if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
            try:
                zf = zipfile.ZipFile(io.BytesIO(data))
                names = [i.filename for i in zf.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError) as e:
                why = English(Msg("damaged zip ({error})", error=str(e)))
                self.scanner.leak(label, "unreadable", "", why, audience_label)
                return
            with zf:
                if "[Content_Types].xml" in names:
                    parts = rows_parts(names)
                    if parts:  # a card's rows sheet: every listed row the audience's (or their team's)
                        allowed = check_rows(self.scanner, label, zf, parts, allowed, audience_label)
                    content, nested, broken = _office_text(data, zf, names)
                    text.extend(content)
                    for n, why in broken:
                        self.scanner.leak(f"{label}!/{n}", "unreadable", "", why, audience_label)
                    for n, part in nested:
                        self.scan(f"{label}!/{n}", part, allowed, audience_label, passwords, depth + 1)
                else:
                    for n in names:
                        text.add_filename(n)
                        self.scan(f"{label}!/{n}", zf.read(n), allowed, audience_label, passwords, depth + 1)
        elif data[:5] == b"%PDF-":
            for chunk in _pdf_text(data):
                text.add(chunk, numbers=False)
                text.rendered.append(chunk)
        elif label.lower().endswith(".eml"):
            self._eml(label, data, text, allowed, audience_label, passwords, depth)
        else:
            text.add(data.decode("utf-8", "replace"))
        self.scanner.match(label, text, allowed, audience_label)

    def _bound_plain(self, data: bytes) -> bytes | None:
        """The plain workbook ``data`` was proved to decrypt to when it was made, or None (then: decrypt)."""
        src = self.bound.get(_sha(data))
        get = self.sources.get(src) if src else None
        plain = get() if get else None
        return plain if plain is not None and _sha(plain) == src else None

    def _decrypt(self, data: bytes, passwords: list[str]) -> bytes | None:
        from xl_kpi.delivery.crypto import WrongPasswordError, decrypt_xlsx

        digest = _sha(data)
        for pw in dict.fromkeys(passwords):
            key = (digest, hashlib.sha256(pw.encode("utf-8")).hexdigest())
            known = _recall(_DECRYPTED, key)
            if known is not None:
                return known
            try:
                plain = decrypt_xlsx(data, pw)
            except (WrongPasswordError, KpiError):
                continue
            except Exception:  # a damaged container: "unreadable", not a crash
                continue
            _remember(_DECRYPTED, key, plain)
            return plain
        return None

    def _eml(self, label: str, data: bytes, text: _Text, allowed: _Allowed, audience_label: str,
             passwords: list[str], depth: int) -> None:
        msg = email.message_from_bytes(data, policy=email.policy.default)
        for h in ("Subject", "To", "Cc", "Bcc", "From", "Reply-To"):
            for v in msg.get_all(h, []):
                text.add(str(v), cell=True)
        for part in msg.walk():
            if part.is_multipart():
                continue
            fname = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if fname:
                text.add_filename(fname)
                self.scan(f"{label}!/{fname}", payload, allowed, audience_label, passwords, depth + 1)
            elif part.get_content_maintype() == "text":
                charset = part.get_content_charset() or "utf-8"
                try:
                    body = payload.decode(charset, "replace")
                except LookupError:
                    body = payload.decode("utf-8", "replace")
                if part.get_content_subtype() == "html":
                    _html_text(body, text)
                else:
                    text.add(body)
            else:
                self.scan(f"{label}!/part", payload, allowed, audience_label, passwords, depth + 1)
