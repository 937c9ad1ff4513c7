"""E-mail delivery of KPI cards: one message per recipient, a send log, resumable runs.

Pay data is confidential, so this module is built around three rules:

* **one message, one recipient**: every :class:`Delivery` becomes one message with one ``To`` and
  one envelope recipient; nobody's address appears in anybody else's message;
* **never twice**: a send log (JSON lines, fsync'ed after every message) records what went out; a
  rerun after a failure sends only what was not sent, and a lock stops two runs at once;
* **nothing guessed**: a missing or malformed address is reported, never "fixed".

:func:`send_all` is the entry point (``xl-kpi distribute --mail`` calls it); :func:`build_message`
and :func:`check_address` are usable on their own. See ``docs/mail.md``.
"""

from __future__ import annotations

import base64
import contextlib
import email.policy
import email.utils
import hashlib
import json
import os
import re
import smtplib
import socket
import ssl
import string
import sys
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.period import Period, PeriodError
from xl_kpi.outputs import outdir
from xl_kpi.outputs.atomic import fsync_dir, write_atomic
from xl_kpi.outputs.names import safe_component

__all__ = [
    "KINDS",
    "LANGUAGES",
    "PASSWORD_ENV",
    "TEMPLATE_FIELDS",
    "Delivery",
    "MailError",
    "SendReport",
    "SmtpConfig",
    "SmtpDownError",
    "build_message",
    "check_address",
    "render_template",
    "send_all",
]

PASSWORD_ENV = "XL_KPI_SMTP_PASSWORD"
"""Environment variable holding the SMTP password (never a command-line option)."""

KINDS = ("employee", "manager", "department")
LANGUAGES = ("en", "ru")
TEMPLATE_FIELDS = ("name", "period", "period_name", "period_in", "team", "files")
"""Fields a subject or body template may use, as ``{name}``; nothing else (no ``{name.attr}``)."""

DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
SESSION_DEADLINE = 120.0
"""Default seconds for connecting, greeting, EHLO, STARTTLS and login together."""
MESSAGE_DEADLINE = 600.0
"""Default seconds for one message, MAIL FROM to the final reply (large attachments on a slow line)."""
QUIT_DEADLINE = 10.0
"""Seconds for the goodbye (QUIT) at the end of a run: everything is sent by then."""

POLICY = email.policy.SMTP.clone(cte_type="7bit", refold_source="none")
"""CRLF line ends, 7-bit transfer encodings (no server needs 8BITMIME), headers we fold ourselves kept as is."""

MIME_TYPES = {
    ".xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ".xlsm": ("application", "vnd.ms-excel.sheet.macroEnabled.12"),
    ".xls": ("application", "vnd.ms-excel"),
    ".pdf": ("application", "pdf"),
    ".zip": ("application", "zip"),
    ".7z": ("application", "x-7z-compressed"),
    ".csv": ("text", "csv"),
    ".txt": ("text", "plain"),
    ".html": ("text", "html"),
    ".json": ("application", "json"),
    ".png": ("image", "png"),
}


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


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send. ``repr`` never shows the password."""

    host: str
    port: int
    security: str = "none"
    """``"none"``, ``"starttls"`` or ``"ssl"`` (TLS from the first byte, usually port 465)."""
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = ""
    """The ``From`` address (``--from``)."""
    timeout: float = 30.0
    """Seconds one read or write may wait (smtplib's own timeout)."""
    cafile: str | None = None
    """Extra CA certificates (PEM) to trust, e.g. a company CA; the system's are trusted anyway."""
    session_deadline: float = SESSION_DEADLINE
    """Seconds from connecting to a session ready to send (greeting, EHLO, STARTTLS, login), in all."""
    message_deadline: float = MESSAGE_DEADLINE
    """Seconds one message may take in all, from MAIL FROM to the server's final reply."""

    def __post_init__(self) -> None:
        if self.security not in DEFAULT_PORTS:
            raise KpiError(f"SMTP security must be one of none, starttls, ssl, not {self.security!r}")
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise KpiError(f"SMTP port must be a number from 1 to 65535, not {self.port!r}")
        for name in ("timeout", "session_deadline", "message_deadline"):
            if not getattr(self, name) > 0:
                raise KpiError(f"the SMTP {name.replace('_', ' ')} must be a positive number of seconds")

    @classmethod
    def from_options(
        cls,
        smtp: str,
        *,
        starttls: bool,
        ssl: bool,
        user: str | None,
        sender: str,
        password_env: str = PASSWORD_ENV,
        timeout: float = 30.0,
        cafile: str | None = None,
    ) -> SmtpConfig:
        """Settings from the command-line options: ``--smtp HOST:PORT [--starttls|--ssl] [--user U] --from ADDR``.

        ``HOST:PORT`` may be ``[::1]:25`` (IPv6 in brackets); without ``:PORT`` the usual port of the
        security mode is used (25, 587 with STARTTLS, 465 with SSL). The password is read from the
        environment variable ``password_env``, and only when ``user`` is given. Raises
        :class:`~xl_kpi.KpiError` with a plain message on bad input.
        """
        if starttls and ssl:
            raise KpiError("choose one of --starttls and --ssl, not both")
        security = "ssl" if ssl else "starttls" if starttls else "none"
        host, port = _parse_host_port(smtp, DEFAULT_PORTS[security])
        if not sender:
            raise KpiError("--from is required: the address the messages are sent from")
        reason = check_address(sender)
        if reason:
            raise KpiError(f"--from {sender!r} is not a usable address: {reason}")
        password = None
        if user is not None:
            if not user or any(unicodedata.category(ch) in ("Cc", "Cf") or ch.isspace() for ch in user):
                raise KpiError("--user must be a non-empty name without spaces or control characters")
            password = os.environ.get(password_env) or None
            if password is None:
                raise KpiError(
                    f"--user {user} needs a password: set the environment variable {password_env} "
                    "(passwords are never taken from the command line)"
                )
            if security == "none" and not _is_loopback(host):
                raise KpiError(
                    "--user without --starttls or --ssl would send the password in clear text; "
                    "add --starttls (port 587) or --ssl (port 465)"
                )
        if cafile is not None and not Path(cafile).is_file():
            raise KpiError(f"CA file {cafile} does not exist")
        if not timeout > 0:
            raise KpiError("the SMTP timeout must be positive")
        return cls(host, port, security, user, password, sender, timeout, cafile)


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
        """One line for the terminal, e.g. ``sent 40, already sent 2, failed 1, invalid address 1``."""
        parts = [
            ("written", len(self.written)),
            ("sent", len(self.sent)),
            ("already sent", len(self.skipped_already_sent)),
            ("failed", len(self.failed)),
            ("invalid address", len(self.invalid)),
            ("maybe delivered (not resent)", len(self.uncertain)),
            ("not attempted", len(self.remaining)),
        ]
        return ", ".join(f"{label} {n}" for label, n in parts if n) or "nothing to send"


# --------------------------------------------------------------------------------------------
# Addresses and options

_LOCAL_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_JUNK = set('<>()[]",;:\\')


def check_address(address: str) -> str | None:
    """``None`` when ``address`` is a plain, usable e-mail address, else the reason in plain words.

    Only the bare form ``name@example.com`` is accepted: no display name, brackets, comments, quotes,
    spaces, line breaks or second address; one ``@``; a domain with a dot. The domain may be
    international (``почта.рф``), the part before ``@`` must be Latin. Nothing is looked up.

    >>> check_address("anna.petrova@example.com") is None
    True
    >>> check_address("anna.petrova@example")
    "the domain after '@' has no dot (like example.com)"
    """
    if address is None or (isinstance(address, float) and address != address):
        return "no e-mail address"
    if not isinstance(address, str):
        return f"not text but {type(address).__name__}"
    if not address.strip():
        return "no e-mail address"
    if any(ch in "\r\n" or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in address):
        return "contains a line break or another invisible control character"
    if _JUNK & set(address):
        return "write the bare address (name@example.com), without a name, quotes, brackets or a second address"
    if any(ch.isspace() for ch in address):
        return "contains a space" + (" (at the start or end)" if address.strip() == address.replace(" ", "") else "")
    n = address.count("@")
    if n == 0:
        return "no '@'"
    if n > 1:
        return "more than one '@'"
    local, domain = address.split("@")
    if not local:
        return "nothing before '@'"
    if not domain:
        return "nothing after '@'"
    if not local.isascii():
        return "non-Latin letters before '@' (most mail servers refuse them)"
    if len(local) > 64:
        return "the part before '@' is longer than 64 characters"
    if not all(_LOCAL_ATOM.fullmatch(part) for part in local.split(".")):
        return "the part before '@' starts or ends with a dot, has two dots in a row, or has characters not allowed"
    if "." not in domain:
        return "the domain after '@' has no dot (like example.com)"
    labels = domain.split(".")
    if any(not label for label in labels):
        return "the domain after '@' has an empty part (two dots in a row, or a dot at the start or end)"
    try:
        ascii_domain = _ascii_domain(domain)
    except UnicodeError:
        return "the domain after '@' is not a valid domain name"
    if len(ascii_domain) > 253 or not all(_LABEL.fullmatch(label) for label in ascii_domain.split(".")):
        return "the domain after '@' is not a valid domain name (letters, digits and inner hyphens only)"
    if ascii_domain.rsplit(".", 1)[1].isdigit():
        return "the domain after '@' is a number, not a name"
    try:
        parsed = Address(addr_spec=address)
    except Exception:
        return "not a valid e-mail address"
    if parsed.addr_spec != address or email.utils.parseaddr(address) != ("", address):
        return "not a valid e-mail address"
    return None


def _ascii_domain(domain: str) -> str:
    return domain if domain.isascii() else domain.encode("idna").decode("ascii")


def _envelope(address: str) -> tuple[str, str]:
    """(local part, ASCII domain) of a checked address."""
    local, domain = address.split("@")
    return local, _ascii_domain(domain)


def _parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    s = (text or "").strip()
    if not s:
        raise KpiError("--smtp needs HOST:PORT, e.g. smtp.example.com:587")
    port_text: str | None = None
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise KpiError(f"--smtp {text!r}: missing ']' after the IPv6 address (write [::1]:25)")
        host, rest = s[1:end], s[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise KpiError(f"--smtp {text!r}: expected ':PORT' after ']'")
            port_text = rest[1:]
        if ":" not in host:
            raise KpiError(f"--smtp {text!r}: brackets are for IPv6 addresses only")
    elif s.count(":") > 1:
        raise KpiError(f"--smtp {text!r}: write an IPv6 address in brackets, like [::1]:25")
    else:
        host, sep, port_text_ = s.partition(":")
        port_text = port_text_ if sep else None
    if not host or any(ch.isspace() or ch in "/@" for ch in host):
        raise KpiError(f"--smtp {text!r}: no usable host name")
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise KpiError(f"--smtp {text!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------
# Texts

_EN_CONFIDENTIAL = (
    "This message is confidential: it contains your personal pay data and is meant for you only. "
    "Please do not forward it. If it reached you by mistake, delete it and let HR know."
)
_EN_TEAM = (
    "The cards contain your employees' pay data. They are confidential and meant for you as their "
    "manager only: please do not forward them or share them with the team; every employee receives "
    "their own card separately. If this message reached you by mistake, delete it and let HR know."
)
_RU_CONFIDENTIAL = (
    "Письмо конфиденциально: в нём сведения о вашей оплате труда, предназначенные только вам. "
    "Пожалуйста, не пересылайте его. Если оно попало к вам по ошибке, удалите его и сообщите в отдел кадров."
)
_RU_TEAM = (
    "В картах сведения об оплате труда ваших сотрудников. Они конфиденциальны и предназначены только вам "
    "как руководителю: пожалуйста, не пересылайте их и не показывайте команде — каждый сотрудник получает "
    "свою карту отдельно. Если письмо попало к вам по ошибке, удалите его и сообщите в отдел кадров."
)

DEFAULT_SUBJECTS: dict[tuple[str, str], str] = {
    ("en", "employee"): "KPI card for {period_name}",
    ("en", "manager"): "KPI cards of your team for {period_name}",
    ("en", "department"): "KPI cards of the {team} department for {period_name}",
    ("ru", "employee"): "Карта KPI за {period_name}",
    ("ru", "manager"): "Карты KPI вашей команды за {period_name}",
    ("ru", "department"): "Карты KPI отдела «{team}» за {period_name}",
}
"""Default subjects by (language, kind); a department bundle without a team name uses the manager's."""

DEFAULT_BODIES: dict[tuple[str, str], str] = {
    ("en", "employee"): (
        "Dear {name},\n\nattached is your KPI card for {period_name}: {files}.\n\n"
        + _EN_CONFIDENTIAL + "\n\nThis message was sent automatically.\n"
    ),
    ("en", "manager"): (
        "Dear {name},\n\nattached are the KPI cards of your team for {period_name}: {files}.\n\n"
        + _EN_TEAM + "\n\nThis message was sent automatically.\n"
    ),
    ("en", "department"): (
        "Dear {name},\n\nattached are the KPI cards of the {team} department for {period_name}: {files}.\n\n"
        + _EN_TEAM + "\n\nThis message was sent automatically.\n"
    ),
    ("ru", "employee"): (
        "Здравствуйте, {name}!\n\nВо вложении ваша карта KPI за {period_name}: {files}.\n\n"
        + _RU_CONFIDENTIAL + "\n\nПисьмо отправлено автоматически.\n"
    ),
    ("ru", "manager"): (
        "Здравствуйте, {name}!\n\nВо вложении карты KPI сотрудников вашей команды за {period_name}: {files}.\n\n"
        + _RU_TEAM + "\n\nПисьмо отправлено автоматически.\n"
    ),
    ("ru", "department"): (
        "Здравствуйте, {name}!\n\nВо вложении карты KPI сотрудников отдела «{team}» за {period_name}: {files}.\n\n"
        + _RU_TEAM + "\n\nПисьмо отправлено автоматически.\n"
    ),
}

Template = str | Mapping[str, str] | None
"""A template: one text for every language, a mapping ``{"en": ..., "ru": ...}``, or ``None`` (defaults)."""

_PARSER = string.Formatter()


def render_template(template: str, fields: Mapping[str, str]) -> str:
    """``template`` with ``{field}`` replaced by ``fields[field]``; ``{{`` and ``}}`` are literal braces.

    Templates may come from users, so only plain names of :data:`TEMPLATE_FIELDS` are allowed: no
    attribute or index access (``{name.__class__}``, ``{name[0]}``), positional fields, conversions
    (``!r``) or format specs (``:>10``). Anything else raises :class:`~xl_kpi.KpiError`.

    >>> render_template("KPI card for {period_name}", {"period_name": "October 2026"})
    'KPI card for October 2026'
    """
    allowed = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
    out: list[str] = []
    try:
        parsed = list(_PARSER.parse(template))
    except ValueError as e:
        raise KpiError(f"template {template[:60]!r}: {e} (write {{{{ and }}}} for literal braces)") from None
    for literal, name, spec, conversion in parsed:
        out.append(literal)
        if name is None:
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if name not in TEMPLATE_FIELDS or name not in fields:
            raise KpiError(f"template field {shown} is not allowed; use only {allowed}")
        if spec or conversion:
            raise KpiError(f"template field {shown}: formatting is not allowed; write just {{{name}}}")
        out.append(str(fields[name]))
    return "".join(out)


def _pick(template: Template, language: str) -> str | None:
    if template is None or isinstance(template, str):
        return template
    return template.get(language)


def _period_names(period: str, language: str) -> tuple[str, str]:
    """The period's name and its form after «в» («IV квартал 2026», «IV квартале 2026»; "Q4 2026" twice)."""
    try:
        p = Period.parse(period)
    except PeriodError:
        return period, period
    return p.label(language), p.label(language, case="prepositional")


def _clean_line(text: object, limit: int = 200) -> str:
    """One line of header text: no control or invisible characters, spaces collapsed."""
    s = unicodedata.normalize("NFC", "" if text is None else str(text))
    s = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in s)
    s = "".join(ch for ch in s if unicodedata.category(ch) not in ("Cf", "Cs", "Co", "Cn"))
    return " ".join(s.split())[:limit]


def _fields(delivery: Delivery, files: Sequence[str]) -> dict[str, str]:
    period_name, period_in = _period_names(delivery.period, delivery.language)
    return {
        "name": _clean_line(delivery.to_name) or delivery.to_address,
        "period": delivery.period,
        "period_name": period_name,
        "period_in": period_in,
        "team": _clean_line(delivery.team),
        "files": ", ".join(files),
    }


def _texts(
    delivery: Delivery, files: Sequence[str], subject_template: Template, body_template: Template
) -> tuple[str, str]:
    kind = delivery.kind
    if kind == "department" and not delivery.team.strip():
        kind = "manager"  # "the {team} department" needs a team name
    key = (delivery.language, kind)
    fields = _fields(delivery, files)
    subject = render_template(_pick(subject_template, delivery.language) or DEFAULT_SUBJECTS[key], fields)
    body = render_template(_pick(body_template, delivery.language) or DEFAULT_BODIES[key], fields)
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    return _clean_line(subject, 250), body if body.endswith("\n") else body + "\n"


# --------------------------------------------------------------------------------------------
# Messages


def _validate_delivery(d: Delivery) -> None:
    if d.kind not in KINDS:
        raise KpiError(f"delivery {d.key}: kind must be one of {', '.join(KINDS)}, not {d.kind!r}")
    if d.language not in LANGUAGES:
        raise KpiError(f"delivery {d.key}: language must be one of {', '.join(LANGUAGES)}, not {d.language!r}")
    if not d.key or not isinstance(d.key, str):
        raise KpiError("every delivery needs a key (like 'employee:1001')")


def _read_attachments(d: Delivery) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each attachment, read once: what is hashed is what is sent."""
    return [(Path(p).name, Path(p).read_bytes()) for p in d.attachments]


def _digest(files: Sequence[tuple[str, bytes]]) -> str:
    """sha256 over the attachments' names and contents, in order."""
    h = hashlib.sha256()
    for name, data in files:
        h.update(name.encode("utf-8") + b"\0" + hashlib.sha256(data).hexdigest().encode("ascii") + b"\n")
    return h.hexdigest()


def _content_type(name: str) -> tuple[str, str]:
    ext = Path(name).suffix.lower()
    if ext in MIME_TYPES:
        return MIME_TYPES[ext]
    import mimetypes

    guess, _ = mimetypes.guess_type(name, strict=False)
    if guess and "/" in guess:
        main, sub = guess.split("/", 1)
        return main, sub
    return "application", "octet-stream"


def _name_param(filename: str) -> str:
    """The ``name=`` parameter of Content-Type: RFC 2047 encoded words for old clients (Outlook)."""
    if filename.isascii():
        return '"' + filename.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raw, chunks, i = filename.encode("utf-8"), [], 0
    while i < len(raw):
        j = min(len(raw), i + 39)
        while j < len(raw) and (raw[j] & 0xC0) == 0x80:  # never split a UTF-8 character
            j -= 1
        chunks.append("=?utf-8?b?" + base64.b64encode(raw[i:j]).decode("ascii") + "?=")
        i = j
    return '"' + "\r\n ".join(chunks) + '"'


def _message_id(key: str, period: str, digest: str, sender: str) -> str:
    domain = _envelope(sender)[1] if "@" in sender else "localhost"
    token = hashlib.sha256(f"{key}\0{period}\0{digest}".encode()).hexdigest()[:40]
    return f"<{token}.xl-kpi@{domain}>"


def _compose(
    delivery: Delivery,
    sender: str,
    files: Sequence[tuple[str, bytes]],
    digest: str,
    subject_template: Template,
    body_template: Template,
    date: datetime | None,
) -> EmailMessage:
    _validate_delivery(delivery)
    for who, addr in (("recipient", delivery.to_address), ("sender", sender)):
        reason = check_address(addr)
        if reason:
            raise KpiError(f"delivery {delivery.key}: {who} address {addr!r}: {reason}")
    names = [_clean_line(n, 250) or "attachment" for n, _ in files]
    subject, body = _texts(delivery, names, subject_template, body_template)

    msg = EmailMessage(policy=POLICY)
    s_local, s_domain = _envelope(sender)
    r_local, r_domain = _envelope(delivery.to_address)
    msg["From"] = Address(username=s_local, domain=s_domain)
    msg["To"] = Address(display_name=_clean_line(delivery.to_name), username=r_local, domain=r_domain)
    msg["Subject"] = subject
    when = date if date is not None else datetime.now(UTC).astimezone()
    msg["Date"] = email.utils.format_datetime(when if when.tzinfo else when.astimezone())
    msg["Message-ID"] = _message_id(delivery.key, delivery.period, digest, sender)
    msg["Sensitivity"] = "Company-Confidential"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    for name, data in zip(names, (d for _, d in files), strict=True):
        maintype, subtype = _content_type(name)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        part = list(msg.iter_attachments())[-1]
        del part["Content-Type"]  # rewritten by hand: Python's refolding mangles long types with name*=
        part.set_raw("Content-Type", f"{maintype}/{subtype};\r\n name={_name_param(name)}")
    return msg


def build_message(
    delivery: Delivery,
    sender: str,
    *,
    subject_template: Template = None,
    body_template: Template = None,
    date: datetime | None = None,
) -> EmailMessage:
    """The message for one delivery: one ``To``, the text in the delivery's language, the files attached.

    Subject and body come from the defaults (en/ru, employee or team wording) unless templates are
    given (:func:`render_template`). Attachments get their MIME type and the file name in both RFC
    2231 (``filename*=``) and RFC 2047 (``name=``) form, so Cyrillic names survive every client. The
    ``Message-ID`` is derived from the key, period, attachments and sender's domain (the same
    message always gets the same id); ``Date`` is ``date`` or now. Serialise with ``as_bytes()``.
    """
    files = _read_attachments(delivery)
    return _compose(delivery, sender, files, _digest(files), subject_template, body_template, date)


def _check_templates(subject_template: Template, body_template: Template) -> None:
    sample = {f: "x" for f in TEMPLATE_FIELDS}
    for template in (subject_template, body_template):
        for language in LANGUAGES:
            text = _pick(template, language)
            if text is not None:
                render_template(text, sample)


# --------------------------------------------------------------------------------------------
# Send log and lock


def _fingerprint(key: str, to: str, digest: str) -> tuple[str, str, str]:
    """What the send log knows a message by: the same key, mailbox (canonical form) and attachments."""
    from xl_kpi.inputs.identity import canonical_address

    return key, canonical_address(to), digest


def _read_log(path: Path) -> tuple[set[tuple[str, str, str]], dict[tuple[str, str, str], dict[str, str]]]:
    """(fingerprints sent, last record of each fingerprint). A torn last line is ignored."""
    sent: set[tuple[str, str, str]] = set()
    last: dict[tuple[str, str, str], dict[str, str]] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return sent, last
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            fp = _fingerprint(str(rec["key"]), str(rec["to"]), str(rec["sha256"]))
        except (ValueError, KeyError, TypeError):
            continue
        if rec.get("status") == "sent":
            sent.add(fp)
        last[fp] = rec
    return sent, last


class _Log:
    """Append-only JSON-lines send log; every line is flushed to disk before the next message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not os.path.lexists(path)
        self.fd = outdir.open_nofollow(path, os.O_WRONLY | os.O_APPEND)  # a link would send addresses elsewhere
        if new:
            fsync_dir(path.parent)
        elif path.stat().st_size:
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a line torn by a crash: start ours on a fresh line
                    os.write(self.fd, b"\n")

    def write(self, **record: object) -> None:
        """Append one record and flush it to disk; a failure stops the run (better than sending blind)."""
        record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), **record}
        try:
            os.write(self.fd, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            os.fsync(self.fd)
        except OSError as e:
            raise MailError(
                f"cannot write the send log {self.path}: {e.strerror or e}; stopped so that nothing is sent twice"
            ) from None

    def close(self) -> None:
        os.close(self.fd)


class _Lock:
    """An exclusive lock file next to the send log, held with an OS lock (flock / msvcrt).

    The OS drops the lock when its process dies, so a lock file left by a killed run is simply
    taken over; a live holder makes :class:`MailError`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> _Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            fd = outdir.open_nofollow(self.path, os.O_RDWR)  # a link: refused, its target never truncated
            try:
                _os_lock(fd)
            except (BlockingIOError, PermissionError):
                holder = _read_holder(fd)
                os.close(fd)
                raise MailError(
                    f"another run is sending from the same send log ({holder}); wait for it to finish "
                    f"(lock file {self.path})"
                ) from None
            except OSError as e:
                os.close(fd)
                raise MailError(f"cannot lock {self.path}: {e.strerror or e}") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file while we waited: retry on the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            self.fd = fd
            return self
        raise MailError(f"cannot lock {self.path}: it keeps changing")

    def __exit__(self, *exc: object) -> None:
        if self.fd is None:
            return
        if sys.platform == "win32":
            os.close(self.fd)
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # while still locked, so a waiter sees a new file
            os.close(self.fd)
        self.fd = None


def _os_lock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as e:
            raise BlockingIOError(str(e)) from None
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except (OSError, AttributeError):
        return "holder unknown"
    return f"process {text[0]} on {text[1]}" if len(text) >= 2 else "holder unknown"


# --------------------------------------------------------------------------------------------
# SMTP


class _Dropped(Exception):
    """The connection broke (or the server said 421). ``maybe_delivered``: after the message data."""

    def __init__(self, reason: str, maybe_delivered: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_delivered = maybe_delivered


def _reply(code: int, resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return f"{code} {' '.join(text.split())}"[:300]


class _Deadline:
    """A limit on the whole of a step, not on each read: when it passes, the socket is shut down.

    smtplib's timeout applies to one read at a time, so a server that trickles a ``220-`` line every
    two seconds would hold a run forever; shutting the socket down makes the blocked read fail at once
    (an ``OSError``, handled like a dropped connection), and :attr:`expired` says why.
    """

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.expired: str | None = None
        self._timer: threading.Timer | None = None

    def start(self, seconds: float, what: str) -> None:
        """Begin a step that must end within ``seconds``; ``what`` names it in the message."""
        self.cancel()
        self.expired = None
        self._timer = threading.Timer(seconds, self._fire, args=(f"no complete answer {what} within {seconds:g} s",))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        """The step ended in time."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self, reason: str) -> None:
        self.expired = reason
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    def why(self, error: BaseException) -> str:
        """The reason to record for a broken step: the deadline when it was that, else the error."""
        return self.expired or str(error) or type(error).__name__


class _WithDeadline:
    """Mixin for smtplib's classes: the socket is known to the connection's :class:`_Deadline` as soon as
    it exists, so the greeting is already under the session deadline."""

    deadline: _Deadline

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self.deadline.sock = sock
        return sock


class _SMTP(_WithDeadline, smtplib.SMTP):
    """smtplib.SMTP under a deadline."""


class _SMTP_SSL(_WithDeadline, smtplib.SMTP_SSL):
    """smtplib.SMTP_SSL under a deadline."""


def _deadline_of(smtp: smtplib.SMTP) -> _Deadline:
    """The connection's deadline (a fresh, unused one for a connection not made by :func:`_connect`)."""
    found = getattr(smtp, "deadline", None)
    return found if isinstance(found, _Deadline) else _Deadline()


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    """An open, greeted (and secured, logged-in) connection, within the session deadline.

    Network trouble, and a server too slow for the deadline, raise OSError.
    """
    context = ssl.create_default_context(cafile=config.cafile)
    smtp: smtplib.SMTP
    if config.security == "ssl":
        smtp = _SMTP_SSL(timeout=config.timeout, context=context)
    else:
        smtp = _SMTP(timeout=config.timeout)
    deadline = smtp.deadline = _Deadline()  # type: ignore[attr-defined]
    smtp._host = config.host  # smtplib names the TLS server (SNI) from it
    deadline.start(config.session_deadline, "to the greeting, EHLO and login")
    try:
        code, msg = smtp.connect(config.host, config.port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, msg)
        smtp.ehlo_or_helo_if_needed()
        if config.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise MailError(
                    f"the SMTP server {config.host}:{config.port} does not offer STARTTLS; "
                    "nothing was sent (the messages are never sent unencrypted when --starttls is given)"
                )
            code, resp = smtp.starttls(context=context)
            if code != 220:
                raise MailError(f"STARTTLS refused by {config.host}:{config.port}: {_reply(code, resp)}")
            deadline.sock = smtp.sock  # the TLS socket now carries the connection
            smtp.ehlo()
        if config.user:
            smtp.login(config.user, config.password or "")
        if deadline.expired:
            raise TimeoutError(deadline.expired)
    except OSError:
        with contextlib.suppress(Exception):
            smtp.close()
        if deadline.expired:
            raise TimeoutError(deadline.expired) from None
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            smtp.close()
        raise
    finally:
        deadline.cancel()
    return smtp


def _open(config: SmtpConfig) -> smtplib.SMTP:
    """:func:`_connect`, with the errors that retrying cannot fix turned into :class:`MailError`."""
    where = f"{config.host}:{config.port}"
    try:
        return _connect(config)
    except ssl.SSLCertVerificationError as e:
        raise MailError(f"the TLS certificate of {where} is not trusted: {e.verify_message}") from None
    except ssl.SSLError as e:
        raise MailError(f"TLS with {where} failed: {e.reason or e}") from None
    except smtplib.SMTPAuthenticationError as e:
        raise MailError(
            f"the SMTP server {where} refused the login of user {config.user}: {_reply(e.smtp_code, e.smtp_error)}; "
            "check --user and the password variable"
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise MailError(f"the SMTP server {where} does not accept a login (no AUTH offered)") from None
    except UnicodeEncodeError:
        raise MailError("the SMTP user name and password must use Latin letters, digits and ASCII signs") from None
    except smtplib.SMTPException as e:
        if isinstance(e, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
            raise
        raise MailError(f"the SMTP server {where} refused the session: {e}") from None


class _Attempt:
    """Where a transaction got to: ``handed_over`` while the server may hold the message unconfirmed."""

    handed_over = False


def _transact(smtp: smtplib.SMTP, sender: str, rcpt: str, payload: bytes, state: _Attempt,
              seconds: float = MESSAGE_DEADLINE) -> str | None:
    """Send one message to one recipient, within ``seconds`` in all. ``None`` when accepted, else why
    it was refused.

    Raises :class:`_Dropped` when the connection breaks, the server closes it (421) or the deadline
    passes (the connection is then shut down: a trickling server cannot hold the run).
    """
    deadline = _deadline_of(smtp)
    deadline.start(seconds, "to the message")
    try:
        code, resp = smtp.mail(sender)
        if code == 421:
            raise _Dropped(_reply(code, resp), False)
        if code != 250:
            _rset(smtp)
            return f"sender refused: {_reply(code, resp)}"
        code, resp = smtp.rcpt(rcpt)
        if code == 421:
            raise _Dropped(_reply(code, resp), False)
        if code not in (250, 251):
            _rset(smtp)
            return f"recipient refused: {_reply(code, resp)}"
        smtp.putcmd("data")
        code, resp = smtp.getreply()
        if code == 421:
            raise _Dropped(_reply(code, resp), False)
        if code != 354:
            _rset(smtp)
            return f"message refused: {_reply(code, resp)}"
        state.handed_over = True
        smtp.send(payload)
        code, resp = smtp.getreply()
        state.handed_over = False  # any reply is definite: 250 delivered, anything else not
        if code == 421:
            raise _Dropped(_reply(code, resp), False)
        if code != 250:
            _rset(smtp)
            return f"message refused: {_reply(code, resp)}"
        return None
    except _Dropped:
        raise
    except OSError as e:  # SMTPServerDisconnected, timeouts, resets, the deadline's shutdown
        raise _Dropped(deadline.why(e), state.handed_over) from None
    finally:
        deadline.cancel()


def _rset(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.rset()


def _data_payload(message: bytes) -> bytes:
    """The DATA section: dot-stuffed, ending with CRLF . CRLF (RFC 5321 §4.5.2)."""
    q = re.sub(rb"(?m)^\.", b"..", message)
    if not q.endswith(b"\r\n"):
        q += b"\r\n"
    return q + b".\r\n"


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
) -> SendReport:
    """Send every delivery once (or, with ``dry_run_dir``, write each as ``<key>.eml`` there).

    Addresses are checked first: bad ones go to ``report.invalid`` and are not sent. A real run
    takes a lock next to ``log_path``, skips what the send log shows as sent (same key, address
    and attachment contents), and appends a line to the log, fsync'ed, around every message. A
    message the server refuses goes to ``report.failed`` and the run goes on; if the server goes
    away (the connection is retried once) :class:`SmtpDownError` is raised with the partial report,
    and a rerun sends the rest. ``on_progress(n)`` is called with the number of deliveries handled
    so far (1 … ``len(deliveries)``). A dry run sends nothing and neither reads nor writes the log.
    """
    report = SendReport()
    seen: set[str] = set()
    for d in deliveries:
        _validate_delivery(d)
        if d.key in seen:
            raise KpiError(f"two deliveries have the same key {d.key!r}; keys must be unique")
        seen.add(d.key)
    _check_templates(subject_template, body_template)
    if dry_run_dir is None and config is None:
        raise KpiError("no SMTP settings: give --smtp HOST:PORT and --from, or use --dry-run")
    sender = config.sender if config is not None else "xl-kpi@example.invalid"
    if config is not None and check_address(sender):
        raise KpiError(f"sender address {sender!r}: {check_address(sender)}")

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
            report.failed.append((d.key, "nothing to attach"))
        elif reason is None:
            missing = [str(p) for p in d.attachments if not Path(p).is_file()]
            if missing:
                report.failed.append((d.key, f"attachment missing: {missing[0]}"))
            else:
                todo.append(d)
                continue
        else:
            report.invalid.append((d.key, reason))
        progress()

    if dry_run_dir is not None:
        names = _eml_names(todo)
        for d in todo:
            files = _read_attachments(d)
            msg = _compose(d, sender, files, _digest(files), subject_template, body_template, date)
            path = Path(dry_run_dir) / names[d.key]
            write_atomic(path, msg.as_bytes())
            report.written.append(path)
            progress()
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
                self.report.failed.append((d.key, f"cannot read the attachment: {e.strerror or e}"))
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
                _deadline_of(self.smtp).start(QUIT_DEADLINE, "to QUIT")  # a trickling server cannot hold the exit
                with contextlib.suppress(Exception):
                    self.smtp.quit()
                _deadline_of(self.smtp).cancel()
                with contextlib.suppress(Exception):
                    self.smtp.close()

    def _down(self, reason: str, pending: Sequence[Delivery], index: int) -> SmtpDownError:
        self.report.remaining.extend(d.key for d in pending[index:])
        where = f"{self.config.host}:{self.config.port}"
        return SmtpDownError(
            f"SMTP server {where} down after {len(self.report.sent)} of {self.to_send} messages ({reason}); "
            f"the send log {self.log_path} records what was sent: rerun the same command to send the rest",
            self.report,
        )

    def _one(self, d: Delivery, pending: Sequence[Delivery], index: int) -> None:
        report = self.report
        try:
            files = _read_attachments(d)  # read again: what is hashed below is exactly what is sent
        except OSError as e:
            report.failed.append((d.key, f"cannot read the attachment: {e.strerror or e}"))
            return
        digest = _digest(files)
        fp = _fingerprint(d.key, d.to_address, digest)
        if fp in self.sent_before:
            report.skipped_already_sent.append(d.key)
            return
        if not self._needs_sending(fp):
            report.uncertain.append((d.key, "an earlier run lost the connection while sending it; it may have "
                                            "been delivered, so it is not sent again"))
            return
        msg = _compose(d, self.sender, files, digest, self.subject_template, self.body_template, self.date)
        payload = _data_payload(msg.as_bytes())
        del files
        rcpt = "@".join(_envelope(d.to_address))
        envelope_from = "@".join(_envelope(self.sender))
        record = {"key": d.key, "to": d.to_address, "sha256": digest, "message_id": msg["Message-ID"]}
        for attempt in (1, 2):
            if self.smtp is None:
                try:
                    self.smtp = _open(self.config)
                except OSError as e:  # MailError (settings, certificate, login) passes through
                    what = "stopped answering" if report.sent or attempt == 2 else "could not be reached"
                    raise self._down(f"{what}: {e.strerror or e}", pending, index) from None
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
                    report.uncertain.append((d.key, f"connection lost before the server confirmed it ({e.reason}); "
                                                    "it may have been delivered, so it is not sent again"))
                    return
                self.log.write(**record, status="not_sent", reason=e.reason)
                if attempt == 2:
                    raise self._down(f"connection lost: {e.reason}", pending, index) from None
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
