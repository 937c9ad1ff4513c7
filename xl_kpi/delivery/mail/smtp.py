"""SMTP: settings (:class:`SmtpConfig`), connecting under deadlines, one message per transaction."""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import socket
import ssl
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from xl_kpi.delivery.mail.addresses import _is_loopback, _parse_host_port, check_address
from xl_kpi.delivery.mail.model import MailError
from xl_kpi.engine.errors import KpiError
from xl_kpi.i18n import English, Msg

PASSWORD_ENV = "XL_KPI_SMTP_PASSWORD"
"""Environment variable holding the SMTP password (never a command-line option)."""


DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
SESSION_DEADLINE = 120.0
"""Default seconds for connecting, greeting, EHLO, STARTTLS and login together."""
MESSAGE_DEADLINE = 600.0
"""Default seconds for one message, MAIL FROM to the final reply (large attachments on a slow line)."""


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
            raise KpiError(Msg("SMTP security must be one of none, starttls, ssl, not {value!r}", value=self.security))
        if not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise KpiError(Msg("SMTP port must be a number from 1 to 65535, not {value!r}", value=self.port))
        for name in ("timeout", "session_deadline", "message_deadline"):
            if not getattr(self, name) > 0:
                raise KpiError(Msg("the SMTP {name} must be a positive number of seconds", name=name.replace("_", " ")))

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
            raise KpiError(Msg("choose one of --starttls and --ssl, not both"))
        security = "ssl" if ssl else "starttls" if starttls else "none"
        host, port = _parse_host_port(smtp, DEFAULT_PORTS[security])
        if not sender:
            raise KpiError(Msg("--from is required: the address the messages are sent from"))
        reason = check_address(sender)
        if reason:
            raise KpiError(Msg("--from {sender!r} is not a usable address: {reason}", sender=sender, reason=reason))
        password = None
        if user is not None:
            if not user or any(unicodedata.category(ch) in ("Cc", "Cf") or ch.isspace() for ch in user):
                raise KpiError(Msg("--user must be a non-empty name without spaces or control characters"))
            password = os.environ.get(password_env) or None
            if password is None:
                raise KpiError(Msg(
                    "--user {user} needs a password: set the environment variable {variable} "
                    "(passwords are never taken from the command line)", user=user, variable=password_env))
            if security == "none" and not _is_loopback(host):
                raise KpiError(Msg(
                    "--user without --starttls or --ssl would send the password in clear text; "
                    "add --starttls (port 587) or --ssl (port 465)"))
        if cafile is not None and not Path(cafile).is_file():
            raise KpiError(Msg("CA file {cafile} does not exist", cafile=str(cafile)))
        if not timeout > 0:
            raise KpiError(Msg("the SMTP timeout must be positive"))
        return cls(host, port, security, user, password, sender, timeout, cafile)



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

    def start(self, seconds: float, what: Msg) -> None:
        """Begin a step that must end within ``seconds``; ``what`` names it in the message."""
        self.cancel()
        self.expired = None
        reason = English(Msg("no complete answer {what} within {seconds:g} s", what=what, seconds=seconds))
        self._timer = threading.Timer(seconds, self._fire, args=(reason,))
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
    deadline.start(config.session_deadline, Msg("to the greeting, EHLO and login"))
    try:
        code, msg = smtp.connect(config.host, config.port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, msg)
        smtp.ehlo_or_helo_if_needed()
        if config.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise MailError(Msg(
                    "the SMTP server {where} does not offer STARTTLS; "
                    "nothing was sent (the messages are never sent unencrypted when --starttls is given)",
                    where=f"{config.host}:{config.port}"))
            code, resp = smtp.starttls(context=context)
            if code != 220:
                raise MailError(Msg("STARTTLS refused by {where}: {reply}", where=f"{config.host}:{config.port}",
                                    reply=_reply(code, resp)))
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
        raise MailError(Msg("the TLS certificate of {where} is not trusted: {why}", where=where,
                            why=str(e.verify_message))) from None
    except ssl.SSLError as e:
        raise MailError(Msg("TLS with {where} failed: {why}", where=where, why=str(e.reason or e))) from None
    except smtplib.SMTPAuthenticationError as e:
        raise MailError(Msg(
            "the SMTP server {where} refused the login of user {user}: {reply}; check --user and the password "
            "variable", where=where, user=config.user, reply=_reply(e.smtp_code, e.smtp_error))) from None
    except smtplib.SMTPNotSupportedError:
        raise MailError(Msg("the SMTP server {where} does not accept a login (no AUTH offered)", where=where)) from None
    except UnicodeEncodeError:
        raise MailError(Msg("the SMTP user name and password must use Latin letters, digits and ASCII signs")) from None
    except smtplib.SMTPException as e:
        if isinstance(e, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
            raise
        raise MailError(Msg("the SMTP server {where} refused the session: {error}", where=where,
                            error=str(e))) from None


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
    deadline.start(seconds, Msg("to the message"))
    try:
        code, resp = smtp.mail(sender)
        if code == 421:
            raise _Dropped(_reply(code, resp), False)
        if code != 250:
            _rset(smtp)
            return English(Msg("sender refused: {reply}", reply=_reply(code, resp)))
        code, resp = smtp.rcpt(rcpt)
        if code == 421:
            raise _Dropped(_reply(code, resp), False)
        if code not in (250, 251):
            _rset(smtp)
            return English(Msg("recipient refused: {reply}", reply=_reply(code, resp)))
        smtp.putcmd("data")
        code, resp = smtp.getreply()
        if code == 421:
            raise _Dropped(_reply(code, resp), False)
        if code != 354:
            _rset(smtp)
            return English(Msg("message refused: {reply}", reply=_reply(code, resp)))
        state.handed_over = True
        smtp.send(payload)
        code, resp = smtp.getreply()
        state.handed_over = False  # any reply is definite: 250 delivered, anything else not
        if code == 421:
            raise _Dropped(_reply(code, resp), False)
        if code != 250:
            _rset(smtp)
            return English(Msg("message refused: {reply}", reply=_reply(code, resp)))
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
