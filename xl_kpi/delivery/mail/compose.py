"""Texts and messages: default subjects and bodies (en/ru), user templates, the MIME message of one delivery."""

from __future__ import annotations

import base64
import email.policy
import email.utils
import hashlib
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

from xl_kpi.delivery.mail import mime
from xl_kpi.delivery.mail.addresses import _envelope, check_address
from xl_kpi.delivery.mail.mime import POLICY
from xl_kpi.delivery.mail.model import KINDS, LANGUAGES, Delivery
from xl_kpi.engine.errors import KpiError
from xl_kpi.engine.period import Period, PeriodError
from xl_kpi.i18n import Msg

TEMPLATE_FIELDS = ("name", "period", "period_name", "period_in", "team", "files")
"""Fields a subject or body template may use, as ``{name}``; nothing else (no ``{name.attr}``)."""



_FOLDED: dict[tuple[object, ...], str] = {}
_FOLDED_MAX = 4096


class _FoldOncePolicy(email.policy.EmailPolicy):
    """:data:`POLICY`, folding each distinct header once per process instead of once per message.

    Python's header folding is most of what building a message costs, and the subject, the sender and
    the MIME headers are the same in every message. A header remembers the text it was set from; its
    folded form is kept by (name, that text, the policy's line settings) and reused: the same text makes
    the same header object, whose folding does not depend on anything else, so the bytes are unchanged."""

    def header_store_parse(self, name, value):  # type: ignore[no-untyped-def]
        stored = super().header_store_parse(name, value)
        if type(value) is str:
            stored[1]._xl_fold_key = (name, value)
        return stored

    def _fold(self, name, value, refold_binary=False):  # type: ignore[no-untyped-def]
        source = getattr(value, "_xl_fold_key", None)
        if source is None or source[0] != name:
            return super()._fold(name, value, refold_binary)
        key = (*source, self.linesep, self.max_line_length, self.utf8, refold_binary)
        folded = _FOLDED.get(key)
        if folded is None:
            if len(_FOLDED) >= _FOLDED_MAX:
                _FOLDED.clear()
            folded = _FOLDED[key] = super()._fold(name, value, refold_binary)
        return folded


FAST_POLICY = _FoldOncePolicy(**vars(POLICY))
"""What messages are built with: :data:`POLICY`'s settings and bytes, each distinct header folded once."""

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
        raise KpiError(Msg("template {template!r}: {error} (write {{{{ and }}}} for literal braces)",
                           template=template[:60],
                           error=str(e))) from None
    for literal, name, spec, conversion in parsed:
        out.append(literal)
        if name is None:
            continue
        shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        if name not in TEMPLATE_FIELDS or name not in fields:
            raise KpiError(Msg("template field {shown} is not allowed; use only {allowed}", shown=shown,
                               allowed=allowed))
        if spec or conversion:
            raise KpiError(Msg("template field {shown}: formatting is not allowed; write just {plain}", shown=shown,
                               plain="{" + name + "}"))
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
        raise KpiError(Msg("delivery {key}: kind must be one of {kinds}, not {kind!r}", key=d.key,
                           kinds=", ".join(KINDS),
                           kind=d.kind))
    if d.language not in LANGUAGES:
        raise KpiError(Msg("delivery {key}: language must be one of {languages}, not {language!r}", key=d.key,
                           languages=", ".join(LANGUAGES), language=d.language))
    if not d.key or not isinstance(d.key, str):
        raise KpiError(Msg("every delivery needs a key (like 'employee:1001')"))


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


def _b_words(text: str) -> list[str]:
    """``text`` as RFC 2047 base64 encoded words of UTF-8, each short enough for a header line of its own,
    never splitting a character."""
    raw, chunks, i = text.encode("utf-8"), [], 0
    while i < len(raw):
        j = min(len(raw), i + 39)
        while j < len(raw) and (raw[j] & 0xC0) == 0x80:  # never split a UTF-8 character
            j -= 1
        chunks.append("=?utf-8?b?" + base64.b64encode(raw[i:j]).decode("ascii") + "?=")
        i = j
    return chunks


def _name_param(filename: str) -> str:
    """The ``name=`` parameter of Content-Type: RFC 2047 encoded words for old clients (Outlook)."""
    if filename.isascii():
        return '"' + filename.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return '"' + "\r\n ".join(_b_words(filename)) + '"'


def _raw_to(display_name: str, local: str, domain: str) -> str | None:
    """The ``To`` value for a non-ASCII display name of up to 45 bytes, written directly (one encoded word,
    then the address), or None to let the email package write it (an ASCII name may need quoting, a longer
    one several encoded words, a non-ASCII address SMTPUTF8).

    Folding this header with the email package is much of what a message costs; one encoded word is what
    it writes for such names, and every reader decodes it to exactly the name (several words are not:
    Python's own parser puts a space between them)."""
    raw = display_name.encode("utf-8")
    if display_name.isascii() or len(raw) > 45 or not (local + domain).isascii() or not display_name.isprintable():
        return None
    word = "=?utf-8?b?" + base64.b64encode(raw).decode("ascii") + "?="  # at most 72 characters
    addr = f"<{local}@{domain}>"
    return word + (" " if len("To: ") + len(word) + 1 + len(addr) <= 78 else "\r\n ") + addr


_ATTR_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&+-.^_`|~")


def _raw_disposition(filename: str) -> str | None:
    """``attachment`` with the file name as RFC 2231 continuations (``filename*0*=utf-8''…``), for a
    non-ASCII name; None for an ASCII name (the email package writes those, quoted)."""
    if filename.isascii() or not filename.isprintable():
        return None
    quoted = "".join(ch if ch in _ATTR_SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
                     for ch in filename)
    pieces, i = [], 0
    while i < len(quoted):
        j = min(len(quoted), i + 50)  # a line: " filename*0*=utf-8''", 50 characters, ";"
        while j < len(quoted) and "%" in quoted[j - 2:j]:  # never split a %XX escape
            j -= 1
        pieces.append(quoted[i:j])
        i = j
    return "attachment;" + ";".join(f"\r\n filename*{k}*=" + ("utf-8''" if k == 0 else "") + piece
                                    for k, piece in enumerate(pieces))


def _message_id(key: str, period: str, digest: str, sender: str) -> str:
    domain = _envelope(sender)[1] if "@" in sender else "localhost"
    token = hashlib.sha256(f"{key}\0{period}\0{digest}".encode()).hexdigest()[:40]
    return f"<{token}.xl-kpi@{domain}>"


@dataclass(frozen=True)
class _Parts:
    """What one message is made of, decided once for both ways of writing it (objects or bytes)."""

    sender: tuple[str, str]
    """The sender's local part and ASCII domain."""
    to: tuple[str, str, str]
    """The recipient's display name (cleaned), local part and ASCII domain."""
    raw_to: str | None
    """The ``To`` value written directly (:func:`_raw_to`), or None: the email package writes it."""
    subject: str
    date: str
    message_id: str
    body: str
    attachments: tuple[tuple[str, str, str, bytes, str | None], ...]
    """(file name, main type, subtype, bytes, the raw Content-Disposition or None) of each file."""


def _parts(
    delivery: Delivery,
    sender: str,
    files: Sequence[tuple[str, bytes]],
    digest: str,
    subject_template: Template,
    body_template: Template,
    date: datetime | None,
) -> _Parts:
    """Check the delivery and the addresses, render the texts and decide every header's value."""
    _validate_delivery(delivery)
    for who, addr in (("recipient", delivery.to_address), ("sender", sender)):
        reason = check_address(addr)
        if reason:
            params = {"key": delivery.key, "address": addr, "reason": reason}
            raise KpiError(Msg("delivery {key}: recipient address {address!r}: {reason}", **params) if who ==
                           "recipient" else Msg("delivery {key}: sender address {address!r}: {reason}", **params))
    names = [_clean_line(n, 250) or "attachment" for n, _ in files]
    subject, body = _texts(delivery, names, subject_template, body_template)
    r_local, r_domain = _envelope(delivery.to_address)
    to_name = _clean_line(delivery.to_name)
    when = date if date is not None else datetime.now(UTC).astimezone()
    attachments = tuple((name, *_content_type(name), data, _raw_disposition(name))
                        for name, data in zip(names, (d for _, d in files), strict=True))
    return _Parts(_envelope(sender), (to_name, r_local, r_domain), _raw_to(to_name, r_local, r_domain), subject,
                  email.utils.format_datetime(when if when.tzinfo else when.astimezone()),
                  _message_id(delivery.key, delivery.period, digest, sender), body, attachments)


def _compose(
    delivery: Delivery,
    sender: str,
    files: Sequence[tuple[str, bytes]],
    digest: str,
    subject_template: Template,
    body_template: Template,
    date: datetime | None,
) -> EmailMessage:
    """The message as email package objects (what :func:`build_message` gives; :func:`_compose_bytes` writes the
    same bytes directly)."""
    p = _parts(delivery, sender, files, digest, subject_template, body_template, date)
    msg = EmailMessage(policy=FAST_POLICY)
    msg["From"] = Address(username=p.sender[0], domain=p.sender[1])
    if p.raw_to is None:
        msg["To"] = Address(display_name=p.to[0], username=p.to[1], domain=p.to[2])
    else:
        msg.set_raw("To", p.raw_to)
    msg["Subject"] = p.subject
    msg["Date"] = p.date
    msg.set_raw("Message-ID", p.message_id)  # ASCII, one line
    msg.set_raw("Sensitivity", "Company-Confidential")
    msg.set_raw("Auto-Submitted", "auto-generated")
    msg.set_content(p.body)
    for name, maintype, subtype, data, disposition in p.attachments:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        part = list(msg.iter_attachments())[-1]
        if disposition is not None:
            del part["Content-Disposition"]
            part.set_raw("Content-Disposition", disposition)
        del part["Content-Type"]  # rewritten by hand: Python's refolding mangles long types with name*=
        part.set_raw("Content-Type", f"{maintype}/{subtype};\r\n name={_name_param(name)}")
    return msg


def _compose_bytes(
    delivery: Delivery,
    sender: str,
    files: Sequence[tuple[str, bytes]],
    digest: str,
    subject_template: Template,
    body_template: Template,
    date: datetime | None,
) -> tuple[bytes, str]:
    """(the message's bytes, its Message-ID): ``_compose(...).as_bytes()`` to the byte (the multipart boundary is
    random in both), written by :mod:`~xl_kpi.delivery.mail.mime` without the email package's objects."""
    p = _parts(delivery, sender, files, digest, subject_template, body_template, date)
    if not p.attachments or any(disp is None and not name.isascii() for name, _, _, _, disp in p.attachments):
        # A file name the email package encodes itself (not printable): its own way, whole.
        msg = _compose(delivery, sender, files, digest, subject_template, body_template, date)
        return msg.as_bytes(), p.message_id
    head = (mime.folded_address("From", "", *p.sender)
            + (mime.raw("To", p.raw_to) if p.raw_to is not None else
               mime.to_header(*p.to) or mime.folded_address("To", *p.to))
            + mime.folded("Subject", p.subject) + mime.folded("Date", p.date) + mime.raw("Message-ID", p.message_id)
            + mime.raw("Sensitivity", "Company-Confidential") + mime.raw("Auto-Submitted", "auto-generated"))
    parts = [mime.text_part(p.body)]
    for name, maintype, subtype, data, disposition in p.attachments:
        if disposition is None:
            disp = mime.folded("Content-Disposition", f'attachment; filename="{email.utils.quote(name)}"')
        else:
            disp = mime.raw("Content-Disposition", disposition)
        parts.append(mime.attachment_part(data, f"{maintype}/{subtype};\r\n name={_name_param(name)}", disp,
                                          disposition is None))
    return mime.multipart(head, parts), p.message_id


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
