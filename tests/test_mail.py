"""E-mail delivery (xl_kpi.delivery.mail) against a real SMTP server on loopback (aiosmtpd).

Who received what is checked from the server's side: envelope recipients, the To header, the
attachments' names and bytes. Failure cases: a server that closes mid-run, refuses a recipient,
drops the connection after taking a message, is not there at all; and the reruns after each.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from hypothesis import given, settings
from hypothesis import strategies as st

from xl_kpi import KpiError
from xl_kpi.delivery.mail import (
    Delivery,
    MailError,
    SmtpConfig,
    SmtpDownError,
    build_message,
    check_address,
    render_template,
    send_all,
)

PASSWORD = "s3cr3t-PW-do-not-leak"
SENDER = "hr@kpi.example.com"
DATE = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# A real SMTP server


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


class Handler:
    """Collects every accepted message; can misbehave on request."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.refuse: set[str] = set()  # 550 at RCPT
        self.close_after: int | None = None  # "421 closing" for every message after this many
        self.drop_after_data: set[str] = set()  # take the message, then hang up without confirming
        self.drop_at_rcpt_once: set[str] = set()  # hang up at RCPT, once per address
        self.sessions = 0
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        if address in self.drop_at_rcpt_once:
            self.drop_at_rcpt_once.discard(address)
            server.transport.close()
            return "421 4.4.2 gone"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.close_after is not None and len(self.messages) >= self.close_after:
                return "421 4.3.2 closing, try later"
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        if envelope.rcpt_tos[0] in self.drop_after_data:
            server.transport.close()
        return "250 OK"

    def by_recipient(self) -> Counter[str]:
        return Counter(r for m in self.messages for r in m.rcpt_tos)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def smtp_server(handler: Handler, **kwargs):
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def config(port: int, **kwargs) -> SmtpConfig:
    return SmtpConfig("127.0.0.1", port, sender=SENDER, timeout=5, **kwargs)


# --------------------------------------------------------------------------------------------
# Deliveries over real files


@pytest.fixture
def out(tmp_path: Path) -> Path:
    files = {
        "cards/Продажи/1001 Иванова Анна.xlsx": b"PK\x03\x04 anna's card",
        "cards/Sales/1002 Bob Smith.xlsx": b"PK\x03\x04 bob's card",
        "pdf/1002 Bob Smith.pdf": b"%PDF-1.7 bob",
        "cards/Sales/1003 Carol King.xlsx": b"PK\x03\x04 carol's card",
        "bundles/manager 1003 Carol King.zip": b"PK\x03\x04 team of carol",
        "bundles/Отдел продаж.zip": b"PK\x03\x04 whole department",
    }
    for name, data in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return tmp_path


def deliveries(out: Path) -> list[Delivery]:
    return [
        Delivery("employee:1001", "anna@example.com", "Иванова Анна", "employee",
                 (out / "cards/Продажи/1001 Иванова Анна.xlsx",), "2026-10", "ru"),
        Delivery("employee:1002", "bob@example.com", "Bob Smith", "employee",
                 (out / "cards/Sales/1002 Bob Smith.xlsx", out / "pdf/1002 Bob Smith.pdf"), "2026-10", "en"),
        Delivery("employee:1003", "carol@example.com", "Carol King", "employee",
                 (out / "cards/Sales/1003 Carol King.xlsx",), "2026-10", "en"),
        Delivery("manager:1003", "carol@example.com", "Carol King", "manager",
                 (out / "bundles/manager 1003 Carol King.zip",), "2026-10", "en", team="Carol King"),
        Delivery("department:Продажи", "head@пример.рф", "Пётр Сидоров", "department",
                 (out / "bundles/Отдел продаж.zip",), "2026-10", "ru", team="Продажи"),
    ]


def log_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sent_keys(path: Path) -> list[str]:
    return [r["key"] for r in log_records(path) if r["status"] == "sent"]


def assert_delivered_exactly(handler: Handler, ds: list[Delivery]) -> None:
    """Every delivery arrived once, to its recipient only, with exactly its files."""
    received = {}
    for r in handler.messages:
        assert len(r.rcpt_tos) == 1
        msg = r.message
        assert msg["Bcc"] is None and msg["Cc"] is None
        to = msg["To"].addresses
        assert len(to) == 1 and to[0].addr_spec == r.rcpt_tos[0]
        assert r.mail_from == SENDER
        files = {a.get_filename(): a.get_content() for a in msg.iter_attachments()}
        received.setdefault(r.rcpt_tos[0], []).append(files)
    ascii_rcpt = {d.key: d.to_address.split("@")[0] + "@" + d.to_address.split("@")[1].encode("idna").decode()
                  for d in ds}
    expected: dict[str, list[dict]] = {}
    for d in ds:
        expected.setdefault(ascii_rcpt[d.key], []).append({p.name: p.read_bytes() for p in d.attachments})
    assert sorted(received) == sorted(expected)
    for rcpt, bundles in expected.items():
        assert sorted(map(sorted, received[rcpt])) == sorted(map(sorted, bundles))
        for files in bundles:
            assert files in received[rcpt]
    # Nobody's address in anybody else's message.
    for r in handler.messages:
        others = {a for a in ascii_rcpt.values() if a != r.rcpt_tos[0]}
        text = r.data.decode("ascii")
        assert not any(o in text for o in others)


# --------------------------------------------------------------------------------------------
# Addresses


@pytest.mark.parametrize("address", [
    "anna@example.com", "anna.petrova+kpi@mail.example.co.uk", "o'brien@example.ie", "ivan@почта.рф",
    "A_B-C@sub-domain.example.com",
])
def test_good_addresses(address):
    assert check_address(address) is None


@pytest.mark.parametrize(("address", "words"), [
    ("", "no e-mail"),
    (None, "no e-mail"),
    ("   ", "no e-mail"),
    ("anna.example.com", "no '@'"),
    ("anna@@example.com", "more than one"),
    ("anna@b@example.com", "more than one"),
    ("anna petrova@example.com", "space"),
    (" anna@example.com", "space"),
    ("anna@example", "no dot"),
    ("@example.com", "nothing before"),
    ("anna@", "nothing after"),
    ("Anna <anna@example.com>", "bare address"),
    ('"anna"@example.com', "bare address"),
    ("anna@example.com, bob@example.com", "bare address"),
    ("anna@example.com (Anna)", "bare address"),
    ("anna@example.com\r\nBcc: eve@evil.com", "line break"),
    ("anna@example.com\n", "line break"),
    ("anna\u200b@example.com", "control"),
    ("анна@example.com", "non-Latin"),
    ("anna.@example.com", "dot"),
    ("an..na@example.com", "dot"),
    ("anna@example..com", "empty part"),
    ("anna@-example.com", "not a valid domain"),
    ("anna@exa_mple.com", "not a valid domain"),
    ("anna@1.2.3.4", "number"),
    ("anna@[1.2.3.4]", "bare address"),
])
def test_bad_addresses_are_explained(address, words):
    reason = check_address(address)
    assert reason is not None and words in reason


# --------------------------------------------------------------------------------------------
# Options


def test_config_from_options(monkeypatch):
    monkeypatch.delenv("XL_KPI_SMTP_PASSWORD", raising=False)
    c = SmtpConfig.from_options("smtp.example.com:2525", starttls=False, ssl=False, user=None, sender=SENDER)
    assert (c.host, c.port, c.security, c.user, c.password) == ("smtp.example.com", 2525, "none", None, None)
    c = SmtpConfig.from_options("[::1]:25", starttls=False, ssl=False, user=None, sender=SENDER)
    assert (c.host, c.port) == ("::1", 25)
    assert SmtpConfig.from_options("[::1]", starttls=False, ssl=False, user=None, sender=SENDER).port == 25
    c = SmtpConfig.from_options("mail.example.com", starttls=True, ssl=False, user=None, sender=SENDER)
    assert (c.port, c.security) == (587, "starttls")
    c = SmtpConfig.from_options("mail.example.com", starttls=False, ssl=True, user=None, sender=SENDER)
    assert (c.port, c.security) == (465, "ssl")


@pytest.mark.parametrize(("smtp", "words"), [
    ("", "HOST:PORT"),
    ("::1:25", "brackets"),
    ("[::1:25", "']'"),
    ("host:0", "port"),
    ("host:70000", "port"),
    ("host:smtp", "port"),
    (":25", "host"),
    ("[127.0.0.1]:25", "IPv6"),
])
def test_bad_smtp_option(smtp, words):
    with pytest.raises(KpiError, match=words):
        SmtpConfig.from_options(smtp, starttls=False, ssl=False, user=None, sender=SENDER)


def test_config_rejects_both_tls_flags_and_bad_sender():
    with pytest.raises(KpiError, match="not both"):
        SmtpConfig.from_options("h:25", starttls=True, ssl=True, user=None, sender=SENDER)
    with pytest.raises(KpiError, match="--from"):
        SmtpConfig.from_options("h:25", starttls=False, ssl=False, user=None, sender="")
    with pytest.raises(KpiError, match="--from"):
        SmtpConfig.from_options("h:25", starttls=False, ssl=False, user=None, sender="HR <hr@example.com>")


def test_password_only_from_the_environment(monkeypatch):
    monkeypatch.delenv("XL_KPI_SMTP_PASSWORD", raising=False)
    with pytest.raises(KpiError, match="XL_KPI_SMTP_PASSWORD"):
        SmtpConfig.from_options("h:587", starttls=True, ssl=False, user="hr", sender=SENDER)
    monkeypatch.setenv("XL_KPI_SMTP_PASSWORD", PASSWORD)
    c = SmtpConfig.from_options("h:587", starttls=True, ssl=False, user="hr", sender=SENDER)
    assert (c.user, c.password) == ("hr", PASSWORD)
    assert PASSWORD not in repr(c) and PASSWORD not in str(c)
    # No user: no login, the variable is not even read.
    assert SmtpConfig.from_options("h:25", starttls=False, ssl=False, user=None, sender=SENDER).password is None
    # Another variable name.
    monkeypatch.setenv("MY_PW", "other")
    c = SmtpConfig.from_options("h:465", starttls=False, ssl=True, user="hr", sender=SENDER, password_env="MY_PW")
    assert c.password == "other"
    # A login over a plain connection to another host would show the password to the network.
    with pytest.raises(KpiError, match="clear text"):
        SmtpConfig.from_options("smtp.example.com:25", starttls=False, ssl=False, user="hr", sender=SENDER)
    assert SmtpConfig.from_options("127.0.0.1:25", starttls=False, ssl=False, user="hr", sender=SENDER).user == "hr"


# --------------------------------------------------------------------------------------------
# Messages


def test_fold_once_bytes_equal_message_by_message(out, tmp_path, monkeypatch):
    """Headers folded once per process (FAST_POLICY) give the same bytes as folding each message anew."""
    import random

    from xl_kpi.delivery.mail import compose

    names = ["Иванова Анна", "Bob Smith", "Ёлкина-Сидорова Анна-Мария Константиновна " * 3, 'O"Brien, Jr.',
             "Пётр (ИТ) Сидоров", "", "a" * 120]
    many = []
    for i, name in enumerate(names * 2):  # twice: the second round is served from the cache
        f = tmp_path / "att" / f"{i % 7} {name[:60]} карта.xlsx"
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"PK\x03\x04 card " + name.encode())
        many.append(Delivery(f"employee:{i}", f"e{i}@example.com", name, ("employee", "manager")[i % 2],
                             (f,), "2026-Q4", ("ru", "en")[i % 3 % 2], team=name[:30]))
    many += deliveries(out)
    templates = [(None, None), ("Итоги KPI за {period_name} — {name}, {team} " * 3, "Hi {name}\n{files}")]

    def built(policy):
        monkeypatch.setattr(compose, "FAST_POLICY", policy)
        raw = []
        for k, (subject, body) in enumerate(templates):
            for j, d in enumerate(many):
                random.seed(1000 * k + j)  # the multipart boundary is random
                raw.append(build_message(d, SENDER, subject_template=subject, body_template=body,
                                         date=DATE).as_bytes())
        return raw

    fast = compose.FAST_POLICY
    reference = built(compose.POLICY)
    compose._FOLDED.clear()
    assert built(fast) == reference
    assert compose._FOLDED  # the cache was used, not bypassed


@settings(max_examples=120, deadline=None)
@given(st.text(alphabet="АБВЁёйЙжщ ъ-'\"(),.<>@;:\\ Abc1\u0301\u00e9\u00a0", max_size=90),
       st.lists(st.text(alphabet="карта КАРТА 1001 ().,;'%*\"x\u00e9\u00a0", min_size=1, max_size=90), min_size=1,
                max_size=3),
       st.sampled_from([".xlsx", ".pdf", ".zip", ".csv", ".txt", ".bin", ""]),
       st.sampled_from([(None, None), ("Итоги {period_name} — {name} / {team} " * 2, "Hi {name}\n{files}"),
                        ("plain", "ascii {name}\n" * 3), (None, "x " * 60 + "\n--===============1==\n\rend")]),
       st.integers(0, 5), st.binary(max_size=300))
def test_message_bytes_written_directly_equal_the_email_package(name, filenames, ext, texts, which, data):
    """The bytes a run sends or writes (written directly, mime.py) are the email package's for the same message:
    names, texts, file names and types, sizes, languages and kinds; the same random boundary for the same seed."""
    import random
    import shutil

    from xl_kpi.delivery.mail import compose

    root = Path(tempfile.mkdtemp())
    files = []
    for i, fn in enumerate(filenames):
        f = root / str(i) / (fn.replace("/", "_") + ext)
        f.parent.mkdir()
        f.write_bytes(data * (i + 1))
        files.append(f)
    kind, language = ("employee", "manager", "department")[which % 3], ("ru", "en")[which % 2]
    d = Delivery(f"{kind}:{which}", "anna@example.com" if which % 2 else "head@пример.рф", name, kind,
                 tuple(files), "2026-Q4", language, team=name[:20])
    read = compose._read_attachments(d)
    shutil.rmtree(root)
    args = (d, SENDER, read, compose._digest(read), *texts, DATE)
    random.seed(which)
    direct, message_id = compose._compose_bytes(*args)
    random.seed(which)
    reference = compose._compose(*args)
    assert direct == reference.as_bytes(policy=compose.POLICY)
    assert message_id == reference["Message-ID"]


_WORD = st.text(alphabet="ЖжЁёЯяЙ-abcXYZ019éß中Ω", min_size=1, max_size=45)


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORD, min_size=1, max_size=7), st.text(alphabet="abcxyz019._-", min_size=1, max_size=60)
       .filter(lambda s: s[0] not in "._" and s[-1] not in "._" and ".." not in s),
       st.sampled_from(["example.com", "kpi.example.com", "xn--e1afmkfd.xn--p1ai", "a" * 40 + ".example.com"]))
def test_to_header_written_directly_is_the_email_packages(words, local, domain):
    """The To header of a display name in words, folded without the email package's parse tree, is its bytes."""
    from xl_kpi.delivery.mail import mime

    name = " ".join(words)
    direct = mime.to_header(name, local, domain)
    if direct is not None:
        assert direct == mime.folded_address.__wrapped__("To", name, local, domain)


@pytest.mark.parametrize("name", ["Козлов Денис Иванович Aaaa", "Кузнецов Денис Владимирович Aaab",
                                  "Ёлкина-Сидорова Анна-Мария Константиновна", "Иванова Анна", "Li 中文 Ωmega",
                                  "Константинопольская-Преображенская Анастасия-Александра Вячеславовна 3"])
def test_to_header_of_usual_names_is_written_directly(name):
    from xl_kpi.delivery.mail import mime

    direct = mime.to_header(name, "e100001", "example.com")
    assert direct is not None  # written directly, not by the email package
    assert direct == mime.folded_address.__wrapped__("To", name, "e100001", "example.com")


def test_boundary_and_base64_are_the_generators():
    """The multipart boundary (the same draw, moved off a line of the text that holds it) and the base64 lines are
    what the email package writes."""
    import email.contentmanager
    import random
    from email.generator import BytesGenerator

    from xl_kpi.delivery.mail import mime

    moved = 0
    for seed in range(200):
        random.seed(seed)
        first = BytesGenerator._make_boundary(b"x\r\n")
        nl = b"\n" if seed % 3 else b"\r\n"
        text = b"x" + nl + b"--" + first.encode() + nl + (b"--" + first.encode() + b".0--" + nl if seed % 2 else b"")
        for t in (b"x\r\n", text):
            random.seed(seed)
            expected = BytesGenerator._make_boundary(t)
            random.seed(seed)
            assert mime.boundary(t) == expected
            moved += expected != first
    assert moved  # some texts did hold the first boundary
    for n in [*range(0, 130), 57 * 1000, 57 * 1000 + 1]:
        data = bytes(range(256)) * (n // 256 + 1)
        data = data[:n]
        expected = email.contentmanager._encode_base64(data, 78).replace("\n", "\r\n").encode()
        assert mime.base64_lines(data) == expected


def _unbound(raw: bytes) -> bytes:
    """The message with its (random) multipart boundary replaced by a fixed one."""
    boundary = re.search(rb'boundary="([^"]+)"', raw).group(1)
    return raw.replace(boundary, b"BOUNDARY")


@pytest.mark.parametrize("jobs", [1, 2])
def test_dry_run_eml_bytes_equal_messages_built_one_by_one(out, tmp_path, monkeypatch, jobs):
    """The .eml files of a dry run (workers, batches, headers folded once) are the messages built one by one."""
    from xl_kpi.delivery.mail import compose

    todo = deliveries(out)
    box = tmp_path / "box"
    box.mkdir()
    report = send_all(todo, None, tmp_path / "log.jsonl", dry_run_dir=box, date=DATE, jobs=jobs)
    assert len(report.written) == len(todo)
    monkeypatch.setattr(compose, "FAST_POLICY", compose.POLICY)  # the reference: every header folded anew
    by_key = {p.name: p for p in report.written}
    for d in todo:
        [path] = [p for name, p in by_key.items() if name.startswith(d.key.replace(":", "_"))]
        reference = build_message(d, "xl-kpi@example.invalid", date=DATE).as_bytes()  # a dry run's sender
        assert _unbound(path.read_bytes()) == _unbound(reference)
    assert sorted(p.name for p in box.iterdir()) == sorted(by_key)  # no temporary files left


def test_russian_message(out):
    d = deliveries(out)[0]
    msg = build_message(d, SENDER, date=DATE)
    raw = msg.as_bytes()
    assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert back["Subject"] == "Карта KPI за октябрь 2026"
    assert back["To"].addresses[0].display_name == "Иванова Анна"
    assert back["To"].addresses[0].addr_spec == "anna@example.com"
    body = back.get_body(("plain",)).get_content()
    assert body.startswith("Здравствуйте, Иванова Анна!")
    assert "1001 Иванова Анна.xlsx" in body and "конфиденциально" in body and "не пересылайте" in body
    [part] = back.iter_attachments()
    assert part.get_filename() == "1001 Иванова Анна.xlsx"
    assert part.get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert part.get_content() == d.attachments[0].read_bytes()
    # The file name twice: RFC 2231 in Content-Disposition, RFC 2047 in Content-Type (old Outlook).
    head = raw.decode()
    assert re.search(r"filename\*(0\*)?=utf-8''1001%20%D0%98", head)
    assert re.search(r'\r\n name="=\?utf-8\?b\?[A-Za-z0-9+/=]+\?="\r\n', head)
    assert email.message_from_bytes(raw, policy=email.policy.compat32).get_payload()[1].get_filename() == \
        "1001 Иванова Анна.xlsx"
    assert back["Sensitivity"] == "Company-Confidential"
    assert back["Date"].datetime == DATE


def test_english_employee_manager_and_department_texts(out):
    _, bob, _, team, dept = deliveries(out)
    m = build_message(bob, SENDER, date=DATE)
    assert m["Subject"] == "KPI card for October 2026"
    body = m.get_body(("plain",)).get_content()
    assert body.startswith("Dear Bob Smith,") and "1002 Bob Smith.xlsx, 1002 Bob Smith.pdf" in body
    assert "confidential" in body and "do not forward" in body
    assert [p.get_content_type() for p in m.iter_attachments()] == [
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/pdf"]
    m = build_message(team, SENDER, date=DATE)
    assert m["Subject"] == "KPI cards of your team for October 2026"
    assert "your team" in m.get_body(("plain",)).get_content()
    assert [p.get_content_type() for p in m.iter_attachments()] == ["application/zip"]
    m = build_message(dept, SENDER, date=DATE)
    assert m["Subject"] == "Карты KPI отдела «Продажи» за октябрь 2026"
    assert "руководителю" in m.get_body(("plain",)).get_content()
    assert m["To"].addresses[0].domain == "xn--e1afmkfd.xn--p1ai"  # пример.рф, as the network needs it


def test_message_id_is_deterministic(out):
    d = deliveries(out)[1]
    a = build_message(d, SENDER, date=DATE)
    b = build_message(d, SENDER)
    assert a["Message-ID"] == b["Message-ID"] and a["Message-ID"].endswith("@kpi.example.com>")
    assert build_message(replace(d, key="employee:9"), SENDER)["Message-ID"] != a["Message-ID"]
    d.attachments[0].write_bytes(b"PK\x03\x04 corrected card")
    assert build_message(d, SENDER)["Message-ID"] != a["Message-ID"]


def test_templates_are_plain_fields_only(out):
    d = deliveries(out)[0]
    m = build_message(d, SENDER, subject_template="{name}: KPI {period} / {period_name} / в {period_in} {{x}}")
    assert m["Subject"] == "Иванова Анна: KPI 2026-10 / октябрь 2026 / в октябре 2026 {x}"
    m = build_message(d, SENDER, subject_template={"en": "EN {period}"}, body_template="Hi {name}\n{files}")
    assert m["Subject"] == "Карта KPI за октябрь 2026"  # no ru template: the default
    assert m.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Hi Иванова Анна\n1001 Иванова Анна.xlsx\n"
    for bad in ["{name.__class__}", "{name.__class__.__mro__}", "{name[0]}", "{0}", "{}", "{name!r}",
                "{name:>999999999}", "{password}", "{name", "name}"]:
        with pytest.raises(KpiError):
            build_message(d, SENDER, subject_template=bad)
        with pytest.raises(KpiError):
            render_template(bad, {"name": "x"})


def test_headers_cannot_be_injected(out):
    d = replace(deliveries(out)[1], to_name="Bob\r\nBcc: eve@evil.com", team="x")
    m = build_message(d, SENDER, subject_template="KPI\r\nBcc: eve@evil.com {name}")
    back = email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
    assert back["Bcc"] is None and len(back["To"].addresses) == 1
    assert back["To"].addresses[0].addr_spec == "bob@example.com"
    assert "\n" not in back["Subject"]
    with pytest.raises(KpiError, match="address"):
        build_message(replace(d, to_address="bob@example.com\r\nBcc: eve@evil.com"), SENDER)


# --------------------------------------------------------------------------------------------
# Dry run


def test_dry_run_writes_eml_and_sends_nothing(out):
    handler = Handler()
    dan = Delivery("employee:1004", "", "Dan", "employee", (out / "pdf/1002 Bob Smith.pdf",), "2026-10", "en")
    ds = [*deliveries(out), dan]
    calls: list[int] = []
    with smtp_server(handler) as port:
        report = send_all(ds, config(port), out / "send-log.jsonl", dry_run_dir=out / "outbox",
                          on_progress=calls.append, date=DATE)
    assert handler.messages == [] and handler.sessions == 0
    assert not (out / "send-log.jsonl").exists()
    assert report.sent == [] and report.invalid == [("employee:1004", "no e-mail address")]
    assert sorted(p.name for p in report.written) == sorted(
        ["employee_1001.eml", "employee_1002.eml", "employee_1003.eml", "manager_1003.eml", "department_Продажи.eml"])
    assert sorted(os.listdir(out / "outbox")) == sorted(p.name for p in report.written)
    msg = email.message_from_bytes((out / "outbox/employee_1001.eml").read_bytes(), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "anna@example.com" and msg["Subject"] == "Карта KPI за октябрь 2026"
    assert calls == list(range(1, 7))
    # Without any SMTP settings too.
    assert len(send_all(ds, None, out / "log", dry_run_dir=out / "outbox2").written) == 5


# --------------------------------------------------------------------------------------------
# Sending


def test_each_recipient_gets_exactly_their_own(out):
    handler = Handler()
    ds = deliveries(out)
    calls: list[int] = []
    log = out / "send-log.jsonl"
    with smtp_server(handler) as port:
        report = send_all(ds, config(port), log, on_progress=calls.append)
    assert report.ok and report.sent == [d.key for d in ds]
    assert calls == [1, 2, 3, 4, 5]
    assert handler.sessions == 1  # one connection for the run
    assert_delivered_exactly(handler, ds)
    records = log_records(log)
    assert [r["key"] for r in records if r["status"] == "sent"] == [d.key for d in ds]
    assert {r["status"] for r in records} == {"sending", "sent"}
    assert all(len(r["sha256"]) == 64 and r["to"] and r["time"] for r in records)
    assert not log.with_name(log.name + ".lock").exists()


def test_invalid_addresses_are_reported_not_sent(out):
    handler = Handler()
    ds = deliveries(out)
    ds[1] = replace(ds[1], to_address="Bob Smith <bob@example.com>")
    ds[2] = replace(ds[2], to_address="")
    ds.append(Delivery("employee:1005", "eve@example", "Eve", "employee", (out / "pdf/1002 Bob Smith.pdf",),
                       "2026-10", "en"))
    with smtp_server(handler) as port:
        report = send_all(ds, config(port), out / "log.jsonl")
    assert [k for k, _ in report.invalid] == ["employee:1002", "employee:1003", "employee:1005"]
    assert "bare address" in report.invalid[0][1] and "no dot" in report.invalid[2][1]
    assert report.sent == ["employee:1001", "manager:1003", "department:Продажи"]
    assert not report.ok
    assert handler.by_recipient() == Counter(["anna@example.com", "carol@example.com", "head@xn--e1afmkfd.xn--p1ai"])


def test_refused_recipient_is_failed_and_the_run_goes_on(out):
    handler = Handler()
    handler.refuse = {"bob@example.com"}
    ds, log = deliveries(out), out / "log.jsonl"
    with smtp_server(handler) as port:
        report = send_all(ds, config(port), log)
        assert report.failed == [("employee:1002", "recipient refused: 550 5.1.1 no such mailbox")]
        assert len(report.sent) == 4
        handler.refuse = set()
        again = send_all(ds, config(port), log)
    assert again.sent == ["employee:1002"] and len(again.skipped_already_sent) == 4 and again.ok
    assert_delivered_exactly(handler, ds)


def test_server_closing_mid_run_then_resume(out):
    ds, log = deliveries(out), out / "log.jsonl"
    failing = Handler()
    failing.close_after = 2
    with smtp_server(failing) as port, pytest.raises(SmtpDownError) as info:
        send_all(ds, config(port), log)
    err = info.value
    assert "after 2 of 5" in str(err) and "rerun" in str(err) and "421" in str(err)
    assert err.report.sent == ["employee:1001", "employee:1002"]
    assert err.report.remaining == ["employee:1003", "manager:1003", "department:Продажи"]
    assert sent_keys(log) == ["employee:1001", "employee:1002"]
    assert failing.sessions == 2  # reconnected once, then gave up
    assert not log.with_name(log.name + ".lock").exists()

    healthy = Handler()
    with smtp_server(healthy) as port:
        report = send_all(ds, config(port), log)
        assert report.sent == ["employee:1003", "manager:1003", "department:Продажи"]
        assert report.skipped_already_sent == ["employee:1001", "employee:1002"]
        # Everything sent: a third run sends nothing.
        third = send_all(ds, config(port), log)
    assert third.sent == [] and len(third.skipped_already_sent) == 5 and third.ok
    both = Handler()
    both.messages = failing.messages + healthy.messages
    assert_delivered_exactly(both, ds)  # exactly one message per delivery over both servers


def test_server_not_there(out):
    port = free_port()
    with pytest.raises(SmtpDownError, match="could not be reached") as info:
        send_all(deliveries(out), config(port), out / "log.jsonl")
    assert info.value.report.sent == [] and len(info.value.report.remaining) == 5
    assert sent_keys(out / "log.jsonl") == []


def test_dropped_connection_is_reopened_once(out):
    handler = Handler()
    handler.drop_at_rcpt_once = {"carol@example.com"}
    ds = deliveries(out)
    with smtp_server(handler) as port:
        report = send_all(ds, config(port), out / "log.jsonl")
    assert report.ok and len(report.sent) == 5
    assert_delivered_exactly(handler, ds)


def test_maybe_delivered_is_never_sent_twice(out):
    """The server took Bob's message but hung up before confirming: a rerun must not send it again."""
    handler = Handler()
    handler.drop_after_data = {"bob@example.com"}
    ds, log = deliveries(out), out / "log.jsonl"
    with smtp_server(handler) as port:
        report = send_all(ds, config(port), log)
        assert [k for k, _ in report.uncertain] == ["employee:1002"] and len(report.sent) == 4
        handler.drop_after_data = set()
        again = send_all(ds, config(port), log)
        assert again.sent == [] and [k for k, _ in again.uncertain] == ["employee:1002"]
        assert_delivered_exactly(handler, ds)
        forced = send_all(ds, config(port), log, retry_uncertain=True)
    assert forced.sent == ["employee:1002"]
    assert handler.by_recipient()["bob@example.com"] == 2


def test_regenerated_or_readdressed_card_is_new(out):
    handler = Handler()
    ds, log = deliveries(out), out / "log.jsonl"
    with smtp_server(handler) as port:
        send_all(ds, config(port), log)
        ds[0].attachments[0].write_bytes(b"PK\x03\x04 anna's corrected card")
        assert send_all(ds, config(port), log).sent == ["employee:1001"]
        assert send_all(ds, config(port), log).sent == []
        ds[2] = replace(ds[2], to_address="carol.king@example.com")
        assert send_all(ds, config(port), log).sent == ["employee:1003"]
        ds[2] = replace(ds[2], to_address="Carol.King@Example.com")  # same address, other case
        assert send_all(ds, config(port), log).sent == []
    assert len(handler.messages) == 7


def test_one_mailbox_in_punycode_or_unicode_is_not_sent_twice(out):
    """head@пример.рф and head@xn--e1afmkfd.xn--p1ai are one mailbox (canonical form): the log knows it was sent."""
    handler = Handler()
    ds, log = deliveries(out), out / "log.jsonl"
    with smtp_server(handler) as port:
        send_all(ds, config(port), log)
        ds[4] = replace(ds[4], to_address="Head@XN--E1AFMKFD.xn--p1ai")
        assert send_all(ds, config(port), log).sent == []
    assert len(handler.messages) == 5


def test_torn_log_line_and_missing_attachment(out):
    handler = Handler()
    ds, log = deliveries(out), out / "log.jsonl"
    log.write_text('{"key": "employee:1001", "to": "anna@exa', encoding="utf-8")  # a crash mid-line
    ds[1].attachments[1].unlink()
    with smtp_server(handler) as port:
        report = send_all(ds, config(port), log)
    assert report.failed == [("employee:1002", f"attachment missing: {ds[1].attachments[1]}")]
    assert len(report.sent) == 4
    lines = log.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["key"] for line in lines[1:] if json.loads(line)["status"] == "sent"] == report.sent


def test_bad_template_or_duplicate_key_stops_before_sending(out):
    handler = Handler()
    ds = deliveries(out)
    with smtp_server(handler) as port:
        with pytest.raises(KpiError, match="not allowed"):
            send_all(ds, config(port), out / "log.jsonl", body_template={"ru": "{name.__init__.__globals__}"})
        with pytest.raises(KpiError, match="same key"):
            send_all([*ds, ds[0]], config(port), out / "log.jsonl")
        with pytest.raises(KpiError, match="SMTP"):
            send_all(ds, None, out / "log.jsonl")
    assert handler.sessions == 0


# --------------------------------------------------------------------------------------------
# Lock


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_second_run_waits_for_the_lock(out):
    import fcntl

    handler = Handler()
    log = out / "log.jsonl"
    lock = log.with_name(log.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"4242 otherhost\n")
    try:
        with smtp_server(handler) as port, pytest.raises(MailError, match=r"another run.*4242"):
            send_all(deliveries(out), config(port), log)
    finally:
        os.close(fd)
    assert handler.messages == []


def test_stale_lock_of_a_dead_process_is_taken_over(out):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    log = out / "log.jsonl"
    lock = log.with_name(log.name + ".lock")
    lock.write_text(f"{dead.stdout.strip()} {socket.gethostname()}\n")
    handler = Handler()
    with smtp_server(handler) as port:
        assert len(send_all(deliveries(out), config(port), log).sent) == 5
    assert not lock.exists()


def test_concurrent_runs_never_double_send(out):
    handler = Handler()
    ds, log = deliveries(out), out / "log.jsonl"
    results: list[object] = []
    with smtp_server(handler) as port:
        def run() -> None:
            try:
                results.append(send_all(ds, config(port), log))
            except MailError as e:
                results.append(e)
        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        send_all(ds, config(port), log)  # whatever the race left, this finishes the job
    assert_delivered_exactly(handler, ds)


# --------------------------------------------------------------------------------------------
# TLS and login (a self-signed certificate made on the fly)

cryptography = pytest.importorskip("cryptography")


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, str(cert_file)


class Authenticator:
    def __init__(self) -> None:
        self.logins: list[tuple[bytes, bytes]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"hr" and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)


def test_starttls_with_login(out, tls, monkeypatch):
    server_ctx, cafile = tls
    handler, auth = Handler(), Authenticator()
    monkeypatch.setenv("XL_KPI_SMTP_PASSWORD", PASSWORD)
    ds, log = deliveries(out), out / "log.jsonl"
    with smtp_server(handler, tls_context=server_ctx, require_starttls=True, auth_required=True,
                     authenticator=auth) as port:
        c = SmtpConfig.from_options(f"127.0.0.1:{port}", starttls=True, ssl=False, user="hr", sender=SENDER,
                                    cafile=cafile)
        report = send_all(ds, c, log)
        assert report.ok and auth.logins == [(b"hr", PASSWORD.encode())]
        assert_delivered_exactly(handler, ds)
        # A wrong password: a clear error that never shows the password.
        monkeypatch.setenv("XL_KPI_SMTP_PASSWORD", "wrong-" + PASSWORD)
        c = SmtpConfig.from_options(f"127.0.0.1:{port}", starttls=True, ssl=False, user="hr", sender=SENDER,
                                    cafile=cafile)
        (out / "c2.xlsx").write_bytes(b"new")
        with pytest.raises(MailError, match="refused the login of user hr") as info:
            send_all([replace(ds[0], attachments=(out / "c2.xlsx",))], c, log)
        assert PASSWORD not in str(info.value)
        # Without our CA the self-signed certificate is refused.
        with pytest.raises(MailError, match="not trusted"):
            send_all([replace(ds[0], attachments=(out / "c2.xlsx",))], replace(c, cafile=None), log)
    assert PASSWORD not in log.read_text(encoding="utf-8")
    assert PASSWORD not in repr(report) and PASSWORD not in repr(c)


def test_ssl_from_the_first_byte(out, tls):
    server_ctx, cafile = tls
    handler = Handler()
    ds = deliveries(out)[:2]
    with smtp_server(handler, ssl_context=server_ctx) as port:
        c = SmtpConfig.from_options(f"127.0.0.1:{port}", starttls=False, ssl=True, user=None, sender=SENDER,
                                    cafile=cafile)
        assert send_all(ds, c, out / "log.jsonl").ok
    assert_delivered_exactly(handler, ds)


def test_starttls_required_but_not_offered_sends_nothing(out):
    handler = Handler()
    with smtp_server(handler) as port:
        c = SmtpConfig.from_options(f"127.0.0.1:{port}", starttls=True, ssl=False, user=None, sender=SENDER)
        with pytest.raises(MailError, match="does not offer STARTTLS"):
            send_all(deliveries(out), c, out / "log.jsonl")
    assert handler.messages == []


# --------------------------------------------------------------------------------------------
# Deadlines: a server that trickles (issue 9 §7). smtplib's timeout is per read, so a server
# that sends a continuation line every few tenths of a second never trips it.


class TricklingServer:
    """A raw SMTP server on loopback that answers normally but, at ``trickle_at`` (``"greeting"``,
    ``"mail"``, ``"data-end"`` or ``"quit"``), sends endless ``NNN-`` continuation lines instead of a reply.
    ``only_for``: trickle at ``"data-end"`` only for messages to that recipient."""

    def __init__(self, trickle_at: str, only_for: str | None = None, every: float = 0.2) -> None:
        self.trickle_at, self.only_for, self.every = trickle_at, only_for, every
        self.accepted: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket, code: str) -> None:
        while not self.stop.is_set():
            conn.sendall(f"{code}-still thinking\r\n".encode())
            self.stop.wait(self.every)

    def _session(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        rcpt = ""
        try:
            if self.trickle_at == "greeting":
                self._trickle(conn, "220")
                return
            conn.sendall(b"220 trickle.test ESMTP\r\n")
            for raw in f:
                line = raw.decode().strip().upper()
                if line.startswith(("EHLO", "HELO")):
                    conn.sendall(b"250 trickle.test\r\n")
                elif line.startswith("MAIL"):
                    if self.trickle_at == "mail":
                        self._trickle(conn, "250")
                        return
                    conn.sendall(b"250 OK\r\n")
                elif line.startswith("RCPT"):
                    rcpt = raw.decode().split("<", 1)[1].split(">", 1)[0]
                    conn.sendall(b"250 OK\r\n")
                elif line == "DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    for body in f:
                        if body == b".\r\n":
                            break
                    if self.trickle_at == "data-end" and self.only_for in (None, rcpt):
                        self._trickle(conn, "250")
                        return
                    self.accepted.append(rcpt)
                    conn.sendall(b"250 OK queued\r\n")
                elif line == "RSET":
                    conn.sendall(b"250 OK\r\n")
                elif line == "QUIT":
                    if self.trickle_at == "quit":
                        self._trickle(conn, "221")
                        return
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"502 no\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def trickling():
    servers: list[TricklingServer] = []

    def make(trickle_at: str, only_for: str | None = None) -> TricklingServer:
        servers.append(TricklingServer(trickle_at, only_for))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _timed(fn):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) when it takes over 20 s."""
    result: dict = {}

    def run() -> None:
        t0 = time.monotonic()
        try:
            result["value"] = fn()
        except BaseException as e:  # handed to the test
            result["error"] = e
        result["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "the run hung on a trickling server"
    return result


@pytest.mark.slow
def test_a_server_trickling_its_greeting_ends_within_the_session_deadline(out, trickling):
    server = trickling("greeting")
    ds, log = deliveries(out), out / "log.jsonl"
    res = _timed(lambda: send_all(ds, config(server.port, session_deadline=1, message_deadline=1), log))
    err = res.get("error")
    assert isinstance(err, SmtpDownError), res
    assert res["seconds"] < 6
    assert "within 1 s" in str(err) and f"127.0.0.1:{server.port}" in str(err)
    assert sorted(err.report.remaining) == sorted(d.key for d in ds) and err.report.sent == []
    assert not log.exists() or sent_keys(log) == []


@pytest.mark.slow
def test_a_server_trickling_after_the_data_leaves_the_message_maybe_delivered(out, trickling):
    server = trickling("data-end", only_for="bob@example.com")
    ds, log = deliveries(out), out / "log.jsonl"
    res = _timed(lambda: send_all(ds, config(server.port, session_deadline=5, message_deadline=1), log))
    report = res.get("value")
    assert report is not None, res
    assert res["seconds"] < 8
    assert [k for k, _ in report.uncertain] == ["employee:1002"]
    assert "within 1 s" in report.uncertain[0][1]
    assert sorted(report.sent) == sorted(d.key for d in ds if d.key != "employee:1002")
    bob = [r for r in log_records(log) if r["key"] == "employee:1002"]
    assert [r["status"] for r in bob] == ["sending", "uncertain"] and "within 1 s" in bob[-1]["reason"]
    again = _timed(lambda: send_all(ds, config(server.port, session_deadline=5, message_deadline=1), log))["value"]
    assert again.sent == [] and [k for k, _ in again.uncertain] == ["employee:1002"]  # never sent twice


@pytest.mark.slow
def test_a_server_trickling_before_the_data_leaves_the_message_not_sent(out, trickling):
    server = trickling("mail")
    ds, log = deliveries(out), out / "log.jsonl"
    res = _timed(lambda: send_all(ds, config(server.port, session_deadline=5, message_deadline=1), log))
    err = res.get("error")
    assert isinstance(err, SmtpDownError), res
    assert res["seconds"] < 8
    assert "within 1 s" in str(err)
    first = [r for r in log_records(log) if r["key"] == ds[0].key]
    assert [r["status"] for r in first] == ["sending", "not_sent", "sending", "not_sent"]
    assert sorted(err.report.remaining) == sorted(d.key for d in ds) and err.report.uncertain == []


@pytest.mark.parametrize("name", ["timeout", "session_deadline", "message_deadline"])
def test_deadlines_must_be_positive(name):
    with pytest.raises(KpiError, match="positive"):
        SmtpConfig("127.0.0.1", 25, sender=SENDER, **{name: 0})


@pytest.mark.slow
def test_a_server_trickling_its_goodbye_does_not_hold_the_end_of_the_run(out, trickling, monkeypatch):
    import xl_kpi.delivery.mail.send

    monkeypatch.setattr(xl_kpi.delivery.mail.send, "QUIT_DEADLINE", 0.5)
    server = trickling("quit")
    ds = deliveries(out)
    res = _timed(lambda: send_all(ds, config(server.port, session_deadline=5, message_deadline=5), out / "log.jsonl"))
    assert res.get("value") is not None and res["value"].ok, res
    assert res["seconds"] < 5 and len(res["value"].sent) == 5


# ---- send log and its lock never follow a symbolic link (issue 9 §3)


def test_symlinked_send_log_lock_is_refused_and_its_target_not_truncated(out, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / "send-log.jsonl.lock").symlink_to(victim)
    with smtp_server(Handler()) as port, pytest.raises(KpiError, match="symbolic link"):
        send_all(deliveries(out), config(port), out / "send-log.jsonl")
    assert victim.read_text() == "precious"


def test_symlinked_send_log_is_refused_and_no_address_lands_outside(out, tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text("")
    (out / "send-log.jsonl").symlink_to(outside)
    handler = Handler()
    with smtp_server(handler) as port, pytest.raises(KpiError, match="symbolic link"):
        send_all(deliveries(out), config(port), out / "send-log.jsonl")
    assert outside.read_text() == "" and handler.messages == []


def _rfc2047_joined(raw: bytes) -> bytes:
    """The message as a mail client reads its headers: RFC 2047 §6.2 ignores the white space between two
    adjacent encoded words (a word too long for one is split in two). Python's address parser keeps it
    ("=?utf-8?q?abc?= =?utf-8?q?d?=" → "abc d" in a display name, "abcd" in a Subject), so it is taken out here."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    return re.sub(rb"\?=(?:\r\n)?[ \t]+=\?", b"?==?", head) + sep + body


def test_a_word_split_over_two_encoded_words_reads_back_whole():
    """A name with a run of letters longer than one encoded word holds (a long double surname) is split without
    a space: read as RFC 2047 says, it is the name."""
    name = "Константинопольская-Преображенская"
    f = Path(tempfile.mkdtemp()) / "card.xlsx"
    f.write_bytes(b"PK\x03\x04 card")
    d = Delivery("employee:1", "anna@example.com", name, "employee", (f,), "2026-10", "ru")
    raw = build_message(d, SENDER, date=DATE).as_bytes()
    to = raw.split(b"\r\nTo: ", 1)[1].split(b"\r\nSubject:", 1)[0]
    assert to.count(b"=?utf-8?") >= 2  # the name does not fit one encoded word
    back = email.message_from_bytes(_rfc2047_joined(raw), policy=email.policy.default)
    assert back["To"].addresses[0].display_name == name
    header = to.decode("ascii").replace("\r\n", "")
    assert str(email.header.make_header(email.header.decode_header(header))) == f"{name} <anna@example.com>"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="АБВЁёйЙжщ ъ-'\"(),.<>@;:\\ Abc1\u0301\u00e9", min_size=1, max_size=120),
       st.text(alphabet="карта КАРТА 1001 ().,;'%*\"x\u00e9", min_size=1, max_size=110))
def test_names_written_directly_read_back_exactly(name, filename):
    """The To display name and the attachment's file name, written without the email package's folding,
    read back exactly (modern and compat32 parsers) and keep every line within 78 characters."""
    from xl_kpi.delivery.mail.compose import _clean_line

    name, filename = _clean_line(name), _clean_line(filename + ".xlsx", 250)
    if not name:
        return
    root = Path(tempfile.mkdtemp())
    (root / "f").mkdir()
    f = root / "f" / filename.replace("/", "_")
    f.write_bytes(b"PK\x03\x04 card")
    d = Delivery("employee:1", "anna@example.com", name, "employee", (f,), "2026-10", "ru")
    raw = build_message(d, SENDER, date=DATE).as_bytes()
    assert all(len(line) <= 78 for line in raw.split(b"\r\n") if b"vnd.openxmlformats" not in line)
    back = email.message_from_bytes(_rfc2047_joined(raw), policy=email.policy.default)
    assert back["To"].addresses[0].display_name == name
    assert back["To"].addresses[0].addr_spec == "anna@example.com"
    [part] = back.iter_attachments()
    assert part.get_filename() == f.name
    assert email.message_from_bytes(raw, policy=email.policy.compat32).get_payload()[1].get_filename() == f.name
